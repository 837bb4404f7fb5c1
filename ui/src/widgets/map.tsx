// Map: devices plotted from their latest latitude / longitude keys, in Web Mercator, fitted to
// the devices' bounds, with a graticule and labels. No internet is assumed: tiles are drawn
// underneath only when a tile URL template (https://…/{z}/{x}/{y}.png) is configured.
import { useEffect, useRef, useState } from 'preact/hooks';
import { toNumber } from '../components/timechart';
import { formatAgo } from '../format';
import { navigate } from '../router';
import { fmt, hasData, NotConfigured, WidgetError, WidgetLoading, WidgetMessage } from './common';
import { useDrawGate, useLatest, useReady, type DeviceInfo } from './data';
import { colorFor, type Widget } from './model';

const TILE = 256;
const MAX_LAT = 85.05112878;

/** Web Mercator at zoom 0: x, y in [0, 1]. */
function project(lat: number, lon: number): [number, number] {
  const la = (Math.max(-MAX_LAT, Math.min(MAX_LAT, lat)) * Math.PI) / 180;
  return [(lon + 180) / 360, (1 - Math.log(Math.tan(la) + 1 / Math.cos(la)) / Math.PI) / 2];
}

function unprojectY(y: number): number {
  const n = Math.PI - 2 * Math.PI * y;
  return (180 / Math.PI) * Math.atan(0.5 * (Math.exp(n) - Math.exp(-n)));
}

const STEPS = [0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 45, 90];
function niceStep(span: number, lines = 5): number {
  return STEPS.find((s) => span / s <= lines) ?? 90;
}

function fmtDeg(v: number, step: number, pos: string, neg: string): string {
  const d = Math.max(0, -Math.floor(Math.log10(step)));
  return `${Math.abs(v).toFixed(d)}°${v >= 0 ? pos : neg}`;
}

