// Users: tenant administrators manage their tenant's users; the system administrator manages all
// users (and picks the tenant). Create with role, change role, reset password, delete.
import { useState } from 'preact/hooks';
import { api, ApiError, qs, type Page as ApiPage, type Role, type Tenant, type User } from '../api';
import { Page } from '../components/layout';
import { Pager, usePaged } from '../components/pager';
import { Confirm, Empty, ErrorAlert, Loading, Modal, toast, useLoad } from '../components/ui';
import { formatAgo, formatDateTime } from '../format';
import { Link } from '../router';
import { useSession } from '../session';
import { useNow } from './devices';

export const ROLE_LABEL: Record<Role, string> = { sysadmin: 'System admin', tenant_admin: 'Tenant admin', viewer: 'Viewer' };
const ROLE_HINT: Record<Role, string> = {
  viewer: 'sees devices and dashboards, changes nothing',
  tenant_admin: "manages the tenant's devices, dashboards and users",
  sysadmin: 'manages tenants and all users; sees no device data',
};

export function RoleBadge({ role }: { role: Role }) {
  return <span class={'badge ' + (role === 'sysadmin' ? 'danger' : role === 'tenant_admin' ? 'accent' : '')}>{ROLE_LABEL[role]}</span>;
}

/** All tenants (sysadmin only): id -> tenant, for pickers and names. */
export function useTenants(enabled: boolean) {
  return useLoad(async () => {
    if (!enabled) return [] as Tenant[];
    const out: Tenant[] = [];
    let cursor: string | null = null;
    do {
      const p: ApiPage<Tenant> = await api<ApiPage<Tenant>>('GET', '/api/v1/tenants' + qs({ page_size: 500, cursor }));
      out.push(...p.items);
      cursor = p.next_cursor;
    } while (cursor && out.length < 5000);
    return out;
  }, [enabled]);
}

type FieldErr = { field?: string; msg: unknown } | null;

function fieldErrorOf(e: unknown, fallbackField?: string): FieldErr {
  if (e instanceof ApiError) {
    if (e.status === 409) return { field: 'username', msg: 'This username is taken.' };
    if (e.field) return { field: e.field, msg: e.message };
    return { field: fallbackField, msg: e.message };
  }
  return { msg: e };
}

function FieldError({ err, field }: { err: FieldErr; field: string }) {
  if (!err || err.field !== field) return null;
  return (
    <span class="field-error" role="alert">
      {err.msg instanceof Error ? err.msg.message : String(err.msg)}
    </span>
  );
}

/** Password + confirmation with the same rules the server applies (>= 8 characters). */
export function checkNewPassword(pw: string, confirm: string): FieldErr {
  if (pw.length < 8) return { field: 'password', msg: 'Use at least 8 characters.' };
  if (pw !== confirm) return { field: 'confirm', msg: 'The two passwords differ.' };
  return null;
}

