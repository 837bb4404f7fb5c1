// Time-series chart (uPlot) plus the time-range helpers every chart screen shares.
//
//   <TimeChart series={[{ label: 'temperature', unit: '°C', points: [[ts, 21.5], ...] }]}
//              kind="line" from={fromMs} to={toMs} onRangeSelect={(f, t) => ...} />
//
// - The uPlot instance is created once per *structure* (series labels / colours / units / kind);
//   new data (a live point appended to `points`, a new range) only calls setData(), so live
//   updates never rebuild the chart. Pass new arrays (not mutated ones) when points change.
// - Series may have different timestamps; they are outer-joined on time. `null` values are gaps.
// - Without `height` the chart fills its parent's height (legend included): give the parent a
//   definite height (e.g. a dashboard widget body). With `height` the plot area is that tall.
// - Colours of axes and grid come from the theme's CSS variables and follow the 'sw-theme'
//   window event. Series colours default to PALETTE.
// - Up to two units get their own y axes (left / right), like Grafana.
// - Drag horizontally to select a range: onRangeSelect(from, to) is called when given
//   (the page then reloads data for that range); otherwise the chart zooms locally
//   (double-click resets).
//
// Helpers: autoInterval() picks raw vs aggregated queries, TIME_RANGES / TimeRange /
// resolveRange() / <TimeRangePicker> give the Grafana-like "Last 15 minutes … custom" picker,
// loadDeviceSeries() fetches one device's keys with that choice applied.
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { api, qs, type Point } from '../api';
import { formatDateTime, formatNumber } from '../format';

export type ChartPoint = [ts: number, value: number | null];

export interface ChartSeries {
  /** Legend name, e.g. "Boiler 1 · temperature". */
  label: string;
  /** Any CSS colour; defaults to PALETTE[i]. */
  color?: string;
  /** Unit shown in the legend, tooltip values and the y axis ("°C", "%", "kWh"). */
  unit?: string;
  /** [ts ms, value] in ascending time order; null = gap. */
  points: ChartPoint[];
}

export interface TimeChartProps {
  series: ChartSeries[];
  /** Plot height in px (legend extra). Omit to fill the parent's height. */
  height?: number;
  kind?: 'line' | 'bar';
  /** Visible x range in ms; defaults to the data's extent. */
  from?: number;
  to?: number;
  /** Called after a horizontal drag-selection; without it the chart zooms locally. */
  onRangeSelect?: (from: number, to: number) => void;
  /** Shown when no series has a point. */
  emptyText?: string;
  class?: string;
}

/** Grafana-like series colours, readable on light and dark backgrounds. */
export const PALETTE = ['#3274d9', '#56a64b', '#e0752d', '#a352cc', '#e02f44', '#37872d', '#8ab8ff', '#f2cc0c', '#1f9ca5', '#fa6400'];

export function seriesColor(i: number): string {
  return PALETTE[i % PALETTE.length];
}

interface ThemeColors {
  text: string;
  muted: string;
  border: string;
  panel: string;
}

function readTheme(): ThemeColors {
  const cs = getComputedStyle(document.documentElement);
  const v = (name: string, dflt: string) => cs.getPropertyValue(name).trim() || dflt;
  return { text: v('--text', '#1d2330'), muted: v('--muted', '#5f6b7c'), border: v('--border', '#dde1e7'), panel: v('--panel', '#fff') };
}

// 24-hour time axis labels (uPlot's default is 12-hour). Columns: tick increment (ms), label,
// then the label to use when the year / month / day / hour / minute / second rolls over.
const S = 1000, M = 60 * S, H = 60 * M, D = 24 * H;
const TIME_AXIS: (string | number | null)[][] = [
  [365 * D, '{YYYY}', null, null, null, null, null, null, 1],
  [28 * D, '{MMM}', '\n{YYYY}', null, null, null, null, null, 1],
  [D, '{D} {MMM}', '\n{YYYY}', null, null, null, null, null, 1],
  [H, '{HH}:{mm}', '\n{D} {MMM} {YYYY}', null, '\n{D} {MMM}', null, null, null, 1],
  [M, '{HH}:{mm}', '\n{D} {MMM} {YYYY}', null, '\n{D} {MMM}', null, null, null, 1],
  [S, ':{ss}', '\n{D} {MMM} {YYYY} {HH}:{mm}', null, '\n{D} {MMM} {HH}:{mm}', null, '\n{HH}:{mm}', null, 1],
  [1, ':{ss}.{fff}', '\n{D} {MMM} {YYYY} {HH}:{mm}', null, '\n{D} {MMM} {HH}:{mm}', null, '\n{HH}:{mm}', null, 1],
];

