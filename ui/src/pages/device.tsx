// One device: header (state, activity), then tabs: latest values (live), chart (any keys, time
// range, automatic aggregation, live append), attributes, RPC, connect (credentials, snippets).
// Tab, chart keys and range live in the URL so a view can be shared.
import type { ComponentChildren } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, ApiError, qs, type Device, type Value } from '../api';
import { LazyDeviceAnalytics } from '../components/analytics-lazy';
import { Page } from '../components/layout';
import {
  type ChartPoint,
  type ChartSeries,
  decodeRange,
  encodeRange,
  loadDeviceSeries,
  resolveRange,
  TimeChart,
  type TimeRange,
  TimeRangePicker,
  toNumber,
} from '../components/timechart';
import { Confirm, CopyButton, Empty, ErrorAlert, Loading, Modal, Spinner, toast, useLoad } from '../components/ui';
import { formatAgo, formatDateTime, formatDuration, formatValue } from '../format';
import { live } from '../live';
import { navigate, setQuery, useLocation } from '../router';
import { canEdit, useSession } from '../session';
import { DeleteDeviceDialog, DeviceDialog, knownTokens, LabelBadges, MQTT_PORT, OnlineBadge, Snippets, SysadminNoData, TokenDialog, useNow } from './devices';
import { NotFound } from './notfound';

type Latest = Record<string, { ts: number; value: Value }>;
type PointsListener = (points: Record<string, [number, Value][]>) => void;

const TABS = [
  { id: 'latest', label: 'Latest values' },
  { id: 'chart', label: 'Chart' },
  { id: 'analytics', label: 'Analytics' },
  { id: 'attributes', label: 'Attributes' },
  { id: 'rpc', label: 'RPC', editOnly: true },
  { id: 'connect', label: 'Connect' },
];

