// Devices: server-paginated list with search and filters kept in the URL, create / edit / delete,
// and the "token shown once" dialog with ready-to-paste snippets. The dialogs and small pieces
// here are reused by the device page (pages/device.tsx).
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, qs, type Device, type Page as ApiPage } from '../api';
import { rememberDevices, forgetDevice } from '../components/devicepicker';
import { Page } from '../components/layout';
import { Pager, usePaged } from '../components/pager';
import { Confirm, CopyButton, Empty, ErrorAlert, Loading, Modal, toast } from '../components/ui';
import { formatAgo, formatDateTime } from '../format';
import { Link, navigate, setQuery, useLocation } from '../router';
import { canEdit, useSession } from '../session';

/** Re-renders the caller every `ms` so "3 min ago" stays true. */
export function useNow(ms = 15000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = window.setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}

/** Default MQTT port of the server (the REST API does not expose the configured one). */
// The MQTT port devices connect to: this server's, from GET /api/v1/info (read at sign-in).
export let MQTT_PORT = 1883;
export function setMqttPort(port: number) {
  if (Number.isInteger(port) && port > 0) MQTT_PORT = port;
}

export function mosquittoSnippet(token: string): string {
  return `mosquitto_pub -h ${location.hostname} -p ${MQTT_PORT} -u ${token} -t v1/devices/me/telemetry -m '{"temperature":21.5}'`;
}

export function curlSnippet(token: string): string {
  return `curl -X POST ${location.protocol}//${location.host}/api/v1/${token}/telemetry -H 'Content-Type: application/json' -d '{"temperature":21.5}'`;
}

/** The two ready-to-paste snippets with copy buttons. */
export function Snippets({ token }: { token: string }) {
  const mq = mosquittoSnippet(token);
  const cu = curlSnippet(token);
  return (
    <div class="stack">
      <div class="snippet">
        <div class="snippet-head">
          <span>MQTT (mosquitto_pub)</span>
          <CopyButton text={mq} />
        </div>
        <pre data-testid="snippet-mosquitto">{mq}</pre>
      </div>
      <div class="snippet">
        <div class="snippet-head">
          <span>HTTP (curl)</span>
          <CopyButton text={cu} />
        </div>
        <pre data-testid="snippet-curl">{cu}</pre>
      </div>
    </div>
  );
}

/** Tokens issued in this browser tab (create / regenerate; memory only), so the device page's
 * Connect tab can fill its snippets right after creation. */
export const knownTokens = new Map<string, string>();

/** Shows a freshly issued access token once, with copy button and snippets. */
export function TokenDialog(props: { device: Pick<Device, 'id' | 'name'>; token: string; fresh?: 'created' | 'regenerated'; onClose: () => void }) {
  knownTokens.set(props.device.id, props.token);
  return (
    <Modal
      title={props.fresh === 'regenerated' ? 'New access token' : 'Device created'}
      onClose={props.onClose}
      wide
      footer={
        <>
          {props.fresh !== 'regenerated' && (
            <button
              onClick={() => {
                props.onClose();
                navigate(`/devices/${props.device.id}`);
              }}
            >
              Open device
            </button>
          )}
          <button class="primary" onClick={props.onClose}>
            Done
          </button>
        </>
      }
    >
      <div class="alert warn">
        Copy the access token of <strong>{props.device.name}</strong> now: it is shown only once. You can regenerate it later, which
        disconnects the device until it uses the new one.
      </div>
      <div>
        <div class="muted small" style={{ marginBottom: '4px' }}>
          Access token
        </div>
        <div class="token-box">
          <code data-testid="token-value">{props.token}</code>
          <CopyButton text={props.token} label="Copy token" />
        </div>
      </div>
      <Snippets token={props.token} />
      <p class="muted small" style={{ margin: 0 }}>
        With MQTT the token is the username; the default MQTT port is {MQTT_PORT}. Attributes go to <code>v1/devices/me/attributes</code>, RPC
        requests arrive on <code>v1/devices/me/rpc/request/+</code>.
      </p>
    </Modal>
  );
}