/** Compact tick label: 1.2k, 3.4M, 0.25. */
function tick(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return +(v / 1e9).toFixed(1) + 'G';
  if (a >= 1e6) return +(v / 1e6).toFixed(1) + 'M';
  if (a >= 1e4) return +(v / 1e3).toFixed(1) + 'k';
  return String(+v.toFixed(a !== 0 && a < 1 ? 3 : 2));
}

function withAlpha(color: string, alpha: number): string | undefined {
  if (!/^#[0-9a-f]{6}$/i.test(color)) return undefined;
  return color + Math.round(alpha * 255).toString(16).padStart(2, '0');
}

/**
 * Bars of series k of n, grouped side by side around each timestamp (uPlot's own bars builder
 * draws every series centred, on top of each other). Canvas pixel units.
 */
function groupedBars(k: number, n: number): uPlot.Series.PathBuilder {
  return (u, sidx, i0, i1) => {
    const xs = u.data[0] as number[];
    const ys = u.data[sidx] as (number | null | undefined)[];
    const sc = u.scales[u.series[sidx].scale ?? 'y'];
    let minDx = Infinity;
    let prev: number | null = null;
    for (let i = i0; i <= i1; i++) {
      const x = u.valToPos(xs[i], 'x', true);
      if (prev !== null && x - prev > 0.5) minDx = Math.min(minDx, x - prev);
      prev = x;
    }
    if (!Number.isFinite(minDx)) minDx = u.bbox.width / 8;
    const group = Math.min(minDx * 0.8, 80 * devicePixelRatio * Math.min(n, 3));
    const w = Math.max(1, group / n - (n > 1 ? 1 : 0));
    const base = Math.min(Math.max(0, sc.min ?? 0), sc.max ?? 0);
    const y0 = u.valToPos(base, sc.key!, true);
    const fill = new Path2D();
    for (let i = i0; i <= i1; i++) {
      const v = ys[i];
      if (v === null || v === undefined) continue;
      const x = u.valToPos(xs[i], 'x', true) - group / 2 + k * (group / n);
      const y = u.valToPos(v, sc.key!, true);
      fill.rect(Math.round(x), Math.min(y, y0), Math.max(1, Math.round(w)), Math.abs(y0 - y));
    }
    return { fill, stroke: fill, clip: undefined, flags: 0 };
  };
}

/** Outer-joins the series on time; returns uPlot data. */
function align(series: ChartSeries[]): uPlot.AlignedData {
  if (series.length === 0) return [[]];
  if (series.length === 1) {
    const p = series[0].points;
    return [p.map((x) => x[0]), p.map((x) => x[1])];
  }
  const tables = series.map((s) => [s.points.map((x) => x[0]), s.points.map((x) => x[1])] as uPlot.AlignedData);
  // Retain explicit nulls as gaps; join artefacts are undefined and spanned.
  return uPlot.join(tables, series.map(() => [1 as uPlot.JoinNullMode, 1 as uPlot.JoinNullMode]));
}

function lastValue(s: ChartSeries): number | null {
  for (let i = s.points.length - 1; i >= 0; i--) if (s.points[i][1] !== null) return s.points[i][1];
  return null;
}

export function TimeChart(props: TimeChartProps) {
  const wrap = useRef<HTMLDivElement>(null);
  const plotEl = useRef<HTMLDivElement>(null);
  const chart = useRef<uPlot | null>(null);
  // Latest props for uPlot callbacks created once.
  const cur = useRef(props);
  cur.current = props;
  const theme = useRef<ThemeColors | null>(null);

  const kind = props.kind ?? 'line';
  const units: string[] = [];
  for (const s of props.series) if (s.unit && !units.includes(s.unit) && units.length < 2) units.push(s.unit);
  const structure = JSON.stringify([kind, props.series.map((s) => [s.label, s.color ?? '', s.unit ?? '']), !!props.onRangeSelect]);
  const empty = props.series.every((s) => s.points.length === 0);

  const size = () => {
    const w = wrap.current!;
    const legend = w.querySelector<HTMLElement>('.u-legend');
    const width = Math.max(100, w.clientWidth);
    const h = cur.current.height ?? Math.max(60, w.clientHeight - (legend?.offsetHeight ?? 0) - 4);
    return { width, height: h };
  };

  // (Re)build when the structure changes.
  useEffect(() => {
    theme.current = readTheme();
    const th = () => theme.current!;
    const n = props.series.length;
    const scaleOf = (unit?: string) => (units.length > 1 && unit === units[1] ? 'y2' : 'y');
    const axisFor = (scale: string, side: 1 | 3, unit?: string): uPlot.Axis => ({
      scale,
      side,
      stroke: () => th().muted,
      grid: { show: side === 3, stroke: () => th().border, width: 1 },
      ticks: { show: true, stroke: () => th().border, width: 1, size: 4 },
      values: (_u, splits) => splits.map((v) => (v === null || v === undefined ? '' : tick(v) + (unit && unit.length <= 3 ? ' ' + unit : ''))),
      size: (_u, values) => Math.max(40, ...(values ?? []).map((s) => (s ? s.length * 7 + 14 : 0))),
    });
    const opts: uPlot.Options = {
      width: 400,
      height: 200,
      ms: 1,
      padding: [10, units.length > 1 ? 8 : 24, 0, 4],
      cursor: {
        drag: { x: true, y: false, setScale: !props.onRangeSelect },
        points: { size: 7 },
      },
      select: { show: true, left: 0, top: 0, width: 0, height: 0 },
      legend: { show: true, live: true },
      scales: {
        x: {
          time: true,
          range: (_u, min, max) => {
            // No data and no range given: show the last hour rather than 1970.
            const none = min === null || max === null || !Number.isFinite(min) || !Number.isFinite(max);
            const f = cur.current.from ?? (none ? Date.now() - H : min);
            const t = cur.current.to ?? (none ? Date.now() : max);
            return f < t ? [f, t] : [f - 1000, f + 1000];
          },
        },
        // Bars grow from zero, so zero must be on the axis.
        y: kind === 'bar' ? { range: (_u, min, max) => uPlot.rangeNum(Math.min(0, min), Math.max(0, max), 0.1, true) } : { auto: true },
        y2: kind === 'bar' ? { range: (_u, min, max) => uPlot.rangeNum(Math.min(0, min), Math.max(0, max), 0.1, true) } : { auto: true },
      },
      axes: [
        {
          stroke: () => th().muted,
          grid: { stroke: () => th().border, width: 1 },
          ticks: { stroke: () => th().border, width: 1, size: 4 },
          values: TIME_AXIS,
          space: 70,
        },
        axisFor('y', 3, units[0]),
        ...(units.length > 1 ? [axisFor('y2', 1, units[1])] : []),
      ],
      series: [
        {
          label: 'Time',
          // Not hovering: the legend shows each series' latest value.
          value: (_u, v) => (v === null || v === undefined ? 'latest' : formatDateTime(v)),
        },
        ...props.series.map((s, i): uPlot.Series => {
          const color = s.color || seriesColor(i);
          const isBar = kind === 'bar';
          return {
            label: s.label,
            scale: scaleOf(s.unit),
            stroke: color,
            width: isBar ? 1 : 1.5,
            fill: isBar ? withAlpha(color, 0.75) ?? color : n === 1 ? withAlpha(color, 0.08) : undefined,
            spanGaps: false,
            paths: isBar ? groupedBars(i, n) : undefined,
            points: isBar ? { show: false } : undefined,
            value: (_u, v, _si, idx) => {
              const val = idx === null ? lastValue(cur.current.series[i] ?? s) : v;
              return val === null || val === undefined ? '—' : formatNumber(val, s.unit);
            },
          };
        }),
      ],
      hooks: {
        setSelect: [
          (u) => {
            const cb = cur.current.onRangeSelect;
            if (!cb || u.select.width < 5) return;
            const f = u.posToVal(u.select.left, 'x');
            const t = u.posToVal(u.select.left + u.select.width, 'x');
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            cb(Math.round(f), Math.round(t));
          },
        ],
      },
    };
    const u = new uPlot(opts, align(props.series), plotEl.current!);
    chart.current = u;
    u.setSize(size());

    const ro = new ResizeObserver(() => {
      // Preact clears refs before effect cleanups run: the chart may already be unmounting.
      if (!wrap.current || chart.current !== u) return;
      const s = size();
      if (s.width !== u.width || s.height !== u.height) u.setSize(s);
    });
    ro.observe(wrap.current!);
    const onTheme = () => {
      theme.current = readTheme();
      u.redraw(false, true);
    };
    window.addEventListener('sw-theme', onTheme);
    return () => {
      ro.disconnect();
      window.removeEventListener('sw-theme', onTheme);
      u.destroy();
      chart.current = null;
    };
  }, [structure]);

  // New data or range: setData only.
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    chart.current?.setData(align(props.series), true);
  }, [props.series, props.from, props.to]);

  // Fixed height changes resize without rebuilding.
  useEffect(() => {
    const u = chart.current;
    if (u && props.height) u.setSize(size());
  }, [props.height]);

  return (
    <div ref={wrap} class={'timechart' + (props.height ? '' : ' fill') + (props.class ? ' ' + props.class : '')} data-testid="timechart">
      <div ref={plotEl} />
      {empty && (
        <div class="timechart-empty" data-testid="chart-empty">
          {props.emptyText ?? 'No data in this time range'}
        </div>
      )}
    </div>
  );
}

