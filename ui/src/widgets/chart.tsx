// Time-series line chart and bar chart: every (device, key) of the datasource as a series, one
// batch query per widget, live points appended while the dashboard range follows now.
import { useMemo } from 'preact/hooks';
import { TimeChart, type ChartSeries } from '../components/timechart';
import { hasData, NotConfigured, WidgetError, WidgetLoading } from './common';
import { useDash, useDrawGate, useHistory, useReady, type SeriesData } from './data';
import { seriesColorOf, unitOf, type Widget } from './model';

export function seriesLabel(s: SeriesData, all: SeriesData[]): string {
  const devices = new Set(all.map((x) => x.deviceId));
  const keys = new Set(all.map((x) => x.key));
  if (devices.size === 1) return s.key;
  if (keys.size === 1) return s.device.name;
  return `${s.device.name} · ${s.key}`;
}

function ChartBody({ w, kind }: { w: Widget; kind: 'line' | 'bar' }) {
  const env = useDash();
  const res = useHistory(w);
  const gate = useDrawGate(res.state !== 'loading');
  // Ready once drawn (after the chart below has been built), or known to be out of view.
  useReady(w.id, res.state === 'error' || (res.state === 'ok' && (gate.draw || gate.deferred)));
  const c = w.config;
  // Labels, colours and units only change with the configuration (TimeChart rebuilds on them).
  const structure = useMemo(
    () => res.series.map((s, i) => ({ label: seriesLabel(s, res.series), color: seriesColorOf(c, s.deviceId, s.key, i), unit: unitOf(c, s.key) })),
    [res.series.map((s) => s.deviceId + ':' + s.key + ':' + s.device.name).join('|'), JSON.stringify([c.colors, c.units, c.unit])],
  );
  const series: ChartSeries[] = res.series.map((s, i) => ({ ...structure[i], points: s.points }));
  if ((res.state === 'loading' && !res.series.length) || (res.state === 'ok' && !gate.draw)) return <WidgetLoading />;
  if (res.state === 'error') return <WidgetError error={res.error} />;
  const deleted = res.devices.filter((d) => !d.exists).length;
  return (
    <>
      {deleted > 0 && (
        <div class="wnote muted small" title="Edit the widget to remove it">
          {deleted === 1 ? '1 device no longer exists' : `${deleted} devices no longer exist`}
        </div>
      )}
      <TimeChart
        series={series}
        kind={kind}
        from={res.from}
        to={res.to}
        class={c.legend === false ? 'no-legend' : undefined}
        onRangeSelect={env.setRange ? (f, t) => env.setRange!({ from: f, to: t }) : undefined}
        emptyText={res.devices.length === 0 ? 'No device matches this widget' : 'No data in this time range'}
      />
    </>
  );
}

export function LineChartWidget({ w }: { w: Widget }) {
  return <ChartGuard w={w} kind="line" />;
}

export function BarChartWidget({ w }: { w: Widget }) {
  return <ChartGuard w={w} kind="bar" />;
}

function ChartGuard({ w, kind }: { w: Widget; kind: 'line' | 'bar' }) {
  const ok = hasData(w.config);
  useReady(w.id, !ok);
  if (!ok) return <NotConfigured />;
  return <ChartBody w={w} kind={kind} />;
}
