// Anomaly detectors (issue 5): list with kind filter (in the URL), enable / disable, create and
// edit in a dialog whose parameter form is generated from the kind's ParamSpec
// (GET /api/v1/detectors/kinds), with a backtest preview chart before saving.
// ?edit=<id> opens that detector's dialog (links from alarms).
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, qs, type Detector, type DetectorBody, type DeviceFilter, type KindInfo, type Page as ApiPage, type Severity } from '../api';
import {
  AnalyticsNoData,
  AnalyticsTabs,
  cleanFilter,
  DeviceFilterEditor,
  filterError,
  FilterSummary,
  KeysInput,
  SeverityBadge,
  SeveritySelect,
  useDeviceKeys,
} from '../components/analytics';
import { BacktestPreview } from '../components/backtest';
import { Page } from '../components/layout';
import { Pager, usePaged } from '../components/pager';
import { Confirm, Empty, ErrorAlert, Loading, Modal, toast, useLoad } from '../components/ui';
import { formatAgo, formatDateTime, formatNumber } from '../format';
import { setQuery, useLocation } from '../router';
import { canEdit, useSession } from '../session';

let kindsCache: Promise<KindInfo[]> | null = null;

/** The detector kinds of the server (fetched once). */
export function loadKinds(): Promise<KindInfo[]> {
  if (!kindsCache)
    kindsCache = api<{ items: KindInfo[] }>('GET', '/api/v1/detectors/kinds')
      .then((r) => r.items)
      .catch((e) => {
        kindsCache = null;
        throw e;
      });
  return kindsCache;
}

export function useKinds() {
  return useLoad(loadKinds, []);
}

export function kindTitle(kinds: KindInfo[] | undefined, kind: string): string {
  return kinds?.find((k) => k.kind === kind)?.title ?? kind;
}

/** The body PUT expects, from a stored detector (with changes). */
export function detectorBody(d: Detector, patch: Partial<DetectorBody> = {}): DetectorBody {
  return {
    name: d.name,
    description: d.description,
    device_filter: d.device_filter,
    keys: d.keys,
    kind: d.kind,
    params: d.params,
    threshold: d.threshold,
    severity: d.severity,
    enabled: d.enabled,
    ...patch,
  };
}

/** A checkbox drawn as a switch. */
export function Switch(props: { checked: boolean; onChange: (on: boolean) => void; label: string; disabled?: boolean; testid?: string }) {
  return (
    <input
      type="checkbox"
      role="switch"
      class="switch"
      checked={props.checked}
      disabled={props.disabled}
      aria-label={props.label}
      title={props.label}
      onClick={(e) => e.stopPropagation()}
      onChange={(e) => props.onChange(e.currentTarget.checked)}
      data-testid={props.testid}
    />
  );
}

