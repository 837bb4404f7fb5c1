// Widget data: which devices a datasource means, history (one batch query per widget, aggregated
// to ~300 points per series), latest values, and live updates over the shared WebSocket.
// A DataScope lives as long as a dashboard page: it caches device look-ups (one list request for
// a small tenant), shares each widget's history query and latest-values stream, and lets the
// dashboard start all of them as soon as the layout is read, before any widget has mounted.
import { createContext } from 'preact';
import { useContext, useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, qs, type Device, type Page, type Point, type Value } from '../api';
import { rememberDevices } from '../components/devicepicker';
import { autoInterval, toChartPoints, toNumber, type ChartPoint, type TimeRange } from '../components/timechart';
import { live } from '../live';
import type { Agg, Datasource, Widget } from './model';

/** Devices matched by a filter are capped (the table and map show this many at most). */
export const MAX_FILTER_DEVICES = 200;

export interface DeviceInfo {
  id: string;
  name: string;
  type: string;
  online: boolean;
  last_activity: number | null;
  /** False when the id no longer names a device of this tenant. */
  exists: boolean;
}

function info(d: Device): DeviceInfo {
  return { id: d.id, name: d.name, type: d.type, online: d.online, last_activity: d.last_activity, exists: true };
}

/** Runs tasks with at most `n` in flight (the browser has ~6 connections per host anyway). */
async function pool<T, R>(items: T[], n: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}

/** Devices fetched in one list request when a dashboard needs several by id (small tenants: all). */
const WARM_PAGE = 200;

export class DataScope {
  private byId = new Map<string, Promise<DeviceInfo>>();
  private byFilter = new Map<string, Promise<{ devices: DeviceInfo[]; truncated: boolean }>>();
  private warm: Promise<void> | null = null;

  private histories = new Map<string, Promise<HistoryData>>();
  // Not cleared by reset(): latest values do not depend on the range; streams refresh themselves.
  private streams = new Map<string, LatestStream>();

  /** The shared latest-values stream of a datasource and keys (created on first use). */
  latest(ds: Datasource | undefined, keys: string[]): LatestStream {
    const k = JSON.stringify([ds?.mode, ds?.mode === 'filter' ? ds.filter : ds?.device_ids, keys]);
    let st = this.streams.get(k);
    if (!st) {
      st = new LatestStream(this, ds, keys, () => this.streams.delete(k));
      this.streams.set(k, st);
    }
    return st;
  }

  /** Forgets cached devices (auto-refresh and manual refresh see new devices and online states). */
  reset() {
    this.byId.clear();
    this.byFilter.clear();
    this.warm = null;
    this.histories.clear();
  }

  /**
   * The history of a widget for a range and refresh generation: started once, shared by whoever
   * asks (the dashboard starts them all when the layout arrives, before the widgets mount).
   */
  history(w: Widget, from: number, to: number, gen: number, opts: HistoryOptions): Promise<HistoryData> {
    const k = JSON.stringify([w.config.datasource, w.config.agg, from, to, gen, opts]);
    let p = this.histories.get(k);
    if (!p) {
      p = loadHistory(this, w, from, to, opts);
      p.catch(() => this.histories.delete(k));
      this.histories.set(k, p);
      if (this.histories.size > 500) this.histories.delete(this.histories.keys().next().value!);
    }
    return p;
  }

  /**
   * One list request for the first WARM_PAGE devices of the tenant, so a dashboard naming
   * twenty devices by id costs one request instead of twenty (ids not in it are fetched alone).
   */
  private warmUp(): Promise<void> {
    this.warm ??= api<Page<Device>>('GET', '/api/v1/devices' + qs({ page_size: WARM_PAGE }))
      .then((page) => {
        rememberDevices(page.items);
        for (const d of page.items) if (!this.byId.has(d.id)) this.byId.set(d.id, Promise.resolve(info(d)));
      })
      .catch(() => {});
    return this.warm;
  }

  device(id: string): Promise<DeviceInfo> {
    let p = this.byId.get(id);
    if (!p) {
      p = api<Device>('GET', `/api/v1/devices/${encodeURIComponent(id)}`)
        .then(info)
        .catch((e) => {
          if (e instanceof ApiError && e.status === 404)
            return { id, name: 'Deleted device', type: '', online: false, last_activity: null, exists: false };
          this.byId.delete(id);
          throw e;
        });
      this.byId.set(id, p);
    }
    return p;
  }

