// Value card: the latest value of one key of one device, coloured by threshold, with a sparkline
// of the dashboard range and how long ago it was updated.
import { toNumber, type ChartPoint } from '../components/timechart';
import { formatAgo, formatDateTime } from '../format';
import { fmt, hasData, NotConfigured, WidgetError, WidgetLoading, WidgetMessage } from './common';
import { useHistory, useLatest, useReady, useTicker } from './data';
import { colorFor, seriesColorOf, sortedThresholds, unitOf, type Widget } from './model';

export function Sparkline({ points, color, from, to }: { points: ChartPoint[]; color: string; from: number; to: number }) {
  const pts = points.filter((p): p is [number, number] => p[1] !== null);
  if (pts.length < 2) return <div class="spark empty" />;
  let lo = Infinity;
  let hi = -Infinity;
  for (const [, v] of pts) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  if (hi === lo) {
    hi += 1;
    lo -= 1;
  }
  const W = 200;
  const H = 40;
  const span = Math.max(1, to - from);
  const x = (t: number) => (((t - from) / span) * W).toFixed(1);
  const y = (v: number) => (H - 2 - ((v - lo) / (hi - lo)) * (H - 4)).toFixed(1);
  // A null (a gap in the data) starts a new segment.
  let line = '';
  let pen = 'M';
  for (const [t, v] of points) {
    if (v === null) {
      pen = 'M';
      continue;
    }
    line += `${pen}${x(t)},${y(v)}`;
    pen = 'L';
  }
  const area = `${line}L${x(pts[pts.length - 1][0])},${H}L${x(pts[0][0])},${H}Z`;
  return (
    <svg class="spark" viewBox={`0 0 ${W} ${H}`} preserveAspectRatio="none" aria-hidden="true">
      <path d={area} style={{ fill: color }} opacity="0.15" />
      <path d={line} fill="none" style={{ stroke: color }} stroke-width="1.5" vector-effect="non-scaling-stroke" />
    </svg>
  );
}

function ValueBody({ w }: { w: Widget }) {
  const c = w.config;
  const key = c.datasource?.keys?.[0] ?? '';
  const latest = useLatest(w);
  const hist = useHistory(w);
  useTicker(1000);
  useReady(w.id, latest.state !== 'loading');
  if (latest.state === 'loading') return <WidgetLoading />;
  if (latest.state === 'error') return <WidgetError error={latest.error} />;
  const dev = latest.devices.find((d) => d.exists);
  if (!dev) return <WidgetMessage title="No device">The device of this card no longer exists.</WidgetMessage>;
  const p = latest.latest[dev.id]?.[key];
  const num = p ? toNumber(p.value) : null;
  const color = colorFor(num, c, 'var(--text)');
  // The sparkline takes the threshold colour only once a threshold (or a chosen base) applies.
  const reached = !!c.base_color || (num !== null && sortedThresholds(c).some((t) => num >= t.value));
  const spark = hist.series[0];
  return (
    <div class="valuecard">
      <div class="vc-main">
        <span class="vc-value" style={{ color }} data-testid="widget-value" data-value={p ? String(p.value) : ''}>
          {p ? fmt(c, key, p.value, false) : '—'}
        </span>
        {p && unitOf(c, key) && <span class="vc-unit">{unitOf(c, key)}</span>}
      </div>
      <div class="vc-sub muted small">
        {dev.name} · {key}
      </div>
      {spark && (
        <Sparkline
          points={spark.points}
          color={c.colors?.[`${dev.id}:${key}`] || c.colors?.[key] || (reached ? color : seriesColorOf(c, dev.id, key, 0))}
          from={hist.from}
          to={hist.to}
        />
      )}
      <div class="vc-ago muted small" title={p ? formatDateTime(p.ts) : ''} data-testid="widget-updated">
        {p ? `Updated ${formatAgo(p.ts)}` : 'No value yet'}
      </div>
    </div>
  );
}

export function ValueWidget({ w }: { w: Widget }) {
  const ok = hasData(w.config);
  useReady(w.id, !ok);
  if (!ok) return <NotConfigured what="a device and a key" />;
  return <ValueBody w={w} />;
}
