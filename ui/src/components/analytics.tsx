// Pieces shared by the analytics screens (alarms, detectors, rules, webhooks, the device page's
// Analytics tab and the dashboard alarm widget): severity and status badges, the device-filter
// editor and its one-line summary, alarm ack / clear, the key suggestions of a device, and the
// open-alarm count shown in the sidebar.
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, qs, SEVERITIES, type Alarm, type DeviceFilter, type Page as ApiPage, type Severity } from '../api';
import { formatDuration } from '../format';
import { live } from '../live';
import { Link } from '../router';
import { DevicePicker, useDeviceNames } from './devicepicker';
import { Page } from './layout';
import { Empty, toast } from './ui';

export const SEVERITY_LABEL: Record<Severity, string> = {
  critical: 'Critical',
  major: 'Major',
  minor: 'Minor',
  warning: 'Warning',
  info: 'Info',
};

export function isSeverity(s: unknown): s is Severity {
  return typeof s === 'string' && (SEVERITIES as string[]).includes(s);
}

export function SeverityBadge({ severity }: { severity: Severity | string }) {
  const s = isSeverity(severity) ? severity : 'info';
  return (
    <span class={'badge sev sev-' + s} data-testid="severity" data-severity={s}>
      {SEVERITY_LABEL[s]}
    </span>
  );
}

export function AlarmStatusBadge({ alarm }: { alarm: Pick<Alarm, 'status' | 'acknowledged' | 'cleared_by'> }) {
  const { status } = alarm;
  const label =
    status === 'active' ? 'Active' : status === 'acknowledged' ? 'Acknowledged' : alarm.acknowledged ? 'Cleared' : alarm.cleared_by === 'auto' ? 'Cleared (auto)' : 'Cleared';
  return (
    <span class={'badge astatus astatus-' + status} data-testid="alarm-status" data-status={status}>
      {status === 'active' && <span class="dot live-dot" aria-hidden="true" />}
      {label}
    </span>
  );
}

export function SeveritySelect(props: { value: Severity; onChange: (s: Severity) => void; id?: string; testid?: string }) {
  return (
    <select id={props.id} value={props.value} onChange={(e) => props.onChange(e.currentTarget.value as Severity)} data-testid={props.testid}>
      {SEVERITIES.map((s) => (
        <option key={s} value={s}>
          {SEVERITY_LABEL[s]}
        </option>
      ))}
    </select>
  );
}

/** Ack / clear one alarm; resolves to the server's updated alarm (toasts the outcome). */
export async function alarmAction(alarm: Alarm, action: 'ack' | 'clear'): Promise<Alarm | null> {
  try {
    const a = await api<Alarm>('POST', `/api/v1/alarms/${encodeURIComponent(alarm.id)}/${action}`);
    toast(action === 'ack' ? 'Alarm acknowledged' : 'Alarm cleared');
    return a;
  } catch (e) {
    if (e instanceof ApiError && e.status === 409) {
      toast(action === 'ack' ? 'This alarm was already acknowledged or cleared.' : 'This alarm is already cleared.', 'info');
      try {
        return await api<Alarm>('GET', `/api/v1/alarms/${encodeURIComponent(alarm.id)}`);
      } catch {
        return null;
      }
    }
    toast(e instanceof Error ? e.message : String(e), 'error');
    return null;
  }
}

