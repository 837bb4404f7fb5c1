// Tenants (system administrator): list, create, edit limits, delete (type the name to confirm),
// and create the tenant's first administrator from its row.
import { useState } from 'preact/hooks';
import { api, ApiError, qs, type Page as ApiPage, type Tenant } from '../api';
import { Page } from '../components/layout';
import { Pager, usePaged } from '../components/pager';
import { Empty, ErrorAlert, Loading, Modal, toast } from '../components/ui';
import { formatAgo, formatDateTime, formatNumber } from '../format';
import { useSession } from '../session';
import { useNow } from './devices';
import { UserCreateDialog } from './users';

function TenantDialog(props: { tenant?: Tenant; onClose: () => void; onSaved: (t: Tenant) => void }) {
  const t = props.tenant;
  const [name, setName] = useState(t?.name ?? '');
  const [retention, setRetention] = useState(String(t?.retention_days ?? 0));
  const [rate, setRate] = useState(String(t?.max_msgs_per_s ?? 0));
  const [err, setErr] = useState<{ field?: string; msg: string } | null>(null);
  const [other, setOther] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    setErr(null);
    setOther(null);
    if (!name.trim()) return setErr({ field: 'name', msg: 'Enter a name.' });
    const r = Number(retention);
    if (retention.trim() === '' || !Number.isInteger(r) || r < 0) return setErr({ field: 'retention_days', msg: 'A whole number of days, 0 or more.' });
    const m = Number(rate);
    if (rate.trim() === '' || !Number.isFinite(m) || m < 0) return setErr({ field: 'max_msgs_per_s', msg: 'A number, 0 or more.' });
    setBusy(true);
    try {
      const body = { name: name.trim(), retention_days: r, max_msgs_per_s: m };
      const saved = t ? await api<Tenant>('PATCH', `/api/v1/tenants/${t.id}`, body) : await api<Tenant>('POST', '/api/v1/tenants', body);
      props.onSaved(saved);
    } catch (ex) {
      if (ex instanceof ApiError && ex.status === 409) setErr({ field: 'name', msg: `A tenant named "${name.trim()}" already exists.` });
      else if (ex instanceof ApiError && ex.field) setErr({ field: ex.field, msg: ex.message });
      else setOther(ex);
      setBusy(false);
    }
  };
  const fe = (f: string) =>
    err?.field === f ? (
      <span class="field-error" role="alert">
        {err.msg}
      </span>
    ) : null;

  return (
    <Modal
      title={t ? `Edit ${t.name}` : 'New tenant'}
      onClose={props.onClose}
      footer={
        <>
          <button onClick={props.onClose}>Cancel</button>
          <button class="primary" type="submit" form="tenant-form" disabled={busy} data-testid="tenant-save">
            {busy ? 'Saving…' : t ? 'Save' : 'Create tenant'}
          </button>
        </>
      }
    >
      <form id="tenant-form" class="form" onSubmit={submit} noValidate>
        <label class="field">
          <span>Name</span>
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="e.g. Acme Industries" data-testid="tenant-name" />
          {fe('name')}
        </label>
        <div class="form-row">
          <label class="field">
            <span>Data retention (days)</span>
            <input type="number" min="0" step="1" value={retention} onInput={(e) => setRetention(e.currentTarget.value)} data-testid="tenant-retention" />
            <span class="muted small">0 keeps telemetry forever.</span>
            {fe('retention_days')}
          </label>
          <label class="field">
            <span>Max messages/s per device</span>
            <input type="number" min="0" step="any" value={rate} onInput={(e) => setRate(e.currentTarget.value)} data-testid="tenant-rate" />
            <span class="muted small">0 uses the server default.</span>
            {fe('max_msgs_per_s')}
          </label>
        </div>
        <ErrorAlert error={other} />
      </form>
    </Modal>
  );
}

/** Deleting a tenant deletes everything in it: the name must be typed to enable the button. */
function DeleteTenantDialog(props: { tenant: Tenant; onClose: () => void; onDeleted: () => void }) {
  const [typed, setTyped] = useState('');
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<unknown>(null);
  const ok = typed === props.tenant.name;
  return (
    <Modal
      title="Delete tenant"
      onClose={props.onClose}
      footer={
        <>
          <button onClick={props.onClose}>Cancel</button>
          <button
            class="danger solid"
            disabled={!ok || busy}
            data-testid="tenant-delete-confirm"
            onClick={async () => {
              setBusy(true);
              setErr(null);
              try {
                await api('DELETE', `/api/v1/tenants/${props.tenant.id}`);
                props.onDeleted();
              } catch (e) {
                setErr(e);
                setBusy(false);
              }
            }}
          >
            {busy ? 'Deleting…' : 'Delete this tenant and all its data'}
          </button>
        </>
      }
    >
      <div class="alert error">
        This deletes <strong>{props.tenant.name}</strong> with all its users, devices, telemetry and dashboards. It cannot be undone.
      </div>
      <label class="field">
        <span>
          Type <strong class="mono">{props.tenant.name}</strong> to confirm
        </span>
        <input value={typed} onInput={(e) => setTyped(e.currentTarget.value)} autocomplete="off" data-testid="tenant-delete-name" />
      </label>
      <ErrorAlert error={err} />
    </Modal>
  );
}

