// The dashboard layout document stored by the server (opaque to it) and checked here on load and
// import. Schema 1:
//   {"schema":1, "time":{"range":"1h" | {"from":ms,"to":ms}}, "refresh_s"?:n,
//    "widgets":[{"id","type","x","y","w","h","title","config":{...}}]}

import { DEFAULT_RANGE, PALETTE, parseDurationKey, type TimeRange } from '../components/timechart';

export const COLUMNS = 12;
export const MAX_WIDGETS = 200;

export type WidgetType = 'line' | 'bar' | 'gauge' | 'value' | 'table' | 'alarms' | 'map' | 'markdown';
export const WIDGET_TYPES: WidgetType[] = ['line', 'bar', 'value', 'gauge', 'table', 'map', 'alarms', 'markdown'];

export type Agg = 'auto' | 'avg' | 'min' | 'max' | 'sum' | 'count' | 'none';
export const AGGS: Agg[] = ['auto', 'avg', 'min', 'max', 'sum', 'count', 'none'];

export interface Threshold {
  value: number;
  color: string;
}

export interface Datasource {
  /** "devices": the listed ids; "filter": every device of a type and/or with a label. */
  mode: 'devices' | 'filter';
  device_ids?: string[];
  filter?: { type?: string; label?: string };
  keys?: string[];
}

export interface WidgetConfig {
  datasource?: Datasource;
  agg?: Agg;
  /** Colour of each series, by "deviceId:key" (or by key alone, for every device). */
  colors?: Record<string, string>;
  /** Unit by key; `unit` applies to keys without one. */
  units?: Record<string, string>;
  unit?: string;
  decimals?: number;
  /** Colour below the first threshold. */
  base_color?: string;
  thresholds?: Threshold[];
  legend?: boolean;
  min?: number;
  max?: number;
  text?: string;
  lat_key?: string;
  lon_key?: string;
  tile_url?: string;
  max_rows?: number;
}

export interface Widget {
  id: string;
  type: WidgetType;
  x: number;
  y: number;
  w: number;
  h: number;
  title: string;
  config: WidgetConfig;
}

/** Layout form of a range: '1h' (last hour, follows now) or fixed bounds in ms. */
export type LayoutRange = string | { from: number; to: number };

export const REFRESH_CHOICES = [0, 10, 30, 60, 300];

export function toTimeRange(r: LayoutRange | undefined): TimeRange {
  if (typeof r === 'string' && parseDurationKey(r) !== null) return { last: r };
  if (r && typeof r === 'object') return { from: r.from, to: r.to };
  return DEFAULT_RANGE;
}

export function fromTimeRange(r: TimeRange): LayoutRange {
  return 'last' in r ? r.last : { from: r.from, to: r.to };
}

export interface Layout {
  schema: 1;
  time: { range: LayoutRange };
  refresh_s?: number;
  widgets: Widget[];
}

export function emptyLayout(): Layout {
  return { schema: 1, time: { range: '1h' }, widgets: [] };
}

