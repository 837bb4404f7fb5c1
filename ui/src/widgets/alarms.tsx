// Alarm list: GET /api/v1/alarms (added by the analytics work) plus live alarms over the
// WebSocket. A server without the alarms API answers 404: say so instead of failing.
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, qs } from '../api';
import { formatAgo, formatDateTime } from '../format';
import { live } from '../live';
import { Link } from '../router';
import { WidgetError, WidgetLoading, WidgetMessage } from './common';
import { useDash, useReady, useTicker } from './data';
import type { Widget } from './model';

type Alarm = Record<string, unknown>;

const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function alarmTime(a: Alarm): number | undefined {
  return num(a.updated_at) ?? num(a.created_at) ?? num(a.ts) ?? num(a.start_ts);
}

function severityClass(s: string | undefined): string {
  switch ((s ?? '').toLowerCase()) {
    case 'critical':
    case 'major':
    case 'error':
      return 'danger';
    case 'minor':
    case 'warning':
    case 'warn':
      return 'warn';
    default:
      return 'accent';
  }
}

export function AlarmsWidget({ w }: { w: Widget }) {
  const env = useDash();
  const [state, setState] = useState<'loading' | 'ok' | 'missing' | 'error'>('loading');
  const [error, setError] = useState<unknown>(null);
  const [items, setItems] = useState<Alarm[]>([]);
  const limit = Math.max(1, Math.min(200, w.config.max_rows ?? 50));
  const deviceIds = w.config.datasource?.mode === 'devices' ? w.config.datasource.device_ids ?? [] : [];
  useTicker(10000);
  useReady(w.id, state !== 'loading');

  useEffect(() => {
    let alive = true;
    api<{ items?: Alarm[] } | Alarm[]>('GET', '/api/v1/alarms' + qs({ page_size: limit, device_id: deviceIds.length === 1 ? deviceIds[0] : undefined }))
      .then((r) => {
        if (!alive) return;
        const list = Array.isArray(r) ? r : r?.items ?? [];
        setItems(deviceIds.length ? list.filter((a) => deviceIds.includes(String(a.device_id))) : list);
        setState('ok');
      })
      .catch((e) => {
        if (!alive) return;
        if (e instanceof ApiError && (e.status === 404 || e.status === 405 || e.status === 501)) setState('missing');
        else {
          setError(e);
          setState('error');
        }
      });
    return () => {
      alive = false;
    };
  }, [env.gen, limit, deviceIds.join(',')]);

  useEffect(() => {
    if (state !== 'ok') return;
    return live.subscribeAlarms({
      alarm: (a) => {
        if (deviceIds.length && !deviceIds.includes(String(a.device_id))) return;
        setItems((xs) => {
          const id = a.id;
          const rest = id === undefined ? xs : xs.filter((x) => x.id !== id);
          return [a, ...rest].slice(0, limit);
        });
      },
      error: () => {
        /* a server without live alarms: the list still works */
      },
    });
  }, [state, limit, deviceIds.join(',')]);

  if (state === 'loading') return <WidgetLoading />;
  if (state === 'missing')
    return (
      <WidgetMessage kind="info" title="Alarms not available">
        Alarms are not available on this server.
      </WidgetMessage>
    );
  if (state === 'error') return <WidgetError error={error} />;
  if (!items.length)
    return (
      <WidgetMessage title="No alarms">
        <span class="badge ok">All clear</span>
      </WidgetMessage>
    );
  return (
    <ul class="alarm-list" data-testid="alarm-list">
      {items.map((a, i) => {
        const sev = str(a.severity);
        const t = alarmTime(a);
        const dev = str(a.device_id);
        return (
          <li key={String(a.id ?? i)}>
            <span class={'badge ' + severityClass(sev)}>{sev ?? 'alarm'}</span>
            <div class="alarm-main">
              <div class="alarm-title">{str(a.message) ?? str(a.type) ?? str(a.name) ?? 'Alarm'}</div>
              <div class="muted small">
                {dev && (
                  <>
                    <Link href={`/devices/${dev}`}>{str(a.device_name) ?? 'device'}</Link>
                    {' · '}
                  </>
                )}
                {str(a.status) ?? str(a.state) ?? ''}
              </div>
            </div>
            <span class="muted small nowrap" title={t ? formatDateTime(t) : undefined}>
              {t ? formatAgo(t) : ''}
            </span>
          </li>
        );
      })}
    </ul>
  );
}