  async devices(ds: Datasource | undefined): Promise<{ devices: DeviceInfo[]; truncated: boolean }> {
    if (!ds) return { devices: [], truncated: false };
    if (ds.mode === 'filter') {
      const type = ds.filter?.type?.trim() || undefined;
      const label = ds.filter?.label?.trim() || undefined;
      const k = JSON.stringify([type, label]);
      let p = this.byFilter.get(k);
      if (!p) {
        p = api<Page<Device>>('GET', '/api/v1/devices' + qs({ type, label, page_size: MAX_FILTER_DEVICES })).then((page) => {
          rememberDevices(page.items);
          const devices = page.items.map(info);
          for (const d of devices) if (!this.byId.has(d.id)) this.byId.set(d.id, Promise.resolve(d));
          return { devices, truncated: !!page.next_cursor };
        });
        p.catch(() => this.byFilter.delete(k));
        this.byFilter.set(k, p);
      }
      return p;
    }
    const ids = ds.device_ids ?? [];
    if (ids.some((id) => !this.byId.has(id))) await this.warmUp();
    const devices = await pool(ids, 6, (id) => this.device(id));
    return { devices, truncated: false };
  }
}

/** What a history query produced for one widget (shared, never mutated). */
export interface HistoryData {
  devices: DeviceInfo[];
  truncated: boolean;
  series: SeriesData[];
  resolution: string;
  aggName: string | null;
  intervalMs: number;
  from: number;
  to: number;
}

export interface HistoryOptions {
  /** About this many points per series (buckets sized to the range). */
  targetPoints?: number;
  /** Always aggregate (bar charts), even where raw points would do. */
  forceAgg?: boolean;
  /** Keep only the first series (value card sparkline). */
  maxSeries?: number;
}

type QueryResult = { results: { device_id: string; series: Record<string, Point[]> }[] };

/**
 * One batch POST /api/v1/telemetry/query for every (device, key) of a widget over [from, to):
 * raw when agg is auto and the range is short (falling back to buckets when a series hits the
 * limit), else aggregated in buckets sized for ~targetPoints points.
 */
async function loadHistory(scope: DataScope, w: Widget, from: number, to: number, opts: HistoryOptions): Promise<HistoryData> {
  const ds = w.config.datasource;
  const keys = (ds?.keys ?? []).filter(Boolean);
  const agg: Agg = w.config.agg ?? 'auto';
  const target = opts.targetPoints ?? 300;
  // Listed ids are queried at once, while their names load; a filter is resolved first.
  const devicesP = scope.devices(ds);
  const listed = ds?.mode === 'devices' ? (ds.device_ids ?? []) : null;
  let queryIds = listed ?? (await devicesP).devices.filter((d) => d.exists).map((d) => d.id);
  let series: SeriesData[] = [];
  let resolution = 'raw';
  let aggName: string | null = null;
  let intervalMs = 0;
  let out: QueryResult | null = null;
  if (queryIds.length && keys.length) {
    const choice = autoInterval(from, to, target);
    const query = (body: Record<string, unknown>) =>
      api<QueryResult>('POST', '/api/v1/telemetry/query', { device_ids: queryIds, keys: keys.slice(0, 100), from, to, ...body });
    const run = async (): Promise<QueryResult> => {
      const rawLimit = agg === 'none' ? 5000 : 1000;
      if (agg === 'none' || (agg === 'auto' && choice.raw && !opts.forceAgg)) {
        const r = await query({ limit: rawLimit });
        const cut = r.results.some((x) => Object.values(x.series).some((p) => p.length >= rawLimit));
        if (!cut || agg === 'none') {
          aggName = null;
          return r;
        }
      }
      aggName = agg === 'auto' ? 'avg' : agg;
      intervalMs = choice.ms;
      resolution = choice.interval;
      return query({ agg: aggName, interval: choice.interval });
    };
    try {
      out = await run();
    } catch (e) {
      // A listed device was deleted: query the ones that still exist.
      if (!(e instanceof ApiError && e.status === 404 && listed)) throw e;
      queryIds = (await devicesP).devices.filter((d) => d.exists).map((d) => d.id);
      out = queryIds.length ? await run() : { results: [] };
    }
  }
  const { devices, truncated } = await devicesP;
  if (out) {
    const byDev = new Map(out.results.map((r) => [r.device_id, r.series]));
    for (const d of devices.filter((x) => x.exists))
      for (const k of keys) {
        const pts = byDev.get(d.id)?.[k] ?? [];
        const gapMs = aggName ? intervalMs * 3 : inferGapMs(pts);
        series.push({ deviceId: d.id, device: d, key: k, points: toChartPoints(pts, Number.isFinite(gapMs) ? gapMs : undefined), gapMs });
      }
    if (opts.maxSeries && series.length > opts.maxSeries) series = series.slice(0, opts.maxSeries);
  }
  return { devices, truncated, series, resolution, aggName, intervalMs, from, to };
}