export function newWidgetId(): string {
  const a = new Uint8Array(6);
  crypto.getRandomValues(a);
  return 'w' + Array.from(a, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Thrown by validateLayout with every problem found (path: message). */
export class LayoutError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(
      problems.length === 1
        ? `Not a valid dashboard layout: ${problems[0]}`
        : `Not a valid dashboard layout (${problems.length} problems): ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? '; …' : ''}`,
    );
    this.problems = problems;
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const isStrArr = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function checkConfig(c: Record<string, unknown>, at: string, out: string[]) {
  const ds = c.datasource;
  if (ds !== undefined) {
    if (!isObj(ds)) out.push(`${at}.datasource: must be an object`);
    else {
      if (ds.mode !== 'devices' && ds.mode !== 'filter') out.push(`${at}.datasource.mode: must be "devices" or "filter"`);
      if (ds.device_ids !== undefined && !isStrArr(ds.device_ids)) out.push(`${at}.datasource.device_ids: must be a list of device ids`);
      if (ds.keys !== undefined && !isStrArr(ds.keys)) out.push(`${at}.datasource.keys: must be a list of key names`);
      if (ds.filter !== undefined) {
        if (!isObj(ds.filter)) out.push(`${at}.datasource.filter: must be an object`);
        else {
          for (const f of ['type', 'label'] as const)
            if (ds.filter[f] !== undefined && typeof ds.filter[f] !== 'string') out.push(`${at}.datasource.filter.${f}: must be text`);
        }
      }
    }
  }
  if (c.agg !== undefined && !AGGS.includes(c.agg as Agg)) out.push(`${at}.agg: must be one of ${AGGS.join(', ')}`);
  if (c.thresholds !== undefined) {
    if (!Array.isArray(c.thresholds)) out.push(`${at}.thresholds: must be a list`);
    else
      c.thresholds.forEach((t, i) => {
        if (!isObj(t) || !isNum(t.value) || typeof t.color !== 'string')
          out.push(`${at}.thresholds[${i}]: must be {"value": number, "color": "#rrggbb"}`);
      });
  }
  for (const k of ['colors', 'units'] as const) {
    const m = c[k];
    if (m !== undefined && (!isObj(m) || !Object.values(m).every((v) => typeof v === 'string')))
      out.push(`${at}.${k}: must map names to text`);
  }
  for (const k of ['decimals', 'min', 'max', 'max_rows'] as const)
    if (c[k] !== undefined && c[k] !== null && !isNum(c[k])) out.push(`${at}.${k}: must be a number`);
  if (isNum(c.decimals) && (c.decimals < 0 || c.decimals > 10)) out.push(`${at}.decimals: must be between 0 and 10`);
  for (const k of ['unit', 'text', 'lat_key', 'lon_key', 'tile_url', 'base_color'] as const)
    if (c[k] !== undefined && typeof c[k] !== 'string') out.push(`${at}.${k}: must be text`);
  if (c.legend !== undefined && typeof c.legend !== 'boolean') out.push(`${at}.legend: must be true or false`);
}

/**
 * Checks a layout read from the server or from an imported file and returns it typed. Unknown
 * extra fields are kept (a newer UI may have written them); wrong types and unknown widget types
 * are errors, reported with their path.
 */
export function validateLayout(v: unknown): Layout {
  const out: string[] = [];
  if (!isObj(v)) throw new LayoutError(['the layout must be a JSON object']);
  if (v.schema !== 1) out.push(`schema: must be 1 (this file has ${JSON.stringify(v.schema ?? null)})`);
  const time = v.time;
  if (time !== undefined) {
    if (!isObj(time)) out.push('time: must be an object like {"range":"1h"}');
    else {
      const r = time.range;
      const okAbs = isObj(r) && isInt(r.from) && isInt(r.to) && r.from < r.to;
      if (!(typeof r === 'string' && parseDurationKey(r) !== null) && !okAbs)
        out.push(`time.range: must be a duration like "15m", "1h", "7d" or {"from":ms,"to":ms} with from < to`);
    }
  }
  if (v.refresh_s !== undefined && !(isInt(v.refresh_s) && v.refresh_s >= 0)) out.push('refresh_s: must be a whole number of seconds');
  if (!Array.isArray(v.widgets)) out.push('widgets: must be a list');
  else {
    if (v.widgets.length > MAX_WIDGETS) out.push(`widgets: at most ${MAX_WIDGETS} widgets`);
    const ids = new Set<string>();
    v.widgets.forEach((w, i) => {
      const at = `widgets[${i}]`;
      if (!isObj(w)) {
        out.push(`${at}: must be an object`);
        return;
      }
      if (typeof w.id !== 'string' || !w.id) out.push(`${at}.id: must be a non-empty text`);
      else if (ids.has(w.id)) out.push(`${at}.id: "${w.id}" is used twice`);
      else ids.add(w.id);
      if (!WIDGET_TYPES.includes(w.type as WidgetType))
        out.push(`${at}.type: unknown widget type ${JSON.stringify(w.type)} (known: ${WIDGET_TYPES.join(', ')})`);
      for (const k of ['x', 'y'] as const) if (!isInt(w[k]) || (w[k] as number) < 0) out.push(`${at}.${k}: must be a whole number >= 0`);
      for (const k of ['w', 'h'] as const) if (!isInt(w[k]) || (w[k] as number) < 1) out.push(`${at}.${k}: must be a whole number >= 1`);
      if (isInt(w.w) && w.w > COLUMNS) out.push(`${at}.w: at most ${COLUMNS} columns`);
      if (isInt(w.x) && isInt(w.w) && w.x + w.w > COLUMNS) out.push(`${at}: x + w must be at most ${COLUMNS}`);
      if (isInt(w.h) && w.h > 100) out.push(`${at}.h: at most 100 rows`);
      if (w.title !== undefined && typeof w.title !== 'string') out.push(`${at}.title: must be text`);
      if (w.config !== undefined && !isObj(w.config)) out.push(`${at}.config: must be an object`);
      else if (isObj(w.config)) checkConfig(w.config, `${at}.config`, out);
    });
  }
  if (out.length) throw new LayoutError(out);
  const layout = v as unknown as Layout;
  return {
    ...layout,
    time: layout.time ?? { range: '1h' },
    widgets: layout.widgets.map((w) => ({ ...w, title: w.title ?? '', config: w.config ?? {} })),
  };
}

/** The layout inside an exported dashboard file, or the file itself when it is a bare layout. */
export function parseImport(text: string, fileName: string): { name: string; description: string; layout: Layout } {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new LayoutError([`the file is not JSON (${(e as Error).message})`]);
  }
  if (!isObj(v)) throw new LayoutError(['the file must hold a JSON object (an exported dashboard)']);
  const base = fileName.replace(/\.json$/i, '').trim() || 'Imported dashboard';
  if ('layout' in v) {
    const name = typeof v.name === 'string' && v.name.trim() ? v.name.trim() : base;
    const description = typeof v.description === 'string' ? v.description : '';
    return { name, description, layout: validateLayout(v.layout) };
  }
  if ('widgets' in v || 'schema' in v) return { name: base, description: '', layout: validateLayout(v) };
  throw new LayoutError(['the file has neither "layout" (an exported dashboard) nor "widgets" (a layout)']);
}

/** Threshold colour for a value: the last threshold at or below it, else the base colour. */
export function colorFor(v: number | null | undefined, c: WidgetConfig, fallback: string): string {
  const base = c.base_color || fallback;
  if (v === null || v === undefined || !Number.isFinite(v)) return base;
  let col = base;
  for (const t of sortedThresholds(c)) if (v >= t.value) col = t.color;
  return col;
}

export function sortedThresholds(c: WidgetConfig): Threshold[] {
  return [...(c.thresholds ?? [])].filter((t) => Number.isFinite(t.value)).sort((a, b) => a.value - b.value);
}

export function unitOf(c: WidgetConfig, key: string): string | undefined {
  return c.units?.[key] || c.unit || undefined;
}

export function seriesColorOf(c: WidgetConfig, deviceId: string, key: string, index: number): string {
  return c.colors?.[`${deviceId}:${key}`] || c.colors?.[key] || PALETTE[index % PALETTE.length];
}
