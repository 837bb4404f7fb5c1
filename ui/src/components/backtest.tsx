// Analytics charts (uPlot): a value series with, optionally, its anomaly score on a second axis
// (0..1) and the detector's threshold as a dashed line, shaded alarm periods, and a forecast with
// its 95 % band. Used by the detector preview (backtest) and the device page's Analytics tab.
//
//   <AnalyticsChart label="temperature" unit="°C" values={[[ts, v]]} score={[[ts, s]]}
//                   threshold={0.8} periods={[{from, to}]} forecast={[[ts, yhat, lo, hi]]} />
//
// <BacktestPreview> runs POST /api/v1/detectors/backtest for an unsaved detector over one device
// and the last 24 h / 7 d and shows a chart per series plus the table of would-be alarms.
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { api, type BacktestResult, type DetectorBody, type Severity } from '../api';
import { formatDateTime, formatDuration, formatNumber } from '../format';
import { DevicePicker } from './devicepicker';
import { type ChartPoint, PALETTE } from './timechart';
import { ErrorAlert, Spinner } from './ui';

export interface Period {
  from: number;
  /** null: still open. */
  to: number | null;
  severity?: Severity;
}

export interface AnalyticsChartProps {
  label: string;
  unit?: string;
  values: ChartPoint[];
  score?: ChartPoint[];
  threshold?: number;
  periods?: Period[];
  /** [ts, yhat, lo, hi] */
  forecast?: [number, number, number, number][];
  from?: number;
  to?: number;
  height?: number;
  emptyText?: string;
}

const VALUE_COLOR = PALETTE[0];
const SCORE_COLOR = '#e0752d';
const FORECAST_COLOR = '#a352cc';

function cssVar(name: string, dflt: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || dflt;
}

/** "#rrggbb" + alpha -> rgba(); other colours unchanged. */
function alpha(color: string, a: number): string {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color);
  if (!m) return color;
  return `rgba(${parseInt(m[1], 16)}, ${parseInt(m[2], 16)}, ${parseInt(m[3], 16)}, ${a})`;
}

const S = 1000, M = 60 * S, H = 60 * M, D = 24 * H;
const TIME_AXIS: (string | number | null)[][] = [
  [D, '{D} {MMM}', '\n{YYYY}', null, null, null, null, null, 1],
  [H, '{HH}:{mm}', '\n{D} {MMM} {YYYY}', null, '\n{D} {MMM}', null, null, null, 1],
  [M, '{HH}:{mm}', '\n{D} {MMM} {YYYY}', null, '\n{D} {MMM}', null, null, null, 1],
  [S, ':{ss}', '\n{D} {MMM} {YYYY} {HH}:{mm}', null, '\n{D} {MMM} {HH}:{mm}', null, '\n{HH}:{mm}', null, 1],
  [1, ':{ss}.{fff}', '\n{D} {MMM} {YYYY} {HH}:{mm}', null, '\n{D} {MMM} {HH}:{mm}', null, '\n{HH}:{mm}', null, 1],
];

function tick(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return +(v / 1e6).toFixed(1) + 'M';
  if (a >= 1e4) return +(v / 1e3).toFixed(1) + 'k';
  return String(+v.toFixed(a !== 0 && a < 1 ? 3 : 2));
}

