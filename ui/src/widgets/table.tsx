// Table of latest values: one row per device of the datasource (by id or filter), one column
// per key (all keys seen when none are configured), online badge, link to the device page.
import { toNumber } from '../components/timechart';
import { formatAgo, formatDateTime } from '../format';
import { Link } from '../router';
import { fmt, hasData, NotConfigured, WidgetError, WidgetLoading, WidgetMessage } from './common';
import { MAX_FILTER_DEVICES, useLatest, useReady, useTicker } from './data';
import { colorFor, type Widget } from './model';

const MAX_AUTO_COLUMNS = 8;

function TableBody({ w }: { w: Widget }) {
  const c = w.config;
  const res = useLatest(w);
  useTicker(5000);
  useReady(w.id, res.state !== 'loading');
  if (res.state === 'loading') return <WidgetLoading />;
  if (res.state === 'error') return <WidgetError error={res.error} />;
  const devices = res.devices.filter((d) => d.exists).sort((a, b) => a.name.localeCompare(b.name));
  if (!devices.length) return <WidgetMessage title="No devices">No device matches this widget's datasource.</WidgetMessage>;
  let keys = (c.datasource?.keys ?? []).filter(Boolean);
  if (!keys.length) {
    const all = new Set<string>();
    for (const d of devices) for (const k of Object.keys(res.latest[d.id] ?? {})) all.add(k);
    keys = [...all].sort().slice(0, MAX_AUTO_COLUMNS);
  }
  const limit = Math.max(1, c.max_rows ?? 100);
  const shown = devices.slice(0, limit);
  return (
    <div class="wtable table-wrap">
      <table class="data compact">
        <thead>
          <tr>
            <th>Device</th>
            <th>State</th>
            {keys.map((k) => (
              <th key={k} class="num">
                {k}
              </th>
            ))}
            <th>Updated</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((d) => {
            const vals = res.latest[d.id] ?? {};
            let last = 0;
            for (const k of keys) last = Math.max(last, vals[k]?.ts ?? 0);
            return (
              <tr key={d.id} data-testid="widget-table-row">
                <td class="nowrap">
                  <Link href={`/devices/${d.id}`}>{d.name}</Link>
                </td>
                <td class="nowrap">
                  <span class={'badge' + (d.online ? ' ok' : '')}>
                    <span class={'dot' + (d.online ? ' ok' : '')} /> {d.online ? 'Online' : 'Offline'}
                  </span>
                </td>
                {keys.map((k) => {
                  const p = vals[k];
                  const n = p ? toNumber(p.value) : null;
                  return (
                    <td key={k} class="num" style={c.thresholds?.length && n !== null ? { color: colorFor(n, c, 'var(--text)') } : undefined} title={p ? formatDateTime(p.ts) : undefined}>
                      {p ? fmt(c, k, p.value) : <span class="muted">—</span>}
                    </td>
                  );
                })}
                <td class="muted nowrap" title={last ? formatDateTime(last) : undefined}>
                  {last ? formatAgo(last) : 'never'}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {(devices.length > shown.length || res.truncated) && (
        <div class="muted small wtable-foot">
          Showing {shown.length} of {res.truncated ? `more than ${MAX_FILTER_DEVICES}` : devices.length} devices
        </div>
      )}
    </div>
  );
}

export function TableWidget({ w }: { w: Widget }) {
  const ok = hasData(w.config, false);
  useReady(w.id, !ok);
  if (!ok) return <NotConfigured what="devices (or a type / label filter)" />;
  return <TableBody w={w} />;
}