// ---------------------------------------------------------------------------------------------
// Aggregation choice

const NICE_INTERVALS: [string, number][] = [
  ['1s', S], ['2s', 2 * S], ['5s', 5 * S], ['10s', 10 * S], ['15s', 15 * S], ['30s', 30 * S],
  ['1m', M], ['2m', 2 * M], ['5m', 5 * M], ['10m', 10 * M], ['15m', 15 * M], ['30m', 30 * M],
  ['1h', H], ['2h', 2 * H], ['3h', 3 * H], ['6h', 6 * H], ['12h', 12 * H],
  ['1d', D], ['2d', 2 * D], ['7d', 7 * D], ['30d', 30 * D],
];

/** Ranges up to this long are queried raw (every point), longer ones aggregated. */
export const RAW_MAX_MS = H;

export interface IntervalChoice {
  /** True when the range is short enough to fetch raw points (then `interval` is the fallback). */
  raw: boolean;
  /** API interval for agg queries: '1s' … '30d'. */
  interval: string;
  /** The same interval in ms. */
  ms: number;
}

/**
 * Picks the aggregation for a range: the smallest "nice" bucket giving at most ~targetPoints
 * points, and raw when the range is at most RAW_MAX_MS (callers fall back to `interval` when
 * the raw answer is cut by its limit; loadDeviceSeries does).
 */