/** Create a user. fixedTenant: create in that tenant (e.g. the tenant admin from the Tenants page). */
export function UserCreateDialog(props: {
  me: User;
  tenants?: Tenant[];
  fixedTenant?: Tenant;
  fixedRole?: Role;
  title?: string;
  onClose: () => void;
  onCreated: (u: User) => void;
}) {
  const isSys = props.me.role === 'sysadmin';
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [role, setRole] = useState<Role>(props.fixedRole ?? 'viewer');
  const [tenantId, setTenantId] = useState(props.fixedTenant?.id ?? '');
  const [err, setErr] = useState<FieldErr>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    if (!username.trim()) return setErr({ field: 'username', msg: 'Enter a username.' });
    const pe = checkNewPassword(password, confirm);
    if (pe) return setErr(pe);
    if (isSys && role !== 'sysadmin' && !tenantId) return setErr({ field: 'tenant_id', msg: 'Pick the tenant this user belongs to.' });
    setBusy(true);
    setErr(null);
    try {
      const body: Record<string, unknown> = { username: username.trim(), password, role };
      if (isSys && role !== 'sysadmin') body.tenant_id = tenantId;
      const u = await api<User>('POST', '/api/v1/users', body);
      props.onCreated(u);
    } catch (ex) {
      setErr(fieldErrorOf(ex));
      setBusy(false);
    }
  };

  const roles: Role[] = isSys ? ['viewer', 'tenant_admin', 'sysadmin'] : ['viewer', 'tenant_admin'];
  return (
    <Modal
      title={props.title ?? 'New user'}
      onClose={props.onClose}
      footer={
        <>
          <button onClick={props.onClose}>Cancel</button>
          <button class="primary" type="submit" form="user-form" disabled={busy} data-testid="user-save">
            {busy ? 'Creating…' : 'Create user'}
          </button>
        </>
      }
    >
      <form id="user-form" class="form" onSubmit={submit} noValidate>
        {props.fixedTenant && (
          <div class="muted">
            Tenant: <strong>{props.fixedTenant.name}</strong>
          </div>
        )}
        <label class="field">
          <span>Username</span>
          <input value={username} onInput={(e) => setUsername(e.currentTarget.value)} autocomplete="off" data-testid="user-username" />
          <FieldError err={err} field="username" />
        </label>
        <div class="form-row">
          <label class="field">
            <span>Password</span>
            <input type="password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} autocomplete="new-password" data-testid="user-password" />
            <FieldError err={err} field="password" />
          </label>
          <label class="field">
            <span>Repeat password</span>
            <input type="password" value={confirm} onInput={(e) => setConfirm(e.currentTarget.value)} autocomplete="new-password" data-testid="user-password2" />
            <FieldError err={err} field="confirm" />
          </label>
        </div>
        {!props.fixedRole && (
          <fieldset class="role-choice">
            <legend>Role</legend>
            {roles.map((r) => (
              <label key={r} class="check-field">
                <input type="radio" name="role" value={r} checked={role === r} onChange={() => setRole(r)} data-testid={`role-${r}`} />
                <span>
                  {ROLE_LABEL[r]} <span class="muted small">— {ROLE_HINT[r]}</span>
                </span>
              </label>
            ))}
            <FieldError err={err} field="role" />
          </fieldset>
        )}
        {isSys && !props.fixedTenant && role !== 'sysadmin' && (
          <label class="field">
            <span>Tenant</span>
            <select value={tenantId} onChange={(e) => setTenantId(e.currentTarget.value)} data-testid="user-tenant">
              <option value="">Choose a tenant…</option>
              {(props.tenants ?? []).map((t) => (
                <option key={t.id} value={t.id}>
                  {t.name}
                </option>
              ))}
            </select>
            <FieldError err={err} field="tenant_id" />
          </label>
        )}
        {err && !['username', 'password', 'confirm', 'role', 'tenant_id'].includes(err.field ?? '') && <ErrorAlert error={err.msg} />}
      </form>
    </Modal>
  );
}

function RoleDialog(props: { user: User; me: User; onClose: () => void; onSaved: (u: User) => void }) {
  const [role, setRole] = useState<Role>(props.user.role);
  const [err, setErr] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  // Moving between sysadmin and tenant roles would change the tenant: not offered.
  const roles: Role[] = props.user.role === 'sysadmin' ? ['sysadmin'] : ['viewer', 'tenant_admin'];
  return (
    <Modal
      title={`Role of ${props.user.username}`}
      onClose={props.onClose}
      footer={
        <>
          <button onClick={props.onClose}>Cancel</button>
          <button
            class="primary"
            disabled={busy || role === props.user.role}
            data-testid="role-save"
            onClick={async () => {
              setBusy(true);
              setErr(null);
              try {
                props.onSaved(await api<User>('PATCH', `/api/v1/users/${props.user.id}`, { role }));
              } catch (e) {
                setErr(e);
                setBusy(false);
              }
            }}
          >
            Save role
          </button>
        </>
      }
    >
      <fieldset class="role-choice">
        <legend>Role</legend>
        {roles.map((r) => (
          <label key={r} class="check-field">
            <input type="radio" name="role" checked={role === r} onChange={() => setRole(r)} data-testid={`role-${r}`} />
            <span>
              {ROLE_LABEL[r]} <span class="muted small">— {ROLE_HINT[r]}</span>
            </span>
          </label>
        ))}
      </fieldset>
      <ErrorAlert error={err} />
    </Modal>
  );
}

function PasswordDialog(props: { user: User; onClose: () => void }) {
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [err, setErr] = useState<FieldErr>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const pe = checkNewPassword(password, confirm);
    if (pe) return setErr(pe);
    setBusy(true);
    setErr(null);
    try {
      await api('PATCH', `/api/v1/users/${props.user.id}`, { password });
      toast(`New password set for ${props.user.username}`);
      props.onClose();
    } catch (ex) {
      setErr(fieldErrorOf(ex, 'password'));
      setBusy(false);
    }
  };
  return (
    <Modal
      title={`Reset password of ${props.user.username}`}
      onClose={props.onClose}
      footer={
        <>
          <button onClick={props.onClose}>Cancel</button>
          <button class="primary" type="submit" form="pw-form" disabled={busy} data-testid="password-save">
            {busy ? 'Saving…' : 'Set password'}
          </button>
        </>
      }
    >
      <form id="pw-form" class="form" onSubmit={submit} noValidate>
        <p class="muted" style={{ margin: 0 }}>
          Give the new password to {props.user.username} through a safe channel. Their current sessions stay signed in until their tokens expire.
        </p>
        <label class="field">
          <span>New password</span>
          <input type="password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} autocomplete="new-password" />
          <FieldError err={err} field="password" />
        </label>
        <label class="field">
          <span>Repeat new password</span>
          <input type="password" value={confirm} onInput={(e) => setConfirm(e.currentTarget.value)} autocomplete="new-password" />
          <FieldError err={err} field="confirm" />
        </label>
        {err && !['password', 'confirm'].includes(err.field ?? '') && <ErrorAlert error={err.msg} />}
      </form>
    </Modal>
  );
}