/** The keys whose latest values a widget shows (the map adds its position keys). */
export function latestKeys(w: Widget): string[] {
  const extra = w.type === 'map' ? [w.config.lat_key || 'latitude', w.config.lon_key || 'longitude'] : [];
  return [...new Set([...(w.config.datasource?.keys ?? []), ...extra].filter(Boolean))];
}

/** Whether a widget type shows latest values (value card, gauge, table, map). */
export function usesLatest(w: Widget): boolean {
  return w.type === 'value' || w.type === 'gauge' || w.type === 'table' || w.type === 'map';
}

/** History options of each widget type (the dashboard starts these queries before widgets mount). */
export function historyOptions(w: Widget): HistoryOptions | null {
  switch (w.type) {
    case 'line':
      return { targetPoints: 300 };
    case 'bar':
      return { targetPoints: 60, forceAgg: true };
    case 'value':
      return { targetPoints: 80, maxSeries: 1 };
    default:
      return null;
  }
}

/** What a widget knows about its dashboard. */
export interface DashEnv {
  scope: DataScope;
  range: TimeRange;
  /** Bounds resolved at the last (re)load. */
  from: number;
  to: number;
  /** The range follows now: append live points. */
  follow: boolean;
  /** Incremented by manual and automatic refreshes: re-query history. */
  gen: number;
  /** A widget reports that it has shown its first data (or its first error / empty state). */
  ready: (widgetId: string) => void;
  /** Sets the dashboard range (drag-selecting on a chart zooms every widget). */
  setRange?: (r: TimeRange) => void;
}

export const DashContext = createContext<DashEnv | null>(null);

/**
 * The widget frame around a widget: data hooks pulse it when a live update arrives; `visible`
 * says whether the widget is in (or near) the viewport (null until first measured).
 */
export const FrameContext = createContext<{ pulse: () => void; visible: boolean | null } | null>(null);

// Widgets outside the viewport draw one at a time when the page is idle, after the visible ones.
const idleQueue: (() => void)[] = [];
let idleScheduled = false;
const idle: (cb: () => void) => void =
  typeof requestIdleCallback === 'function' ? (cb) => requestIdleCallback(cb, { timeout: 500 }) : (cb) => setTimeout(cb, 16);

function drainIdle() {
  idleScheduled = false;
  const next = idleQueue.shift();
  next?.();
  if (idleQueue.length) scheduleIdle();
}

function scheduleIdle() {
  if (idleScheduled) return;
  idleScheduled = true;
  idle(drainIdle);
}

/**
 * Whether a widget may draw its (costly) content now: at once in the viewport, else once its
 * data is there and the page is idle (the data itself is loaded either way). `deferred`: it is
 * known to be outside the viewport and waits for its turn.
 */
export function useDrawGate(dataReady: boolean): { draw: boolean; deferred: boolean } {
  const frame = useContext(FrameContext);
  const [idleOk, setIdleOk] = useState(false);
  const visible = frame ? frame.visible : true;
  useEffect(() => {
    if (!dataReady || idleOk || visible !== false) return;
    const go = () => setIdleOk(true);
    idleQueue.push(go);
    scheduleIdle();
    return () => {
      const i = idleQueue.indexOf(go);
      if (i >= 0) idleQueue.splice(i, 1);
    };
  }, [dataReady, visible]);
  const draw = visible === true || idleOk;
  return { draw, deferred: !draw && visible === false };
}

export function useDash(): DashEnv {
  const env = useContext(DashContext);
  if (!env) throw new Error('widget outside a dashboard');
  return env;
}

/** Reports readiness once, when `done` first becomes true. */
export function useReady(widgetId: string, done: boolean) {
  const env = useDash();
  const sent = useRef(false);
  useEffect(() => {
    if (done && !sent.current) {
      sent.current = true;
      env.ready(widgetId);
    }
  }, [done]);
}

