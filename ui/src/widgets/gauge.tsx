// Gauge: a 240° SVG arc from min to max with coloured threshold bands and the latest value.
import { toNumber } from '../components/timechart';
import { formatAgo, formatDateTime, formatNumber } from '../format';
import { fmt, hasData, NotConfigured, WidgetError, WidgetLoading, WidgetMessage } from './common';
import { useLatest, useReady, useTicker } from './data';
import { colorFor, sortedThresholds, unitOf, type Widget } from './model';

const START = 150; // degrees, clockwise from +x (SVG: y down) — bottom left
const SWEEP = 240;

function polar(cx: number, cy: number, r: number, deg: number): [number, number] {
  const a = (deg * Math.PI) / 180;
  return [cx + r * Math.cos(a), cy + r * Math.sin(a)];
}

function arc(cx: number, cy: number, r: number, a0: number, a1: number): string {
  const [x0, y0] = polar(cx, cy, r, a0);
  const [x1, y1] = polar(cx, cy, r, a1);
  const large = a1 - a0 > 180 ? 1 : 0;
  return `M${x0.toFixed(2)},${y0.toFixed(2)}A${r},${r} 0 ${large} 1 ${x1.toFixed(2)},${y1.toFixed(2)}`;
}

export function GaugeSvg(props: { value: number | null; min: number; max: number; bands: { from: number; to: number; color: string }[]; color: string; text: string; unit?: string }) {
  const { min, max } = props;
  const cx = 100;
  const cy = 100;
  const r = 78;
  const frac = (v: number) => Math.min(1, Math.max(0, (v - min) / (max - min || 1)));
  const ang = (v: number) => START + frac(v) * SWEEP;
  const end = START + SWEEP;
  const needle = props.value === null ? null : ang(props.value);
  return (
    <svg class="gauge-svg" viewBox="0 0 200 170" role="img" aria-label={`${props.text}${props.unit ? ' ' + props.unit : ''}`}>
      <path d={arc(cx, cy, r, START, end)} class="gauge-track" fill="none" stroke-width="14" stroke-linecap="round" />
      {props.bands.map((b, i) => {
        const a0 = ang(b.from);
        const a1 = ang(b.to);
        return a1 - a0 > 0.2 ? <path key={i} d={arc(cx, cy, r + 12, a0, a1)} fill="none" style={{ stroke: b.color }} stroke-width="4" /> : null;
      })}
      {needle !== null && needle > START + 0.2 && (
        <path d={arc(cx, cy, r, START, needle)} fill="none" style={{ stroke: props.color }} stroke-width="14" stroke-linecap="round" />
      )}
      {needle !== null && (
        <circle cx={polar(cx, cy, r, needle)[0]} cy={polar(cx, cy, r, needle)[1]} r="8" class="gauge-knob" style={{ stroke: props.color }} stroke-width="3" />
      )}
      <text x={cx} y={cy + 4} text-anchor="middle" class="gauge-value" style={{ fill: props.color }} data-testid="widget-value">
        {props.text}
      </text>
      {props.unit && (
        <text x={cx} y={cy + 26} text-anchor="middle" class="gauge-unit">
          {props.unit}
        </text>
      )}
      <text x={polar(cx, cy, r, START)[0]} y={polar(cx, cy, r, START)[1] + 22} text-anchor="middle" class="gauge-limit">
        {formatNumber(min)}
      </text>
      <text x={polar(cx, cy, r, end)[0]} y={polar(cx, cy, r, end)[1] + 22} text-anchor="middle" class="gauge-limit">
        {formatNumber(max)}
      </text>
    </svg>
  );
}

function GaugeBody({ w }: { w: Widget }) {
  const c = w.config;
  const key = c.datasource?.keys?.[0] ?? '';
  const latest = useLatest(w);
  useTicker(5000);
  useReady(w.id, latest.state !== 'loading');
  if (latest.state === 'loading') return <WidgetLoading />;
  if (latest.state === 'error') return <WidgetError error={latest.error} />;
  const dev = latest.devices.find((d) => d.exists);
  if (!dev) return <WidgetMessage title="No device">The device of this gauge no longer exists.</WidgetMessage>;
  const p = latest.latest[dev.id]?.[key];
  const num = p ? toNumber(p.value) : null;
  const min = c.min ?? 0;
  const max = c.max ?? 100;
  if (!(max > min)) return <WidgetMessage kind="error" title="Check the settings">The maximum must be above the minimum.</WidgetMessage>;
  const th = sortedThresholds(c);
  const bands: { from: number; to: number; color: string }[] = [];
  if (th.length) {
    let lo = min;
    let col = c.base_color || 'var(--ok)';
    for (const t of th) {
      if (t.value > lo) bands.push({ from: lo, to: Math.min(t.value, max), color: col });
      lo = Math.max(lo, t.value);
      col = t.color;
    }
    if (lo < max) bands.push({ from: lo, to: max, color: col });
  }
  const color = colorFor(num, c, 'var(--accent)');
  return (
    <div class="gauge">
      <GaugeSvg value={num} min={min} max={max} bands={bands} color={color} text={p ? fmt(c, key, p.value, false) : '—'} unit={unitOf(c, key)} />
      <div class="muted small gauge-sub" title={p ? formatDateTime(p.ts) : ''}>
        {dev.name} · {key}
        {p ? ` · ${formatAgo(p.ts)}` : ' · no value yet'}
      </div>
    </div>
  );
}

export function GaugeWidget({ w }: { w: Widget }) {
  const ok = hasData(w.config);
  useReady(w.id, !ok);
  if (!ok) return <NotConfigured what="a device and a key" />;
  return <GaugeBody w={w} />;
}
