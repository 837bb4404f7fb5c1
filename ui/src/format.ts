// Human-readable dates, durations, numbers and units, used by every screen.

const dateTime = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
});
const timeOnly = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

export function formatDateTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  const d = new Date(ms);
  const today = new Date();
  if (d.toDateString() === today.toDateString()) return timeOnly.format(d);
  return dateTime.format(d);
}

/** "just now", "5 min ago", "3 h ago", "2 days ago", or a date. */
export function formatAgo(ms: number | null | undefined, now = Date.now()): string {
  if (ms === null || ms === undefined) return 'never';
  const s = Math.round((now - ms) / 1000);
  if (s < 0) return formatDateTime(ms);
  if (s < 10) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  if (s < 30 * 86400) return `${Math.floor(s / 86400)} days ago`;
  return formatDateTime(ms);
}

export function formatDuration(ms: number): string {
  const s = ms / 1000;
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86400) return `${+(s / 3600).toFixed(1)} h`;
  return `${+(s / 86400).toFixed(1)} d`;
}

/** A number with sensible precision and an optional unit: 21.53 °C, 1.2k, 3.4 M. */
export function formatNumber(v: number, unit?: string, digits?: number): string {
  let s: string;
  const a = Math.abs(v);
  if (digits !== undefined) s = v.toFixed(digits);
  else if (a !== 0 && (a >= 1e6 || a < 1e-3)) s = v.toExponential(2);
  else if (a >= 1e4) s = Math.round(v).toLocaleString();
  else if (a >= 100) s = (+v.toFixed(1)).toString();
  else s = (+v.toFixed(2)).toString();
  return unit ? `${s} ${unit}` : s;
}

export function formatValue(v: unknown, unit?: string, digits?: number): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'number') return formatNumber(v, unit, digits);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'string') return unit ? `${v} ${unit}` : v;
  return JSON.stringify(v);
}
