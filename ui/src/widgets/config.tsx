// The widget settings dialog: title, datasource (devices by id or by type / label filter, keys),
// aggregation, units, decimals, series colours, thresholds and the type's own options.
import { useEffect, useState } from 'preact/hooks';
import { api, qs, type Device, type Page } from '../api';
import { DevicePicker, rememberDevices, useDeviceNames } from '../components/devicepicker';
import { Modal } from '../components/ui';
import { MAX_FILTER_DEVICES } from './data';
import { WidgetIcon } from './icons';
import { MarkdownPreview } from './markdown';
import { PALETTE } from '../components/timechart';
import { AGGS, seriesColorOf, sortedThresholds, type Agg, type Datasource, type Threshold, type Widget, type WidgetConfig } from './model';
import { WIDGETS } from './registry';
import { tileUrl } from './map';

type Tab = 'general' | 'data' | 'display' | 'thresholds';

const AGG_LABEL: Record<Agg, string> = {
  auto: 'Automatic (raw when short, else average)',
  avg: 'Average',
  min: 'Minimum',
  max: 'Maximum',
  sum: 'Sum',
  count: 'Count of points',
  none: 'None (raw points, up to 5000)',
};

const clone = <T,>(v: T): T => JSON.parse(JSON.stringify(v));

/** Devices a datasource names now (ids, or the first matches of a filter), for key suggestions. */
function useSourceDevices(ds: Datasource | undefined): { ids: string[]; count: number | null; truncated: boolean; names: string[] } {
  const [found, setFound] = useState<{ ids: string[]; count: number | null; truncated: boolean; names: string[] }>({ ids: [], count: null, truncated: false, names: [] });
  const filterKey = ds?.mode === 'filter' ? JSON.stringify([ds.filter?.type?.trim() ?? '', ds.filter?.label?.trim() ?? '']) : '';
  useEffect(() => {
    if (!ds || ds.mode !== 'filter') {
      setFound({ ids: ds?.device_ids ?? [], count: null, truncated: false, names: [] });
      return;
    }
    const type = ds.filter?.type?.trim() || undefined;
    const label = ds.filter?.label?.trim() || undefined;
    if (!type && !label) {
      setFound({ ids: [], count: null, truncated: false, names: [] });
      return;
    }
    const ctl = new AbortController();
    const t = setTimeout(() => {
      api<Page<Device>>('GET', '/api/v1/devices' + qs({ type, label, page_size: MAX_FILTER_DEVICES }), undefined, { signal: ctl.signal })
        .then((p) => {
          rememberDevices(p.items);
          setFound({ ids: p.items.map((d) => d.id), count: p.items.length, truncated: !!p.next_cursor, names: p.items.slice(0, 5).map((d) => d.name) });
        })
        .catch(() => setFound({ ids: [], count: 0, truncated: false, names: [] }));
    }, 250);
    return () => {
      clearTimeout(t);
      ctl.abort();
    };
  }, [ds?.mode, filterKey, (ds?.device_ids ?? []).join(',')]);
  return found;
}

/** Keys seen on (up to ten of) the given devices. */
function useKnownKeys(ids: string[]): string[] {
  const [keys, setKeys] = useState<string[]>([]);
  const k = ids.slice(0, 10).join(',');
  useEffect(() => {
    let alive = true;
    Promise.all(ids.slice(0, 10).map((id) => api<string[]>('GET', `/api/v1/devices/${encodeURIComponent(id)}/telemetry/keys`).catch(() => [] as string[]))).then(
      (lists) => alive && setKeys([...new Set(lists.flat())].sort()),
    );
    return () => {
      alive = false;
    };
  }, [k]);
  return keys;
}

