// Alarm webhooks (issue 5): list, create (the signing secret is shown once, with a copy button),
// edit (optionally with a new secret), delete, "Send test", and the deliveries of the selected
// webhook (status, attempts, last error) — ?deliveries=<id> in the URL.
import { useState } from 'preact/hooks';
import { api, ApiError, qs, type Delivery, type Page as ApiPage, type Severity, type Webhook, type WebhookBody } from '../api';
import { AnalyticsNoData, AnalyticsTabs, SEVERITY_LABEL, SeveritySelect } from '../components/analytics';
import { Page } from '../components/layout';
import { Pager, usePaged } from '../components/pager';
import { Confirm, CopyButton, Empty, ErrorAlert, Loading, Modal, toast } from '../components/ui';
import { formatAgo, formatDateTime } from '../format';
import { setQuery, useLocation } from '../router';
import { canEdit, useSession } from '../session';
import { useNow } from './devices';
import { Switch } from './detectors';

function newSecret(): string {
  const a = new Uint8Array(24);
  crypto.getRandomValues(a);
  return Array.from(a, (b) => b.toString(16).padStart(2, '0')).join('');
}

export function WebhooksPage() {
  const { user } = useSession();
  const editable = canEdit(user);
  const { query } = useLocation();
  const selected = query.get('deliveries') ?? '';
  const now = useNow(15000);
  const [creating, setCreating] = useState(false);
  const [editing, setEditing] = useState<Webhook | null>(null);
  const [deleting, setDeleting] = useState<Webhook | null>(null);
  const [secret, setSecret] = useState<Webhook | null>(null);
  const [busyId, setBusyId] = useState<string | null>(null);
  const [deliveryTick, setDeliveryTick] = useState(0);
  const paged = usePaged<Webhook>((cursor) => api<ApiPage<Webhook>>('GET', '/api/v1/webhooks' + qs({ page_size: 50, cursor })), []);

  if (user?.role === 'sysadmin') return <AnalyticsNoData title="Webhooks" />;

  const save = async (w: Webhook, patch: Partial<WebhookBody>) => {
    setBusyId(w.id);
    try {
      await api<Webhook>('PUT', `/api/v1/webhooks/${w.id}`, { name: w.name, url: w.url, min_severity: w.min_severity, enabled: w.enabled, ...patch });
      paged.reload();
      toast(`${w.name} ${patch.enabled ? 'enabled' : 'disabled'}`);
    } catch (e) {
      toast((e as Error).message, 'error');
    } finally {
      setBusyId(null);
    }
  };

  const sendTest = async (w: Webhook) => {
    setBusyId(w.id);
    try {
      await api('POST', `/api/v1/webhooks/${w.id}/test`);
      toast(`Test event queued for ${w.name}; see its deliveries`);
      setQuery({ deliveries: w.id });
      setDeliveryTick((t) => t + 1);
      // The delivery is attempted in the background: refresh its row shortly.
      setTimeout(() => {
        setDeliveryTick((t) => t + 1);
        paged.reload();
      }, 1500);
    } catch (e) {
      if (e instanceof ApiError && (e.status === 404 || e.status === 405) && e.code !== 'not_found') toast('This server cannot send test events.', 'error');
      else toast((e as Error).message, 'error');
    } finally {
      setBusyId(null);
    }
  };

  const sel = paged.items.find((w) => w.id === selected);
  return (
    <Page
      title="Webhooks"
      crumbs={[{ href: '/analytics/detectors', label: 'Analytics' }]}
      actions={
        editable && (
          <button class="primary" onClick={() => setCreating(true)} data-testid="webhook-create">
            + New webhook
          </button>
        )
      }
    >
      <AnalyticsTabs active="webhooks" />
      <p class="muted small page-note">
        Every alarm event (raised, updated, acknowledged, cleared) at or above a webhook's minimum severity is POSTed to its URL as JSON, signed with
        HMAC-SHA256 in <code>X-Sensoworks-Signature</code>. Failed deliveries are retried with backoff (1 s, 2 s, 4 s… up to 8 attempts).
      </p>
      <div class="panel flush">
        <ErrorAlert error={paged.error} />
        {paged.loading && paged.items.length === 0 ? (
          <Loading text="Loading webhooks…" />
        ) : paged.items.length === 0 && !paged.error ? (
          <Empty title="No webhooks yet">
            <span>Send alarms to a chat bot, an incident tool or your own service.</span>
            {editable && (
              <button class="primary" onClick={() => setCreating(true)}>
                Create a webhook
              </button>
            )}
          </Empty>
        ) : (
          <div class={'table-wrap' + (paged.loading ? ' reloading' : '')}>
            <table class="data">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>URL</th>
                  <th class="hide-narrow">Min. severity</th>
                  <th>Enabled</th>
                  <th>Last delivery</th>
                  <th class="actions">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {paged.items.map((w) => (
                  <tr
                    key={w.id}
                    class={'clickable' + (w.id === selected ? ' selected' : '')}
                    data-testid="webhook-row"
                    data-webhook-id={w.id}
                    onClick={() => setQuery({ deliveries: w.id === selected ? undefined : w.id })}
                  >
                    <td>
                      <div class="strong">{w.name}</div>
                      <div class="muted small show-narrow">{SEVERITY_LABEL[w.min_severity] ?? w.min_severity} and above</div>
                    </td>
                    <td class="mono small url-cell" title={w.url}>
                      {w.url}
                    </td>
                    <td class="hide-narrow">{SEVERITY_LABEL[w.min_severity] ?? w.min_severity} and above</td>
                    <td>
                      {editable ? (
                        <Switch checked={w.enabled} disabled={busyId === w.id} onChange={(on) => save(w, { enabled: on })} label={`${w.name} enabled`} testid="webhook-enabled" />
                      ) : (
                        <span class={'badge ' + (w.enabled ? 'ok' : '')}>{w.enabled ? 'On' : 'Off'}</span>
                      )}
                    </td>
                    <td>
                      {w.failing ? (
                        <span class="badge danger" title={w.last_error ?? undefined} data-testid="webhook-state">
                          Failing
                        </span>
                      ) : w.last_delivery_ms ? (
                        <span class="badge ok" data-testid="webhook-state">
                          OK
                        </span>
                      ) : (
                        <span class="muted small" data-testid="webhook-state">
                          never
                        </span>
                      )}{' '}
                      {w.last_delivery_ms && (
                        <span class="muted small" title={formatDateTime(w.last_delivery_ms)}>
                          {formatAgo(w.last_delivery_ms, Math.max(now, w.last_delivery_ms))}
                        </span>
                      )}
                      {w.failing && w.last_error && <div class="small danger-text clamp">{w.last_error}</div>}
                    </td>
                    <td class="actions" onClick={(e) => e.stopPropagation()}>
                      <button
                        class="ghost small hide-narrow"
                        onClick={() => setQuery({ deliveries: w.id === selected ? undefined : w.id })}
                        aria-pressed={w.id === selected}
                        data-testid="webhook-deliveries"
                      >
                        Deliveries
                      </button>
                      {editable && (
                        <>
                          <button class="ghost small" disabled={busyId === w.id} onClick={() => sendTest(w)} aria-label={`Send a test event to ${w.name}`} data-testid="webhook-test">
                            Send test
                          </button>
                          <button class="ghost small" onClick={() => setEditing(w)} aria-label={`Edit ${w.name}`} data-testid="webhook-edit">
                            Edit
                          </button>
                          <button class="ghost small danger-text" onClick={() => setDeleting(w)} aria-label={`Delete ${w.name}`} data-testid="webhook-delete">
                            Delete
                          </button>
                        </>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        <Pager {...paged} />
      </div>

      {selected && <Deliveries key={selected + ':' + deliveryTick} webhookId={selected} name={sel?.name} onClose={() => setQuery({ deliveries: undefined })} />}

      {(creating || editing) && (
        <WebhookDialog
          webhook={editing ?? undefined}
          onClose={() => (creating ? setCreating(false) : setEditing(null))}
          onSaved={(w) => {
            setCreating(false);
            setEditing(null);
            paged.reload();
            if (w.secret) setSecret(w);
            else toast(`Saved ${w.name}`);
          }}
        />
      )}
      {secret && <SecretDialog webhook={secret} onClose={() => setSecret(null)} />}
      {deleting && (
        <Confirm
          title="Delete webhook"
          message={
            <>
              Delete <strong>{deleting.name}</strong>? Alarms are no longer sent to <code>{deleting.url}</code>; pending deliveries are dropped.
            </>
          }
          onConfirm={async () => {
            await api('DELETE', `/api/v1/webhooks/${deleting.id}`);
            toast(`Deleted ${deleting.name}`);
            if (selected === deleting.id) setQuery({ deliveries: undefined });
            paged.reload();
          }}
          onClose={() => setDeleting(null)}
        />
      )}
    </Page>
  );
}

function DeliveryStatus({ d }: { d: Delivery }) {
  const cls = d.status === 'delivered' ? 'ok' : d.status === 'failed' ? 'danger' : 'warn';
  return (
    <span class={'badge ' + cls} data-testid="delivery-status">
      {d.status}
    </span>
  );
}

function Deliveries(props: { webhookId: string; name?: string; onClose: () => void }) {
  const now = useNow(5000);
  const paged = usePaged<Delivery>(
    (cursor) => api<ApiPage<Delivery>>('GET', `/api/v1/webhooks/${encodeURIComponent(props.webhookId)}/deliveries` + qs({ page_size: 25, cursor })),
    [props.webhookId],
  );
  return (
    <section class="panel flush" aria-label="Deliveries" data-testid="deliveries">
      <div class="panel-bar">
        <h2>Deliveries{props.name ? ` of ${props.name}` : ''}</h2>
        <span class="spacer" />
        <button class="small" onClick={paged.reload} aria-label="Reload deliveries">
          ↻ Reload
        </button>
        <button class="ghost small" onClick={props.onClose} aria-label="Close deliveries">
          ✕
        </button>
      </div>
      <ErrorAlert error={paged.error} />
      {paged.loading && paged.items.length === 0 ? (
        <Loading text="Loading deliveries…" />
      ) : paged.items.length === 0 && !paged.error ? (
        <div class="empty small-empty">No deliveries yet: alarm events appear here as they are sent.</div>
      ) : (
        <div class={'table-wrap' + (paged.loading ? ' reloading' : '')}>
          <table class="data">
            <thead>
              <tr>
                <th>Created</th>
                <th>Event</th>
                <th>Status</th>
                <th class="num">Attempts</th>
                <th class="num">HTTP</th>
                <th>Last error</th>
                <th class="hide-narrow">Next attempt / delivered</th>
              </tr>
            </thead>
            <tbody>
              {paged.items.map((d) => (
                <tr key={d.id} data-testid="delivery-row">
                  <td class="nowrap" title={formatDateTime(d.created_ms)}>
                    {formatAgo(d.created_ms, Math.max(now, d.created_ms))}
                  </td>
                  <td class="mono small">{d.event}</td>
                  <td>
                    <DeliveryStatus d={d} />
                  </td>
                  <td class="num">{d.attempts}</td>
                  <td class="num">{d.last_status_code ?? '—'}</td>
                  <td class="small danger-text">{d.last_error && <div class="clamp">{d.last_error}</div>}</td>
                  <td class="hide-narrow muted small nowrap">
                    {d.status === 'delivered'
                      ? formatDateTime(d.delivered_ms)
                      : d.status === 'pending' && d.next_attempt_ms
                        ? `retry ${d.next_attempt_ms > now ? 'in ' + Math.max(1, Math.round((d.next_attempt_ms - now) / 1000)) + ' s' : 'now'}`
                        : '—'}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Pager {...paged} />
    </section>
  );
}

function WebhookDialog(props: { webhook?: Webhook; onClose: () => void; onSaved: (w: Webhook) => void }) {
  const w = props.webhook;
  const [name, setName] = useState(w?.name ?? '');
  const [url, setUrl] = useState(w?.url ?? '');
  const [minSeverity, setMinSeverity] = useState<Severity>(w?.min_severity ?? 'info');
  const [enabled, setEnabled] = useState(w?.enabled ?? true);
  const [secretText, setSecretText] = useState('');
  const [rotate, setRotate] = useState(false);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (ev: Event) => {
    ev.preventDefault();
    const e: Record<string, string> = {};
    if (!name.trim()) e.name = 'Give the webhook a name.';
    if (!/^https?:\/\/[^\s/]+/i.test(url.trim())) e.url = 'An http:// or https:// URL, e.g. http://alerts.example.org:8080/hook';
    setErrors(e);
    setError(null);
    if (Object.keys(e).length) return;
    const body: WebhookBody = { name: name.trim(), url: url.trim(), min_severity: minSeverity, enabled };
    if (!w && secretText.trim()) body.secret = secretText.trim();
    if (w && rotate) body.secret = newSecret();
    setBusy(true);
    try {
      const saved = w ? await api<Webhook>('PUT', `/api/v1/webhooks/${w.id}`, body) : await api<Webhook>('POST', '/api/v1/webhooks', body);
      // The server echoes the secret only when it set one; a rotated secret we generated is known here.
      props.onSaved(body.secret && !saved.secret ? { ...saved, secret: body.secret } : saved);
    } catch (ex) {
      if (ex instanceof ApiError && ex.field && ['name', 'url', 'secret', 'min_severity'].includes(ex.field)) setErrors({ [ex.field]: ex.message });
      else setError(ex);
      setBusy(false);
    }
  };
  const ferr = (f: string) =>
    errors[f] ? (
      <span class="field-error" role="alert">
        {errors[f]}
      </span>
    ) : null;

  return (
    <Modal
      title={w ? `Edit ${w.name}` : 'New webhook'}
      onClose={props.onClose}
      footer={
        <>
          <button type="button" onClick={props.onClose}>
            Cancel
          </button>
          <button class="primary" type="submit" form="webhook-form" disabled={busy} data-testid="webhook-save">
            {busy ? 'Saving…' : w ? 'Save' : 'Create webhook'}
          </button>
        </>
      }
    >
      <form id="webhook-form" class="form" onSubmit={submit} noValidate>
        <label class="field">
          <span>Name</span>
          <input value={name} maxLength={200} onInput={(e) => setName(e.currentTarget.value)} placeholder="e.g. On-call pager" data-testid="webhook-name" />
          {ferr('name')}
        </label>
        <label class="field">
          <span>URL</span>
          <input value={url} maxLength={2000} onInput={(e) => setUrl(e.currentTarget.value)} placeholder="http://alerts.example.org:8080/hook" class="mono" data-testid="webhook-url" />
          {ferr('url')}
        </label>
        <div class="form-row">
          <label class="field">
            <span>Minimum severity</span>
            <SeveritySelect value={minSeverity} onChange={setMinSeverity} testid="webhook-severity" />
          </label>
          <label class="check-field align-end">
            <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.currentTarget.checked)} />
            <span>Enabled</span>
          </label>
        </div>
        {!w ? (
          <label class="field">
            <span>Signing secret (optional)</span>
            <input value={secretText} onInput={(e) => setSecretText(e.currentTarget.value)} placeholder="leave empty to generate one" autocomplete="off" class="mono" />
            {ferr('secret')}
          </label>
        ) : (
          <label class="check-field">
            <input type="checkbox" checked={rotate} onChange={(e) => setRotate(e.currentTarget.checked)} data-testid="webhook-rotate" />
            <span>
              Generate a new signing secret <span class="muted small">(the old one stops being used at once)</span>
            </span>
          </label>
        )}
        <ErrorAlert error={error} />
      </form>
    </Modal>
  );
}

function SecretDialog({ webhook, onClose }: { webhook: Webhook; onClose: () => void }) {
  const s = webhook.secret ?? '';
  const verify = `# Python: verify a delivery
import hmac, hashlib
expected = "sha256=" + hmac.new(SECRET.encode(), (timestamp + "." + body).encode(), hashlib.sha256).hexdigest()
ok = hmac.compare_digest(expected, request.headers["X-Sensoworks-Signature"])`;
  return (
    <Modal
      title="Webhook signing secret"
      onClose={onClose}
      wide
      footer={
        <button class="primary" onClick={onClose} data-testid="secret-done">
          Done
        </button>
      }
    >
      <div class="alert warn">
        Copy the signing secret of <strong>{webhook.name}</strong> now: it is shown only once. You can generate a new one later from Edit.
      </div>
      <div class="token-box">
        <code data-testid="webhook-secret">{s}</code>
        <CopyButton text={s} label="Copy secret" />
      </div>
      <p class="muted small" style={{ margin: 0 }}>
        Each delivery carries <code>X-Sensoworks-Timestamp</code> (ms) and <code>X-Sensoworks-Signature: sha256=HEX</code>, the HMAC-SHA256 of{' '}
        <code>timestamp + "." + body</code> with this secret.
      </p>
      <pre>{verify}</pre>
    </Modal>
  );
}