export function DevicePage({ id }: { id: string }) {
  const { user } = useSession();
  const editable = canEdit(user);
  const { query } = useLocation();
  const tabs = TABS.filter((t) => !t.editOnly || editable);
  const tab = tabs.find((t) => t.id === query.get('tab'))?.id ?? 'latest';
  const dev = useLoad(() => api<Device>('GET', `/api/v1/devices/${encodeURIComponent(id)}`), [id]);
  const [latest, setLatest] = useState<Latest>({});
  const [latestLoaded, setLatestLoaded] = useState(false);
  const [latestErr, setLatestErr] = useState<unknown>(null);
  const [editing, setEditing] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [liveOpen, setLiveOpen] = useState(live.state === 'open');
  const [liveActivity, setLiveActivity] = useState(0);
  const chartListeners = useRef(new Set<PointsListener>());
  const now = useNow(10000);
  const device = dev.data && liveActivity > (dev.data.last_activity ?? 0) ? { ...dev.data, last_activity: liveActivity } : dev.data;
  const found = !!device;

  // Timestamps of the values shown first: only later updates flash.
  const initialTs = useRef<Record<string, number>>({});
  const loadLatest = () =>
    api<Latest>('GET', `/api/v1/devices/${encodeURIComponent(id)}/telemetry/latest`)
      .then((l) => {
        if (Object.keys(initialTs.current).length === 0) initialTs.current = Object.fromEntries(Object.entries(l).map(([k, p]) => [k, p.ts]));
        setLatest(l);
        setLatestErr(null);
      })
      .catch(setLatestErr)
      .finally(() => setLatestLoaded(true));

  // Latest values: REST first, then the live stream keeps them current.
  useEffect(() => {
    if (!found) return;
    setLatestLoaded(false);
    initialTs.current = {};
    loadLatest();
    const merge = (pts: Record<string, [number, Value][]>) =>
      setLatest((cur) => {
        const next = { ...cur };
        for (const [k, arr] of Object.entries(pts)) {
          const last = arr[arr.length - 1];
          if (last && (!next[k] || last[0] >= next[k].ts)) next[k] = { ts: last[0], value: last[1] };
        }
        return next;
      });
    const unsub = live.subscribeTelemetry(
      { device_ids: [id] },
      {
        snapshot: (s) => {
          const mine = s[id];
          if (mine) merge(Object.fromEntries(Object.entries(mine).map(([k, p]) => [k, [[p.ts, p.value]]])));
        },
        points: (devId, pts) => {
          if (devId !== id) return;
          merge(pts);
          chartListeners.current.forEach((l) => l(pts));
          // Any message is activity: the device is evidently talking to us.
          setLiveActivity(Date.now());
        },
        error: (code, detail) => console.warn('live telemetry:', code, detail),
      },
    );
    const unstate = live.onState((s) => setLiveOpen(s === 'open'));
    return () => {
      unsub();
      unstate();
    };
  }, [id, found]);

  // Without the live connection, poll so the page is never stale; always refresh the state badge.
  useEffect(() => {
    if (!found) return;
    const t = window.setInterval(() => {
      if (document.visibilityState !== 'visible') return;
      if (!liveOpen) loadLatest();
      api<Device>('GET', `/api/v1/devices/${encodeURIComponent(id)}`)
        .then((d) => dev.setData(d))
        .catch(() => {});
    }, liveOpen ? 30000 : 10000);
    return () => clearInterval(t);
  }, [id, found, liveOpen]);

  if (user?.role === 'sysadmin')
    return (
      <Page title="Device">
        <div class="panel">
          <SysadminNoData />
        </div>
      </Page>
    );
  if (dev.loading && !device) return <Page title="Device"><Loading text="Loading device…" /></Page>;
  if (dev.error instanceof ApiError && (dev.error.status === 404 || dev.error.status === 400)) return <NotFound what="device" />;
  if (!device)
    return (
      <Page title="Device" crumbs={[{ href: '/devices', label: 'Devices' }]}>
        <ErrorAlert error={dev.error} />
      </Page>
    );

  return (
    <Page
      title={device.name}
      crumbs={[{ href: '/devices', label: 'Devices' }]}
      actions={
        editable && (
          <>
            <button onClick={() => setEditing(true)} data-testid="device-edit">
              Edit
            </button>
            <button class="danger" onClick={() => setDeleting(true)} data-testid="device-delete">
              Delete
            </button>
          </>
        )
      }
    >
      <section class="panel device-head" aria-label="Device summary">
        <div class="device-head-main">
          <OnlineBadge device={device} now={now} />
          <span class="mono small">{device.type}</span>
          {device.gateway && <span class="badge accent">gateway</span>}
          <LabelBadges labels={device.labels} max={12} />
        </div>
        <dl class="kv device-facts">
          <dt>Last activity</dt>
          <dd title={formatDateTime(device.last_activity)} data-testid="last-activity">
            {device.last_activity ? `${formatAgo(device.last_activity, Math.max(now, device.last_activity))} · ${formatDateTime(device.last_activity)}` : 'never'}
          </dd>
          <dt>Last connect</dt>
          <dd>{formatDateTime(device.last_connect)}</dd>
          <dt>Last disconnect</dt>
          <dd>{formatDateTime(device.last_disconnect)}</dd>
          <dt>Created</dt>
          <dd>{formatDateTime(device.created_at)}</dd>
          <dt>Device id</dt>
          <dd class="row">
            <code class="small">{device.id}</code>
            <CopyButton text={device.id} />
          </dd>
        </dl>
      </section>

      <div class="tabs" role="tablist" aria-label="Device sections">
        {tabs.map((t) => (
          <button
            key={t.id}
            role="tab"
            aria-selected={tab === t.id}
            class={tab === t.id ? 'active' : ''}
            onClick={() => setQuery({ tab: t.id === 'latest' ? undefined : t.id })}
            data-testid={`tab-${t.id}`}
          >
            {t.label}
          </button>
        ))}
      </div>

      {tab === 'latest' && (
        <LatestTab latest={latest} initialTs={initialTs.current} loaded={latestLoaded} error={latestErr} now={now} liveOpen={liveOpen} onChart={(k) => setQuery({ tab: 'chart', keys: k })} />
      )}
      {tab === 'chart' && <ChartTab device={device} latest={latest} latestLoaded={latestLoaded} listeners={chartListeners.current} liveOpen={liveOpen} />}
      {tab === 'analytics' && <LazyDeviceAnalytics device={device} editable={editable} latest={latest} />}
      {tab === 'attributes' && <AttributesTab device={device} editable={editable} />}
      {tab === 'rpc' && editable && <RpcTab device={device} />}
      {tab === 'connect' && <ConnectTab device={device} editable={editable} />}

      {editing && (
        <DeviceDialog
          device={device}
          onClose={() => setEditing(false)}
          onSaved={(d) => {
            setEditing(false);
            dev.setData({ ...dev.data!, ...d });
            toast(`Saved ${d.name}`);
          }}
        />
      )}
      {deleting && (
        <DeleteDeviceDialog device={device} onDeleted={() => navigate('/devices')} onClose={() => setDeleting(false)} />
      )}
    </Page>
  );
}

// ---- latest values -----------------------------------------------------------------------------

function ValueView({ v }: { v: Value }) {
  if (typeof v === 'boolean') return <span class={'badge ' + (v ? 'ok' : '')}>{v ? 'true' : 'false'}</span>;
  if (v !== null && typeof v === 'object') return <code class="small json-inline">{JSON.stringify(v)}</code>;
  return <>{formatValue(v)}</>;
}

