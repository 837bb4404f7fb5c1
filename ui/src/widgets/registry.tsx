// Every widget type in one place: name, icon, default size and settings, which parts of the
// config dialog apply, and the component that draws it.
import type { JSX } from 'preact';
import { AlarmsWidget } from './alarms';
import { BarChartWidget, LineChartWidget } from './chart';
import { GaugeWidget } from './gauge';
import { MapWidget } from './map';
import { MarkdownWidget } from './markdown';
import { newWidgetId, type Widget, type WidgetConfig, type WidgetType } from './model';
import { TableWidget } from './table';
import { ValueWidget } from './value';

export interface WidgetDef {
  type: WidgetType;
  label: string;
  description: string;
  w: number;
  h: number;
  minW: number;
  minH: number;
  /** Datasource: several devices and keys, exactly one of each, or none. */
  data: 'multi' | 'single' | 'none';
  /** The datasource may be a device filter (type / label) instead of a list of ids. */
  filter: boolean;
  /** Keys are optional (the table shows every key when none is picked). */
  keysOptional?: boolean;
  agg: boolean;
  thresholds: boolean;
  colors: boolean;
  units: boolean;
  legend?: boolean;
  defaults: () => WidgetConfig;
  Component: (props: { w: Widget }) => JSX.Element;
}

const ds = (): WidgetConfig['datasource'] => ({ mode: 'devices', device_ids: [], keys: [] });

export const WIDGETS: Record<WidgetType, WidgetDef> = {
  line: {
    type: 'line',
    label: 'Time series',
    description: 'Lines of many keys from several devices over the dashboard range.',
    w: 6,
    h: 5,
    minW: 3,
    minH: 3,
    data: 'multi',
    filter: true,
    agg: true,
    thresholds: false,
    colors: true,
    units: true,
    legend: true,
    defaults: () => ({ datasource: ds(), agg: 'auto', legend: true }),
    Component: LineChartWidget,
  },
  bar: {
    type: 'bar',
    label: 'Bar chart',
    description: 'Aggregated buckets (average, sum, count…) as bars.',
    w: 6,
    h: 5,
    minW: 3,
    minH: 3,
    data: 'multi',
    filter: true,
    agg: true,
    thresholds: false,
    colors: true,
    units: true,
    legend: true,
    defaults: () => ({ datasource: ds(), agg: 'avg', legend: true }),
    Component: BarChartWidget,
  },
  value: {
    type: 'value',
    label: 'Value card',
    description: 'The latest value with unit, sparkline and colour by threshold.',
    w: 3,
    h: 3,
    minW: 2,
    minH: 2,
    data: 'single',
    filter: false,
    agg: true,
    thresholds: true,
    colors: true,
    units: true,
    defaults: () => ({ datasource: ds(), agg: 'auto', thresholds: [] }),
    Component: ValueWidget,
  },
  gauge: {
    type: 'gauge',
    label: 'Gauge',
    description: 'The latest value on a dial with coloured threshold bands.',
    w: 3,
    h: 4,
    minW: 2,
    minH: 3,
    data: 'single',
    filter: false,
    agg: false,
    thresholds: true,
    colors: false,
    units: true,
    defaults: () => ({ datasource: ds(), min: 0, max: 100, thresholds: [] }),
    Component: GaugeWidget,
  },
  table: {
    type: 'table',
    label: 'Latest values table',
    description: 'A row per device (by list or by type / label), a column per key, online state.',
    w: 6,
    h: 5,
    minW: 3,
    minH: 3,
    data: 'multi',
    filter: true,
    keysOptional: true,
    agg: false,
    thresholds: true,
    colors: false,
    units: true,
    defaults: () => ({ datasource: { mode: 'filter', filter: {}, keys: [] }, max_rows: 100 }),
    Component: TableWidget,
  },
  map: {
    type: 'map',
    label: 'Map',
    description: 'Devices placed by their latitude / longitude keys.',
    w: 6,
    h: 6,
    minW: 3,
    minH: 3,
    data: 'multi',
    filter: true,
    keysOptional: true,
    agg: false,
    thresholds: true,
    colors: false,
    units: true,
    defaults: () => ({ datasource: { mode: 'filter', filter: {}, keys: [] }, lat_key: 'latitude', lon_key: 'longitude' }),
    Component: MapWidget,
  },
  alarms: {
    type: 'alarms',
    label: 'Alarm list',
    description: 'Active alarms, updated live.',
    w: 4,
    h: 5,
    minW: 3,
    minH: 3,
    data: 'none',
    filter: false,
    agg: false,
    thresholds: false,
    colors: false,
    units: false,
    defaults: () => ({ max_rows: 50 }),
    Component: AlarmsWidget,
  },
  markdown: {
    type: 'markdown',
    label: 'Text',
    description: 'Notes, links and headings in Markdown.',
    w: 4,
    h: 3,
    minW: 2,
    minH: 1,
    data: 'none',
    filter: false,
    agg: false,
    thresholds: false,
    colors: false,
    units: false,
    defaults: () => ({ text: '## Notes\n\nWrite **Markdown** here.' }),
    Component: MarkdownWidget,
  },
};

export function newWidget(type: WidgetType): Widget {
  const d = WIDGETS[type];
  return { id: newWidgetId(), type, x: 0, y: 0, w: d.w, h: d.h, title: d.label, config: d.defaults() };
}