export function AnalyticsChart(props: AnalyticsChartProps) {
  const wrap = useRef<HTMLDivElement>(null);
  const plot = useRef<HTMLDivElement>(null);
  const height = props.height ?? 260;
  const hasScore = !!props.score && props.score.length > 0;
  const fc = props.forecast ?? [];
  const empty = props.values.length === 0 && fc.length === 0;
  const [themeTick, setThemeTick] = useState(0);

  useEffect(() => {
    const l = () => setThemeTick((t) => t + 1);
    window.addEventListener('sw-theme', l);
    return () => window.removeEventListener('sw-theme', l);
  }, []);

  useEffect(() => {
    const muted = cssVar('--muted', '#5f6b7c');
    const border = cssVar('--border', '#dde1e7');
    const danger = cssVar('--danger', '#c62828');
    const warn = cssVar('--warn', '#b7791f');
    const tables: uPlot.AlignedData[] = [[props.values.map((p) => p[0]), props.values.map((p) => p[1])]];
    const modes: uPlot.JoinNullMode[][] = [[1, 1]];
    if (hasScore) {
      tables.push([props.score!.map((p) => p[0]), props.score!.map((p) => p[1])]);
      modes.push([1, 1]);
    }
    if (fc.length) {
      tables.push([fc.map((p) => p[0]), fc.map((p) => p[1]), fc.map((p) => p[2]), fc.map((p) => p[3])]);
      modes.push([1, 1, 1, 1]);
    }
    const data = tables.length === 1 ? tables[0] : uPlot.join(tables, modes);
    const unitSuffix = props.unit && props.unit.length <= 3 ? ' ' + props.unit : '';
    const fmtV = (v: number | null | undefined) => (v === null || v === undefined ? '—' : formatNumber(v, props.unit));
    // Not hovering: the legend shows each series' latest value.
    const lastOf = (col: number) => {
      const ys = data[col] as (number | null | undefined)[] | undefined;
      if (!ys) return null;
      for (let i = ys.length - 1; i >= 0; i--) if (ys[i] !== null && ys[i] !== undefined) return ys[i] as number;
      return null;
    };
    const series: uPlot.Series[] = [
      { label: 'Time', value: (_u, v) => (v === null || v === undefined ? 'latest' : formatDateTime(v)) },
      { label: props.label, stroke: VALUE_COLOR, width: 1.5, fill: alpha(VALUE_COLOR, 0.07), spanGaps: false, value: (_u, v, _s, idx) => fmtV(idx === null ? lastOf(1) : v) },
    ];
    if (hasScore)
      series.push({
        label: 'anomaly score',
        scale: 'score',
        stroke: SCORE_COLOR,
        width: 1.25,
        spanGaps: false,
        value: (_u, v, _s, idx) => {
          const x = idx === null ? lastOf(2) : v;
          return x === null || x === undefined ? '—' : x.toFixed(2);
        },
      });
    const bands: uPlot.Band[] = [];
    if (fc.length) {
      const base = series.length;
      series.push({ label: 'forecast', stroke: FORECAST_COLOR, width: 1.5, dash: [6, 4], value: (_u, v, _s, idx) => fmtV(idx === null ? lastOf(base) : v) });
      series.push({ label: '95 % low', stroke: alpha(FORECAST_COLOR, 0.45), width: 1, value: (_u, v, _s, idx) => fmtV(idx === null ? lastOf(base + 1) : v) });
      series.push({ label: '95 % high', stroke: alpha(FORECAST_COLOR, 0.45), width: 1, value: (_u, v, _s, idx) => fmtV(idx === null ? lastOf(base + 2) : v) });
      bands.push({ series: [base + 2, base + 1], fill: alpha(FORECAST_COLOR, 0.14) });
    }
    const axis = (scale: string, side: 1 | 3, fmt: (v: number) => string, grid: boolean): uPlot.Axis => ({
      scale,
      side,
      stroke: muted,
      grid: { show: grid, stroke: border, width: 1 },
      ticks: { show: true, stroke: border, width: 1, size: 4 },
      values: (_u, splits) => splits.map((v) => (v === null || v === undefined ? '' : fmt(v))),
      size: (_u, values) => Math.max(40, ...(values ?? []).map((s) => (s ? s.length * 7 + 14 : 0))),
    });
    const periods = props.periods ?? [];
    const threshold = props.threshold;
    const opts: uPlot.Options = {
      width: Math.max(200, wrap.current!.clientWidth),
      height,
      ms: 1,
      padding: [10, hasScore ? 6 : 20, 0, 4],
      legend: { show: true, live: true },
      cursor: { drag: { x: true, y: false, setScale: true }, points: { size: 6 } },
      scales: {
        x: {
          time: true,
          range: (_u, min, max) => {
            const none = min === null || max === null || !Number.isFinite(min) || !Number.isFinite(max);
            const f = props.from ?? (none ? Date.now() - H : min);
            let t = props.to ?? (none ? Date.now() : max);
            if (fc.length) t = Math.max(t, fc[fc.length - 1][0]);
            return f < t ? [f, t] : [f - 1000, f + 1000];
          },
        },
        y: { auto: true },
        score: { range: [0, 1.05] },
      },
      axes: [
        { stroke: muted, grid: { stroke: border, width: 1 }, ticks: { stroke: border, width: 1, size: 4 }, values: TIME_AXIS, space: 70 },
        axis('y', 3, (v) => tick(v) + unitSuffix, true),
        ...(hasScore ? [{ ...axis('score', 1, (v) => (v >= 0 && v <= 1 ? String(+v.toFixed(2)) : ''), false), size: 40, splits: () => [0, 0.25, 0.5, 0.75, 1] }] : []),
      ],
      series,
      bands,
      hooks: {
        drawClear: [
          (u) => {
            if (!periods.length) return;
            const ctx = u.ctx;
            const { left, top, width, height: h } = u.bbox;
            // An open period ends at the range's end (now), not at the end of a forecast.
            const xmax = props.to ?? u.scales.x.max ?? 0;
            ctx.save();
            for (const p of periods) {
              const c = p.severity === 'warning' || p.severity === 'info' || p.severity === 'minor' ? warn : danger;
              const x0 = Math.max(left, u.valToPos(p.from, 'x', true));
              const x1 = Math.min(left + width, u.valToPos(p.to ?? xmax, 'x', true));
              if (x1 < left || x0 > left + width) continue;
              const w = Math.max(2 * devicePixelRatio, x1 - x0);
              ctx.fillStyle = alpha(c, 0.14);
              ctx.fillRect(x0, top, w, h);
              ctx.fillStyle = alpha(c, 0.7);
              ctx.fillRect(x0, top, w, 3 * devicePixelRatio);
            }
            ctx.restore();
          },
        ],
        draw: [
          (u) => {
            if (threshold === undefined || !hasScore) return;
            const ctx = u.ctx;
            const y = Math.round(u.valToPos(threshold, 'score', true)) + 0.5;
            const { left, width } = u.bbox;
            ctx.save();
            ctx.strokeStyle = danger;
            ctx.lineWidth = 1.25 * devicePixelRatio;
            ctx.setLineDash([5 * devicePixelRatio, 4 * devicePixelRatio]);
            ctx.beginPath();
            ctx.moveTo(left, y);
            ctx.lineTo(left + width, y);
            ctx.stroke();
            ctx.setLineDash([]);
            ctx.fillStyle = danger;
            ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
            ctx.textAlign = 'left';
            ctx.fillText(`threshold ${threshold.toFixed(2)}`, left + 4 * devicePixelRatio, y - 4 * devicePixelRatio);
            ctx.restore();
          },
        ],
      },
    };
    const u = new uPlot(opts, data, plot.current!);
    const ro = new ResizeObserver(() => {
      if (!wrap.current) return;
      const w = Math.max(200, wrap.current.clientWidth);
      if (w !== u.width) u.setSize({ width: w, height });
    });
    ro.observe(wrap.current!);
    return () => {
      ro.disconnect();
      u.destroy();
    };
  }, [props.values, props.score, props.forecast, props.periods, props.threshold, props.from, props.to, props.unit, props.label, height, themeTick]);

  return (
    <div ref={wrap} class="timechart achart" data-testid="analytics-chart">
      <div ref={plot} />
      {empty && (
        <div class="timechart-empty" data-testid="chart-empty">
          {props.emptyText ?? 'No data in this time range'}
        </div>
      )}
    </div>
  );
}