function KeyPicker(props: { value: string[]; onChange: (k: string[]) => void; known: string[]; single: boolean; optional?: boolean }) {
  const [other, setOther] = useState('');
  const all = [...new Set([...props.known, ...props.value])];
  const toggle = (k: string) => {
    if (props.single) props.onChange([k]);
    else props.onChange(props.value.includes(k) ? props.value.filter((x) => x !== k) : [...props.value, k]);
  };
  const add = () => {
    const k = other.trim();
    if (!k) return;
    if (props.single) props.onChange([k]);
    else if (!props.value.includes(k)) props.onChange([...props.value, k]);
    setOther('');
  };
  return (
    <fieldset class="keypick">
      <legend>
        {props.single ? 'Key' : 'Keys'}
        {props.optional && <span class="muted"> (none = every key)</span>}
      </legend>
      {all.length ? (
        <div class="keypick-chips" role="group">
          {all.map((k) => (
            <button type="button" key={k} class={'keychip' + (props.value.includes(k) ? ' on' : '')} aria-pressed={props.value.includes(k)} onClick={() => toggle(k)} data-testid="key-chip">
              {props.value.includes(k) ? '✓ ' : ''}
              {k}
            </button>
          ))}
        </div>
      ) : (
        <div class="muted small">No keys seen on these devices yet; type one below.</div>
      )}
      <div class="row">
        <input
          aria-label="Other key"
          placeholder="Other key, e.g. temperature"
          value={other}
          onInput={(e) => setOther(e.currentTarget.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter') {
              e.preventDefault();
              add();
            }
          }}
          data-testid="key-input"
        />
        <button type="button" class="small" onClick={add} disabled={!other.trim()}>
          Add key
        </button>
      </div>
    </fieldset>
  );
}

function ThresholdEditor(props: { config: WidgetConfig; set: (c: Partial<WidgetConfig>) => void }) {
  const th = props.config.thresholds ?? [];
  const update = (i: number, t: Partial<Threshold>) => props.set({ thresholds: th.map((x, j) => (j === i ? { ...x, ...t } : x)) });
  return (
    <div class="stack">
      <p class="muted small" style={{ margin: 0 }}>
        A value takes the colour of the highest threshold it reaches; below every threshold it takes the base colour.
      </p>
      <div class="thr-row">
        <span class="thr-label">Base</span>
        {props.config.base_color ? (
          <>
            <input type="color" aria-label="Base colour" value={props.config.base_color} onInput={(e) => props.set({ base_color: e.currentTarget.value })} />
            <button type="button" class="small ghost" onClick={() => props.set({ base_color: undefined })}>
              Use default
            </button>
          </>
        ) : (
          <>
            <span class="muted small">Default colour</span>
            <button type="button" class="small" onClick={() => props.set({ base_color: '#1a8f4b' })} data-testid="base-color">
              Choose…
            </button>
          </>
        )}
      </div>
      {th.map((t, i) => (
        <div class="thr-row" key={i} data-testid="threshold-row">
          <label class="thr-label" for={`thr-${i}`}>
            From
          </label>
          <input id={`thr-${i}`} type="number" step="any" value={Number.isFinite(t.value) ? t.value : ''} onInput={(e) => update(i, { value: e.currentTarget.valueAsNumber })} />
          <input type="color" aria-label={`Colour from ${t.value}`} value={t.color} onInput={(e) => update(i, { color: e.currentTarget.value })} />
          <button type="button" class="small ghost" aria-label="Remove threshold" onClick={() => props.set({ thresholds: th.filter((_, j) => j !== i) })}>
            ✕
          </button>
        </div>
      ))}
      <div>
        <button
          type="button"
          class="small"
          data-testid="add-threshold"
          onClick={() => {
            const last = sortedThresholds(props.config).at(-1);
            const colors = ['#e0a800', '#e02f44', '#a352cc'];
            props.set({ thresholds: [...th, { value: last ? last.value + 10 : 50, color: colors[Math.min(th.length, colors.length - 1)] }] });
          }}
        >
          + Add threshold
        </button>
      </div>
    </div>
  );
}