/** Ack and Clear buttons for editors (render nothing for viewers: pass editable=false). */
export function AlarmActions(props: { alarm: Alarm; editable: boolean; onChange: (a: Alarm) => void; compact?: boolean }) {
  const [busy, setBusy] = useState(false);
  const a = props.alarm;
  if (!props.editable || a.status === 'cleared') return null;
  const run = async (action: 'ack' | 'clear') => {
    setBusy(true);
    const r = await alarmAction(a, action);
    setBusy(false);
    if (r) props.onChange(r);
  };
  return (
    <span class="alarm-actions">
      {a.status === 'active' && (
        <button class={'small' + (props.compact ? ' ghost' : '')} disabled={busy} onClick={() => run('ack')} data-testid="alarm-ack" aria-label={`Acknowledge alarm: ${a.message}`} title="Acknowledge">
          {props.compact ? '✓' : 'Ack'}
        </button>
      )}
      <button class={'small' + (props.compact ? ' ghost' : '')} disabled={busy} onClick={() => run('clear')} data-testid="alarm-clear" aria-label={`Clear alarm: ${a.message}`} title="Clear">
        {props.compact ? '✕' : 'Clear'}
      </button>
    </span>
  );
}

/** "open for 5 min", "lasted 2 h". */
export function alarmDuration(a: Pick<Alarm, 'start_ms' | 'end_ms'>, now = Date.now()): string {
  if (a.end_ms !== null && a.end_ms !== undefined) return formatDuration(Math.max(0, a.end_ms - a.start_ms));
  return formatDuration(Math.max(0, now - a.start_ms));
}

// ---- device filter ----------------------------------------------------------------------------

type FilterMode = 'all' | 'devices' | 'match';

function modeOf(f: DeviceFilter): FilterMode {
  if (f.device_ids && f.device_ids.length) return 'devices';
  if (f.type || f.label) return 'match';
  return 'all';
}

/** Removes empty parts so the server gets {} for "every device". */
export function cleanFilter(f: DeviceFilter): DeviceFilter {
  const out: DeviceFilter = {};
  if (f.device_ids && f.device_ids.length) out.device_ids = f.device_ids;
  if (f.type && f.type.trim()) out.type = f.type.trim();
  if (f.label && f.label.trim()) out.label = f.label.trim();
  return out;
}

/** All devices / these devices / devices of a type or with a label. */
export function DeviceFilterEditor(props: { value: DeviceFilter; onChange: (f: DeviceFilter) => void; idPrefix: string; error?: string }) {
  const f = props.value;
  const [mode, setMode] = useState<FilterMode>(modeOf(f));
  const set = (m: FilterMode) => {
    setMode(m);
    if (m === 'all') props.onChange({});
    else if (m === 'devices') props.onChange({ device_ids: f.device_ids ?? [] });
    else props.onChange({ type: f.type ?? '', label: f.label ?? '' });
  };
  return (
    <fieldset class="dfilter" data-testid="device-filter">
      <legend>Devices</legend>
      <fieldset class="seg" role="radiogroup" aria-label="Which devices">
        {(
          [
            ['all', 'All devices'],
            ['devices', 'Pick devices'],
            ['match', 'By type / label'],
          ] as [FilterMode, string][]
        ).map(([m, label]) => (
          <label key={m} class={mode === m ? 'on' : ''}>
            <input type="radio" name={props.idPrefix + '-fmode'} checked={mode === m} onChange={() => set(m)} data-testid={`filter-mode-${m}`} /> {label}
          </label>
        ))}
      </fieldset>
      {mode === 'all' && <div class="muted small">Every device of the tenant, including devices added later.</div>}
      {mode === 'devices' && (
        <div class="field">
          <label for={props.idPrefix + '-devices'} class="muted small">
            Devices
          </label>
          <DevicePicker id={props.idPrefix + '-devices'} multiple value={f.device_ids ?? []} onChange={(ids) => props.onChange({ device_ids: ids })} />
        </div>
      )}
      {mode === 'match' && (
        <div class="form-row">
          <label class="field">
            <span>Device type</span>
            <input value={f.type ?? ''} placeholder="e.g. pump" onInput={(e) => props.onChange({ type: e.currentTarget.value, label: f.label ?? '' })} data-testid="filter-type-input" />
          </label>
          <label class="field">
            <span>Label</span>
            <input value={f.label ?? ''} placeholder="site or site=north" onInput={(e) => props.onChange({ type: f.type ?? '', label: e.currentTarget.value })} data-testid="filter-label-input" />
          </label>
        </div>
      )}
      {props.error && (
        <span class="field-error" role="alert">
          {props.error}
        </span>
      )}
    </fieldset>
  );
}