function LatestTab(props: { latest: Latest; initialTs: Record<string, number>; loaded: boolean; error: unknown; now: number; liveOpen: boolean; onChart: (k: string) => void }) {
  const [filter, setFilter] = useState('');
  const keys = Object.keys(props.latest).sort((a, b) => a.localeCompare(b));
  const shown = filter ? keys.filter((k) => k.toLowerCase().includes(filter.toLowerCase())) : keys;
  if (!props.loaded) return <Loading text="Loading latest values…" />;
  return (
    <section class="panel flush" aria-label="Latest values">
      <div class="panel-bar">
        <span class={'badge ' + (props.liveOpen ? 'ok' : '')} title={props.liveOpen ? 'Values update as they arrive' : 'Refreshing every 10 s'}>
          <span class={'dot' + (props.liveOpen ? ' ok' : '')} /> {props.liveOpen ? 'Live' : 'Polling'}
        </span>
        <span class="muted small">
          {keys.length} {keys.length === 1 ? 'key' : 'keys'}
        </span>
        <span class="spacer" />
        {keys.length > 8 && <input type="search" placeholder="Filter keys…" aria-label="Filter keys" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />}
      </div>
      <ErrorAlert error={props.error} />
      {keys.length === 0 ? (
        <Empty title="No telemetry yet">
          <span>Values appear here as soon as the device sends them. See the Connect tab for ready-to-paste examples.</span>
        </Empty>
      ) : (
        <div class="table-wrap">
          <table class="data latest-table">
            <thead>
              <tr>
                <th>Key</th>
                <th>Value</th>
                <th>Updated</th>
                <th class="actions">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {shown.map((k) => {
                const p = props.latest[k];
                return (
                  <tr key={k}>
                    <td class="mono">{k}</td>
                    <td class="value-cell" data-testid={`latest-${k}`}>
                      {/* keyed by ts: a new value remounts the span and replays the flash */}
                      <span key={p.ts} class={props.initialTs[k] === p.ts ? '' : 'flash'}>
                        <ValueView v={p.value} />
                      </span>
                    </td>
                    <td class="muted" title={formatDateTime(p.ts)}>
                      {formatAgo(p.ts, Math.max(props.now, p.ts))} <span class="hide-narrow">· {formatDateTime(p.ts)}</span>
                    </td>
                    <td class="actions">
                      {toNumber(p.value) !== null && (
                        <button class="ghost small" onClick={() => props.onChart(k)} aria-label={`Chart ${k}`}>
                          Chart ›
                        </button>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

// ---- chart -------------------------------------------------------------------------------------

function ChartTab(props: { device: Device; latest: Latest; latestLoaded: boolean; listeners: Set<PointsListener>; liveOpen: boolean }) {
  const { query } = useLocation();
  const range = decodeRange(query.get('range'));
  const rangeKey = encodeRange(range);
  const keysAll = useLoad(() => api<string[]>('GET', `/api/v1/devices/${encodeURIComponent(props.device.id)}/telemetry/keys`), [props.device.id]);
  const numericKeys = (keysAll.data ?? []).filter((k) => !props.latest[k] || toNumber(props.latest[k].value) !== null);
  const urlKeys = query.get('keys');
  // Default: the first key holding real numbers (not booleans), else the first chartable one.
  const firstNumber = numericKeys.find((k) => typeof props.latest[k]?.value === 'number') ?? numericKeys[0];
  // (The default waits for the latest values, which tell numbers from booleans and text.)
  const selected = urlKeys !== null ? urlKeys.split(',').filter(Boolean) : firstNumber && props.latestLoaded ? [firstNumber] : [];
  const selKey = selected.join(',');
  const [kind, setKind] = useState<'line' | 'bar'>('line');
  const [series, setSeries] = useState<Record<string, ChartPoint[]>>({});
  const [bounds, setBounds] = useState(() => resolveRange(range));
  const [resolution, setResolution] = useState('');
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [reloadTick, setReloadTick] = useState(0);
  const [tookMs, setTookMs] = useState(0);

  // Load on range / keys change (quietly, without dimming, for live refreshes).
  const quiet = useRef(false);
  useEffect(() => {
    const ctl = new AbortController();
    const b = resolveRange(range);
    setBounds(b);
    if (!quiet.current) setLoading(true);
    quiet.current = false;
    setError(null);
    const t0 = performance.now();
    loadDeviceSeries(props.device.id, selected, b.from, b.to, { signal: ctl.signal })
      .then((r) => {
        setSeries(r.series);
        setResolution(r.resolution);
        setTookMs(performance.now() - t0);
      })
      .catch((e) => (e as Error).name !== 'AbortError' && setError(e))
      .finally(() => !ctl.signal.aborted && setLoading(false));
    return () => ctl.abort();
  }, [props.device.id, rangeKey, selKey, reloadTick]);

  // Live ranges: raw data gets points appended; aggregated data is re-fetched at most once per
  // bucket (and every 5 s at most); the window slides with the clock either way.
  const raw = resolution === 'raw';
  const isLive = 'last' in range;
  const refetchAt = useRef(0);
  useEffect(() => {
    if (!isLive || !resolution) return;
    const r0 = resolveRange(range);
    const span = r0.to - r0.from;
    const onPoints: PointsListener = (pts) => {
      if (raw) {
        setSeries((cur) => {
          let changed = false;
          const next = { ...cur };
          for (const k of selected) {
            const arr = pts[k];
            if (!arr) continue;
            const add: ChartPoint[] = arr.map(([ts, v]) => [ts, toNumber(v)]);
            const prev = next[k] ?? [];
            const lastTs = prev.length ? prev[prev.length - 1][0] : -Infinity;
            const fresh = add.filter((p) => p[0] > lastTs);
            if (fresh.length === 0) continue;
            const from = Date.now() - span;
            next[k] = [...prev.filter((p) => p[0] >= from), ...fresh];
            changed = true;
          }
          return changed ? next : cur;
        });
        const now = Date.now();
        setBounds({ from: now - span, to: now, live: true });
      } else if (selected.some((k) => pts[k])) {
        const wait = Math.max(5000, intervalMs(resolution));
        const now = Date.now();
        if (now - refetchAt.current >= wait) {
          refetchAt.current = now;
          quiet.current = true;
          setReloadTick((t) => t + 1);
        }
      }
    };
    props.listeners.add(onPoints);
    // Slide the window even when nothing arrives.
    const t = window.setInterval(() => {
      const now = Date.now();
      setBounds({ from: now - span, to: now, live: true });
    }, Math.max(5000, Math.min(60000, span / 300)));
    return () => {
      props.listeners.delete(onPoints);
      clearInterval(t);
    };
  }, [isLive, resolution, selKey, rangeKey]);

  // No live connection (server without WebSocket, or reconnecting): refresh live ranges every 10 s.
  useEffect(() => {
    if (!isLive || props.liveOpen) return;
    const t = window.setInterval(() => {
      if (document.visibilityState !== 'visible') return;
      quiet.current = true;
      setReloadTick((x) => x + 1);
    }, 10000);
    return () => clearInterval(t);
  }, [isLive, props.liveOpen]);

  const chartSeries: ChartSeries[] = useMemo(() => selected.map((k) => ({ label: k, points: series[k] ?? [] })), [series, selKey]);

  const toggleKey = (k: string) => {
    const next = selected.includes(k) ? selected.filter((x) => x !== k) : [...selected, k];
    setQuery({ keys: next.join(',') || '' });
  };
  const setRange = (r: TimeRange) => setQuery({ range: encodeRange(r) });

  const allKeys = keysAll.data ?? [];
  return (
    <section class="panel chart-panel" aria-label="Chart">
      <div class="chart-toolbar">
        <div class="key-chips" role="group" aria-label="Keys to chart">
          {keysAll.loading && <Spinner />}
          {allKeys.length === 0 && !keysAll.loading && <span class="muted">No telemetry keys yet.</span>}
          {allKeys.map((k) => {
            const numeric = numericKeys.includes(k);
            const on = selected.includes(k);
            return (
              <button
                key={k}
                type="button"
                class={'key-chip' + (on ? ' on' : '')}
                aria-pressed={on}
                disabled={!numeric && !on}
                title={numeric ? undefined : 'Not a number: cannot be charted'}
                onClick={() => toggleKey(k)}
                data-testid={`chart-key-${k}`}
              >
                {k}
              </button>
            );
          })}
        </div>
        <div class="row">
          <div class="segmented" role="group" aria-label="Chart type">
            <button type="button" class={kind === 'line' ? 'on' : ''} aria-pressed={kind === 'line'} onClick={() => setKind('line')}>
              Line
            </button>
            <button type="button" class={kind === 'bar' ? 'on' : ''} aria-pressed={kind === 'bar'} onClick={() => setKind('bar')}>
              Bars
            </button>
          </div>
          <TimeRangePicker value={range} onChange={setRange} />
          <button class="icon" aria-label="Reload" title="Reload" onClick={() => setReloadTick((t) => t + 1)}>
            ↻
          </button>
        </div>
      </div>
      <ErrorAlert error={error} />
      {selected.length === 0 ? (
        keysAll.loading || (!props.latestLoaded && urlKeys === null) ? (
          <Loading />
        ) : (
          <Empty title={allKeys.length ? 'Pick one or more keys to chart' : 'Nothing to chart yet'} />
        )
      ) : (
        <div class={'chart-area' + (loading ? ' reloading' : '')}>
          <TimeChart series={chartSeries} kind={kind} height={340} from={bounds.from} to={bounds.to} onRangeSelect={(f, t) => setRange({ from: f, to: t })} />
        </div>
      )}
      <div class="muted small chart-foot">
        {resolution &&
          (resolution === 'raw' ? 'Raw points' : `Average per ${formatDuration(intervalMs(resolution))} (automatic for this range)`)}
        {resolution && ` · loaded in ${Math.round(tookMs)} ms`}
        {isLive ? ' · following live' : ''} · drag across the chart to zoom in
        {!isLive && (
          <>
            {' · '}
            <button class="linklike" onClick={() => setRange({ last: '1h' })}>
              back to live
            </button>
          </>
        )}
      </div>
    </section>
  );
}

function intervalMs(s: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(s);
  if (!m) return 0;
  return +m[1] * { s: 1000, m: 60000, h: 3600000, d: 86400000 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

// ---- attributes --------------------------------------------------------------------------------

type AttrMap = Record<string, { value: Value; updated_at: number }>;
interface Attrs {
  client?: AttrMap;
  shared?: AttrMap;
  server?: AttrMap;
}

/** Text in the editor -> JSON value: valid JSON is parsed (42, true, {"a":1}, "x"); anything else is a string. */
function parseAttrValue(s: string): Value {
  const t = s.trim();
  try {
    const v = JSON.parse(t);
    return v;
  } catch {
    return s;
  }
}

function attrText(v: Value): string {
  return typeof v === 'string' ? (/^(true|false|null|-?\d|[[{"])/.test(v.trim()) ? JSON.stringify(v) : v) : JSON.stringify(v);
}

function AttributesTab(props: { device: Device; editable: boolean }) {
  const base = `/api/v1/devices/${encodeURIComponent(props.device.id)}/attributes`;
  const a = useLoad(() => api<Attrs>('GET', base), [props.device.id]);
  const [edit, setEdit] = useState<{ key: string; value: string; isNew: boolean } | null>(null);
  const [del, setDel] = useState<string | null>(null);
  const now = useNow(30000);
  if (a.loading && !a.data) return <Loading text="Loading attributes…" />;

  const table = (title: string, scope: 'client' | 'shared' | 'server', map: AttrMap | undefined, hint: ComponentChildren, canWrite: boolean) => {
    const keys = Object.keys(map ?? {}).sort();
    return (
      <section class="panel flush" aria-label={title}>
        <div class="panel-bar">
          <h2>{title}</h2>
          <span class="spacer" />
          {canWrite && (
            <button class="small primary" onClick={() => setEdit({ key: '', value: '', isNew: true })} data-testid={`attr-add-${scope}`}>
              + Add
            </button>
          )}
        </div>
        <p class="muted small panel-hint">{hint}</p>
        {keys.length === 0 ? (
          <div class="empty small-empty">No {scope} attributes.</div>
        ) : (
          <div class="table-wrap">
            <table class="data">
              <thead>
                <tr>
                  <th>Key</th>
                  <th>Value</th>
                  <th>Updated</th>
                  {canWrite && (
                    <th class="actions">
                      <span class="sr-only">Actions</span>
                    </th>
                  )}
                </tr>
              </thead>
              <tbody>
                {keys.map((k) => {
                  const at = map![k];
                  return (
                    <tr key={k} data-testid={`attr-${scope}-row`}>
                      <td class="mono">{k}</td>
                      <td data-testid={`attr-${scope}-${k}`}>
                        <ValueView v={at.value} />
                      </td>
                      <td class="muted" title={formatDateTime(at.updated_at)}>
                        {formatAgo(at.updated_at, now)}
                      </td>
                      {canWrite && (
                        <td class="actions">
                          <button class="ghost small" onClick={() => setEdit({ key: k, value: attrText(at.value), isNew: false })} aria-label={`Edit ${k}`}>
                            Edit
                          </button>
                          <button class="ghost small danger-text" onClick={() => setDel(k)} aria-label={`Delete ${k}`}>
                            Delete
                          </button>
                        </td>
                      )}
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </section>
    );
  };

  const d = a.data ?? {};
  return (
    <div class="stack">
      <ErrorAlert error={a.error} />
      <div class="grid-2 attr-grid">
        {table('Client attributes', 'client', d.client, 'Reported by the device (firmware version, model…). Read-only here.', false)}
        {table(
          'Shared attributes',
          'shared',
          d.shared,
          <>
            Set here and pushed to the device on <code>v1/devices/me/attributes</code> (configuration, set points).
          </>,
          props.editable,
        )}
      </div>
      {d.server && Object.keys(d.server).length > 0 && table('Server attributes', 'server', d.server, 'Kept on the server only; the device does not see them.', false)}

      {edit && (
        <AttrDialog
          initial={edit}
          existing={Object.keys(d.shared ?? {})}
          onClose={() => setEdit(null)}
          onSave={async (key, value) => {
            await api('POST', base + qs({ scope: 'shared' }), { [key]: value });
            setEdit(null);
            toast(`Saved ${key}`);
            a.reload();
          }}
        />
      )}
      {del && (
        <Confirm
          title="Delete shared attribute"
          message={
            <>
              Delete <code>{del}</code> from the shared attributes of {props.device.name}?
            </>
          }
          onConfirm={async () => {
            try {
              await api('DELETE', base + qs({ scope: 'shared', keys: del }));
            } catch (e) {
              if (e instanceof ApiError && (e.status === 405 || (e.status === 404 && e.code !== 'not_found')))
                throw new Error('This server version cannot delete attributes; overwrite the value instead.');
              throw e;
            }
            toast(`Deleted ${del}`);
            a.reload();
          }}
          onClose={() => setDel(null)}
        />
      )}
    </div>
  );
}

function AttrDialog(props: {
  initial: { key: string; value: string; isNew: boolean };
  existing: string[];
  onClose: () => void;
  onSave: (key: string, value: Value) => Promise<void>;
}) {
  const [key, setKey] = useState(props.initial.key);
  const [value, setValue] = useState(props.initial.value);
  const [err, setErr] = useState<{ field?: string; msg: unknown } | null>(null);
  const [busy, setBusy] = useState(false);
  const parsed = parseAttrValue(value);
  const submit = async (e: Event) => {
    e.preventDefault();
    const k = key.trim();
    if (!k) return setErr({ field: 'key', msg: 'Enter a key.' });
    if (props.initial.isNew && props.existing.includes(k)) return setErr({ field: 'key', msg: `"${k}" already exists; edit it instead.` });
    if (value.trim() === '' || parsed === null) return setErr({ field: 'value', msg: 'Enter a value (null is not allowed).' });
    setBusy(true);
    setErr(null);
    try {
      await props.onSave(k, parsed);
    } catch (ex) {
      setErr({ msg: ex });
      setBusy(false);
    }
  };
  return (
    <Modal
      title={props.initial.isNew ? 'Add shared attribute' : `Edit ${props.initial.key}`}
      onClose={props.onClose}
      footer={
        <>
          <button onClick={props.onClose}>Cancel</button>
          <button class="primary" type="submit" form="attr-form" disabled={busy} data-testid="attr-save">
            {busy ? 'Saving…' : 'Save'}
          </button>
        </>
      }
    >
      <form id="attr-form" class="form" onSubmit={submit} noValidate>
        <label class="field">
          <span>Key</span>
          <input value={key} disabled={!props.initial.isNew} onInput={(e) => setKey(e.currentTarget.value)} maxLength={255} data-testid="attr-key" />
          {err?.field === 'key' && <span class="field-error">{String(err.msg)}</span>}
        </label>
        <label class="field">
          <span>Value</span>
          <textarea rows={3} value={value} onInput={(e) => setValue(e.currentTarget.value)} data-testid="attr-value" />
          {err?.field === 'value' && <span class="field-error">{String(err.msg)}</span>}
          <span class="muted small">
            Stored as{' '}
            <strong>{value.trim() === '' ? '—' : Array.isArray(parsed) ? 'array' : parsed === null ? 'null' : typeof parsed === 'object' ? 'object' : typeof parsed}</strong>
            . JSON is parsed (<code>42</code>, <code>true</code>, <code>{'{"mode":"eco"}'}</code>); other text is stored as a string.
          </span>
        </label>
        {err && !err.field && <ErrorAlert error={err.msg} />}
      </form>
    </Modal>
  );
}

// ---- RPC ---------------------------------------------------------------------------------------

interface RpcCall {
  n: number;
  at: number;
  method: string;
  params: unknown;
  oneway: boolean;
  queue?: boolean;
  state: 'pending' | 'ok' | 'error';
  ms?: number;
  response?: unknown;
  status?: string;
  error?: { status: number; code: string; message: string };
}

const rpcHistory = new Map<string, RpcCall[]>(); // per device, kept while the app is open

function RpcTab({ device }: { device: Device }) {
  const [method, setMethod] = useState('');
  const [params, setParams] = useState('{}');
  const [timeout, setTimeoutS] = useState('10');
  const [oneway, setOneway] = useState(false);
  const [queue, setQueue] = useState(false);
  const [history, setHistory] = useState<RpcCall[]>(() => rpcHistory.get(device.id) ?? []);
  const [formErr, setFormErr] = useState<{ field: string; msg: string } | null>(null);
  const seq = useRef(history.length ? history[0].n : 0);

  const update = (n: number, patch: Partial<RpcCall>) =>
    setHistory((h) => {
      const next = h.map((c) => (c.n === n ? { ...c, ...patch } : c));
      rpcHistory.set(device.id, next);
      return next;
    });

  const send = async (e: Event) => {
    e.preventDefault();
    setFormErr(null);
    if (!method.trim()) return setFormErr({ field: 'method', msg: 'Enter the method name the device handles.' });
    let p: unknown = {};
    if (params.trim()) {
      try {
        p = JSON.parse(params);
      } catch (ex) {
        return setFormErr({ field: 'params', msg: 'Params must be JSON: ' + (ex as Error).message });
      }
    }
    const secs = Number(timeout);
    if (!Number.isFinite(secs) || secs <= 0 || secs > 600) return setFormErr({ field: 'timeout', msg: 'Timeout must be between 0.001 and 600 seconds.' });
    const n = ++seq.current;
    const call: RpcCall = { n, at: Date.now(), method: method.trim(), params: p, oneway, queue, state: 'pending' };
    setHistory((h) => {
      const next = [call, ...h].slice(0, 30);
      rpcHistory.set(device.id, next);
      return next;
    });
    const t0 = performance.now();
    try {
      const r = await api<{ id: number; response?: unknown; status?: string }>('POST', `/api/v1/devices/${device.id}/rpc`, {
        method: call.method,
        params: p,
        timeout_ms: Math.round(secs * 1000),
        oneway,
        queue,
      });
      update(n, { state: 'ok', ms: performance.now() - t0, response: r.response, status: r.status });
    } catch (ex) {
      const err =
        ex instanceof ApiError
          ? {
              status: ex.status,
              code: ex.code,
              message:
                ex.code === 'device_offline'
                  ? 'The device is not connected.'
                  : ex.code === 'timeout'
                    ? `No reply within ${secs} s.`
                    : ex.message,
            }
          : { status: 0, code: 'error', message: String(ex) };
      update(n, { state: 'error', ms: performance.now() - t0, error: err });
    }
  };

  return (
    <div class="grid-2 rpc-grid">
      <section class="panel" aria-label="Send RPC">
        <h2>Send a command</h2>
        <form class="form" onSubmit={send} noValidate>
          <label class="field">
            <span>Method</span>
            <input value={method} onInput={(e) => setMethod(e.currentTarget.value)} placeholder="e.g. setValve" maxLength={256} data-testid="rpc-method" />
            {formErr?.field === 'method' && <span class="field-error">{formErr.msg}</span>}
          </label>
          <label class="field">
            <span>Params (JSON)</span>
            <textarea rows={6} value={params} onInput={(e) => setParams(e.currentTarget.value)} spellcheck={false} data-testid="rpc-params" />
            {formErr?.field === 'params' && <span class="field-error">{formErr.msg}</span>}
          </label>
          <div class="form-row">
            <label class="field">
              <span>Timeout (seconds)</span>
              <input type="number" min="0.001" max="600" step="any" value={timeout} onInput={(e) => setTimeoutS(e.currentTarget.value)} data-testid="rpc-timeout" />
              {formErr?.field === 'timeout' && <span class="field-error">{formErr.msg}</span>}
            </label>
            <div class="stack rpc-flags">
              <label class="check-field">
                <input type="checkbox" checked={oneway} onChange={(e) => setOneway(e.currentTarget.checked)} data-testid="rpc-oneway" />
                <span>
                  One-way <span class="muted small">(no reply expected)</span>
                </span>
              </label>
              <label class="check-field">
                <input type="checkbox" checked={queue} onChange={(e) => setQueue(e.currentTarget.checked)} data-testid="rpc-queue" />
                <span>
                  Queue if offline <span class="muted small">(sent when it connects, within the timeout)</span>
                </span>
              </label>
            </div>
          </div>
          <div class="row">
            <button class="primary" type="submit" data-testid="rpc-send">
              Send
            </button>
            <span class="muted small">
              {device.online ? 'The device is online.' : queue ? 'The device is offline now: the call waits for it to connect.' : 'The device is offline now: the call will fail with “device offline” unless queued.'}
            </span>
          </div>
        </form>
      </section>
      <section class="panel flush" aria-label="RPC history">
        <div class="panel-bar">
          <h2>History</h2>
          <span class="spacer" />
          {history.length > 0 && (
            <button
              class="ghost small"
              onClick={() => {
                setHistory([]);
                rpcHistory.delete(device.id);
              }}
            >
              Clear
            </button>
          )}
        </div>
        {history.length === 0 ? (
          <div class="empty small-empty">Calls you send appear here with the device's reply.</div>
        ) : (
          <ol class="rpc-history">
            {history.map((c, i) => (
              <li key={c.n} class={'rpc-call ' + c.state} data-testid="rpc-call">
                <div class="rpc-call-head">
                  <span class={'badge ' + (c.state === 'ok' ? 'ok' : c.state === 'error' ? 'danger' : 'warn')}>
                    {c.state === 'pending' ? 'waiting…' : c.state === 'ok' ? (c.oneway ? c.status ?? 'sent' : 'reply') : c.error?.status ? `${c.error.status} ${c.error.code}` : 'failed'}
                  </span>
                  <code>{c.method}</code>
                  <span class="spacer" />
                  <span class="muted small" title={formatDateTime(c.at)}>
                    {formatDateTime(c.at)}
                    {c.ms !== undefined && ` · ${Math.round(c.ms)} ms`}
                  </span>
                  <button
                    class="ghost small"
                    title="Put this call back in the form"
                    onClick={() => {
                      setMethod(c.method);
                      setParams(JSON.stringify(c.params, null, 2));
                      setOneway(c.oneway);
                      setQueue(!!c.queue);
                    }}
                  >
                    Reuse
                  </button>
                </div>
                <div class="muted small">params: <code>{JSON.stringify(c.params)}</code></div>
                <div data-testid={i === 0 ? 'rpc-result' : 'rpc-history-result'} class="rpc-result">
                  {c.state === 'pending' ? (
                    <span class="muted">
                      <Spinner /> waiting for the device…
                    </span>
                  ) : c.state === 'ok' ? (
                    c.oneway ? (
                      <span class="muted">{c.status === 'queued' ? 'Queued until the device connects.' : 'Sent to the device.'}</span>
                    ) : (
                      <pre>{typeof c.response === 'string' ? c.response : JSON.stringify(c.response, null, 2)}</pre>
                    )
                  ) : (
                    <div class="alert error">{c.error?.message}</div>
                  )}
                </div>
              </li>
            ))}
          </ol>
        )}
      </section>
    </div>
  );
}

// ---- connect -----------------------------------------------------------------------------------

interface MqttBasic {
  username: string;
  client_id: string | null;
}

function ConnectTab({ device, editable }: { device: Device; editable: boolean }) {
  const [token, setToken] = useState<string | null>(knownTokens.get(device.id) ?? null);
  const [confirmRegen, setConfirmRegen] = useState(false);
  const [shown, setShown] = useState<string | null>(null);

  return (
    <div class="stack">
      <section class="panel" aria-label="Access token">
        <div class="panel-title-row">
          <h2>Access token</h2>
          <span class="spacer" />
          {editable && (
            <button class="danger" onClick={() => setConfirmRegen(true)} data-testid="token-regenerate">
              Regenerate token
            </button>
          )}
        </div>
        <p class="muted">
          Devices authenticate with their access token: as the MQTT username, or in the URL of the HTTP API.
          {token ? ' This is the token issued in this browser session.' : ' The token is shown only when the device is created or the token regenerated, so the examples use $TOKEN.'}
        </p>
        {token && !shown ? (
          <div class="token-box">
            <code data-testid="token-value">{token}</code>
            <CopyButton text={token} label="Copy token" />
          </div>
        ) : (
          <div class="alert info small">
            Replace <code>$TOKEN</code> with the device's access token{editable ? ', or regenerate one (the device is disconnected until it uses the new token).' : '.'}
          </div>
        )}
        <h3 class="section-gap">Send a first value</h3>
        <Snippets token={token ?? '$TOKEN'} />
        <p class="muted small" style={{ margin: 0 }}>
          MQTT on port {MQTT_PORT} of {location.hostname}; HTTP on {location.host}. Payloads may be <code>{'{"k":v}'}</code>,{' '}
          <code>{'{"ts":ms,"values":{…}}'}</code> or an array of those.
        </p>
      </section>

      {editable && <MqttBasicPanel device={device} />}

      {confirmRegen && (
        <Confirm
          title="Regenerate access token"
          message={
            <>
              Issue a new token for <strong>{device.name}</strong>? The current token stops working at once and the device's MQTT connections are closed.
            </>
          }
          confirmLabel="Regenerate"
          onConfirm={async () => {
            const r = await api<{ access_token: string }>('POST', `/api/v1/devices/${device.id}/credentials`);
            knownTokens.set(device.id, r.access_token);
            setToken(r.access_token);
            setShown(r.access_token);
          }}
          onClose={() => setConfirmRegen(false)}
        />
      )}
      {shown && <TokenDialog device={device} token={shown} fresh="regenerated" onClose={() => setShown(null)} />}
    </div>
  );
}

function MqttBasicPanel({ device }: { device: Device }) {
  const url = `/api/v1/devices/${device.id}/credentials/mqtt-basic`;
  const cur = useLoad(
    () =>
      api<MqttBasic>('GET', url).catch((e) => {
        if (e instanceof ApiError && e.status === 404) return null;
        throw e;
      }),
    [device.id],
  );
  const [editing, setEditing] = useState(false);
  const [removing, setRemoving] = useState(false);
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [clientId, setClientId] = useState('');
  const [err, setErr] = useState<{ field?: string; msg: unknown } | null>(null);
  const [busy, setBusy] = useState(false);

  const start = () => {
    setUsername(cur.data?.username ?? device.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, ''));
    setPassword('');
    setClientId(cur.data?.client_id ?? '');
    setErr(null);
    setEditing(true);
  };

  const save = async (e: Event) => {
    e.preventDefault();
    if (!username.trim()) return setErr({ field: 'username', msg: 'Enter a username.' });
    if (password.length < 8) return setErr({ field: 'password', msg: 'The password needs at least 8 characters.' });
    setBusy(true);
    setErr(null);
    try {
      const r = await api<MqttBasic>('PUT', url, { username: username.trim(), password, client_id: clientId.trim() || undefined });
      cur.setData(r);
      setEditing(false);
      toast('MQTT credentials saved');
    } catch (ex) {
      if (ex instanceof ApiError && ex.status === 409) setErr({ field: 'username', msg: 'Another device already uses this username.' });
      else if (ex instanceof ApiError && ex.field) setErr({ field: ex.field, msg: ex.message });
      else setErr({ msg: ex });
    } finally {
      setBusy(false);
    }
  };

  const fe = (f: string) => (err?.field === f ? <span class="field-error">{String(err.msg)}</span> : null);
  return (
    <section class="panel" aria-label="MQTT basic credentials">
      <div class="panel-title-row">
        <h2>MQTT username and password</h2>
        <span class="spacer" />
        {!editing && cur.data !== undefined && (
          <>
            <button onClick={start} data-testid="mqtt-basic-edit">
              {cur.data ? 'Change' : 'Set credentials'}
            </button>
            {cur.data && (
              <button class="danger" onClick={() => setRemoving(true)}>
                Remove
              </button>
            )}
          </>
        )}
      </div>
      <p class="muted">Optional, for devices that cannot use a token as the username. Setting or removing them disconnects the device.</p>
      {cur.loading && cur.data === undefined ? (
        <Loading />
      ) : cur.error ? (
        <ErrorAlert error={cur.error} />
      ) : editing ? (
        <form class="form" onSubmit={save} noValidate>
          <div class="form-row">
            <label class="field">
              <span>Username</span>
              <input value={username} onInput={(e) => setUsername(e.currentTarget.value)} maxLength={128} autocomplete="off" data-testid="mqtt-username" />
              {fe('username')}
            </label>
            <label class="field">
              <span>Password</span>
              <input type="password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} autocomplete="new-password" data-testid="mqtt-password" />
              {fe('password')}
            </label>
            <label class="field">
              <span>Client id (optional)</span>
              <input value={clientId} onInput={(e) => setClientId(e.currentTarget.value)} maxLength={256} placeholder="any" />
              {fe('client_id')}
            </label>
          </div>
          {err && !err.field && <ErrorAlert error={err.msg} />}
          <div class="row">
            <button class="primary" type="submit" disabled={busy}>
              {busy ? 'Saving…' : 'Save credentials'}
            </button>
            <button type="button" onClick={() => setEditing(false)}>
              Cancel
            </button>
          </div>
        </form>
      ) : cur.data ? (
        <>
          <dl class="kv">
            <dt>Username</dt>
            <dd>
              <code data-testid="mqtt-basic-username">{cur.data.username}</code>
            </dd>
            <dt>Client id</dt>
            <dd>{cur.data.client_id ? <code>{cur.data.client_id}</code> : <span class="muted">any</span>}</dd>
            <dt>Password</dt>
            <dd class="muted">set (stored hashed; not shown)</dd>
          </dl>
          <pre class="section-gap">{`mosquitto_pub -h ${location.hostname} -p ${MQTT_PORT} -u ${cur.data.username} -P '$PASSWORD'${cur.data.client_id ? ` -i ${cur.data.client_id}` : ''} -t v1/devices/me/telemetry -m '{"temperature":21.5}'`}</pre>
        </>
      ) : (
        <div class="muted">No MQTT username is set for this device.</div>
      )}
      {removing && (
        <Confirm
          title="Remove MQTT credentials"
          message="Remove the MQTT username and password of this device? Connections using them are closed."
          confirmLabel="Remove"
          onConfirm={async () => {
            await api('DELETE', url);
            cur.setData(null);
            toast('MQTT credentials removed');
          }}
          onClose={() => setRemoving(false)}
        />
      )}
    </section>
  );
}
