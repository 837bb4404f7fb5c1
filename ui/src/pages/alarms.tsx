// Alarms (issue 5): the tenant's alarms, newest first, server-paged, filtered by status (open by
// default), severity and device (all in the URL). New and updated alarms arrive over the
// WebSocket and are merged by id without a reload. Tenant admins acknowledge and clear them.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, qs, SEVERITIES, type Alarm, type AlarmStatus, type Page as ApiPage } from '../api';
import { AlarmActions, alarmDuration, alarmsChanged, AlarmStatusBadge, SEVERITY_LABEL, SeverityBadge } from '../components/analytics';
import { expectedText } from '../components/backtest';
import { DevicePicker } from '../components/devicepicker';
import { LiveIndicator, Page } from '../components/layout';
import { Pager, usePaged } from '../components/pager';
import { Empty, ErrorAlert, Loading, Modal } from '../components/ui';
import { formatAgo, formatDateTime, formatNumber } from '../format';
import { live } from '../live';
import { Link, setQuery, useLocation } from '../router';
import { canEdit, useSession } from '../session';
import { useNow } from './devices';

export type StatusFilter = 'open' | AlarmStatus | 'all';
const STATUS_FILTERS: [StatusFilter, string][] = [
  ['open', 'Open'],
  ['active', 'Active'],
  ['acknowledged', 'Acknowledged'],
  ['cleared', 'Cleared'],
  ['all', 'All'],
];

export function statusMatches(s: AlarmStatus, f: StatusFilter): boolean {
  if (f === 'all') return true;
  if (f === 'open') return s !== 'cleared';
  return s === f;
}

/** Who did it: "you", "automatically", or the user id. */
function byWhom(id: string | null, me: string | undefined): string {
  if (!id) return '';
  if (id === me) return 'you';
  return `user ${id.slice(0, 8)}`;
}

