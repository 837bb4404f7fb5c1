// Threshold rules (issue 5): list, enable / disable, create and edit (condition with the server's
// parse error shown at the field, duration, hysteresis, severity, message, device filter).
// ?edit=<id> opens that rule's dialog (links from alarms).
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, qs, type DeviceFilter, type Page as ApiPage, type Rule, type RuleBody, type Severity } from '../api';
import {
  AnalyticsNoData,
  AnalyticsTabs,
  cleanFilter,
  DeviceFilterEditor,
  filterError,
  FilterSummary,
  SeverityBadge,
  SeveritySelect,
  useDeviceKeys,
} from '../components/analytics';
import { Page } from '../components/layout';
import { Pager, usePaged } from '../components/pager';
import { Confirm, Empty, ErrorAlert, Loading, Modal, toast } from '../components/ui';
import { formatAgo, formatDateTime, formatDuration } from '../format';
import { setQuery, useLocation } from '../router';
import { canEdit, useSession } from '../session';
import { Switch } from './detectors';

export function ruleBody(r: Rule, patch: Partial<RuleBody> = {}): RuleBody {
  return {
    name: r.name,
    description: r.description,
    device_filter: r.device_filter,
    condition: r.condition,
    duration_ms: r.duration_ms,
    hysteresis: r.hysteresis,
    severity: r.severity,
    enabled: r.enabled,
    message: r.message,
    ...patch,
  };
}

/** "temperature > 80 for 5 min". */
export function ruleText(r: Pick<Rule, 'condition' | 'duration_ms'>): string {
  return r.condition + (r.duration_ms > 0 ? ` for ${formatDuration(r.duration_ms)}` : '');
}