/** Short explanation of the expected range of an alarm: "expected 18.0 to 24.5". */
export function expectedText(lo: number | null | undefined, hi: number | null | undefined, unit?: string): string {
  const ok = (v: number | null | undefined): v is number => typeof v === 'number' && Number.isFinite(v);
  if (ok(lo) && ok(hi)) return `${formatNumber(lo, unit)} to ${formatNumber(hi, unit)}`;
  if (ok(lo)) return `≥ ${formatNumber(lo, unit)}`;
  if (ok(hi)) return `≤ ${formatNumber(hi, unit)}`;
  return '—';
}

// ---- backtest preview ----------------------------------------------------------------------------

const PREVIEW_RANGES = [
  { key: '24h', label: 'Last 24 h', ms: 24 * H },
  { key: '7d', label: 'Last 7 days', ms: 7 * D },
];

const MAX_CHARTS = 6;

interface ChartData {
  values: ChartPoint[];
  score: ChartPoint[];
  periods: Period[];
}

export function BacktestPreview(props: {
  /** The detector as edited now, or an error text when the form is not valid yet. */
  body: () => DetectorBody | string;
  /** Threshold being edited (the chart's line follows it before the preview is run again). */
  threshold: number;
  deviceId: string;
  onDeviceChange: (id: string) => void;
}) {
  const [range, setRange] = useState('24h');
  const [result, setResult] = useState<{ r: BacktestResult; charts: ChartData[]; threshold: number; from: number; to: number; took: number } | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const run = async () => {
    const body = props.body();
    if (typeof body === 'string') {
      setError(new Error(body));
      return;
    }
    setBusy(true);
    setError(null);
    const to = Date.now();
    const from = to - (PREVIEW_RANGES.find((r) => r.key === range)?.ms ?? D);
    const t0 = performance.now();
    try {
      const r = await api<BacktestResult>('POST', '/api/v1/detectors/backtest', { detector: body, from, to, device_id: props.deviceId || undefined });
      const charts = r.series.slice(0, MAX_CHARTS).map((x) => ({
        values: x.points.map((p): ChartPoint => [p[0], p[1]]),
        score: x.points.map((p): ChartPoint => [p[0], p[2]]),
        periods: x.alarms.map((a): Period => ({ from: a.start_ms, to: a.end_ms })),
      }));
      setResult({ r, charts, threshold: body.threshold ?? props.threshold, from, to, took: performance.now() - t0 });
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const series = result?.r.series ?? [];
  const alarms = series.flatMap((s) => s.alarms.map((a) => ({ ...a, device: s.device_name, key: s.key })));
  alarms.sort((a, b) => b.start_ms - a.start_ms);
  const stale = result && Math.abs(result.threshold - props.threshold) > 1e-9;

  return (
    <section class="backtest" aria-label="Preview" data-testid="backtest">
      <div class="backtest-bar">
        <div class="field backtest-device">
          <label for="backtest-device" class="muted small">
            Device
          </label>
          <DevicePicker id="backtest-device" value={props.deviceId ? [props.deviceId] : []} onChange={(ids) => props.onDeviceChange(ids[0] ?? '')} placeholder="Matching devices (up to 20)" />
        </div>
        <fieldset class="seg" role="radiogroup" aria-label="Preview range">
          {PREVIEW_RANGES.map((r) => (
            <label key={r.key} class={range === r.key ? 'on' : ''}>
              <input type="radio" name="backtest-range" checked={range === r.key} onChange={() => setRange(r.key)} /> {r.label}
            </label>
          ))}
        </fieldset>
        <button type="button" class="primary" onClick={run} disabled={busy} data-testid="backtest-run">
          {busy ? <Spinner /> : '▶'} {result ? 'Run again' : 'Preview'}
        </button>
      </div>
      <ErrorAlert error={error} />
      {!result && !busy && !error && (
        <div class="muted small backtest-hint">
          Runs this detector over stored history without raising alarms, so you can tune it before saving: you see the value, its anomaly score and the periods
          that would have raised an alarm.
        </div>
      )}
      {result && (
        <div class={'stack' + (busy ? ' reloading' : '')} data-testid="backtest-result">
          <div class="muted small" data-testid="backtest-stats">
            {result.r.points_scanned.toLocaleString()} points scanned in {Math.round(result.took)} ms · {series.length} {series.length === 1 ? 'series' : 'series'} ·{' '}
            <strong class={alarms.length ? 'danger-text' : ''}>
              {alarms.length} would-be {alarms.length === 1 ? 'alarm' : 'alarms'}
            </strong>
            {result.r.truncated && ' · truncated: the range held more points than a preview scans'}
          </div>
          {stale && (
            <div class="alert info small">
              The threshold changed since this preview: the dashed line shows the new one; run it again to update the would-be alarms.
            </div>
          )}
          {series.length === 0 && <div class="empty small-empty">No data for these keys on the matching devices in this range.</div>}
          {series.slice(0, MAX_CHARTS).map((s, i) => (
            <div key={s.device_id + ':' + s.key} class="backtest-series" data-testid="backtest-series">
              <div class="small">
                <strong>{s.device_name}</strong> · <span class="mono">{s.key}</span>{' '}
                <span class="muted">
                  · {s.points.length.toLocaleString()} points · {s.alarms.length} {s.alarms.length === 1 ? 'alarm' : 'alarms'}
                </span>
              </div>
              <AnalyticsChart
                label={s.key}
                values={result.charts[i].values}
                score={result.charts[i].score}
                threshold={props.threshold}
                periods={result.charts[i].periods}
                from={result.from}
                to={result.to}
                height={200}
              />
            </div>
          ))}
          {series.length > MAX_CHARTS && <div class="muted small">{series.length - MAX_CHARTS} more series are not drawn; their alarms are in the table.</div>}
          {alarms.length > 0 && (
            <div class="table-wrap backtest-alarms">
              <table class="data compact" data-testid="backtest-alarms">
                <thead>
                  <tr>
                    <th>Start</th>
                    <th>Duration</th>
                    <th>Device · key</th>
                    <th class="num">Peak score</th>
                    <th class="num">Observed</th>
                    <th>Expected</th>
                    <th>Message</th>
                  </tr>
                </thead>
                <tbody>
                  {alarms.slice(0, 200).map((a, i) => (
                    <tr key={i} data-testid="backtest-alarm">
                      <td class="nowrap">{formatDateTime(a.start_ms)}</td>
                      <td class="nowrap">{a.end_ms === null ? <span class="badge danger">open at end</span> : formatDuration(Math.max(0, a.end_ms - a.start_ms))}</td>
                      <td class="nowrap">
                        {a.device} · <span class="mono">{a.key}</span>
                      </td>
                      <td class="num">{a.peak_score.toFixed(2)}</td>
                      <td class="num">{a.observed === null || a.observed === undefined ? '—' : formatNumber(a.observed)}</td>
                      <td class="nowrap">{expectedText(a.expected_lo, a.expected_hi)}</td>
                      <td>
                        <div class="clamp">{a.message}</div>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
              {alarms.length > 200 && <div class="muted small panel-hint">First 200 of {alarms.length} shown.</div>}
            </div>
          )}
        </div>
      )}
    </section>
  );
}