export type LoadState = 'loading' | 'ok' | 'error';

export interface SeriesData {
  deviceId: string;
  device: DeviceInfo;
  key: string;
  points: ChartPoint[];
  /** Consecutive points further apart than this are drawn with a gap (no line across). */
  gapMs: number;
}

/** A gap threshold for raw points: ten times their median spacing (at least a minute). */
function inferGapMs(pts: Point[]): number {
  if (pts.length < 3) return Infinity;
  const d: number[] = [];
  for (let i = Math.max(1, pts.length - 200); i < pts.length; i++) d.push(pts[i].ts - pts[i - 1].ts);
  d.sort((a, b) => a - b);
  return Math.max(60_000, d[d.length >> 1] * 10);
}

interface Acc {
  sum: number;
  count: number;
  min: number;
  max: number;
}

function accValue(a: Acc, agg: string): number {
  switch (agg) {
    case 'min':
      return a.min;
    case 'max':
      return a.max;
    case 'sum':
      return a.sum;
    case 'count':
      return a.count;
    default:
      return a.sum / a.count;
  }
}

/** Points a live series keeps at most between two frames (a hidden tab gets no frames). */
const MAX_LIVE_POINTS = 20_000;

/** Live state of one series: aggregation buckets touched by live points. */
interface LiveSeries {
  buckets: Map<number, Acc>;
}

export interface HistoryResult {
  state: LoadState;
  error: unknown;
  devices: DeviceInfo[];
  truncated: boolean;
  series: SeriesData[];
  /** 'raw' or the aggregation interval ('5m'). */
  resolution: string;
  /** Visible window (slides forward with live points on a relative range). */
  from: number;
  to: number;
  /** Time of the last live point received. */
  liveAt: number | null;
}

export function dsKey(ds: Datasource | undefined): string {
  return JSON.stringify(ds ?? null);
}

/**
 * History of every (device, key) of a widget over the dashboard range, in one POST
 * /api/v1/telemetry/query: aggregated to about `targetPoints` buckets (raw when the range is
 * short and agg is auto), then kept current with live points while the range follows now.
 */