export function UsersPage() {
  const { user: me } = useSession();
  const isSys = me?.role === 'sysadmin';
  const allowed = isSys || me?.role === 'tenant_admin';
  const tenants = useTenants(isSys);
  const tenantName = (id: string | null) => (id ? tenants.data?.find((t) => t.id === id)?.name ?? '…' : '—');
  const paged = usePaged<User>((cursor) => (allowed ? api<ApiPage<User>>('GET', '/api/v1/users' + qs({ page_size: 50, cursor })) : Promise.resolve({ items: [], next_cursor: null })), [allowed]);
  const [creating, setCreating] = useState(false);
  const [roleOf, setRoleOf] = useState<User | null>(null);
  const [pwOf, setPwOf] = useState<User | null>(null);
  const [deleting, setDeleting] = useState<User | null>(null);
  const now = useNow(60000);

  if (!me) return null;
  if (!allowed)
    return (
      <Page title="Users">
        <div class="panel">
          <Empty title="Only administrators manage users">
            <span>
              You can change your own password on <Link href="/profile">your account page</Link>.
            </span>
          </Empty>
        </div>
      </Page>
    );

  return (
    <Page
      title="Users"
      actions={
        <button class="primary" onClick={() => setCreating(true)} data-testid="user-create">
          + New user
        </button>
      }
    >
      <div class="panel flush">
        <ErrorAlert error={paged.error} />
        {paged.loading && paged.items.length === 0 ? (
          <Loading text="Loading users…" />
        ) : paged.items.length === 0 && !paged.error ? (
          <Empty title="No users yet">
            <button class="primary" onClick={() => setCreating(true)}>
              Create a user
            </button>
          </Empty>
        ) : (
          <div class={'table-wrap' + (paged.loading ? ' reloading' : '')}>
            <table class="data">
              <thead>
                <tr>
                  <th>Username</th>
                  <th>Role</th>
                  {isSys && <th>Tenant</th>}
                  <th class="hide-narrow">Created</th>
                  <th class="actions">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {paged.items.map((u) => {
                  const self = u.id === me.id;
                  return (
                    <tr key={u.id} data-testid="user-row" data-username={u.username}>
                      <td>
                        <span class="strong">{u.username}</span> {self && <span class="badge tiny">you</span>}
                      </td>
                      <td>
                        <RoleBadge role={u.role} />
                      </td>
                      {isSys && <td>{tenantName(u.tenant_id)}</td>}
                      <td class="hide-narrow muted" title={formatDateTime(u.created_at)}>
                        {formatAgo(u.created_at, now)}
                      </td>
                      <td class="actions">
                        {self ? (
                          <Link href="/profile" class="small">
                            Your account ›
                          </Link>
                        ) : (
                          <>
                            {u.role !== 'sysadmin' && (
                              <button class="ghost small" onClick={() => setRoleOf(u)} aria-label={`Change role of ${u.username}`}>
                                Role
                              </button>
                            )}
                            <button class="ghost small" onClick={() => setPwOf(u)} aria-label={`Reset password of ${u.username}`}>
                              Reset password
                            </button>
                            <button class="ghost small danger-text" onClick={() => setDeleting(u)} aria-label={`Delete ${u.username}`}>
                              Delete
                            </button>
                          </>
                        )}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
        <Pager {...paged} />
      </div>

      {creating && (
        <UserCreateDialog
          me={me}
          tenants={tenants.data}
          onClose={() => setCreating(false)}
          onCreated={(u) => {
            setCreating(false);
            toast(`Created ${u.username}`);
            paged.reload();
          }}
        />
      )}
      {roleOf && (
        <RoleDialog
          user={roleOf}
          me={me}
          onClose={() => setRoleOf(null)}
          onSaved={(u) => {
            setRoleOf(null);
            toast(`${u.username} is now ${ROLE_LABEL[u.role]}`);
            paged.reload();
          }}
        />
      )}
      {pwOf && <PasswordDialog user={pwOf} onClose={() => setPwOf(null)} />}
      {deleting && (
        <Confirm
          title="Delete user"
          message={
            <>
              Delete <strong>{deleting.username}</strong>? They can no longer sign in. This cannot be undone.
            </>
          }
          confirmLabel="Delete user"
          onConfirm={async () => {
            await api('DELETE', `/api/v1/users/${deleting.id}`);
            toast(`Deleted ${deleting.username}`);
            paged.reload();
          }}
          onClose={() => setDeleting(null)}
        />
      )}
    </Page>
  );
}