// ---- labels ------------------------------------------------------------------------------------

type LabelRow = { k: string; v: string };

const toRows = (labels: Record<string, string>): LabelRow[] => Object.entries(labels).map(([k, v]) => ({ k, v }));

/** Key / value editor for device labels; reports the rows, validated by labelsOf(). */
export function LabelsEditor(props: { rows: LabelRow[]; onChange: (rows: LabelRow[]) => void }) {
  const set = (i: number, patch: Partial<LabelRow>) => props.onChange(props.rows.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  return (
    <fieldset class="labels-editor">
      <legend>Labels</legend>
      {props.rows.length === 0 && <div class="muted small">No labels. Labels like site=plant-a let dashboards and filters pick devices.</div>}
      {props.rows.map((r, i) => (
        <div class="label-row" key={i}>
          <input aria-label={`Label ${i + 1} key`} placeholder="key" value={r.k} onInput={(e) => set(i, { k: e.currentTarget.value })} />
          <span class="muted">=</span>
          <input aria-label={`Label ${i + 1} value`} placeholder="value" value={r.v} onInput={(e) => set(i, { v: e.currentTarget.value })} />
          <button type="button" class="ghost icon" aria-label={`Remove label ${r.k || i + 1}`} onClick={() => props.onChange(props.rows.filter((_, j) => j !== i))}>
            ✕
          </button>
        </div>
      ))}
      <div>
        <button type="button" class="small" onClick={() => props.onChange([...props.rows, { k: '', v: '' }])}>
          + Add label
        </button>
      </div>
    </fieldset>
  );
}

function labelsOf(rows: LabelRow[]): Record<string, string> | string {
  const out: Record<string, string> = {};
  for (const r of rows) {
    const k = r.k.trim();
    if (!k && !r.v.trim()) continue;
    if (!k) return 'Every label needs a key.';
    if (k in out) return `The label "${k}" appears twice.`;
    out[k] = r.v.trim();
  }
  return out;
}

export function LabelBadges({ labels, max = 4 }: { labels: Record<string, string>; max?: number }) {
  const entries = Object.entries(labels);
  if (entries.length === 0) return <span class="muted">—</span>;
  return (
    <span class="labels">
      {entries.slice(0, max).map(([k, v]) => (
        <span class="badge label" key={k} title={`${k}=${v}`}>
          {k}
          {v ? <span class="label-v">={v}</span> : null}
        </span>
      ))}
      {entries.length > max && <span class="muted small">+{entries.length - max}</span>}
    </span>
  );
}

export function OnlineBadge({ device, now }: { device: Device; now?: number }) {
  return (
    <span class="online-cell">
      <span class={'badge ' + (device.online ? 'ok' : '')} data-testid="online-state">
        <span class={'dot' + (device.online ? ' ok' : '')} /> {device.online ? 'Online' : 'Offline'}
      </span>
      <span class="muted small" title={device.last_activity ? formatDateTime(device.last_activity) : 'No activity recorded'}>
        {device.last_activity ? formatAgo(device.last_activity, Math.max(now ?? Date.now(), device.last_activity)) : 'no activity'}
      </span>
    </span>
  );
}

// ---- create / edit -----------------------------------------------------------------------------

/** Create (device undefined) or edit a device. onSaved gets the server's answer. */
export function DeviceDialog(props: { device?: Device; onClose: () => void; onSaved: (d: Device) => void }) {
  const editing = !!props.device;
  const [name, setName] = useState(props.device?.name ?? '');
  const [type, setType] = useState(props.device?.type ?? 'default');
  const [rows, setRows] = useState<LabelRow[]>(toRows(props.device?.labels ?? {}));
  const [gateway, setGateway] = useState(props.device?.gateway ?? false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [fieldErr, setFieldErr] = useState<{ field: string; msg: string } | null>(null);

  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setFieldErr(null);
    if (!name.trim()) return setFieldErr({ field: 'name', msg: 'Give the device a name.' });
    const labels = labelsOf(rows);
    if (typeof labels === 'string') return setFieldErr({ field: 'labels', msg: labels });
    setBusy(true);
    try {
      const body = { name: name.trim(), type: type.trim() || 'default', labels };
      const d = editing
        ? await api<Device>('PATCH', `/api/v1/devices/${props.device!.id}`, body)
        : await api<Device>('POST', '/api/v1/devices', { ...body, gateway });
      forgetDevice(d.id);
      rememberDevices([d]);
      props.onSaved(d);
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) setFieldErr({ field: 'name', msg: `A device named "${name.trim()}" already exists.` });
      else if (err instanceof ApiError && err.field) setFieldErr({ field: err.field.split('.')[0], msg: err.message });
      else setError(err);
      setBusy(false);
    }
  };

  const ferr = (f: string) =>
    fieldErr?.field === f ? (
      <span class="field-error" role="alert">
        {fieldErr.msg}
      </span>
    ) : null;

  return (
    <Modal
      title={editing ? `Edit ${props.device!.name}` : 'New device'}
      onClose={props.onClose}
      footer={
        <>
          <button type="button" onClick={props.onClose}>
            Cancel
          </button>
          <button class="primary" type="submit" form="device-form" disabled={busy} data-testid="device-save">
            {busy ? 'Saving…' : editing ? 'Save' : 'Create device'}
          </button>
        </>
      }
    >
      <form id="device-form" class="form" onSubmit={submit} noValidate>
        <div class="form-row">
          <label class="field">
            <span>Name</span>
            <input
              value={name}
              onInput={(e) => setName(e.currentTarget.value)}
              required
              maxLength={256}
              placeholder="e.g. Boiler room 1"
              data-testid="device-name-input"
              aria-invalid={fieldErr?.field === 'name'}
            />
            {ferr('name')}
          </label>
          <label class="field">
            <span>Type</span>
            <input value={type} onInput={(e) => setType(e.currentTarget.value)} placeholder="default" list="device-types" data-testid="device-type-input" />
            {ferr('type')}
          </label>
        </div>
        <LabelsEditor rows={rows} onChange={setRows} />
        {ferr('labels')}
        {!editing && (
          <label class="check-field">
            <input type="checkbox" checked={gateway} onChange={(e) => setGateway(e.currentTarget.checked)} />
            <span>
              Gateway <span class="muted small">— may connect other devices through the MQTT gateway API</span>
            </span>
          </label>
        )}
        <ErrorAlert error={error} />
      </form>
    </Modal>
  );
}

