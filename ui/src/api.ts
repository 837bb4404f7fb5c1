// REST client: bearer token from the session, transparent refresh on 401, problem+json errors.
// Every screen talks to the server through `api()` so errors look the same everywhere.

export interface Problem {
  status: number;
  code: string;
  title?: string;
  detail?: string;
  field?: string;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field?: string;
  constructor(p: Problem) {
    super(p.detail || p.title || `HTTP ${p.status}`);
    this.status = p.status;
    this.code = p.code;
    this.field = p.field;
  }
}

export type Role = 'sysadmin' | 'tenant_admin' | 'viewer';

export interface User {
  id: string;
  username: string;
  role: Role;
  tenant_id: string | null;
  created_at: number;
}

export interface Tenant {
  id: string;
  name: string;
  retention_days: number;
  max_msgs_per_s: number;
  created_at: number;
}

export interface Device {
  id: string;
  tenant_id: string;
  name: string;
  type: string;
  labels: Record<string, string>;
  created_at: number;
  gateway: boolean;
  gateway_id: string | null;
  online: boolean;
  last_connect: number | null;
  last_disconnect: number | null;
  last_activity: number | null;
  credentials?: { access_token: string };
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export type Value = number | boolean | string | object | null;
export interface Point {
  ts: number;
  value: Value;
}

export interface DashboardSummary {
  id: string;
  tenant_id: string;
  name: string;
  description: string;
  version: number;
  widgets?: number;
  created_at: number;
  updated_at: number;
}

export interface Dashboard extends DashboardSummary {
  layout: Record<string, unknown>;
}

interface Tokens {
  access_token: string;
  refresh_token: string;
  expires_at: number; // ms
}

const STORAGE_KEY = 'sw.session';

let tokens: Tokens | null = load();
const listeners = new Set<() => void>();

function load(): Tokens | null {
  try {
    const raw = localStorage.getItem(STORAGE_KEY);
    return raw ? (JSON.parse(raw) as Tokens) : null;
  } catch {
    return null;
  }
}

function store(t: Tokens | null) {
  tokens = t;
  if (t) localStorage.setItem(STORAGE_KEY, JSON.stringify(t));
  else localStorage.removeItem(STORAGE_KEY);
  listeners.forEach((l) => l());
}

/** Called when the session starts or ends (login, logout, refresh failure). */
export function onSessionChange(l: () => void): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

export function hasSession(): boolean {
  return tokens !== null;
}

/** The current access token, refreshed first when it is about to expire. */
export async function accessToken(): Promise<string | null> {
  if (!tokens) return null;
  if (tokens.expires_at - Date.now() < 30_000) await refresh();
  return tokens?.access_token ?? null;
}

function acceptTokens(body: { access_token: string; refresh_token: string; expires_in: number }) {
  store({
    access_token: body.access_token,
    refresh_token: body.refresh_token,
    expires_at: Date.now() + body.expires_in * 1000,
  });
}

async function problemOf(res: Response): Promise<ApiError> {
  let p: Partial<Problem> = {};
  try {
    p = await res.json();
  } catch {
    /* not JSON */
  }
  return new ApiError({
    status: res.status,
    code: p.code ?? 'http_' + res.status,
    title: p.title,
    detail: p.detail ?? (res.status >= 500 ? 'The server failed to answer; try again.' : res.statusText),
    field: p.field,
  });
}

export async function login(username: string, password: string): Promise<void> {
  let res: Response;
  try {
    res = await fetch('/api/v1/auth/login', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username, password }),
    });
  } catch {
    throw new ApiError({ status: 0, code: 'network', detail: 'Cannot reach the server. Check that it is running.' });
  }
  if (!res.ok) {
    const e = await problemOf(res);
    if (e.status === 401)
      throw new ApiError({ status: 401, code: e.code, detail: 'Wrong username or password.' });
    if (e.status === 429)
      throw new ApiError({ status: 429, code: e.code, detail: 'Too many attempts. Wait a moment and try again.' });
    throw e;
  }
  acceptTokens(await res.json());
}

let refreshing: Promise<void> | null = null;