/** Client-side check of a filter being edited; returns an error text or null. */
export function filterError(f: DeviceFilter): string | null {
  if (f.device_ids && f.device_ids.length === 0) return 'Pick at least one device, or choose "All devices".';
  if (f.device_ids === undefined && f.type !== undefined && f.label !== undefined && !f.type.trim() && !f.label.trim())
    return 'Enter a device type, a label, or both.';
  return null;
}

/** One line: "All devices", "Boiler 1, Boiler 2", "type pump · label site=north". */
export function FilterSummary({ filter }: { filter: DeviceFilter }) {
  const ids = filter.device_ids ?? [];
  const names = useDeviceNames(ids);
  const parts: string[] = [];
  if (ids.length) {
    const shown = ids.slice(0, 3).map((id) => names[id] ?? '…');
    parts.push(shown.join(', ') + (ids.length > 3 ? ` +${ids.length - 3}` : ''));
  }
  if (filter.type) parts.push(`type ${filter.type}`);
  if (filter.label) parts.push(`label ${filter.label}`);
  return <span class={parts.length ? '' : 'muted'}>{parts.length ? parts.join(' · ') : 'All devices'}</span>;
}

// ---- key suggestions ------------------------------------------------------------------------------

const keyCache = new Map<string, string[]>();

/** Telemetry keys of a device (cached), without derived *.anomaly_score series. */
export function useDeviceKeys(deviceId: string | undefined): string[] {
  const [keys, setKeys] = useState<string[]>(deviceId ? keyCache.get(deviceId) ?? [] : []);
  useEffect(() => {
    if (!deviceId) return setKeys([]);
    const cached = keyCache.get(deviceId);
    if (cached) return setKeys(cached);
    let alive = true;
    api<string[]>('GET', `/api/v1/devices/${encodeURIComponent(deviceId)}/telemetry/keys`)
      .then((ks) => {
        const clean = ks.filter((k) => !k.endsWith('.anomaly_score')).sort((a, b) => a.localeCompare(b));
        keyCache.set(deviceId, clean);
        if (alive) setKeys(clean);
      })
      .catch(() => alive && setKeys([]));
    return () => {
      alive = false;
    };
  }, [deviceId]);
  return keys;
}

/** A list of key names as chips plus a text box (Enter or comma adds); suggestions below. */
export function KeysInput(props: { value: string[]; onChange: (keys: string[]) => void; suggestions: string[]; id: string; error?: string; max?: number }) {
  const [text, setText] = useState('');
  const add = (k: string) => {
    const key = k.trim();
    if (!key || props.value.includes(key)) return;
    if (props.max && props.value.length >= props.max) props.onChange([...props.value.slice(0, props.max - 1), key]);
    else props.onChange([...props.value, key]);
  };
  const commit = () => {
    text
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .forEach(add);
    setText('');
  };
  const free = props.suggestions.filter((s) => !props.value.includes(s));
  return (
    <div class="keys-input" data-testid="keys-input">
      <div class="devpick-box" onClick={(e) => (e.currentTarget.querySelector('input') as HTMLInputElement | null)?.focus()}>
        {props.value.map((k) => (
          <span class="chip mono" key={k}>
            {k}
            <button type="button" class="ghost chip-x" aria-label={`Remove key ${k}`} onClick={() => props.onChange(props.value.filter((x) => x !== k))}>
              ×
            </button>
          </span>
        ))}
        <input
          id={props.id}
          value={text}
          placeholder={props.value.length ? 'Add a key…' : 'e.g. temperature'}
          autocomplete="off"
          onInput={(e) => {
            const v = e.currentTarget.value;
            if (v.endsWith(',')) {
              v.split(',').map((s) => s.trim()).filter(Boolean).forEach(add);
              setText('');
            } else setText(v);
          }}
          onKeyDown={(e) => {
            if (e.key === 'Enter') {
              e.preventDefault();
              commit();
            } else if (e.key === 'Backspace' && !text && props.value.length) props.onChange(props.value.slice(0, -1));
          }}
          onBlur={commit}
          data-testid="keys-text"
        />
      </div>
      {free.length > 0 && (
        <div class="key-suggest">
          <span class="muted small">Keys of the device:</span>
          {free.slice(0, 24).map((k) => (
            <button type="button" key={k} class="key-chip" onClick={() => add(k)} data-testid="key-suggestion">
              + {k}
            </button>
          ))}
        </div>
      )}
      {props.error && (
        <span class="field-error" role="alert">
          {props.error}
        </span>
      )}
    </div>
  );
}