export function useHistory(w: Widget): HistoryResult {
  const opts = historyOptions(w) ?? {};
  const env = useDash();
  const frame = useContext(FrameContext);
  const ds = w.config.datasource;
  const keys = (ds?.keys ?? []).filter(Boolean);
  const agg: Agg = w.config.agg ?? 'auto';
  const target = opts.targetPoints ?? 300;
  const [res, setRes] = useState<HistoryResult>({
    state: 'loading',
    error: null,
    devices: [],
    truncated: false,
    series: [],
    resolution: 'raw',
    from: env.from,
    to: env.to,
    liveAt: null,
  });
  // Mutable state shared with the live handler.
  const cur = useRef<{
    series: SeriesData[];
    index: Map<string, number>;
    aggName: string | null;
    intervalMs: number;
    span: number;
    queryTo: number;
    live: Map<string, LiveSeries>;
    recent: Map<string, [number, Value][]>;
    pending: boolean;
  }>({ series: [], index: new Map(), aggName: null, intervalMs: 0, span: 0, queryTo: 0, live: new Map(), recent: new Map(), pending: false });

  const spec = dsKey(ds) + '|' + keys.join(',') + '|' + agg + '|' + target + '|' + !!opts.forceAgg;

  // Applies one live point to a series; true when it changed.
  const apply = (sk: string, ts: number, raw: Value): boolean => {
    const c = cur.current;
    const i = c.index.get(sk);
    if (i === undefined) return false;
    const v = toNumber(raw);
    if (v === null) return false;
    const s = c.series[i];
    const pts = s.points;
    // Points are changed in place here; the frame flush hands the chart new arrays.
    if (c.aggName === null) {
      const lastT = pts.length ? pts[pts.length - 1][0] : null;
      if (lastT !== null && ts <= lastT) return false;
      // A live point after a silence starts a new line segment.
      if (lastT !== null && ts - lastT > s.gapMs) pts.push([lastT + 1, null]);
      pts.push([ts, v]);
      // A hidden tab gets no animation frames (no flush): keep the memory bounded anyway.
      if (pts.length > MAX_LIVE_POINTS) pts.splice(0, pts.length - MAX_LIVE_POINTS / 2);
    } else {
      if (ts < c.queryTo) return false; // already inside the queried buckets
      const b = Math.floor(ts / c.intervalMs) * c.intervalMs;
      let ls = c.live.get(sk);
      if (!ls) c.live.set(sk, (ls = { buckets: new Map() }));
      let acc = ls.buckets.get(b);
      const last = pts.length ? pts[pts.length - 1] : null;
      if (!acc) {
        // The partial bucket the query ended in counts as one sample (its exact count is unknown).
        if (last && last[0] === b && last[1] !== null) {
          const base = last[1];
          acc = c.aggName === 'count' ? { sum: 0, count: base, min: base, max: base } : { sum: base, count: 1, min: base, max: base };
        } else acc = { sum: 0, count: 0, min: Infinity, max: -Infinity };
        ls.buckets.set(b, acc);
      }
      acc.sum += v;
      acc.count += 1;
      acc.min = Math.min(acc.min, v);
      acc.max = Math.max(acc.max, v);
      const val = accValue(acc, c.aggName);
      if (last && last[0] === b) pts[pts.length - 1] = [b, val];
      else if (!last) pts.push([b, val]);
      else if (last[0] < b) {
        if (b - last[0] > s.gapMs) pts.push([last[0] + 1, null]);
        pts.push([b, val]);
        if (pts.length > MAX_LIVE_POINTS) pts.splice(0, pts.length - MAX_LIVE_POINTS / 2);
      } else return false;
    }
    return true;
  };

  // History: on datasource changes, range changes and refreshes. (A layout effect starts the
  // request before the first paint; the dashboard may even have started it already.)
  useLayoutEffect(() => {
    let alive = true;
    setRes((r) => ({ ...r, state: r.series.length ? r.state : 'loading', error: null }));
    env.scope
      .history(w, env.from, env.to, env.gen, opts)
      .then((h) => {
        if (!alive) return;
        // Each widget gets its own copy of the points (live updates change them in place).
        const series = h.series.map((x) => ({ ...x, points: x.points.slice() }));
        const c = cur.current;
        c.series = series;
        c.index = new Map(series.map((x, i) => [x.deviceId + ':' + x.key, i]));
        c.aggName = h.aggName;
        c.intervalMs = h.intervalMs;
        c.span = h.to - h.from;
        c.queryTo = h.to;
        c.live = new Map();
        // Live points that arrived while the query ran.
        let liveAt: number | null = null;
        if (env.follow)
          for (const [sk, pts] of c.recent) for (const [ts, v] of pts) if (apply(sk, ts, v)) liveAt = Date.now();
        setRes({
          state: 'ok',
          error: null,
          devices: h.devices,
          truncated: h.truncated,
          series: [...c.series],
          resolution: h.resolution,
          from: h.from,
          to: Math.max(h.to, lastTs(c.series)),
          liveAt,
        });
      })
      .catch((e) => alive && setRes((r) => ({ ...r, state: 'error', error: e })));
    return () => {
      alive = false;
    };
  }, [spec, env.from, env.to, env.gen]);

  // Live: one subscription per widget while the range follows now.
  const ids = res.devices.filter((d) => d.exists).map((d) => d.id);
  const liveKey = env.follow && ids.length && keys.length ? ids.join(',') + '|' + keys.join(',') : '';
  useLayoutEffect(() => {
    if (!liveKey) return;
    const c = cur.current;
    c.recent = new Map();
    const flush = () => {
      c.pending = false;
      const now = Date.now();
      const to = Math.max(now, lastTs(c.series));
      const from = to - c.span;
      // Drop what scrolled out of the window; new arrays tell the chart the data changed.
      for (const s of c.series) {
        let n = 0;
        while (n < s.points.length && s.points[n][0] < from - (c.intervalMs || 0)) n++;
        s.points = s.points.slice(n);
      }
      setRes((r) => ({ ...r, series: [...c.series], from, to, liveAt: now }));
      frame?.pulse();
    };
    const unsub = live.subscribeTelemetry(
      { device_ids: ids, keys },
      {
        points: (deviceId, pts) => {
          let changed = false;
          const horizon = Date.now() - 120_000;
          for (const [k, list] of Object.entries(pts)) {
            const sk = deviceId + ':' + k;
            let rec = c.recent.get(sk);
            if (!rec) c.recent.set(sk, (rec = []));
            for (const [ts, v] of list) {
              rec.push([ts, v]);
              if (apply(sk, ts, v)) changed = true;
            }
            while (rec.length && (rec[0][0] < horizon || rec.length > 500)) rec.shift();
          }
          if (changed && !c.pending) {
            c.pending = true;
            requestAnimationFrame(flush);
          }
        },
      },
    );
    return unsub;
  }, [liveKey]);

  return res;
}