/** The system administrator has no tenant data (the server answers 403). */
/** Asks before deleting a device; on success forgets it, says so and calls onDeleted. */
export function DeleteDeviceDialog(props: { device: Pick<Device, 'id' | 'name'>; onDeleted: () => void; onClose: () => void }) {
  const { device } = props;
  return (
    <Confirm
      title="Delete device"
      message={
        <>
          Delete <strong>{device.name}</strong>? Its telemetry, attributes and credentials are deleted too, and it is disconnected at once. This cannot be
          undone.
        </>
      }
      confirmLabel="Delete device"
      onConfirm={async () => {
        await api('DELETE', `/api/v1/devices/${device.id}`);
        forgetDevice(device.id);
        toast(`Deleted ${device.name}`);
        props.onDeleted();
      }}
      onClose={props.onClose}
    />
  );
}

export function SysadminNoData() {
  return (
    <Empty title="Devices belong to tenants">
      <span>The system administrator manages tenants and users. Sign in as a tenant user to see devices and their data.</span>
      <Link href="/tenants">Go to tenants</Link>
    </Empty>
  );
}

// ---- list --------------------------------------------------------------------------------------

const knownTypes = new Set<string>(['default']);

export function DevicesPage() {
  const { user } = useSession();
  const editable = canEdit(user);
  const { query } = useLocation();
  const q = query.get('q') ?? '';
  const type = query.get('type') ?? '';
  const label = query.get('label') ?? '';
  const online = query.get('online') ?? '';
  const [search, setSearch] = useState(q);
  const [labelInput, setLabelInput] = useState(label);
  const [typeInput, setTypeInput] = useState(type);
  const [creating, setCreating] = useState(false);
  const [editing, setEditing] = useState<Device | null>(null);
  const [deleting, setDeleting] = useState<Device | null>(null);
  const [created, setCreated] = useState<Device | null>(null);
  const now = useNow(15000);

  // Debounce text inputs into the URL (the URL is the source of truth for the list).
  const timer = useRef<number | undefined>(undefined);
  const debounced = (patch: Record<string, string>) => {
    clearTimeout(timer.current);
    timer.current = window.setTimeout(() => setQuery(patch), 300);
  };
  // Follow the URL (back/forward, "clear filters") without fighting the user's typing.
  useEffect(() => setSearch((s) => (s === q ? s : q)), [q]);
  useEffect(() => setLabelInput((s) => (s.trim() === label ? s : label)), [label]);
  useEffect(() => setTypeInput((s) => (s.trim() === type ? s : type)), [type]);

  const paged = usePaged<Device>(
    (cursor) => api<ApiPage<Device>>('GET', '/api/v1/devices' + qs({ q, type, label, online, page_size: 25, cursor })),
    [q, type, label, online],
  );
  useEffect(() => {
    rememberDevices(paged.items);
    paged.items.forEach((d) => knownTypes.add(d.type));
  }, [paged.items]);

  // Online state and last activity change all the time: refresh the page every 30 s while visible.
  useEffect(() => {
    const t = window.setInterval(() => document.visibilityState === 'visible' && paged.reload(), 30000);
    return () => clearInterval(t);
  }, []);

  const filtered = !!(q || type || label || online);
  if (user?.role === 'sysadmin')
    return (
      <Page title="Devices">
        <div class="panel">
          <SysadminNoData />
        </div>
      </Page>
    );
  const clear = () => {
    setSearch('');
    setLabelInput('');
    setTypeInput('');
    setQuery({ q: undefined, type: undefined, label: undefined, online: undefined });
  };

  return (
    <Page
      title="Devices"
      actions={
        editable && (
          <>
            {(type || label) && (
              // A device type (or label) is the unit analytics is usually set up for.
              <>
                <Link class="btn" href={'/analytics/detectors' + qs({ new: 1, type: type || undefined, label: label || undefined })} data-testid="type-new-detector">
                  + Detector for {type ? `type ${type}` : `label ${label}`}
                </Link>
                <Link class="btn" href={'/analytics/rules' + qs({ new: 1, type: type || undefined, label: label || undefined })} data-testid="type-new-rule">
                  + Rule
                </Link>
              </>
            )}
            <button class="primary" onClick={() => setCreating(true)} data-testid="device-create">
              + New device
            </button>
          </>
        )
      }
    >
      <div class="filters" role="search">
        <label class="field grow">
          <span>Search</span>
          <input
            type="search"
            placeholder="Device name…"
            value={search}
            onInput={(e) => {
              setSearch(e.currentTarget.value);
              debounced({ q: e.currentTarget.value });
            }}
            data-testid="device-search"
          />
        </label>
        <label class="field">
          <span>Type</span>
          <input
            list="device-types"
            placeholder="any"
            value={typeInput}
            onInput={(e) => {
              setTypeInput(e.currentTarget.value);
              debounced({ type: e.currentTarget.value.trim() });
            }}
            data-testid="filter-type"
          />
        </label>
        <label class="field">
          <span>Label</span>
          <input
            placeholder="key or key:value"
            value={labelInput}
            onInput={(e) => {
              setLabelInput(e.currentTarget.value);
              debounced({ label: e.currentTarget.value.trim() });
            }}
            data-testid="filter-label"
          />
        </label>
        <label class="field">
          <span>State</span>
          <select value={online} onChange={(e) => setQuery({ online: e.currentTarget.value })} data-testid="filter-online">
            <option value="">Any</option>
            <option value="true">Online</option>
            <option value="false">Offline</option>
          </select>
        </label>
        {filtered && (
          <button class="ghost small clear-filters" onClick={clear}>
            Clear filters
          </button>
        )}
        <datalist id="device-types">
          {[...knownTypes].sort().map((t) => (
            <option key={t} value={t} />
          ))}
        </datalist>
      </div>

      <div class="panel flush">
        <ErrorAlert error={paged.error} />
        {paged.loading && paged.items.length === 0 ? (
          <Loading text="Loading devices…" />
        ) : paged.items.length === 0 && !paged.error ? (
          filtered ? (
            <Empty title="No device matches these filters">
              <button onClick={clear}>Clear filters</button>
            </Empty>
          ) : (
            <Empty title="No devices yet">
              <span>Devices send telemetry over MQTT or HTTP with their access token.</span>
              {editable ? (
                <button class="primary" onClick={() => setCreating(true)}>
                  Create your first device
                </button>
              ) : (
                <span>Ask a tenant administrator to add one.</span>
              )}
            </Empty>
          )
        ) : (
          <div class={'table-wrap' + (paged.loading ? ' reloading' : '')}>
            <table class="data devices-table">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Type</th>
                  <th class="hide-narrow">Labels</th>
                  <th>State</th>
                  <th class="hide-narrow">Created</th>
                  {editable && (
                    <th class="actions">
                      <span class="sr-only">Actions</span>
                    </th>
                  )}
                </tr>
              </thead>
              <tbody>
                {paged.items.map((d) => (
                  <tr key={d.id} class="clickable" data-testid="device-row" data-device-id={d.id} onClick={() => navigate(`/devices/${d.id}`)}>
                    <td>
                      <Link href={`/devices/${d.id}`} class="strong" onClick={(e) => e.stopPropagation()}>
                        {d.name}
                      </Link>
                      {d.gateway && <span class="badge accent tiny">gateway</span>}
                    </td>
                    <td>
                      <span class="mono small">{d.type}</span>
                    </td>
                    <td class="hide-narrow">
                      <LabelBadges labels={d.labels} />
                    </td>
                    <td>
                      <OnlineBadge device={d} now={now} />
                    </td>
                    <td class="hide-narrow muted" title={formatDateTime(d.created_at)}>
                      {formatAgo(d.created_at, now)}
                    </td>
                    {editable && (
                      <td class="actions" onClick={(e) => e.stopPropagation()}>
                        <button class="ghost small" onClick={() => setEditing(d)} aria-label={`Edit ${d.name}`}>
                          Edit
                        </button>
                        <button class="ghost small danger-text" onClick={() => setDeleting(d)} aria-label={`Delete ${d.name}`}>
                          Delete
                        </button>
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        <Pager {...paged} />
      </div>

      {creating && (
        <DeviceDialog
          onClose={() => setCreating(false)}
          onSaved={(d) => {
            setCreating(false);
            setCreated(d);
            paged.reload();
          }}
        />
      )}
      {created && created.credentials && <TokenDialog device={created} token={created.credentials.access_token} fresh="created" onClose={() => setCreated(null)} />}
      {editing && (
        <DeviceDialog
          device={editing}
          onClose={() => setEditing(null)}
          onSaved={(d) => {
            setEditing(null);
            toast(`Saved ${d.name}`);
            paged.reload();
          }}
        />
      )}
      {deleting && (
        <DeleteDeviceDialog device={deleting} onDeleted={() => paged.reload()} onClose={() => setDeleting(null)} />
      )}
    </Page>
  );
}