export function WidgetConfigDialog(props: { widget: Widget; onSave: (w: Widget) => void; onClose: () => void }) {
  const def = WIDGETS[props.widget.type];
  const [w, setW] = useState<Widget>(() => clone(props.widget));
  const [tab, setTab] = useState<Tab>(def.data !== 'none' && !props.widget.config.datasource?.device_ids?.length && props.widget.config.datasource?.mode !== 'filter' ? 'data' : 'general');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const c = w.config;
  const ds: Datasource = c.datasource ?? { mode: 'devices', device_ids: [], keys: [] };
  const set = (patch: Partial<WidgetConfig>) => setW((x) => ({ ...x, config: { ...x.config, ...patch } }));
  const setDs = (patch: Partial<Datasource>) => set({ datasource: { ...ds, ...patch } });
  const source = useSourceDevices(def.data === 'none' ? undefined : ds);
  const knownKeys = useKnownKeys(source.ids);
  const keys = ds.keys ?? [];
  const alarmIds = c.datasource?.device_ids ?? [];
  const names = useDeviceNames(ds.mode === 'devices' ? ds.device_ids ?? [] : []);

  const tabs: [Tab, string][] = [['general', 'General']];
  if (def.data !== 'none') tabs.push(['data', 'Data']);
  if (def.agg || def.units || def.colors || def.type === 'gauge' || def.type === 'table' || def.type === 'map') tabs.push(['display', 'Display']);
  if (def.thresholds) tabs.push(['thresholds', 'Thresholds']);

  const check = (): Record<string, string> => {
    const e: Record<string, string> = {};
    if (def.data !== 'none') {
      if (ds.mode === 'devices' && !(ds.device_ids?.length)) e.devices = 'Pick at least one device.';
      if (ds.mode === 'filter' && !ds.filter?.type?.trim() && !ds.filter?.label?.trim()) e.devices = 'Enter a device type, a label, or both.';
      if (!def.keysOptional && !keys.length) e.keys = def.data === 'single' ? 'Pick a key.' : 'Pick at least one key.';
    }
    if (def.type === 'gauge' && !((c.max ?? 100) > (c.min ?? 0))) e.max = 'The maximum must be above the minimum.';
    if (c.decimals !== undefined && (!Number.isInteger(c.decimals) || c.decimals < 0 || c.decimals > 10)) e.decimals = 'Between 0 and 10.';
    if (c.tile_url && (!tileUrl(c.tile_url, 0, 0, 0) || !/\{z\}/.test(c.tile_url) || !/\{x\}/.test(c.tile_url) || !/\{y\}/.test(c.tile_url)))
      e.tile_url = 'An http(s) URL with {z}, {x} and {y}, e.g. https://tiles.example.org/{z}/{x}/{y}.png';
    if ((c.thresholds ?? []).some((t) => !Number.isFinite(t.value))) e.thresholds = 'Every threshold needs a number.';
    return e;
  };

  const save = (ev: Event) => {
    ev.preventDefault();
    const e = check();
    setErrors(e);
    if (Object.keys(e).length) {
      if (e.devices || e.keys) setTab('data');
      else if (e.thresholds) setTab('thresholds');
      else if (e.max || e.decimals || e.tile_url) setTab('display');
      return;
    }
    const out = clone(w);
    out.title = out.title.trim();
    // An untouched default title becomes what the widget shows.
    if ((!out.title || out.title === def.label) && def.data !== 'none' && keys.length) {
      const dev = ds.mode === 'devices' && ds.device_ids?.length === 1 ? names[ds.device_ids[0]] : undefined;
      const what = def.data === 'single' ? keys[0] : keys.slice(0, 3).join(', ') + (keys.length > 3 ? ', …' : '');
      out.title = dev ? `${dev} · ${what}` : what.charAt(0).toUpperCase() + what.slice(1);
    }
    if (out.config.thresholds) out.config.thresholds = sortedThresholds(out.config);
    if (out.config.datasource) {
      const d = out.config.datasource;
      if (d.mode === 'devices') delete d.filter;
      else delete d.device_ids;
      if (def.data === 'single') {
        d.device_ids = d.device_ids?.slice(0, 1);
        d.keys = d.keys?.slice(0, 1);
      }
    }
    props.onSave(out);
  };

  // Series whose colour can be set: device × key (devices mode) or key (filter mode).
  const colorRows: { id: string; label: string; color: string }[] = [];
  if (def.colors) {
    if (ds.mode === 'devices') {
      const ids = def.data === 'single' ? (ds.device_ids ?? []).slice(0, 1) : ds.device_ids ?? [];
      const ks = def.data === 'single' ? keys.slice(0, 1) : keys;
      let i = 0;
      for (const id of ids)
        for (const k of ks) {
          colorRows.push({ id: `${id}:${k}`, label: ids.length > 1 ? `${names[id] ?? '…'} · ${k}` : k, color: seriesColorOf(c, id, k, i) });
          i++;
        }
    } else keys.forEach((k, i) => colorRows.push({ id: k, label: `${k} (every device)`, color: c.colors?.[k] || PALETTE[i % PALETTE.length] }));
  }

  return (
    <Modal
      title={`${def.label} settings`}
      wide
      onClose={props.onClose}
      footer={
        <>
          <button type="button" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" form="widget-config-form" class="primary" data-testid="widget-config-apply">
            Apply
          </button>
        </>
      }
    >
      <div class="tabs" role="tablist">
        {tabs.map(([t, label]) => (
          <button type="button" key={t} role="tab" aria-selected={tab === t} class={tab === t ? 'active' : ''} onClick={() => setTab(t)} data-testid={`config-tab-${t}`}>
            {label}
            {((t === 'data' && (errors.devices || errors.keys)) || (t === 'thresholds' && errors.thresholds) || (t === 'display' && (errors.max || errors.decimals || errors.tile_url))) && (
              <span class="tab-error" aria-label="has errors">
                !
              </span>
            )}
          </button>
        ))}
      </div>
      <form id="widget-config-form" class="form wconfig" onSubmit={save} data-testid="widget-config-form">
        {tab === 'general' && (
          <>
            <div class="row wconfig-type muted">
              <WidgetIcon type={w.type} /> {def.description}
            </div>
            <label class="field">
              <span>Title</span>
              <input value={w.title} maxLength={120} onInput={(e) => setW({ ...w, title: e.currentTarget.value })} data-testid="widget-title" placeholder={def.label} />
            </label>
            {w.type === 'markdown' && (
              <div class="md-edit">
                <label class="field">
                  <span>Text (Markdown)</span>
                  <textarea rows={12} value={c.text ?? ''} onInput={(e) => set({ text: e.currentTarget.value })} data-testid="widget-text" />
                </label>
                <div class="field">
                  <span class="muted small">Preview</span>
                  <MarkdownPreview text={c.text ?? ''} />
                </div>
              </div>
            )}
            {w.type === 'alarms' && (
              <>
                <div class="field">
                  <label for="alarm-devices" class="muted">
                    <b>Only alarms of these devices</b> (none = every device)
                  </label>
                  <DevicePicker id="alarm-devices" multiple value={alarmIds} onChange={(ids) => set({ datasource: ids.length ? { mode: 'devices', device_ids: ids, keys: [] } : undefined })} />
                </div>
                <label class="field">
                  <span>Alarms shown at most</span>
                  <input type="number" min={1} max={200} value={c.max_rows ?? 50} onInput={(e) => set({ max_rows: e.currentTarget.valueAsNumber || undefined })} />
                </label>
              </>
            )}
          </>
        )}

        {tab === 'data' && (
          <>
            {def.filter && (
              <fieldset class="seg" role="radiogroup" aria-label="Which devices">
                <label class={ds.mode === 'devices' ? 'on' : ''}>
                  <input type="radio" name="dsmode" checked={ds.mode === 'devices'} onChange={() => setDs({ mode: 'devices', device_ids: ds.device_ids ?? [] })} /> Pick devices
                </label>
                <label class={ds.mode === 'filter' ? 'on' : ''}>
                  <input type="radio" name="dsmode" checked={ds.mode === 'filter'} onChange={() => setDs({ mode: 'filter', filter: ds.filter ?? {} })} data-testid="ds-mode-filter" /> Devices matching a filter
                </label>
              </fieldset>
            )}
            {ds.mode === 'devices' ? (
              <div class="field">
                <label for="ds-devices" class="muted">
                  <b>{def.data === 'single' ? 'Device' : 'Devices'}</b>
                </label>
                <DevicePicker id="ds-devices" multiple={def.data === 'multi'} value={ds.device_ids ?? []} onChange={(ids) => setDs({ device_ids: ids })} />
                {errors.devices && <div class="field-error">{errors.devices}</div>}
              </div>
            ) : (
              <>
                <div class="form-row">
                  <label class="field">
                    <span>Device type</span>
                    <input value={ds.filter?.type ?? ''} placeholder="e.g. thermostat" onInput={(e) => setDs({ filter: { ...ds.filter, type: e.currentTarget.value } })} data-testid="ds-type" />
                  </label>
                  <label class="field">
                    <span>Label</span>
                    <input value={ds.filter?.label ?? ''} placeholder="key or key:value, e.g. site:north" onInput={(e) => setDs({ filter: { ...ds.filter, label: e.currentTarget.value } })} data-testid="ds-label" />
                  </label>
                </div>
                {errors.devices ? (
                  <div class="field-error">{errors.devices}</div>
                ) : (
                  source.count !== null && (
                    <div class="muted small" data-testid="ds-matches">
                      {source.count === 0
                        ? 'No device matches yet (new matching devices appear automatically).'
                        : `Matches ${source.truncated ? `more than ${source.count} (the first ${MAX_FILTER_DEVICES} are shown)` : source.count} device${source.count === 1 ? '' : 's'}: ${source.names.join(', ')}${source.count > source.names.length ? ', …' : ''}`}
                    </div>
                  )
                )}
              </>
            )}
            {w.type === 'map' && (
              <div class="form-row">
                <label class="field">
                  <span>Latitude key</span>
                  <input value={c.lat_key ?? 'latitude'} onInput={(e) => set({ lat_key: e.currentTarget.value.trim() || undefined })} list="known-keys" />
                </label>
                <label class="field">
                  <span>Longitude key</span>
                  <input value={c.lon_key ?? 'longitude'} onInput={(e) => set({ lon_key: e.currentTarget.value.trim() || undefined })} list="known-keys" />
                </label>
              </div>
            )}
            <datalist id="known-keys">
              {knownKeys.map((k) => (
                <option key={k} value={k} />
              ))}
            </datalist>
            <KeyPicker
              value={keys}
              onChange={(k) => setDs({ keys: k })}
              known={w.type === 'map' ? knownKeys.filter((k) => k !== (c.lat_key || 'latitude') && k !== (c.lon_key || 'longitude')) : knownKeys}
              single={def.data === 'single'}
              optional={def.keysOptional}
            />
            {w.type === 'map' && <div class="muted small">The first key picked is shown in the tooltip and colours the markers when thresholds are set.</div>}
            {errors.keys && <div class="field-error">{errors.keys}</div>}
          </>
        )}

        {tab === 'display' && (
          <>
            {def.agg && (
              <label class="field">
                <span>{w.type === 'value' ? 'Sparkline aggregation' : 'Aggregation'}</span>
                <select value={c.agg ?? 'auto'} onChange={(e) => set({ agg: e.currentTarget.value as Agg })} data-testid="widget-agg">
                  {AGGS.filter((a) => !(w.type === 'bar' && a === 'none')).map((a) => (
                    <option key={a} value={a}>
                      {AGG_LABEL[a]}
                    </option>
                  ))}
                </select>
                <span class="muted small">Buckets are sized for about {w.type === 'bar' ? 60 : 300} points per series over the dashboard range.</span>
              </label>
            )}
            {def.units && (
              <div class="form-row">
                <label class="field">
                  <span>Unit</span>
                  <input value={c.unit ?? ''} placeholder="e.g. °C, %, kWh" maxLength={16} onInput={(e) => set({ unit: e.currentTarget.value || undefined })} data-testid="widget-unit" />
                </label>
                <label class="field">
                  <span>Decimals</span>
                  <input
                    type="number"
                    min={0}
                    max={10}
                    placeholder="auto"
                    value={c.decimals ?? ''}
                    onInput={(e) => set({ decimals: e.currentTarget.value === '' ? undefined : e.currentTarget.valueAsNumber })}
                  />
                  {errors.decimals && <span class="field-error">{errors.decimals}</span>}
                </label>
              </div>
            )}
            {def.units && def.data === 'multi' && keys.length > 1 && (
              <fieldset class="keypick">
                <legend>Unit per key</legend>
                <div class="form-row">
                  {keys.map((k) => (
                    <label class="field" key={k}>
                      <span class="mono">{k}</span>
                      <input value={c.units?.[k] ?? ''} placeholder={c.unit || 'no unit'} maxLength={16} onInput={(e) => set({ units: { ...c.units, [k]: e.currentTarget.value } })} />
                    </label>
                  ))}
                </div>
              </fieldset>
            )}
            {colorRows.length > 0 && (
              <fieldset class="keypick">
                <legend>Series colours</legend>
                <div class="color-rows">
                  {colorRows.map((r) => (
                    <label key={r.id} class="color-row">
                      <input type="color" value={r.color} onInput={(e) => set({ colors: { ...c.colors, [r.id]: e.currentTarget.value } })} />
                      <span>{r.label}</span>
                    </label>
                  ))}
                </div>
              </fieldset>
            )}
            {def.legend && (
              <label class="check">
                <input type="checkbox" checked={c.legend !== false} onChange={(e) => set({ legend: e.currentTarget.checked })} /> Show legend
              </label>
            )}
            {w.type === 'gauge' && (
              <div class="form-row">
                <label class="field">
                  <span>Minimum</span>
                  <input type="number" step="any" value={c.min ?? 0} onInput={(e) => set({ min: e.currentTarget.valueAsNumber })} />
                </label>
                <label class="field">
                  <span>Maximum</span>
                  <input type="number" step="any" value={c.max ?? 100} onInput={(e) => set({ max: e.currentTarget.valueAsNumber })} />
                  {errors.max && <span class="field-error">{errors.max}</span>}
                </label>
              </div>
            )}
            {w.type === 'table' && (
              <label class="field">
                <span>Rows shown at most</span>
                <input type="number" min={1} max={MAX_FILTER_DEVICES} value={c.max_rows ?? 100} onInput={(e) => set({ max_rows: e.currentTarget.valueAsNumber || undefined })} />
              </label>
            )}
            {w.type === 'map' && (
              <label class="field">
                <span>Tile URL template (optional)</span>
                <input
                  value={c.tile_url ?? ''}
                  placeholder="https://tile.example.org/{z}/{x}/{y}.png"
                  onInput={(e) => set({ tile_url: e.currentTarget.value.trim() || undefined })}
                  data-testid="map-tile-url"
                />
                <span class="muted small">Without one, devices are drawn on a plain latitude / longitude grid (works offline).</span>
                {errors.tile_url && <span class="field-error">{errors.tile_url}</span>}
              </label>
            )}
          </>
        )}

        {tab === 'thresholds' && (
          <>
            <ThresholdEditor config={c} set={set} />
            {errors.thresholds && <div class="field-error">{errors.thresholds}</div>}
          </>
        )}
      </form>
    </Modal>
  );
}