export function DetectorsPage() {
  const { user } = useSession();
  const editable = canEdit(user);
  const { query } = useLocation();
  const kind = query.get('kind') ?? '';
  const editId = query.get('edit');
  const kinds = useKinds();
  // ?new=1&type=pump (or &label=site=north): create for a device type, from the devices list.
  const newFor = query.get('new') ? { type: query.get('type') ?? undefined, label: query.get('label') ?? undefined } : null;
  const [creating, setCreating] = useState(newFor !== null);
  const [editing, setEditing] = useState<Detector | null>(null);
  const [deleting, setDeleting] = useState<Detector | null>(null);
  const [busyId, setBusyId] = useState<string | null>(null);

  const paged = usePaged<Detector>((cursor) => api<ApiPage<Detector>>('GET', '/api/v1/detectors' + qs({ kind, page_size: 50, cursor })), [kind]);

  // ?edit=<id>: open that detector (from an alarm's "raised by" link).
  useEffect(() => {
    if (!editId) return;
    api<Detector>('GET', `/api/v1/detectors/${encodeURIComponent(editId)}`)
      .then((d) => setEditing(d))
      .catch((e) => toast(e instanceof ApiError && e.status === 404 ? 'That detector no longer exists.' : String((e as Error).message), 'error'));
  }, [editId]);
  const closeEdit = () => {
    setEditing(null);
    if (editId) setQuery({ edit: undefined });
  };

  if (user?.role === 'sysadmin') return <AnalyticsNoData title="Detectors" />;

  const toggle = async (d: Detector, on: boolean) => {
    setBusyId(d.id);
    try {
      await api<Detector>('PUT', `/api/v1/detectors/${d.id}`, detectorBody(d, { enabled: on }));
      toast(`${d.name} ${on ? 'enabled' : 'disabled'}`);
      paged.reload();
    } catch (e) {
      toast((e as Error).message, 'error');
    } finally {
      setBusyId(null);
    }
  };

  return (
    <Page
      title="Detectors"
      crumbs={[{ href: '/analytics/detectors', label: 'Analytics' }]}
      actions={
        editable && (
          <button class="primary" onClick={() => setCreating(true)} disabled={!kinds.data} data-testid="detector-create">
            + New detector
          </button>
        )
      }
    >
      <AnalyticsTabs active="detectors" />
      <div class="filters" role="search">
        <label class="field">
          <span>Kind</span>
          <select value={kind} onChange={(e) => setQuery({ kind: e.currentTarget.value })} data-testid="detector-filter-kind">
            <option value="">Any</option>
            {(kinds.data ?? []).map((k) => (
              <option key={k.kind} value={k.kind}>
                {k.title}
              </option>
            ))}
          </select>
        </label>
        <p class="muted small filters-note">
          Detectors score every point of the matching devices' keys in [0, 1] (stored as <code>key.anomaly_score</code>) and raise an alarm when the score
          passes the threshold.
        </p>
      </div>
      <ErrorAlert error={kinds.error} />
      <div class="panel flush">
        <ErrorAlert error={paged.error} />
        {paged.loading && paged.items.length === 0 ? (
          <Loading text="Loading detectors…" />
        ) : paged.items.length === 0 && !paged.error ? (
          kind ? (
            <Empty title="No detector of this kind">
              <button onClick={() => setQuery({ kind: undefined })}>Show every kind</button>
            </Empty>
          ) : (
            <Empty title="No detectors yet">
              <span>Pick a kind (z-score, seasonal, flatline…), the keys and devices to watch: defaults are sensible, and a preview shows what it would have found.</span>
              {editable && (
                <button class="primary" onClick={() => setCreating(true)} disabled={!kinds.data}>
                  Create a detector
                </button>
              )}
            </Empty>
          )
        ) : (
          <div class={'table-wrap' + (paged.loading ? ' reloading' : '')}>
            <table class="data">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Kind</th>
                  <th>Keys</th>
                  <th class="hide-narrow">Devices</th>
                  <th class="num">Threshold</th>
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
                {paged.items.map((d) => (
                  <tr key={d.id} class={editable ? 'clickable' : ''} data-testid="detector-row" data-detector-id={d.id} onClick={() => editable && setEditing(d)}>
                    <td>
                      <div class="strong">{d.name}</div>
                      {d.description && <div class="muted small clamp">{d.description}</div>}
                    </td>
                    <td class="nowrap">{kindTitle(kinds.data, d.kind)}</td>
                    <td>
                      <span class="labels">
                        {d.keys.map((k) => (
                          <span key={k} class="badge mono small">
                            {k}
                          </span>
                        ))}
                      </span>
                    </td>
                    <td class="hide-narrow small">
                      <FilterSummary filter={d.device_filter} />
                    </td>
                    <td class="num">{formatNumber(d.threshold, undefined, 2)}</td>
                    <td>
                      <SeverityBadge severity={d.severity} />
                    </td>
                    <td>
                      {editable ? (
                        <Switch checked={d.enabled} disabled={busyId === d.id} onChange={(on) => toggle(d, on)} label={`${d.name} enabled`} testid="detector-enabled" />
                      ) : (
                        <span class={'badge ' + (d.enabled ? 'ok' : '')}>{d.enabled ? 'On' : 'Off'}</span>
                      )}
                    </td>
                    {editable && (
                      <td class="actions" onClick={(e) => e.stopPropagation()}>
                        <button class="ghost small" onClick={() => setEditing(d)} aria-label={`Edit ${d.name}`} data-testid="detector-edit">
                          Edit
                        </button>
                        <button class="ghost small danger-text" onClick={() => setDeleting(d)} aria-label={`Delete ${d.name}`} data-testid="detector-delete">
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

      {(creating || editing) && kinds.data && (
        <DetectorDialog
          kinds={kinds.data}
          detector={editing ?? undefined}
          readOnly={!editable}
          initial={creating && newFor ? { device_filter: newFor } : undefined}
          onClose={() => (creating ? (setCreating(false), newFor && setQuery({ new: undefined, type: undefined, label: undefined })) : closeEdit())}
          onSaved={(d) => {
            toast(`Saved ${d.name}`);
            if (creating) setCreating(false);
            else closeEdit();
            paged.reload();
          }}
        />
      )}
      {deleting && (
        <Confirm
          title="Delete detector"
          message={
            <>
              Delete <strong>{deleting.name}</strong>? It stops scoring at once; alarms it raised stay in the alarm history.
            </>
          }
          onConfirm={async () => {
            await api('DELETE', `/api/v1/detectors/${deleting.id}`);
            toast(`Deleted ${deleting.name}`);
            paged.reload();
          }}
          onClose={() => setDeleting(null)}
        />
      )}
    </Page>
  );
}

// ---- create / edit dialog ------------------------------------------------------------------------

type FieldErrors = Record<string, string>;

export function DetectorDialog(props: {
  kinds: KindInfo[];
  detector?: Detector;
  /** Prefill for a new detector (e.g. the device page: {device_filter: {device_ids: [id]}}). */
  initial?: Partial<DetectorBody>;
  readOnly?: boolean;
  onClose: () => void;
  onSaved: (d: Detector) => void;
}) {
  const d = props.detector;
  const init = d ? detectorBody(d) : props.initial ?? {};
  const firstKind = props.kinds.find((k) => k.kind === (init.kind ?? 'zscore')) ?? props.kinds[0];
  const [name, setName] = useState(init.name ?? '');
  const [description, setDescription] = useState(init.description ?? '');
  const [kind, setKind] = useState(firstKind.kind);
  const spec = props.kinds.find((k) => k.kind === kind) ?? firstKind;
  const paramText = (k: KindInfo, given?: Record<string, number>) => Object.fromEntries(k.params.map((p) => [p.name, String(given?.[p.name] ?? p.default)]));
  const [params, setParams] = useState<Record<string, string>>(() => paramText(firstKind, init.params));
  const [keys, setKeys] = useState<string[]>(init.keys ?? []);
  const [filter, setFilter] = useState<DeviceFilter>(init.device_filter ?? {});
  const [threshold, setThreshold] = useState(init.threshold ?? firstKind.default_threshold);
  const [severity, setSeverity] = useState<Severity>(init.severity ?? 'major');
  const [enabled, setEnabled] = useState(init.enabled ?? true);
  const [previewDevice, setPreviewDevice] = useState(init.device_filter?.device_ids?.[0] ?? '');
  const [errors, setErrors] = useState<FieldErrors>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const suggestDevice = previewDevice || filter.device_ids?.[0];
  const suggestions = useDeviceKeys(suggestDevice);

  // The preview follows the first picked device until another one is chosen.
  useEffect(() => {
    if (!previewDevice && filter.device_ids?.length) setPreviewDevice(filter.device_ids[0]);
  }, [filter.device_ids?.join(',')]);

  const pickKind = (k: KindInfo) => {
    if (k.kind === kind) return;
    if (Math.abs(threshold - spec.default_threshold) < 1e-9) setThreshold(k.default_threshold);
    setParams(paramText(k));
    setKind(k.kind);
    setErrors({});
  };

  /** The body to send, or field errors (a preview needs no name). */
  const build = (preview = false): { body: DetectorBody } | { errors: FieldErrors } => {
    const e: FieldErrors = {};
    if (!preview && !name.trim()) e.name = 'Give the detector a name.';
    if (!keys.length) e.keys = 'Add at least one key to watch.';
    else if (spec.multivariate && keys.length < 2) e.keys = 'The multivariate detector needs at least two keys of the same device.';
    const fe = filterError(filter);
    if (fe) e.device_filter = fe;
    const p: Record<string, number> = {};
    for (const ps of spec.params) {
      const t = (params[ps.name] ?? '').trim();
      const v = t === '' ? ps.default : Number(t);
      if (!Number.isFinite(v)) e['params.' + ps.name] = 'Enter a number.';
      else if (v < ps.min || v > ps.max) e['params.' + ps.name] = `Between ${formatNumber(ps.min)} and ${formatNumber(ps.max)}.`;
      else if (ps.integer && !Number.isInteger(v)) e['params.' + ps.name] = 'A whole number.';
      else p[ps.name] = v;
    }
    if (Object.keys(e).length) return { errors: e };
    return {
      body: {
      name: name.trim() || 'preview',
      description: description.trim(),
      device_filter: cleanFilter(filter),
      keys,
      kind,
      params: p,
      threshold,
      severity,
      enabled,
      },
    };
  };

  const fieldOf = (f: string | undefined) => (f ? f.replace(/^detector\./, '').replace(/\[\d+\]$/, '').replace(/^device_filter\..*/, 'device_filter') : '');

  const submit = async (ev: Event) => {
    ev.preventDefault();
    const b = build();
    setError(null);
    if ('errors' in b) return setErrors(b.errors);
    setErrors({});
    setBusy(true);
    try {
      const saved = d ? await api<Detector>('PUT', `/api/v1/detectors/${d.id}`, b.body) : await api<Detector>('POST', '/api/v1/detectors', b.body);
      props.onSaved(saved);
    } catch (ex) {
      const f = ex instanceof ApiError ? fieldOf(ex.field) : '';
      if (f && ['name', 'keys', 'device_filter', 'threshold', 'kind', 'severity'].includes(f)) setErrors({ [f]: (ex as Error).message });
      else if (f.startsWith('params.')) setErrors({ [f]: (ex as Error).message });
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
      title={d ? `Edit ${d.name}` : 'New detector'}
      wide
      onClose={props.onClose}
      footer={
        <>
          <button type="button" onClick={props.onClose}>
            Cancel
          </button>
          {!props.readOnly && (
            <button class="primary" type="submit" form="detector-form" disabled={busy} data-testid="detector-save">
              {busy ? 'Saving…' : d ? 'Save' : 'Create detector'}
            </button>
          )}
        </>
      }
    >
      <form id="detector-form" class="form detector-form" onSubmit={submit} noValidate data-testid="detector-form">
        <div class="form-row">
          <label class="field">
            <span>Name</span>
            <input value={name} maxLength={200} onInput={(e) => setName(e.currentTarget.value)} placeholder="e.g. Boiler temperature anomalies" data-testid="detector-name" />
            {ferr('name')}
          </label>
          <label class="field">
            <span>Description (optional)</span>
            <input value={description} maxLength={1000} onInput={(e) => setDescription(e.currentTarget.value)} />
          </label>
        </div>

        <fieldset class="kind-grid" role="radiogroup" aria-label="Kind" data-testid="kind-picker">
          <legend>Kind</legend>
          {props.kinds.map((k) => (
            <label key={k.kind} class={'kind-card' + (k.kind === kind ? ' on' : '')} data-testid={`kind-${k.kind}`}>
              <input type="radio" name="detector-kind" checked={k.kind === kind} onChange={() => pickKind(k)} />
              <span class="kind-title">
                {k.title}
                {k.multivariate && <span class="badge accent tiny">multi-key</span>}
              </span>
              <span class="kind-desc" title={k.description}>
                {k.description}
              </span>
            </label>
          ))}
          {ferr('kind')}
        </fieldset>
        <div class="kind-about muted small" data-testid="kind-about">
          <strong>{spec.title}:</strong> {spec.description}
        </div>

        <div class="grid-2 detector-cols">
          <div class="stack">
            <div class="field">
              <label for="detector-keys" class="muted strong-label">
                Keys {spec.multivariate ? '(two or more, of the same device)' : '(each is scored on its own)'}
              </label>
              <KeysInput id="detector-keys" value={keys} onChange={setKeys} suggestions={suggestions} error={errors.keys} />
            </div>
            <DeviceFilterEditor value={filter} onChange={setFilter} idPrefix="detector" error={errors.device_filter} />
          </div>
          <div class="stack">
            <div class="field">
              <label for="detector-threshold" class="muted strong-label">
                Threshold <span class="muted small">(alarm when the score reaches it; default {spec.default_threshold.toFixed(2)})</span>
              </label>
              <div class="slider-row">
                <input
                  id="detector-threshold"
                  type="range"
                  min={0.05}
                  max={1}
                  step={0.01}
                  value={threshold}
                  onInput={(e) => setThreshold(e.currentTarget.valueAsNumber)}
                  data-testid="detector-threshold"
                />
                <output for="detector-threshold" class="mono" data-testid="detector-threshold-value">
                  {threshold.toFixed(2)}
                </output>
              </div>
              <div class="slider-scale muted small">
                <span>more alarms</span>
                <span>fewer alarms</span>
              </div>
              {ferr('threshold')}
            </div>
            <div class="form-row">
              <label class="field">
                <span>Severity</span>
                <SeveritySelect value={severity} onChange={setSeverity} testid="detector-severity" />
              </label>
              <label class="check-field align-end">
                <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.currentTarget.checked)} data-testid="detector-enabled-input" />
                <span>Enabled</span>
              </label>
            </div>
            {spec.params.length > 0 && (
              <fieldset class="params" data-testid="detector-params">
                <legend>Parameters of {spec.title}</legend>
                {spec.params.map((p) => (
                  <label class="field param" key={p.name}>
                    <span>
                      <span class="mono">{p.name}</span>
                      {Number(params[p.name]) !== p.default && params[p.name] !== '' && (
                        <button type="button" class="linklike small" onClick={() => setParams({ ...params, [p.name]: String(p.default) })}>
                          reset to {formatNumber(p.default)}
                        </button>
                      )}
                    </span>
                    <input
                      type="number"
                      min={p.min}
                      max={p.max}
                      step={p.integer ? 1 : 'any'}
                      value={params[p.name] ?? ''}
                      placeholder={String(p.default)}
                      onInput={(e) => setParams({ ...params, [p.name]: e.currentTarget.value })}
                      data-testid={`param-${p.name}`}
                    />
                    <span class="muted small">
                      {p.description} <span class="nowrap">({formatNumber(p.min)} – {formatNumber(p.max)})</span>
                    </span>
                    {ferr('params.' + p.name)}
                  </label>
                ))}
              </fieldset>
            )}
          </div>
        </div>
        <ErrorAlert error={error} />
      </form>
      <div class="backtest-wrap">
        <h3>Preview on history</h3>
        <BacktestPreview
          body={() => {
            const b = build(true);
            if ('errors' in b) {
              setErrors(b.errors);
              return Object.values(b.errors)[0] ?? 'Complete the form first.';
            }
            return b.body;
          }}
          threshold={threshold}
          deviceId={previewDevice}
          onDeviceChange={setPreviewDevice}
        />
      </div>
      {d && (
        <div class="muted small">
          Version {d.version} · created {formatDateTime(d.created_ms)} · updated {formatAgo(d.updated_ms)}
        </div>
      )}
    </Modal>
  );
}