/** A tile URL from a template, or null when the template is not http(s). */
export function tileUrl(template: string, z: number, x: number, y: number): string | null {
  if (!/^https?:\/\//i.test(template)) return null;
  return template.replace('{z}', String(z)).replace('{x}', String(x)).replace('{y}', String(y)).replace('{s}', 'a');
}

interface Marker {
  d: DeviceInfo;
  lat: number;
  lon: number;
  px: number;
  py: number;
  ts: number;
  color: string;
}

function MapBody({ w }: { w: Widget }) {
  const c = w.config;
  const latKey = c.lat_key || 'latitude';
  const lonKey = c.lon_key || 'longitude';
  const res = useLatest(w);
  const gate = useDrawGate(res.state !== 'loading');
  useReady(w.id, res.state === 'error' || (res.state === 'ok' && (gate.draw || gate.deferred)));
  const box = useRef<HTMLDivElement>(null);
  const [size, setSize] = useState({ w: 0, h: 0 });
  const [hover, setHover] = useState<string | null>(null);

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setSize({ w: el.clientWidth, h: el.clientHeight }));
    ro.observe(el);
    setSize({ w: el.clientWidth, h: el.clientHeight });
    return () => ro.disconnect();
  }, [res.state, gate.draw]);

  if (res.state === 'loading' || (res.state === 'ok' && !gate.draw)) return <WidgetLoading />;
  if (res.state === 'error') return <WidgetError error={res.error} />;

  const valueKey = (c.datasource?.keys ?? []).find((k) => k !== latKey && k !== lonKey);
  const placed: { d: DeviceInfo; lat: number; lon: number; ts: number; color: string }[] = [];
  let unplaced = 0;
  for (const d of res.devices) {
    if (!d.exists) continue;
    const v = res.latest[d.id] ?? {};
    const lat = toNumber(v[latKey]?.value);
    const lon = toNumber(v[lonKey]?.value);
    if (lat === null || lon === null || Math.abs(lat) > 90 || Math.abs(lon) > 180) {
      unplaced++;
      continue;
    }
    const val = valueKey ? toNumber(v[valueKey]?.value) : null;
    const color = c.thresholds?.length && val !== null ? colorFor(val, c, 'var(--accent)') : d.online ? 'var(--ok)' : 'var(--accent)';
    placed.push({ d, lat, lon, ts: Math.max(v[latKey]?.ts ?? 0, v[lonKey]?.ts ?? 0), color });
  }
  if (!placed.length)
    return (
      <WidgetMessage title="No positions">
        None of the {res.devices.length} devices has numeric "{latKey}" and "{lonKey}" values.
      </WidgetMessage>
    );

  // Fit: world coordinates at zoom 0, padded, with a minimum extent (~1 km) for one device.
  const W = Math.max(50, size.w);
  const H = Math.max(50, size.h);
  const pad = 36;
  const pts = placed.map((p) => project(p.lat, p.lon));
  let x0 = Math.min(...pts.map((p) => p[0]));
  let x1 = Math.max(...pts.map((p) => p[0]));
  let y0 = Math.min(...pts.map((p) => p[1]));
  let y1 = Math.max(...pts.map((p) => p[1]));
  const minSpan = 1 / 40000;
  if (x1 - x0 < minSpan) {
    const m = (x0 + x1) / 2;
    x0 = m - minSpan / 2;
    x1 = m + minSpan / 2;
  }
  if (y1 - y0 < minSpan) {
    const m = (y0 + y1) / 2;
    y0 = m - minSpan / 2;
    y1 = m + minSpan / 2;
  }
  const scale = Math.min((W - 2 * pad) / (x1 - x0), (H - 2 * pad) / (y1 - y0));
  const cx = (x0 + x1) / 2;
  const cy = (y0 + y1) / 2;
  const toPx = (x: number, y: number): [number, number] => [W / 2 + (x - cx) * scale, H / 2 + (y - cy) * scale];
  const fromPx = (px: number, py: number): [number, number] => [cx + (px - W / 2) / scale, cy + (py - H / 2) / scale];
  const markers: Marker[] = placed.map((p, i) => {
    const [px, py] = toPx(pts[i][0], pts[i][1]);
    return { ...p, px, py };
  });

  // Visible bounds in degrees for the graticule.
  const [wx0, wy0] = fromPx(0, 0);
  const [wx1, wy1] = fromPx(W, H);
  const lonMin = wx0 * 360 - 180;
  const lonMax = wx1 * 360 - 180;
  const latMax = unprojectY(wy0);
  const latMin = unprojectY(wy1);
  const lonStep = niceStep(lonMax - lonMin);
  const latStep = niceStep(latMax - latMin);
  const lons: number[] = [];
  for (let v = Math.ceil(lonMin / lonStep) * lonStep; v <= lonMax; v += lonStep) lons.push(v);
  const lats: number[] = [];
  for (let v = Math.ceil(latMin / latStep) * latStep; v <= latMax; v += latStep) lats.push(v);

  // Tiles under the plot, when configured.
  const tiles: { href: string; x: number; y: number; s: number }[] = [];
  if (c.tile_url) {
    const z = Math.max(0, Math.min(19, Math.floor(Math.log2(scale / TILE))));
    const n = 2 ** z;
    const tx0 = Math.max(0, Math.floor(wx0 * n));
    const tx1 = Math.min(n - 1, Math.floor(wx1 * n));
    const ty0 = Math.max(0, Math.floor(wy0 * n));
    const ty1 = Math.min(n - 1, Math.floor(wy1 * n));
    if ((tx1 - tx0 + 1) * (ty1 - ty0 + 1) <= 64)
      for (let tx = tx0; tx <= tx1; tx++)
        for (let ty = ty0; ty <= ty1; ty++) {
          const href = tileUrl(c.tile_url, z, tx, ty);
          if (!href) continue;
          const [px, py] = toPx(tx / n, ty / n);
          tiles.push({ href, x: px, y: py, s: scale / n });
        }
  }

  // Labels go right of their dot, else left; one that would cover a dot or another label is left
  // out (hovering or focusing the dot shows it, and the tooltip names the device).
  type Box = [number, number, number, number];
  const hit = (a: Box, b: Box) => a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];
  const boxes: Box[] = markers.map((m) => [m.px - 7, m.py - 7, m.px + 7, m.py + 7]);
  const labelSide = new Map<string, 'r' | 'l'>();
  for (const m of [...markers].sort((a, b) => a.d.name.localeCompare(b.d.name))) {
    const w = m.d.name.length * 6.6 + 4;
    const own: Box = [m.px - 7, m.py - 7, m.px + 7, m.py + 7];
    const others = boxes.filter((b) => b.join() !== own.join());
    const right: Box = [m.px + 9, m.py - 8, m.px + 9 + w, m.py + 7];
    const left: Box = [m.px - 9 - w, m.py - 8, m.px - 9, m.py + 7];
    const side = right[2] <= W && !others.some((b) => hit(right, b)) ? 'r' : left[0] >= 0 && !others.some((b) => hit(left, b)) ? 'l' : null;
    if (!side) continue;
    boxes.push(side === 'r' ? right : left);
    labelSide.set(m.d.id, side);
  }
  const hovered = markers.find((m) => m.d.id === hover);
  return (
    <div class="wmap" ref={box} data-testid="widget-map">
      <svg width={W} height={H} viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`Map of ${markers.length} devices`}>
        {tiles.map((t) => (
          <image key={t.href} href={t.href} x={t.x} y={t.y} width={t.s + 0.5} height={t.s + 0.5} preserveAspectRatio="none" />
        ))}
        {lons.map((v) => {
          const [px] = toPx((v + 180) / 360, 0);
          return (
            <g key={'lon' + v}>
              <line x1={px} x2={px} y1={0} y2={H} class="map-grid" />
              <text x={px + 3} y={H - 4} class="map-grid-label">
                {fmtDeg(v, lonStep, 'E', 'W')}
              </text>
            </g>
          );
        })}
        {lats.map((v) => {
          const [, py] = toPx(0, project(v, 0)[1]);
          return (
            <g key={'lat' + v}>
              <line x1={0} x2={W} y1={py} y2={py} class="map-grid" />
              <text x={3} y={py - 3} class="map-grid-label">
                {fmtDeg(v, latStep, 'N', 'S')}
              </text>
            </g>
          );
        })}
        {markers.map((m) => (
          <g
            key={m.d.id}
            class="map-marker"
            tabIndex={0}
            role="link"
            aria-label={`${m.d.name}: ${m.lat.toFixed(5)}, ${m.lon.toFixed(5)}`}
            onMouseEnter={() => setHover(m.d.id)}
            onMouseLeave={() => setHover(null)}
            onFocus={() => setHover(m.d.id)}
            onBlur={() => setHover(null)}
            onClick={() => navigate(`/devices/${m.d.id}`)}
            onKeyDown={(e) => e.key === 'Enter' && navigate(`/devices/${m.d.id}`)}
            data-testid="map-marker"
          >
            <circle cx={m.px} cy={m.py} r={hover === m.d.id ? 8 : 6} style={{ fill: m.color }} class="map-dot" />
            {(labelSide.has(m.d.id) || hover === m.d.id) && (
              <text
                x={labelSide.get(m.d.id) === 'l' ? m.px - 10 : m.px + 10}
                y={m.py + 4}
                text-anchor={labelSide.get(m.d.id) === 'l' ? 'end' : 'start'}
                class="map-label"
              >
                {m.d.name}
              </text>
            )}
          </g>
        ))}
      </svg>
      {hovered && (
        <div class="map-tip" style={{ left: Math.min(hovered.px + 12, W - 190) + 'px', top: Math.max(4, hovered.py - 70) + 'px' }} role="tooltip">
          <strong>{hovered.d.name}</strong>
          <div class="mono small">
            {hovered.lat.toFixed(5)}, {hovered.lon.toFixed(5)}
          </div>
          {valueKey && res.latest[hovered.d.id]?.[valueKey] && (
            <div>
              {valueKey}: {fmt(c, valueKey, res.latest[hovered.d.id][valueKey].value)}
            </div>
          )}
          <div class="muted small">
            {hovered.d.online ? 'Online' : 'Offline'} · position {formatAgo(hovered.ts)}
          </div>
        </div>
      )}
      {unplaced > 0 && <div class="map-note muted small">{unplaced} without a position</div>}
    </div>
  );
}

export function MapWidget({ w }: { w: Widget }) {
  const ok = hasData(w.config, false);
  useReady(w.id, !ok);
  if (!ok) return <NotConfigured what="devices (or a type / label filter)" />;
  return <MapBody w={w} />;
}