export function RulesPage() {
  const { user } = useSession();
  const editable = canEdit(user);
  const { query } = useLocation();
  const editId = query.get('edit');
  // ?new=1&type=pump (or &label=site=north): create for a device type, from the devices list.
  const newFor = query.get('new') ? { type: query.get('type') ?? undefined, label: query.get('label') ?? undefined } : null;
  const [creating, setCreating] = useState(newFor !== null);
  const [editing, setEditing] = useState<Rule | null>(null);
  const [deleting, setDeleting] = useState<Rule | null>(null);
  const [busyId, setBusyId] = useState<string | null>(null);
  const paged = usePaged<Rule>((cursor) => api<ApiPage<Rule>>('GET', '/api/v1/rules' + qs({ page_size: 50, cursor })), []);

  useEffect(() => {
    if (!editId) return;
    api<Rule>('GET', `/api/v1/rules/${encodeURIComponent(editId)}`)
      .then((r) => setEditing(r))
      .catch((e) => toast(e instanceof ApiError && e.status === 404 ? 'That rule no longer exists.' : String((e as Error).message), 'error'));
  }, [editId]);
  const closeEdit = () => {
    setEditing(null);
    if (editId) setQuery({ edit: undefined });
  };

  if (user?.role === 'sysadmin') return <AnalyticsNoData title="Rules" />;

  const toggle = async (r: Rule, on: boolean) => {
    setBusyId(r.id);
    try {
      await api<Rule>('PUT', `/api/v1/rules/${r.id}`, ruleBody(r, { enabled: on }));
      toast(`${r.name} ${on ? 'enabled' : 'disabled'}`);
      paged.reload();
    } catch (e) {
      toast((e as Error).message, 'error');
    } finally {
      setBusyId(null);
    }
  };

  return (
    <Page
      title="Rules"
      crumbs={[{ href: '/analytics/detectors', label: 'Analytics' }]}
      actions={
        editable && (
          <button class="primary" onClick={() => setCreating(true)} data-testid="rule-create">
            + New rule
          </button>
        )
      }
    >
      <AnalyticsTabs active="rules" />
      <p class="muted small page-note">
        A rule raises an alarm when its condition holds on a device (optionally for a while), and clears it when the condition ends (with hysteresis, so a
        value hovering at the threshold does not flap).
      </p>
      <div class="panel flush">
        <ErrorAlert error={paged.error} />
        {paged.loading && paged.items.length === 0 ? (
          <Loading text="Loading rules…" />
        ) : paged.items.length === 0 && !paged.error ? (
          <Empty title="No rules yet">
            <span>
              For example <code>temperature &gt; 80</code> for 5 minutes, <code>pressure not between 1 and 3</code> or <code>supply - return &gt; 3</code>.
            </span>
            {editable && (
              <button class="primary" onClick={() => setCreating(true)}>
                Create a rule
              </button>
            )}
          </Empty>
        ) : (
          <div class={'table-wrap' + (paged.loading ? ' reloading' : '')}>
            <table class="data">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Condition</th>
                  <th class="hide-narrow">Devices</th>
                  <th>Severity</th>
                  <th>Enabled</th>
                  {editable && (
                    <th class="actions">
                      <span class="sr-only">Actions</span>
                    </th>
                  )}
                </tr>
              </thead>
              <tbody>
                {paged.items.map((r) => (
                  <tr key={r.id} class={editable ? 'clickable' : ''} data-testid="rule-row" data-rule-id={r.id} onClick={() => editable && setEditing(r)}>
                    <td>
                      <div class="strong">{r.name}</div>
                      {r.description && <div class="muted small clamp">{r.description}</div>}
                    </td>
                    <td>
                      <code class="cond">{r.condition}</code>
                      {(r.duration_ms > 0 || r.hysteresis > 0) && (
                        <div class="muted small">
                          {r.duration_ms > 0 && `for ${formatDuration(r.duration_ms)}`}
                          {r.duration_ms > 0 && r.hysteresis > 0 && ' · '}
                          {r.hysteresis > 0 && `hysteresis ${r.hysteresis}`}
                        </div>
                      )}
                    </td>
                    <td class="hide-narrow small">
                      <FilterSummary filter={r.device_filter} />
                    </td>
                    <td>
                      <SeverityBadge severity={r.severity} />
                    </td>
                    <td>
                      {editable ? (
                        <Switch checked={r.enabled} disabled={busyId === r.id} onChange={(on) => toggle(r, on)} label={`${r.name} enabled`} testid="rule-enabled" />
                      ) : (
                        <span class={'badge ' + (r.enabled ? 'ok' : '')}>{r.enabled ? 'On' : 'Off'}</span>
                      )}
                    </td>
                    {editable && (
                      <td class="actions" onClick={(e) => e.stopPropagation()}>
                        <button class="ghost small" onClick={() => setEditing(r)} aria-label={`Edit ${r.name}`} data-testid="rule-edit">
                          Edit
                        </button>
                        <button class="ghost small danger-text" onClick={() => setDeleting(r)} aria-label={`Delete ${r.name}`} data-testid="rule-delete">
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

      {(creating || editing) && (
        <RuleDialog
          rule={editing ?? undefined}
          initial={creating && newFor ? { device_filter: newFor } : undefined}
          readOnly={!editable}
          onClose={() => (creating ? (setCreating(false), newFor && setQuery({ new: undefined, type: undefined, label: undefined })) : closeEdit())}
          onSaved={(r) => {
            toast(`Saved ${r.name}`);
            if (creating) setCreating(false);
            else closeEdit();
            paged.reload();
          }}
        />
      )}
      {deleting && (
        <Confirm
          title="Delete rule"
          message={
            <>
              Delete <strong>{deleting.name}</strong>? It stops evaluating at once; alarms it raised stay in the alarm history.
            </>
          }
          onConfirm={async () => {
            await api('DELETE', `/api/v1/rules/${deleting.id}`);
            toast(`Deleted ${deleting.name}`);
            paged.reload();
          }}
          onClose={() => setDeleting(null)}
        />
      )}
    </Page>
  );
}

// ---- create / edit -------------------------------------------------------------------------------

const DURATION_UNITS: [string, number][] = [
  ['s', 1000],
  ['min', 60_000],
  ['h', 3_600_000],
];

function splitDuration(ms: number): { n: string; unit: number } {
  if (!ms) return { n: '0', unit: 60_000 };
  for (const [, u] of [...DURATION_UNITS].reverse()) if (ms % u === 0) return { n: String(ms / u), unit: u };
  return { n: String(ms / 1000), unit: 1000 };
}

const EXAMPLES = ['temperature > 80', 'temperature not between 10 and 80', 'supply - return > 3', 'abs(vibration) >= 2.5 and rpm > 100'];

export function RuleDialog(props: { rule?: Rule; initial?: Partial<RuleBody>; readOnly?: boolean; onClose: () => void; onSaved: (r: Rule) => void }) {
  const r = props.rule;
  const init = r ? ruleBody(r) : props.initial ?? {};
  const d0 = splitDuration(init.duration_ms ?? 0);
  const [name, setName] = useState(init.name ?? '');
  const [description, setDescription] = useState(init.description ?? '');
  const [condition, setCondition] = useState(init.condition ?? '');
  const [durN, setDurN] = useState(d0.n);
  const [durUnit, setDurUnit] = useState(d0.unit);
  const [hysteresis, setHysteresis] = useState(String(init.hysteresis ?? 0));
  const [severity, setSeverity] = useState<Severity>(init.severity ?? 'major');
  const [message, setMessage] = useState(init.message ?? '');
  const [filter, setFilter] = useState<DeviceFilter>(init.device_filter ?? {});
  const [enabled, setEnabled] = useState(init.enabled ?? true);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const condRef = useRef<HTMLTextAreaElement>(null);
  const keys = useDeviceKeys(filter.device_ids?.[0]);

  const insertKey = (k: string) => {
    const el = condRef.current;
    const token = /^[A-Za-z_][A-Za-z0-9_.-]*$/.test(k) ? k : JSON.stringify(k);
    const at = el?.selectionStart ?? condition.length;
    const end = el?.selectionEnd ?? at;
    const before = condition.slice(0, at);
    const pad = before && !/\s$/.test(before) ? ' ' : '';
    const next = before + pad + token + condition.slice(end);
    setCondition(next);
    requestAnimationFrame(() => {
      el?.focus();
      const pos = (before + pad + token).length;
      el?.setSelectionRange(pos, pos);
    });
  };

  const submit = async (ev: Event) => {
    ev.preventDefault();
    const e: Record<string, string> = {};
    if (!name.trim()) e.name = 'Give the rule a name.';
    if (!condition.trim()) e.condition = 'Enter a condition, e.g. temperature > 80.';
    const n = Number(durN || '0');
    if (!Number.isFinite(n) || n < 0) e.duration_ms = 'A duration of 0 or more.';
    const h = Number(hysteresis || '0');
    if (!Number.isFinite(h) || h < 0) e.hysteresis = 'A number of 0 or more.';
    const fe = filterError(filter);
    if (fe) e.device_filter = fe;
    setErrors(e);
    setError(null);
    if (Object.keys(e).length) return;
    const body: RuleBody = {
      name: name.trim(),
      description: description.trim(),
      device_filter: cleanFilter(filter),
      condition: condition.trim(),
      duration_ms: Math.round(n * durUnit),
      hysteresis: h,
      severity,
      enabled,
      message: message.trim(),
    };
    setBusy(true);
    try {
      const saved = r ? await api<Rule>('PUT', `/api/v1/rules/${r.id}`, body) : await api<Rule>('POST', '/api/v1/rules', body);
      props.onSaved(saved);
    } catch (ex) {
      const f = ex instanceof ApiError && ex.field ? ex.field.replace(/^device_filter\..*/, 'device_filter') : '';
      if (f && ['name', 'condition', 'duration_ms', 'hysteresis', 'severity', 'message', 'device_filter'].includes(f)) setErrors({ [f]: (ex as Error).message });
      else setError(ex);
      setBusy(false);
    }
  };

  const ferr = (f: string) =>
    errors[f] ? (
      <span class="field-error" role="alert" data-testid={`error-${f}`}>
        {errors[f]}
      </span>
    ) : null;

  return (
    <Modal
      title={r ? `Edit ${r.name}` : 'New rule'}
      wide
      onClose={props.onClose}
      footer={
        <>
          <button type="button" onClick={props.onClose}>
            Cancel
          </button>
          {!props.readOnly && (
            <button class="primary" type="submit" form="rule-form" disabled={busy} data-testid="rule-save">
              {busy ? 'Saving…' : r ? 'Save' : 'Create rule'}
            </button>
          )}
        </>
      }
    >
      <form id="rule-form" class="form" onSubmit={submit} noValidate data-testid="rule-form">
        <div class="form-row">
          <label class="field">
            <span>Name</span>
            <input value={name} maxLength={200} onInput={(e) => setName(e.currentTarget.value)} placeholder="e.g. Boiler overheating" data-testid="rule-name" />
            {ferr('name')}
          </label>
          <label class="field">
            <span>Description (optional)</span>
            <input value={description} maxLength={1000} onInput={(e) => setDescription(e.currentTarget.value)} />
          </label>
        </div>
        <label class="field">
          <span>Condition</span>
          <textarea
            ref={condRef}
            class={'cond-input' + (errors.condition ? ' invalid' : '')}
            rows={2}
            maxLength={4096}
            spellcheck={false}
            value={condition}
            aria-invalid={!!errors.condition}
            onInput={(e) => {
              setCondition(e.currentTarget.value);
              if (errors.condition) setErrors({ ...errors, condition: '' });
            }}
            placeholder="temperature > 80"
            data-testid="rule-condition"
          />
          {ferr('condition')}
          <span class="muted small">
            Keys of one device, numbers, <code>+ - * /</code>, <code>abs() min() max()</code>, <code>&gt; &gt;= &lt; &lt;= == !=</code>,{' '}
            <code>between … and …</code>, <code>and or not</code>. Put spaces around a minus: <code>a - b</code> (<code>a-b</code> is one key).
          </span>
        </label>
        <div class="cond-helpers">
          {keys.length > 0 && (
            <div class="key-suggest">
              <span class="muted small">Insert a key:</span>
              {keys.slice(0, 20).map((k) => (
                <button type="button" key={k} class="key-chip" onClick={() => insertKey(k)}>
                  {k}
                </button>
              ))}
            </div>
          )}
          <div class="key-suggest">
            <span class="muted small">Examples:</span>
            {EXAMPLES.map((x) => (
              <button type="button" key={x} class="key-chip" onClick={() => setCondition(x)}>
                {x}
              </button>
            ))}
          </div>
        </div>
        <div class="form-row">
          <div class="field">
            <label for="rule-duration" class="muted strong-label">
              Holds for at least
            </label>
            <div class="row nowrap-row">
              <input id="rule-duration" type="number" min={0} step="any" value={durN} onInput={(e) => setDurN(e.currentTarget.value)} class="dur-n" data-testid="rule-duration" />
              <select value={durUnit} onChange={(e) => setDurUnit(Number(e.currentTarget.value))} aria-label="Duration unit">
                {DURATION_UNITS.map(([l, u]) => (
                  <option key={u} value={u}>
                    {l}
                  </option>
                ))}
              </select>
            </div>
            {ferr('duration_ms')}
            <span class="muted small">0 = alarm at the first point that matches.</span>
          </div>
          <label class="field">
            <span>Hysteresis</span>
            <input type="number" min={0} step="any" value={hysteresis} onInput={(e) => setHysteresis(e.currentTarget.value)} data-testid="rule-hysteresis" />
            {ferr('hysteresis')}
            <span class="muted small">Clears only when the value is this far back (e.g. 2: &gt; 80 clears below 78).</span>
          </label>
          <label class="field">
            <span>Severity</span>
            <SeveritySelect value={severity} onChange={setSeverity} testid="rule-severity" />
          </label>
        </div>
        <label class="field">
          <span>Message (optional)</span>
          <input value={message} maxLength={500} onInput={(e) => setMessage(e.currentTarget.value)} placeholder="Shown on the alarm; default: the condition and the observed value" data-testid="rule-message" />
          {ferr('message')}
        </label>
        <DeviceFilterEditor value={filter} onChange={setFilter} idPrefix="rule" error={errors.device_filter} />
        <label class="check-field">
          <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.currentTarget.checked)} data-testid="rule-enabled-input" />
          <span>Enabled</span>
        </label>
        <ErrorAlert error={error} />
        {r && (
          <div class="muted small">
            Reads {r.keys.map((k, i) => (
              <span key={k}>
                {i > 0 && ', '}
                <code>{k}</code>
              </span>
            ))}{' '}
            · version {r.version} · created {formatDateTime(r.created_ms)} · updated {formatAgo(r.updated_ms)}
          </div>
        )}
      </form>
    </Modal>
  );
}