export function TenantsPage() {
  const { user: me } = useSession();
  const isSys = me?.role === 'sysadmin';
  const paged = usePaged<Tenant>(
    (cursor) => (isSys ? api<ApiPage<Tenant>>('GET', '/api/v1/tenants' + qs({ page_size: 50, cursor })) : Promise.resolve({ items: [], next_cursor: null })),
    [isSys],
  );
  const [creating, setCreating] = useState(false);
  const [editing, setEditing] = useState<Tenant | null>(null);
  const [deleting, setDeleting] = useState<Tenant | null>(null);
  const [adminFor, setAdminFor] = useState<Tenant | null>(null);
  const [justCreated, setJustCreated] = useState<Tenant | null>(null);
  const now = useNow(60000);

  if (!me) return null;
  if (!isSys)
    return (
      <Page title="Tenants">
        <div class="panel">
          <Empty title="Only the system administrator manages tenants" />
        </div>
      </Page>
    );

  return (
    <Page
      title="Tenants"
      actions={
        <button class="primary" onClick={() => setCreating(true)} data-testid="tenant-create">
          + New tenant
        </button>
      }
    >
      {justCreated && (
        <div class="alert info row">
          <span>
            Tenant <strong>{justCreated.name}</strong> created. Next, give it an administrator who can add devices and users.
          </span>
          <span class="spacer" />
          <button class="small primary" onClick={() => setAdminFor(justCreated)}>
            Create its admin
          </button>
          <button class="small ghost" aria-label="Dismiss" onClick={() => setJustCreated(null)}>
            ✕
          </button>
        </div>
      )}
      <div class="panel flush">
        <ErrorAlert error={paged.error} />
        {paged.loading && paged.items.length === 0 ? (
          <Loading text="Loading tenants…" />
        ) : paged.items.length === 0 && !paged.error ? (
          <Empty title="No tenants yet">
            <span>A tenant is an isolated organisation with its own users, devices and dashboards.</span>
            <button class="primary" onClick={() => setCreating(true)}>
              Create the first tenant
            </button>
          </Empty>
        ) : (
          <div class={'table-wrap' + (paged.loading ? ' reloading' : '')}>
            <table class="data">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Retention</th>
                  <th>Max msgs/s per device</th>
                  <th class="hide-narrow">Created</th>
                  <th class="actions">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {paged.items.map((t) => (
                  <tr key={t.id} data-testid="tenant-row" data-tenant={t.name}>
                    <td>
                      <span class="strong">{t.name}</span>
                      <div class="muted small mono hide-narrow">{t.id}</div>
                    </td>
                    <td>{t.retention_days > 0 ? `${t.retention_days} days` : <span class="muted">forever</span>}</td>
                    <td>{t.max_msgs_per_s > 0 ? formatNumber(t.max_msgs_per_s) : <span class="muted">server default</span>}</td>
                    <td class="hide-narrow muted" title={formatDateTime(t.created_at)}>
                      {formatAgo(t.created_at, now)}
                    </td>
                    <td class="actions">
                      <button class="ghost small" onClick={() => setAdminFor(t)} data-testid="tenant-create-admin">
                        + Admin user
                      </button>
                      <button class="ghost small" onClick={() => setEditing(t)} aria-label={`Edit ${t.name}`}>
                        Edit
                      </button>
                      <button class="ghost small danger-text" onClick={() => setDeleting(t)} aria-label={`Delete ${t.name}`}>
                        Delete
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        <Pager {...paged} />
      </div>

      {creating && (
        <TenantDialog
          onClose={() => setCreating(false)}
          onSaved={(t) => {
            setCreating(false);
            setJustCreated(t);
            toast(`Created ${t.name}`);
            paged.reload();
          }}
        />
      )}
      {editing && (
        <TenantDialog
          tenant={editing}
          onClose={() => setEditing(null)}
          onSaved={(t) => {
            setEditing(null);
            toast(`Saved ${t.name}`);
            paged.reload();
          }}
        />
      )}
      {deleting && (
        <DeleteTenantDialog
          tenant={deleting}
          onClose={() => setDeleting(null)}
          onDeleted={() => {
            toast(`Deleted ${deleting.name}`);
            if (justCreated?.id === deleting.id) setJustCreated(null);
            setDeleting(null);
            paged.reload();
          }}
        />
      )}
      {adminFor && (
        <UserCreateDialog
          me={me}
          fixedTenant={adminFor}
          fixedRole="tenant_admin"
          title={`New administrator for ${adminFor.name}`}
          onClose={() => setAdminFor(null)}
          onCreated={(u) => {
            toast(`${u.username} can now sign in and manage ${adminFor.name}`);
            if (justCreated?.id === adminFor.id) setJustCreated(null);
            setAdminFor(null);
          }}
        />
      )}
    </Page>
  );
}
