// Live data over one shared WebSocket (/api/v1/ws, protocol in docs/websocket.md).
// Widgets and pages call subscribeTelemetry(); the client authenticates with the session's JWT,
// re-authenticates before the token expires, reconnects with backoff and re-subscribes.
import { accessToken, hasSession, onSessionChange, type Value } from './api';

export interface TelemetrySpec {
  device_ids?: string[];
  filter?: { type?: string; label?: string };
  keys?: string[];
}

/** Latest values: device id -> key -> {ts, value}. */
export type Snapshot = Record<string, Record<string, { ts: number; value: Value }>>;

export interface TelemetryHandlers {
  /** Initial latest values (also after every reconnect). */
  snapshot?: (s: Snapshot) => void;
  /** New points of one device: key -> [[ts, value], ...] in time order. */
  points: (deviceId: string, points: Record<string, [number, Value][]>, coalesced: boolean) => void;
  error?: (code: string, detail: string) => void;
}

export interface AlarmHandlers {
  alarm: (alarm: Record<string, unknown>) => void;
  error?: (code: string, detail: string) => void;
}

type Sub =
  | { kind: 'telemetry'; spec: TelemetrySpec; h: TelemetryHandlers }
  | { kind: 'alarms'; h: AlarmHandlers };

export type LiveState = 'connecting' | 'open' | 'closed';

class LiveClient {
  private ws: WebSocket | null = null;
  private subs = new Map<string, Sub>();
  private seq = 0;
  private backoff = 500;
  private reconnectTimer: number | undefined;
  private refreshTimer: number | undefined;
  private authed = false;
  state: LiveState = 'closed';
  private stateListeners = new Set<(s: LiveState) => void>();

  onState(l: (s: LiveState) => void): () => void {
    this.stateListeners.add(l);
    return () => this.stateListeners.delete(l);
  }

  private setState(s: LiveState) {
    this.state = s;
    this.stateListeners.forEach((l) => l(s));
  }

  subscribeTelemetry(spec: TelemetrySpec, h: TelemetryHandlers): () => void {
    return this.add({ kind: 'telemetry', spec, h });
  }

  subscribeAlarms(h: AlarmHandlers): () => void {
    return this.add({ kind: 'alarms', h });
  }

  private add(sub: Sub): () => void {
    const id = 's' + ++this.seq;
    this.subs.set(id, sub);
    if (this.authed) this.sendSubscribe(id, sub);
    else this.ensureOpen();
    return () => {
      this.subs.delete(id);
      if (this.authed) this.send({ type: 'unsubscribe', sub: id });
      if (this.subs.size === 0) this.closeSoon();
    };
  }

  private closeTimer: number | undefined;
  private closeSoon() {
    clearTimeout(this.closeTimer);
    // Navigating between pages unsubscribes then subscribes: keep the socket for a moment.
    this.closeTimer = window.setTimeout(() => {
      if (this.subs.size === 0) this.close();
    }, 5000);
  }

  close() {
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.refreshTimer);
    this.authed = false;
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000);
    this.setState('closed');
  }

  private send(msg: unknown) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  private sendSubscribe(id: string, sub: Sub) {
    if (sub.kind === 'telemetry') this.send({ type: 'subscribe', sub: id, stream: 'telemetry', ...sub.spec });
    else this.send({ type: 'subscribe', sub: id, stream: 'alarms' });
  }

  private ensureOpen() {
    clearTimeout(this.closeTimer);
    if (this.ws || !hasSession()) return;
    this.setState('connecting');
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}/api/v1/ws`);
    this.ws = ws;
    ws.onopen = async () => {
      const token = await accessToken();
      if (!token) {
        this.close();
        return;
      }
      ws.send(JSON.stringify({ type: 'auth', token }));
    };
    ws.onmessage = (ev) => this.onMessage(ev.data as string);
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.authed = false;
      clearTimeout(this.refreshTimer);
      this.setState('closed');
      if (this.subs.size > 0 && hasSession()) {
        this.reconnectTimer = window.setTimeout(() => this.ensureOpen(), this.backoff);
        this.backoff = Math.min(this.backoff * 2, 15000);
      }
    };
  }

  private scheduleRefresh(expiresAt: number) {
    clearTimeout(this.refreshTimer);
    const inMs = Math.max(5000, expiresAt - Date.now() - 60_000);
    this.refreshTimer = window.setTimeout(async () => {
      const token = await accessToken();
      if (token) this.send({ type: 'auth', token });
    }, inMs);
  }

  private onMessage(data: string) {
    let m: Record<string, any>;
    try {
      m = JSON.parse(data);
    } catch {
      return;
    }
    switch (m.type) {
      case 'auth_ok': {
        if (typeof m.expires_at === 'number') this.scheduleRefresh(m.expires_at);
        if (!this.authed) {
          this.authed = true;
          this.backoff = 500;
          this.setState('open');
          for (const [id, sub] of this.subs) this.sendSubscribe(id, sub);
        }
        break;
      }
      case 'snapshot': {
        const sub = this.subs.get(m.sub);
        if (sub?.kind === 'telemetry') sub.h.snapshot?.(m.devices ?? {});
        break;
      }
      case 'telemetry': {
        const sub = this.subs.get(m.sub);
        if (sub?.kind === 'telemetry') sub.h.points(m.device_id, m.points ?? {}, !!m.coalesced);
        break;
      }
      case 'alarm': {
        const sub = this.subs.get(m.sub);
        if (sub?.kind === 'alarms') sub.h.alarm(m.alarm ?? {});
        break;
      }
      case 'error': {
        const sub = m.sub ? this.subs.get(m.sub) : undefined;
        if (sub) sub.h.error?.(m.code, m.detail);
        else console.warn('live:', m.code, m.detail);
        break;
      }
    }
  }
}

export const live = new LiveClient();

onSessionChange(() => {
  if (!hasSession()) live.close();
});