function refresh(): Promise<void> {
  if (!refreshing) {
    refreshing = (async () => {
      const t = tokens;
      if (!t) return;
      try {
        const res = await fetch('/api/v1/auth/refresh', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ refresh_token: t.refresh_token }),
        });
        if (res.ok) acceptTokens(await res.json());
        else if (res.status === 401) store(null);
      } catch {
        /* network: keep the tokens, the next call reports the error */
      }
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

export async function logout(): Promise<void> {
  const t = tokens;
  if (t) {
    try {
      await fetch('/api/v1/auth/logout', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${t.access_token}` },
        body: JSON.stringify({ refresh_token: t.refresh_token }),
      });
    } catch {
      /* leaving anyway */
    }
  }
  store(null);
}

export interface ApiOptions {
  /** Response header values to return alongside the body (e.g. X-Next-Cursor). */
  signal?: AbortSignal;
}

/** Calls the REST API; resolves to the parsed JSON body (undefined for 204), rejects with ApiError. */
export async function api<T = unknown>(method: string, path: string, body?: unknown, opts: ApiOptions = {}): Promise<T> {
  const send = async () => {
    const token = await accessToken();
    const headers: Record<string, string> = {};
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    return fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: opts.signal,
    });
  };
  let res: Response;
  try {
    res = await send();
    if (res.status === 401 && tokens) {
      await refresh();
      if (!tokens) throw new ApiError({ status: 401, code: 'unauthenticated', detail: 'Your session ended; sign in again.' });
      res = await send();
    }
  } catch (e) {
    if (e instanceof ApiError) throw e;
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError({ status: 0, code: 'network', detail: 'Cannot reach the server.' });
  }
  if (res.status === 401) store(null);
  if (!res.ok) throw await problemOf(res);
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

/** Builds a query string from defined, non-empty values. */
export function qs(params: Record<string, string | number | boolean | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    u.set(k, String(v));
  }
  const s = u.toString();
  return s ? '?' + s : '';
}

export const me = () => api<User>('GET', '/api/v1/auth/me');

// ---- analytics (issue 5: detectors, rules, alarms, webhooks, insights) -------------------------

export type Severity = 'critical' | 'major' | 'minor' | 'warning' | 'info';
/** Most severe first. */
export const SEVERITIES: Severity[] = ['critical', 'major', 'minor', 'warning', 'info'];

/** Which devices a detector or rule applies to; every given part must match; {} = all devices. */
export interface DeviceFilter {
  device_ids?: string[];
  type?: string;
  /** "site" (has the label) or "site=north". */
  label?: string;
}

export interface ParamSpec {
  name: string;
  default: number;
  min: number;
  max: number;
  integer?: boolean;
  description: string;
}

export interface KindInfo {
  kind: string;
  title: string;
  description: string;
  multivariate: boolean;
  params: ParamSpec[];
  default_threshold: number;
}

/** Body of POST /detectors and PUT /detectors/{id} (and of an unsaved backtest). */
export interface DetectorBody {
  name: string;
  description?: string;
  device_filter?: DeviceFilter;
  keys: string[];
  kind: string;
  params?: Record<string, number>;
  threshold?: number;
  severity?: Severity;
  enabled?: boolean;
}

export interface Detector extends Required<Omit<DetectorBody, 'description'>> {
  id: string;
  description: string;
  version: number;
  created_ms: number;
  updated_ms: number;
}

export interface BacktestAlarm {
  start_ms: number;
  end_ms: number | null;
  peak_score: number;
  observed: number | null;
  expected_lo: number | null;
  expected_hi: number | null;
  message: string;
}

export interface BacktestSeries {
  device_id: string;
  device_name: string;
  key: string;
  /** [ts, value, score] */
  points: [number, number | null, number | null][];
  alarms: BacktestAlarm[];
}

export interface BacktestResult {
  series: BacktestSeries[];
  points_scanned: number;
  truncated: boolean;
}

export interface RuleBody {
  name: string;
  description?: string;
  device_filter?: DeviceFilter;
  condition: string;
  duration_ms?: number;
  hysteresis?: number;
  severity?: Severity;
  enabled?: boolean;
  message?: string;
}

export interface Rule extends Required<Omit<RuleBody, 'description' | 'message'>> {
  id: string;
  description: string;
  message: string;
  /** Keys read by the condition. */
  keys: string[];
  version: number;
  created_ms: number;
  updated_ms: number;
}

export type AlarmStatus = 'active' | 'acknowledged' | 'cleared';

export interface Alarm {
  id: string;
  source: { type: 'detector' | 'rule'; id: string; name: string };
  device_id: string;
  device_name: string;
  /** The key, or the keys joined by "," (multivariate detectors, rules). */
  key: string;
  severity: Severity;
  status: AlarmStatus;
  acknowledged: boolean;
  /** Occurrences while open. */
  count: number;
  start_ms: number;
  last_ms: number;
  end_ms: number | null;
  message: string;
  details?: { observed?: number | null; expected_lo?: number | null; expected_hi?: number | null; score?: number | null };
  acked_by: string | null;
  acked_ms: number | null;
  /** null, "auto" (the condition ended) or the user id. */
  cleared_by: string | null;
  cleared_ms: number | null;
}

export interface WebhookBody {
  name: string;
  url: string;
  secret?: string;
  min_severity?: Severity;
  enabled?: boolean;
}

export interface Webhook {
  id: string;
  name: string;
  url: string;
  min_severity: Severity;
  enabled: boolean;
  created_ms: number;
  updated_ms: number;
  last_delivery_ms: number | null;
  last_error: string | null;
  failing: boolean;
  /** Only in the answer that created it or set a new one. */
  secret?: string;
}

export interface Delivery {
  id: string;
  event: string;
  alarm_id: string | null;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  next_attempt_ms: number | null;
  created_ms: number;
  delivered_ms: number | null;
}

export interface Forecast {
  key: string;
  interval_ms: number;
  /** 0 = no season found. */
  season_ms: number;
  fitted_points: number;
  /** [ts, yhat, lo, hi] (95 % band) */
  points: [number, number, number, number][];
}

export interface Insights {
  key: string;
  from: number;
  to: number;
  points: number;
  truncated?: boolean;
  trend: { slope_per_day: number | null; intercept: number | null; r2: number | null } | null;
  quality: {
    expected_interval_ms: number;
    gaps: { from: number; to: number }[];
    gap_count: number;
    missing_share: number;
    stuck: { from: number; to: number; value: number }[];
    stuck_share: number;
    out_of_range_share: number;
    range: { lo: number | null; hi: number | null; source: 'given' | 'robust' } | null;
  };
}