export function autoInterval(fromMs: number, toMs: number, targetPoints = 300): IntervalChoice {
  const span = Math.max(1, toMs - fromMs);
  const want = span / Math.max(1, targetPoints);
  const pick = NICE_INTERVALS.find(([, ms]) => ms >= want) ?? NICE_INTERVALS[NICE_INTERVALS.length - 1];
  return { raw: span <= RAW_MAX_MS, interval: pick[0], ms: pick[1] };
}

/** Numeric view of a stored value (booleans 0/1, numeric strings parsed); null otherwise. */
export function toNumber(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(+v)) return +v;
  return null;
}

/** Converts API points to chart points; with gapMs, inserts a null where consecutive points are further apart. */
export function toChartPoints(points: Point[], gapMs?: number): ChartPoint[] {
  const out: ChartPoint[] = [];
  let prev: number | null = null;
  for (const p of points) {
    if (gapMs && prev !== null && p.ts - prev > gapMs) out.push([prev + 1, null]);
    out.push([p.ts, toNumber(p.value)]);
    prev = p.ts;
  }
  return out;
}

export interface LoadedSeries {
  /** key -> chart points */
  series: Record<string, ChartPoint[]>;
  /** What was used: 'raw' or the agg interval ('5m'). */
  resolution: string;
}

