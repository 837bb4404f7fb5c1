// Alarm list widget: the open alarms (GET /api/v1/alarms?status=open, newest first) of every
// device or of the devices picked in its settings, kept current by the live alarm stream (merged
// by id; cleared alarms leave the list). Tenant admins can acknowledge and clear from here.
// A server without the alarms API answers 404: say so instead of failing.
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, qs, type Alarm, type Page } from '../api';
import { AlarmActions, alarmsChanged, AlarmStatusBadge, SeverityBadge } from '../components/analytics';
import { formatAgo, formatDateTime } from '../format';
import { live } from '../live';
import { Link } from '../router';
import { canEdit, useSession } from '../session';
import { WidgetError, WidgetLoading, WidgetMessage } from './common';
import { useDash, useReady, useTicker } from './data';
import type { Widget } from './model';

function isAlarm(a: unknown): a is Alarm {
  const x = a as Alarm;
  return !!x && typeof x.id === 'string' && typeof x.status === 'string' && typeof x.start_ms === 'number';
}

export function AlarmsWidget({ w }: { w: Widget }) {
  const env = useDash();
  const { user } = useSession();
  const editable = canEdit(user);
  const [state, setState] = useState<'loading' | 'ok' | 'missing' | 'error'>('loading');
  const [error, setError] = useState<unknown>(null);
  const [items, setItems] = useState<Alarm[]>([]);
  const limit = Math.max(1, Math.min(200, w.config.max_rows ?? 50));
  const deviceIds = w.config.datasource?.mode === 'devices' ? w.config.datasource.device_ids ?? [] : [];
  const devKey = deviceIds.join(',');
  useTicker(10000);
  useReady(w.id, state !== 'loading');

  useEffect(() => {
    let alive = true;
    // One device: the server filters; several: ask for more and filter here.
    const one = deviceIds.length === 1 ? deviceIds[0] : undefined;
    const pageSize = deviceIds.length > 1 ? Math.min(1000, limit * 5) : limit;
    api<Page<Alarm>>('GET', '/api/v1/alarms' + qs({ status: 'open', page_size: pageSize, device_id: one }))
      .then((r) => {
        if (!alive) return;
        const list = (r?.items ?? []).filter(isAlarm);
        setItems((deviceIds.length ? list.filter((a) => deviceIds.includes(a.device_id)) : list).slice(0, limit));
        setState('ok');
      })
      .catch((e) => {
        if (!alive) return;
        if (e instanceof ApiError && (e.status === 404 || e.status === 405 || e.status === 501) && e.code !== 'not_found') setState('missing');
        else {
          setError(e);
          setState('error');
        }
      });
    return () => {
      alive = false;
    };
  }, [env.gen, limit, devKey]);

  const merge = (a: Alarm) =>
    setItems((xs) => {
      const rest = xs.filter((x) => x.id !== a.id);
      if (a.status === 'cleared') return rest;
      return [a, ...rest].sort((x, y) => y.start_ms - x.start_ms).slice(0, limit);
    });

  useEffect(() => {
    if (state !== 'ok') return;
    return live.subscribeAlarms({
      alarm: (raw) => {
        if (!isAlarm(raw)) return;
        if (deviceIds.length && !deviceIds.includes(raw.device_id)) return;
        merge(raw);
      },
      error: () => {
        /* a server without live alarms: the list still works */
      },
    });
  }, [state, limit, devKey]);

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
      <WidgetMessage title="No open alarms">
        <span class="badge ok">All clear</span>
      </WidgetMessage>
    );
  return (
    <ul class="alarm-list" data-testid="alarm-list">
      {items.map((a) => (
        <li key={a.id} data-testid="widget-alarm" data-alarm-id={a.id} data-status={a.status}>
          <SeverityBadge severity={a.severity} />
          <div class="alarm-main">
            <div class="alarm-title" title={a.message}>
              {a.message || a.source?.name || 'Alarm'}
            </div>
            <div class="muted small alarm-sub">
              <Link href={`/devices/${a.device_id}?tab=analytics`}>{a.device_name || 'device'}</Link>
              {' · '}
              <span class="mono">{a.key}</span>
              {a.count > 1 && ` · ${a.count}×`}
            </div>
          </div>
          {a.status === 'acknowledged' && <AlarmStatusBadge alarm={a} />}
          <span class="muted small nowrap" title={formatDateTime(a.start_ms)}>
            {formatAgo(a.start_ms, Math.max(Date.now(), a.start_ms))}
          </span>
          <AlarmActions
            alarm={a}
            editable={editable}
            compact
            onChange={(x) => {
              merge(x);
              alarmsChanged();
            }}
          />
        </li>
      ))}
    </ul>
  );
}