// ---- open-alarm count (sidebar badge) ------------------------------------------------------------

let countState: { n: number; more: boolean } | null = null;
const countListeners = new Set<() => void>();
let countTimer: number | undefined;
let countUnsub: (() => void) | null = null;
let countRefs = 0;

async function refreshCount() {
  try {
    const p = await api<ApiPage<Alarm>>('GET', '/api/v1/alarms' + qs({ status: 'open', page_size: 100 }));
    countState = { n: p.items.length, more: !!p.next_cursor };
  } catch {
    countState = null; // no alarms API (or no access): no badge
  }
  countListeners.forEach((l) => l());
}

let debounce: number | undefined;
/** Re-counts soon (after an ack / clear on any screen, or a live alarm event). */
export function alarmsChanged() {
  clearTimeout(debounce);
  debounce = window.setTimeout(refreshCount, 400);
}

/** Number of open alarms of the tenant ("99+" when more), kept current by the live stream. */
export function useOpenAlarmCount(enabled: boolean): string | null {
  const [, setTick] = useState(0);
  useEffect(() => {
    if (!enabled) return;
    const l = () => setTick((t) => t + 1);
    countListeners.add(l);
    let start: number | undefined;
    if (countRefs++ === 0) {
      // After the page's own first requests (the dashboard render time is measured).
      start = window.setTimeout(() => {
        refreshCount();
        countTimer = window.setInterval(() => document.visibilityState === 'visible' && refreshCount(), 60_000);
        countUnsub = live.subscribeAlarms({ alarm: () => alarmsChanged(), error: () => {} });
      }, 1500);
    }
    return () => {
      countListeners.delete(l);
      if (--countRefs === 0) {
        clearTimeout(start);
        clearInterval(countTimer);
        countUnsub?.();
        countUnsub = null;
      }
    };
  }, [enabled]);
  if (!enabled || !countState || countState.n === 0) return null;
  return countState.more ? `${countState.n - 1}+` : String(countState.n);
}

// ---- page frame pieces ------------------------------------------------------------------------------

/** Detectors | Rules | Webhooks switcher under the page title of the analytics screens. */
export function AnalyticsTabs({ active }: { active: 'detectors' | 'rules' | 'webhooks' }) {
  const tabs: [typeof active, string][] = [
    ['detectors', 'Detectors'],
    ['rules', 'Rules'],
    ['webhooks', 'Webhooks'],
  ];
  return (
    <nav class="tabs" aria-label="Analytics">
      {tabs.map(([id, label]) => (
        <Link key={id} href={`/analytics/${id}`} class={'tab-link' + (id === active ? ' active' : '')} aria-current={id === active ? 'page' : undefined}>
          {label}
        </Link>
      ))}
    </nav>
  );
}

/** The system administrator has no tenant data. */
export function AnalyticsNoData({ title }: { title: string }) {
  return (
    <Page title={title}>
      <div class="panel">
        <Empty title="Analytics belong to tenants">
          <span>Sign in as a tenant user to configure detectors, rules and webhooks.</span>
        </Empty>
      </div>
    </Page>
  );
}