/**
 * Loads keys of one device for [from, to) with automatic aggregation: raw for short ranges
 * (unless a key holds more than `rawLimit` points there, then aggregated), else agg buckets.
 */
export async function loadDeviceSeries(
  deviceId: string,
  keys: string[],
  from: number,
  to: number,
  opts: { agg?: string; targetPoints?: number; rawLimit?: number; signal?: AbortSignal } = {},
): Promise<LoadedSeries> {
  if (keys.length === 0) return { series: {}, resolution: 'raw' };
  const choice = autoInterval(from, to, opts.targetPoints);
  const base = `/api/v1/devices/${encodeURIComponent(deviceId)}/telemetry`;
  const rawLimit = opts.rawLimit ?? 2000;
  if (choice.raw) {
    const r = await api<Record<string, Point[]>>('GET', base + qs({ keys: keys.join(','), from, to, limit: rawLimit }), undefined, { signal: opts.signal });
    if (keys.every((k) => (r[k]?.length ?? 0) < rawLimit)) {
      const series: Record<string, ChartPoint[]> = {};
      for (const k of keys) series[k] = toChartPoints(r[k] ?? []);
      return { series, resolution: 'raw' };
    }
  }
  const r = await api<Record<string, Point[]>>(
    'GET',
    base + qs({ keys: keys.join(','), from, to, agg: opts.agg ?? 'avg', interval: choice.interval }),
    undefined,
    { signal: opts.signal },
  );
  const series: Record<string, ChartPoint[]> = {};
  for (const k of keys) series[k] = toChartPoints(r[k] ?? [], choice.ms * 3);
  return { series, resolution: choice.interval };
}

// ---------------------------------------------------------------------------------------------
// Time ranges

export interface QuickRange {
  /** Stable id used in URLs and dashboard JSON: '15m', '1h', '6h', '24h', '7d', '30d'. */
  key: string;
  label: string;
  ms: number;
}

export const TIME_RANGES: QuickRange[] = [
  { key: '15m', label: 'Last 15 minutes', ms: 15 * M },
  { key: '1h', label: 'Last 1 hour', ms: H },
  { key: '6h', label: 'Last 6 hours', ms: 6 * H },
  { key: '24h', label: 'Last 24 hours', ms: 24 * H },
  { key: '7d', label: 'Last 7 days', ms: 7 * D },
  { key: '30d', label: 'Last 30 days', ms: 30 * D },
];

/** A relative range ("last 1 h", follows now, live) or a fixed one. */
export type TimeRange = { last: string } | { from: number; to: number };

export const DEFAULT_RANGE: TimeRange = { last: '1h' };

/** Duration of a key like '15m', '6h', '7d' (also any '<n><s|m|h|d>'); null if malformed. */
export function parseDurationKey(key: string): number | null {
  const m = /^(\d+)(s|m|h|d)$/.exec(key);
  if (!m) return null;
  const n = +m[1];
  const mult = { s: S, m: M, h: H, d: D }[m[2] as 's' | 'm' | 'h' | 'd'];
  return n > 0 ? n * mult : null;
}

/** Absolute bounds now; live = the range follows the current time (append live points). */
export function resolveRange(r: TimeRange, now = Date.now()): { from: number; to: number; live: boolean } {
  if ('last' in r) {
    const ms = parseDurationKey(r.last) ?? H;
    return { from: now - ms, to: now, live: true };
  }
  return { from: r.from, to: r.to, live: false };
}

export function rangeLabel(r: TimeRange): string {
  if ('last' in r) {
    const q = TIME_RANGES.find((x) => x.key === r.last);
    return q ? q.label : `Last ${r.last}`;
  }
  return `${formatDateTime(r.from)} → ${formatDateTime(r.to)}`;
}