function lastTs(series: SeriesData[]): number {
  let t = 0;
  for (const s of series) if (s.points.length) t = Math.max(t, s.points[s.points.length - 1][0]);
  return t;
}

export type Latest = Record<string, Record<string, { ts: number; value: Value }>>;

export interface LatestResult {
  state: LoadState;
  error: unknown;
  devices: DeviceInfo[];
  truncated: boolean;
  latest: Latest;
  /** Time of the last live update. */
  liveAt: number | null;
}

/**
 * Latest values of a datasource's keys (all keys when none are listed) for each of its devices,
 * shared by the widgets that show them and started by the dashboard before they mount. The live
 * subscription (by the listed ids, or by the type / label filter itself) starts at once, in
 * parallel with reading the devices, and its snapshot gives the values in one message. When the
 * live connection is not available (or sends no snapshot within 1.5 s, 5 s when the socket is
 * open) they are read over REST instead (one request per device, ≤6 in flight). Live points keep
 * them current.
 */
class LatestStream {
  state: LoadState = 'loading';
  error: unknown = null;
  devices: DeviceInfo[] = [];
  truncated = false;
  latest: Latest = {};
  liveAt: number | null = null;
  private listeners = new Set<() => void>();
  private unsub: (() => void) | null = null;
  private subKey = '';
  private gen = 0;
  private closeTimer: number | undefined;
  private pending = false;
  private closed = false;
  private resolved = false;
  /** The values have arrived once (live snapshot or REST). */
  private valuesIn = false;

  constructor(
    private scope: DataScope,
    private ds: Datasource | undefined,
    private keys: string[],
    private onClose: () => void,
  ) {
    const f = ds?.mode === 'filter' ? { type: ds.filter?.type?.trim() || undefined, label: ds.filter?.label?.trim() || undefined } : null;
    if (f && (f.type || f.label)) this.subscribe({ filter: f });
    else if (ds?.mode === 'devices' && ds.device_ids?.length) this.subscribe({ device_ids: [...new Set(ds.device_ids)] });
    this.load();
    // Nobody came for it (the widget was removed before mounting): stop after a while.
    this.closeSoon(15_000);
  }

  listen(l: () => void): () => void {
    clearTimeout(this.closeTimer);
    this.listeners.add(l);
    return () => {
      this.listeners.delete(l);
      if (!this.listeners.size) this.closeSoon(3000);
    };
  }

  /** A refresh generation: re-read the devices (new matches, online states), and REST values when not live. */
  refresh(gen: number) {
    if (gen <= this.gen) return;
    this.gen = gen;
    this.load(live.state !== 'open');
  }

  private closeSoon(ms: number) {
    clearTimeout(this.closeTimer);
    this.closeTimer = window.setTimeout(() => {
      if (this.listeners.size) return;
      this.closed = true;
      this.unsub?.();
      this.unsub = null;
      this.onClose();
    }, ms);
  }

  private emit(liveUpdate = false) {
    if (liveUpdate) this.liveAt = Date.now();
    this.listeners.forEach((l) => l());
  }

  private fail(e: unknown) {
    if (this.state !== 'ok') {
      this.state = 'error';
      this.error = e;
    }
    this.emit();
  }

  private merge(deviceId: string, key: string, ts: number, value: Value): boolean {
    const d = (this.latest[deviceId] ??= {});
    const prev = d[key];
    if (prev && prev.ts > ts) return false;
    d[key] = { ts, value };
    return true;
  }

  private ids(): string[] {
    return this.devices.filter((d) => d.exists).map((d) => d.id);
  }

  private async load(rest = false) {
    try {
      const { devices, truncated } = await this.scope.devices(this.ds);
      if (this.closed) return;
      this.devices = devices;
      this.truncated = truncated;
      this.resolved = true;
      const ids = this.ids();
      // A listed device that was deleted makes the server refuse the subscription: subscribe to the others.
      if (this.ds?.mode === 'devices' && this.subKey !== JSON.stringify({ device_ids: ids }) && devices.some((d) => !d.exists))
        this.subscribe(ids.length ? { device_ids: ids } : null);
      if (rest || (!this.subKey && ids.length)) await this.readRest();
      this.settle();
      this.emit();
    } catch (e) {
      this.fail(e);
    }
  }