export function AlarmsPage() {
  const { user } = useSession();
  const editable = canEdit(user);
  const { query } = useLocation();
  const status = (STATUS_FILTERS.find(([s]) => s === query.get('status'))?.[0] ?? 'open') as StatusFilter;
  const severity = SEVERITIES.find((s) => s === query.get('severity')) ?? '';
  const device = query.get('device') ?? '';
  const now = useNow(10000);
  const [detail, setDetail] = useState<Alarm | null>(null);

  const paged = usePaged<Alarm>(
    (cursor) =>
      api<ApiPage<Alarm>>('GET', '/api/v1/alarms' + qs({ status: status === 'all' ? undefined : status, severity, device_id: device, page_size: 50, cursor })),
    [status, severity, device],
  );

  // Live: updated alarms replace the listed ones; new ones matching the filters go on top of page 1.
  const [overrides, setOverrides] = useState<Map<string, Alarm>>(new Map());
  const [fresh, setFresh] = useState<Alarm[]>([]);
  const [flash, setFlash] = useState<Record<string, number>>({});
  useEffect(() => {
    setOverrides(new Map());
    setFresh([]);
  }, [paged.items]);

  const matches = (a: Alarm) => statusMatches(a.status, status) && (!severity || a.severity === severity) && (!device || a.device_id === device);
  const merge = (a: Alarm) => {
    if (!a || typeof a.id !== 'string') return;
    setOverrides((m) => new Map(m).set(a.id, a));
    setFresh((xs) => (xs.some((x) => x.id === a.id) ? xs.map((x) => (x.id === a.id ? a : x)) : [a, ...xs].slice(0, 200)));
    setFlash((f) => ({ ...f, [a.id]: Date.now() }));
    setDetail((d) => (d && d.id === a.id ? a : d));
  };
  useEffect(() => {
    if (user?.role === 'sysadmin') return;
    return live.subscribeAlarms({ alarm: (a) => merge(a as unknown as Alarm), error: (c, d) => console.warn('live alarms:', c, d) });
  }, [status, severity, device, user?.role]);

  const rows = useMemo(() => {
    const base = paged.items.map((a) => overrides.get(a.id) ?? a);
    const listed = new Set(base.map((a) => a.id));
    const top = paged.pageNumber === 1 ? fresh.filter((a) => !listed.has(a.id)) : [];
    const all = [...top, ...base].filter(matches);
    // Newest start first, as the server sorts (a live update keeps its row's place).
    if (top.length) all.sort((x, y) => y.start_ms - x.start_ms);
    return all;
  }, [paged.items, overrides, fresh, status, severity, device, paged.pageNumber]);

  const changed = (a: Alarm) => {
    merge(a);
    alarmsChanged();
  };

  if (user?.role === 'sysadmin')
    return (
      <Page title="Alarms">
        <div class="panel">
          <Empty title="Alarms belong to tenants">
            <span>Sign in as a tenant user to see alarms.</span>
          </Empty>
        </div>
      </Page>
    );

  const filtered = status !== 'open' || !!severity || !!device;
  const clear = () => setQuery({ status: undefined, severity: undefined, device: undefined });

  return (
    <Page title="Alarms" actions={<LiveIndicator />}>
      <div class="filters" role="search">
        <div class="field status-field">
          <span class="muted small strong">Status</span>
          <div class="segmented" role="group" aria-label="Status">
            {STATUS_FILTERS.map(([s, label]) => (
              <button
                key={s}
                type="button"
                class={status === s ? 'on' : ''}
                aria-pressed={status === s}
                onClick={() => setQuery({ status: s === 'open' ? undefined : s })}
                data-testid={`alarm-status-${s}`}
              >
                {label}
              </button>
            ))}
          </div>
        </div>
        <label class="field">
          <span>Severity</span>
          <select value={severity} onChange={(e) => setQuery({ severity: e.currentTarget.value })} data-testid="alarm-filter-severity">
            <option value="">Any</option>
            {SEVERITIES.map((s) => (
              <option key={s} value={s}>
                {SEVERITY_LABEL[s]}
              </option>
            ))}
          </select>
        </label>
        <div class="field grow alarm-device-filter">
          <label for="alarm-device" class="muted small strong">
            Device
          </label>
          <DevicePicker id="alarm-device" value={device ? [device] : []} onChange={(ids) => setQuery({ device: ids[0] })} placeholder="Any device" />
        </div>
        {filtered && (
          <button class="ghost small clear-filters" onClick={clear}>
            Clear filters
          </button>
        )}
      </div>

      <div class="panel flush">
        <ErrorAlert error={paged.error} />
        {paged.loading && paged.items.length === 0 && rows.length === 0 ? (
          <Loading text="Loading alarms…" />
        ) : rows.length === 0 && !paged.error ? (
          filtered ? (
            <Empty title="No alarm matches these filters">
              <button onClick={clear}>Show open alarms</button>
            </Empty>
          ) : (
            <Empty title="No open alarms">
              <span class="badge ok">All clear</span>
              <span>
                Alarms are raised by <Link href="/analytics/rules">rules</Link> and <Link href="/analytics/detectors">anomaly detectors</Link>; new ones appear here
                at once.
              </span>
            </Empty>
          )
        ) : (
          <div class={'table-wrap' + (paged.loading ? ' reloading' : '')}>
            <table class="data alarms-table">
              <thead>
                <tr>
                  <th>Severity</th>
                  <th class="hide-narrow">Status</th>
                  <th>Device · key</th>
                  <th>Alarm</th>
                  <th class="num hide-narrow">Count</th>
                  <th>Started</th>
                  <th class="hide-narrow">Duration</th>
                  {editable && (
                    <th class="actions">
                      <span class="sr-only">Actions</span>
                    </th>
                  )}
                </tr>
              </thead>
              <tbody>
                {rows.map((a) => (
                  <tr
                    key={a.id}
                    class={'clickable' + (flash[a.id] ? ' flash-row' : '') + (a.status === 'cleared' ? ' cleared' : '')}
                    data-testid="alarm-row"
                    data-alarm-id={a.id}
                    data-status={a.status}
                    onClick={() => setDetail(a)}
                  >
                    <td>
                      <SeverityBadge severity={a.severity} />
                      <div class="show-narrow">
                        <AlarmStatusBadge alarm={a} />
                      </div>
                    </td>
                    <td class="hide-narrow">
                      <AlarmStatusBadge alarm={a} />
                    </td>
                    <td>
                      <Link
                        href={`/devices/${a.device_id}?tab=analytics&akey=${encodeURIComponent(a.key.split(',')[0])}`}
                        onClick={(e) => e.stopPropagation()}
                        class="strong"
                      >
                        {a.device_name || 'device'}
                      </Link>
                      <div class="mono small muted" data-testid="alarm-key">
                        {a.key}
                      </div>
                    </td>
                    <td class="alarm-msg">
                      <div class="clamp" data-testid="alarm-message">
                        {a.message}
                      </div>
                      <div class="muted small">
                        {a.source?.type === 'rule' ? 'Rule' : 'Detector'} · {a.source?.name}
                        {a.count > 1 && <span class="show-narrow-inline"> · {a.count}×</span>}
                      </div>
                    </td>
                    <td class="num hide-narrow">{a.count > 1 ? <span class="badge">{a.count}×</span> : a.count}</td>
                    <td class="nowrap" title={formatDateTime(a.start_ms)}>
                      {formatAgo(a.start_ms, Math.max(now, a.start_ms))}
                    </td>
                    <td class="hide-narrow nowrap muted">
                      {a.end_ms !== null ? (
                        <span title={`Ended ${formatDateTime(a.end_ms)}`}>lasted {alarmDuration(a)}</span>
                      ) : (
                        <span>open {alarmDuration(a, Math.max(now, a.last_ms ?? 0))}</span>
                      )}
                    </td>
                    {editable && (
                      <td class="actions" onClick={(e) => e.stopPropagation()}>
                        <AlarmActions alarm={a} editable={editable} onChange={changed} />
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        <Pager {...paged} />
      </div>
      {detail && <AlarmDetail alarm={detail} editable={editable} onChange={changed} onClose={() => setDetail(null)} me={user?.id} />}
    </Page>
  );
}

export function AlarmDetail(props: { alarm: Alarm; editable: boolean; onChange: (a: Alarm) => void; onClose: () => void; me?: string }) {
  const a = props.alarm;
  const d = a.details ?? {};
  const sourceHref = a.source?.type === 'rule' ? `/analytics/rules?edit=${a.source.id}` : `/analytics/detectors?edit=${a.source?.id}`;
  return (
    <Modal
      title="Alarm"
      onClose={props.onClose}
      footer={
        <>
          <AlarmActions alarm={a} editable={props.editable} onChange={props.onChange} />
          <span class="spacer" />
          <button onClick={props.onClose}>Close</button>
        </>
      }
    >
      <div class="row">
        <SeverityBadge severity={a.severity} />
        <AlarmStatusBadge alarm={a} />
        {a.count > 1 && <span class="badge">{a.count} occurrences</span>}
      </div>
      <div class="alarm-detail-msg" data-testid="alarm-detail-message">
        {a.message}
      </div>
      <dl class="kv">
        <dt>Device</dt>
        <dd>
          <Link href={`/devices/${a.device_id}?tab=analytics&akey=${encodeURIComponent(a.key.split(',')[0])}`}>{a.device_name}</Link>
        </dd>
        <dt>Key</dt>
        <dd class="mono">{a.key}</dd>
        <dt>Raised by</dt>
        <dd>
          {a.source?.type === 'rule' ? 'Rule' : 'Detector'} <Link href={sourceHref}>{a.source?.name}</Link>
        </dd>
        {typeof d.observed === 'number' && (
          <>
            <dt>Observed</dt>
            <dd>{formatNumber(d.observed)}</dd>
          </>
        )}
        {(typeof d.expected_lo === 'number' || typeof d.expected_hi === 'number') && (
          <>
            <dt>Expected</dt>
            <dd>{expectedText(d.expected_lo, d.expected_hi)}</dd>
          </>
        )}
        {typeof d.score === 'number' && (
          <>
            <dt>Anomaly score</dt>
            <dd>{d.score.toFixed(2)}</dd>
          </>
        )}
        <dt>Started</dt>
        <dd>{formatDateTime(a.start_ms)}</dd>
        <dt>Last occurrence</dt>
        <dd>{formatDateTime(a.last_ms)}</dd>
        <dt>{a.end_ms !== null ? 'Ended' : 'Open for'}</dt>
        <dd>{a.end_ms !== null ? `${formatDateTime(a.end_ms)} (lasted ${alarmDuration(a)})` : alarmDuration(a)}</dd>
        {a.acked_ms !== null && (
          <>
            <dt>Acknowledged</dt>
            <dd>
              {formatDateTime(a.acked_ms)} by {byWhom(a.acked_by, props.me)}
            </dd>
          </>
        )}
        {a.cleared_ms !== null && (
          <>
            <dt>Cleared</dt>
            <dd>
              {formatDateTime(a.cleared_ms)}
              {a.cleared_by === 'auto' ? ', automatically (the condition ended)' : a.cleared_by ? ` by ${byWhom(a.cleared_by, props.me)}` : ''}
            </dd>
          </>
        )}
      </dl>
    </Modal>
  );
}