/** URL / JSON form: '15m' or '<from>-<to>' (ms). */
export function encodeRange(r: TimeRange): string {
  return 'last' in r ? r.last : `${r.from}-${r.to}`;
}

export function decodeRange(s: string | null | undefined, fallback: TimeRange = DEFAULT_RANGE): TimeRange {
  if (!s) return fallback;
  if (parseDurationKey(s) !== null) return { last: s };
  const m = /^(\d+)-(\d+)$/.exec(s);
  if (m && +m[1] < +m[2]) return { from: +m[1], to: +m[2] };
  return fallback;
}

/** Value for <input type="datetime-local"> in local time. */
function toLocalInput(ms: number): string {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

function fromLocalInput(s: string): number | null {
  if (!s) return null;
  const t = new Date(s).getTime(); // parsed as local time
  return Number.isFinite(t) ? t : null;
}

/**
 * Grafana-like range button: quick ranges plus a custom from/to. Keyboard: Enter/Space opens,
 * Escape closes; clicks outside close it.
 */
export function TimeRangePicker(props: { value: TimeRange; onChange: (r: TimeRange) => void; ranges?: QuickRange[] }) {
  const [open, setOpen] = useState(false);
  const box = useRef<HTMLDivElement>(null);
  const resolved = resolveRange(props.value);
  const [from, setFrom] = useState(toLocalInput(resolved.from));
  const [to, setTo] = useState(toLocalInput(resolved.to));
  const [error, setError] = useState('');

  useEffect(() => {
    if (!open) return;
    const r = resolveRange(props.value);
    setFrom(toLocalInput(r.from));
    setTo(toLocalInput(r.to));
    setError('');
    const onDoc = (e: MouseEvent) => {
      if (box.current && !box.current.contains(e.target as Node)) setOpen(false);
    };
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        e.stopPropagation();
        setOpen(false);
      }
    };
    document.addEventListener('mousedown', onDoc);
    document.addEventListener('keydown', onKey, true);
    return () => {
      document.removeEventListener('mousedown', onDoc);
      document.removeEventListener('keydown', onKey, true);
    };
  }, [open]);

  const apply = (e: Event) => {
    e.preventDefault();
    const f = fromLocalInput(from);
    const t = fromLocalInput(to);
    if (f === null || t === null) return setError('Enter both dates.');
    if (f >= t) return setError('"From" must be before "To".');
    props.onChange({ from: f, to: t });
    setOpen(false);
  };

  const ranges = props.ranges ?? TIME_RANGES;
  const active = 'last' in props.value ? props.value.last : null;
  return (
    <div class="trp" ref={box}>
      <button type="button" class="trp-button" aria-haspopup="dialog" aria-expanded={open} onClick={() => setOpen(!open)} data-testid="time-range">
        <span aria-hidden="true">◷</span> {rangeLabel(props.value)} <span aria-hidden="true" class="muted">▾</span>
      </button>
      {open && (
        <div class="trp-pop" role="dialog" aria-label="Time range">
          <form class="trp-custom form" onSubmit={apply}>
            <h3>Custom range</h3>
            <label class="field">
              <span>From</span>
              <input type="datetime-local" value={from} onInput={(e) => setFrom(e.currentTarget.value)} data-testid="range-from" />
            </label>
            <label class="field">
              <span>To</span>
              <input type="datetime-local" value={to} onInput={(e) => setTo(e.currentTarget.value)} data-testid="range-to" />
            </label>
            {error && <div class="field-error">{error}</div>}
            <button class="primary small" type="submit">
              Apply range
            </button>
          </form>
          <ul class="trp-quick" role="listbox" aria-label="Quick ranges">
            {ranges.map((q) => (
              <li key={q.key}>
                <button
                  type="button"
                  role="option"
                  aria-selected={active === q.key}
                  class={active === q.key ? 'active' : ''}
                  onClick={() => {
                    props.onChange({ last: q.key });
                    setOpen(false);
                  }}
                >
                  {q.label}
                </button>
              </li>
            ))}
          </ul>
        </div>
      )}
    </div>
  );
}