  /** Ready once the devices are known and their values are in (or there are none). */
  private settle() {
    if (this.resolved && (this.valuesIn || !this.ids().length)) {
      this.state = 'ok';
      this.error = null;
    }
  }

  private async readRest() {
    const ids = this.ids();
    const q = this.keys.length ? qs({ keys: this.keys.join(',') }) : '';
    const got = await pool(ids, 6, (id) =>
      api<Record<string, { ts: number; value: Value }>>('GET', `/api/v1/devices/${encodeURIComponent(id)}/telemetry/latest${q}`).catch((e) => {
        if (e instanceof ApiError && e.status === 404) return {};
        throw e;
      }),
    );
    ids.forEach((id, i) => {
      for (const [k, p] of Object.entries(got[i])) this.merge(id, k, p.ts, p.value);
    });
    this.valuesIn = true;
    this.settle();
  }

  /** (Re)subscribes with a device list or filter (null: none); the REST fallback covers failures. */
  private subscribe(target: { device_ids: string[] } | { filter: { type?: string; label?: string } } | null) {
    this.unsub?.();
    this.unsub = null;
    this.subKey = target ? JSON.stringify(target) : '';
    if (!target) return;
    let gotSnapshot = false;
    let fellBack = false;
    const schedule = () => {
      if (this.pending) return;
      this.pending = true;
      requestAnimationFrame(() => {
        this.pending = false;
        this.emit(true);
      });
    };
    const fallback = async () => {
      if (gotSnapshot || fellBack || this.closed) return;
      fellBack = true;
      try {
        if (!this.resolved) await this.load();
        if (!this.valuesIn) await this.readRest();
        this.emit();
      } catch (e) {
        this.fail(e);
      }
    };
    const spec = this.keys.length ? { ...target, keys: this.keys } : target;
    const unsub = live.subscribeTelemetry(spec, {
      snapshot: (snap) => {
        gotSnapshot = true;
        for (const [dev, kv] of Object.entries(snap)) for (const [k, p] of Object.entries(kv)) this.merge(dev, k, p.ts, p.value);
        this.valuesIn = true;
        this.settle();
        schedule();
      },
      points: (deviceId, pts) => {
        let changed = false;
        for (const [k, list] of Object.entries(pts)) {
          const last = list[list.length - 1];
          if (last && this.merge(deviceId, k, last[0], last[1])) changed = true;
        }
        if (changed) schedule();
      },
      // not_found: a listed device was deleted; load() subscribes to the others once it knows.
      error: (code) => (code === 'not_found' && this.ds?.mode === 'devices' && !this.resolved ? undefined : fallback()),
    });
    const offState = live.onState((st) => st === 'closed' && fallback());
    if (live.state === 'closed') fallback();
    // No snapshot yet: REST after 1.5 s, or after 5 s when the socket is up (a busy server).
    let timer = window.setTimeout(() => {
      if (live.state === 'open') timer = window.setTimeout(fallback, 3500);
      else fallback();
    }, 1500);
    this.unsub = () => {
      clearTimeout(timer);
      offState();
      unsub();
    };
  }
}

/** Latest values of a widget's datasource (see LatestStream), re-rendering on every change. */
export function useLatest(w: Widget): LatestResult {
  const env = useDash();
  const frame = useContext(FrameContext);
  const stream = env.scope.latest(w.config.datasource, latestKeys(w));
  const [, setTick] = useState(0);
  useLayoutEffect(() => {
    let lastLive = stream.liveAt;
    return stream.listen(() => {
      setTick((t) => t + 1);
      if (stream.liveAt !== lastLive) {
        lastLive = stream.liveAt;
        frame?.pulse();
      }
    });
  }, [stream]);
  useEffect(() => stream.refresh(env.gen), [stream, env.gen]);
  return { state: stream.state, error: stream.error, devices: stream.devices, truncated: stream.truncated, latest: { ...stream.latest }, liveAt: stream.liveAt };
}

/** Re-renders the caller every `ms` (for "updated 5 s ago"). */
export function useTicker(ms = 1000) {
  const [, set] = useState(0);
  useEffect(() => {
    const t = setInterval(() => set((n) => n + 1), ms);
    return () => clearInterval(t);
  }, [ms]);
}
