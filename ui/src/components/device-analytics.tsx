// The device page's Analytics tab (issue 5): open alarms of the device (live, ack / clear), a
// chart of one key with its anomaly score ({key}.anomaly_score), shaded alarm periods and an
// optional forecast band, the key's insights (trend, gaps, stuck and out-of-range shares), and
// the detectors and rules that apply to the device, with "New detector / rule for this device".
// URL: ?tab=analytics&akey=<key>&range=<1h|24h|…|from-to>&fc=<horizon> (the forecast shown).
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, qs, type Alarm, type Detector, type Device, type Forecast, type Insights, type Page as ApiPage, type Rule, type Value } from '../api';
import { formatDateTime, formatDuration, formatNumber } from '../format';
import { live } from '../live';
import { DetectorDialog, kindTitle, useKinds } from '../pages/detectors';
import { ruleText, RuleDialog } from '../pages/rules';
import { Link, setQuery, useLocation } from '../router';
import { AlarmActions, alarmDuration, alarmsChanged, AlarmStatusBadge, SeverityBadge } from './analytics';
import { AnalyticsChart, expectedText, type Period } from './backtest';
import { type ChartPoint, decodeRange, encodeRange, loadDeviceSeries, resolveRange, type TimeRange, TimeRangePicker, toNumber } from './timechart';
import { Empty, ErrorAlert, Loading, Spinner, toast, useLoad } from './ui';

const SCORE_SUFFIX = '.anomaly_score';
const HORIZONS = ['6h', '24h', '7d'];

function pct(x: number | undefined | null): string {
  if (x === undefined || x === null || !Number.isFinite(x)) return '—';
  const p = x * 100;
  return (p > 0 && p < 0.1 ? '<0.1' : +p.toFixed(p < 10 ? 1 : 0)) + ' %';
}

export function DeviceAnalytics(props: { device: Device; editable: boolean; latest: Record<string, { ts: number; value: Value }> }) {
  const { device, editable } = props;
  const { query } = useLocation();
  const range: TimeRange = decodeRange(query.get('range'), { last: '24h' });
  const rangeKey = encodeRange(range);
  const horizon = HORIZONS.includes(query.get('fc') ?? '') ? query.get('fc')! : '';
  const kinds = useKinds();

  const allKeys = useLoad(() => api<string[]>('GET', `/api/v1/devices/${encodeURIComponent(device.id)}/telemetry/keys`), [device.id]);
  const scoreKeys = new Set((allKeys.data ?? []).filter((k) => k.endsWith(SCORE_SUFFIX)));
  const keys = (allKeys.data ?? []).filter((k) => !k.endsWith(SCORE_SUFFIX) && (!props.latest[k] || toNumber(props.latest[k].value) !== null)).sort((a, b) => a.localeCompare(b));

  const detectors = useLoad(() => api<ApiPage<Detector>>('GET', '/api/v1/detectors' + qs({ device_id: device.id, page_size: 100 })), [device.id]);
  const rules = useLoad(() => api<ApiPage<Rule>>('GET', '/api/v1/rules' + qs({ device_id: device.id, page_size: 100 })), [device.id]);

  // Default key: one a detector watches (it has a score), else the first numeric one.
  const watched = (detectors.data?.items ?? []).flatMap((d) => d.keys).find((k) => keys.includes(k));
  const key = query.get('akey') && keys.includes(query.get('akey')!) ? query.get('akey')! : watched ?? [...keys].find((k) => scoreKeys.has(k + SCORE_SUFFIX)) ?? keys[0] ?? '';

  // ---- open alarms (live) ----
  const [periodTick, setPeriodTick] = useState(0);
  const [open, setOpen] = useState<Alarm[] | null>(null);
  const [openErr, setOpenErr] = useState<unknown>(null);
  const [alarmTick, setAlarmTick] = useState(0);
  useEffect(() => {
    let alive = true;
    api<ApiPage<Alarm>>('GET', '/api/v1/alarms' + qs({ device_id: device.id, status: 'open', page_size: 100 }))
      .then((p) => alive && (setOpen(p.items), setOpenErr(null)))
      .catch((e) => alive && setOpenErr(e));
    return () => {
      alive = false;
    };
  }, [device.id, alarmTick]);
  const mergeAlarm = (a: Alarm) => {
    setOpen((xs) => {
      const rest = (xs ?? []).filter((x) => x.id !== a.id);
      return a.status === 'cleared' ? rest : [a, ...rest].sort((x, y) => y.start_ms - x.start_ms);
    });
  };
  useEffect(
    () =>
      live.subscribeAlarms({
        alarm: (raw) => {
          const a = raw as unknown as Alarm;
          if (a.device_id !== device.id) return;
          mergeAlarm(a);
          setPeriodTick((t) => t + 1);
        },
        error: () => {},
      }),
    [device.id],
  );

  // ---- chart data ----
  const [values, setValues] = useState<ChartPoint[]>([]);
  const [score, setScore] = useState<ChartPoint[]>([]);
  const [periods, setPeriods] = useState<Period[]>([]);
  const [bounds, setBounds] = useState(() => resolveRange(range));
  const [resolution, setResolution] = useState('');
  const [chartErr, setChartErr] = useState<unknown>(null);
  const [loading, setLoading] = useState(false);
  const [reload, setReload] = useState(0);
  const hasScore = scoreKeys.has(key + SCORE_SUFFIX);
  useEffect(() => {
    if (!key) return;
    const ctl = new AbortController();
    const b = resolveRange(range);
    setBounds(b);
    setLoading(true);
    setChartErr(null);
    Promise.all([
      loadDeviceSeries(device.id, [key], b.from, b.to, { signal: ctl.signal }),
      hasScore ? loadDeviceSeries(device.id, [key + SCORE_SUFFIX], b.from, b.to, { agg: 'max', signal: ctl.signal }) : Promise.resolve(null),
    ])
      .then(([v, s]) => {
        setValues(v.series[key] ?? []);
        setResolution(v.resolution);
        setScore(s ? s.series[key + SCORE_SUFFIX] ?? [] : []);
      })
      .catch((e) => (e as Error).name !== 'AbortError' && setChartErr(e))
      .finally(() => !ctl.signal.aborted && setLoading(false));
    return () => ctl.abort();
  }, [device.id, key, rangeKey, hasScore, reload]);

  // Alarm periods of this key overlapping the range.
  useEffect(() => {
    if (!key) return;
    let alive = true;
    const b = resolveRange(range);
    api<ApiPage<Alarm>>('GET', '/api/v1/alarms' + qs({ device_id: device.id, from: b.from, to: b.to, page_size: 500 }))
      .then((p) => {
        if (!alive) return;
        setPeriods(p.items.filter((a) => a.key.split(',').includes(key)).map((a) => ({ from: a.start_ms, to: a.end_ms, severity: a.severity })));
      })
      .catch(() => alive && setPeriods([]));
    return () => {
      alive = false;
    };
  }, [device.id, key, rangeKey, reload, periodTick]);

  // ---- forecast ----
  const forecast = useLoad(
    () =>
      horizon && key
        ? api<Forecast>('GET', `/api/v1/devices/${encodeURIComponent(device.id)}/forecast` + qs({ key, horizon, history: '7d' }))
        : Promise.resolve(null),
    [device.id, key, horizon],
  );

  // ---- insights ----
  const insights = useLoad(() => {
    if (!key) return Promise.resolve(null);
    const b = resolveRange(range);
    return api<Insights>('GET', `/api/v1/devices/${encodeURIComponent(device.id)}/insights` + qs({ key, from: b.from, to: b.to }));
  }, [device.id, key, rangeKey, reload]);

  const [newDetector, setNewDetector] = useState(false);
  const [newRule, setNewRule] = useState(false);
  const [editDetector, setEditDetector] = useState<Detector | null>(null);
  const [editRule, setEditRule] = useState<Rule | null>(null);

  const fc = forecast.data?.points;
  const chartTo = useMemo(() => bounds.to, [bounds]);
  const setRange = (r: TimeRange) => setQuery({ range: encodeRange(r) });

  return (
    <div class="stack device-analytics" data-testid="device-analytics">
      <section class="panel flush" aria-label="Open alarms" data-testid="device-alarms">
        <div class="panel-bar">
          <h2>Open alarms</h2>
          {open && open.length > 0 && <span class="badge danger">{open.length}</span>}
          <span class="spacer" />
          <Link href={`/alarms?device=${device.id}&status=all`} class="small">
            Alarm history ›
          </Link>
        </div>
        <ErrorAlert error={openErr} />
        {open === null && !openErr ? (
          <Loading />
        ) : open && open.length === 0 ? (
          <div class="empty small-empty">
            <span class="badge ok">All clear</span> No open alarms on this device.
          </div>
        ) : (
          <ul class="alarm-list device-alarm-list">
            {(open ?? []).map((a) => (
              <li key={a.id} data-testid="device-alarm" data-status={a.status}>
                <SeverityBadge severity={a.severity} />
                <div class="alarm-main">
                  <div class="alarm-title">{a.message}</div>
                  <div class="muted small">
                    <span class="mono">{a.key}</span> · {a.source?.name} · open {alarmDuration(a)} {a.count > 1 && `· ${a.count}×`}
                  </div>
                </div>
                <AlarmStatusBadge alarm={a} />
                <AlarmActions
                  alarm={a}
                  editable={editable}
                  onChange={(x) => {
                    mergeAlarm(x);
                    alarmsChanged();
                  }}
                />
              </li>
            ))}
          </ul>
        )}
      </section>

      <section class="panel chart-panel" aria-label="Anomalies and forecast">
        <div class="chart-toolbar">
          <div class="row">
            <label class="inline-field">
              <span class="muted small">Key</span>
              <select value={key} onChange={(e) => setQuery({ akey: e.currentTarget.value })} disabled={!keys.length} data-testid="analytics-key">
                {keys.map((k) => (
                  <option key={k} value={k}>
                    {k}
                    {scoreKeys.has(k + SCORE_SUFFIX) ? ' (scored)' : ''}
                  </option>
                ))}
              </select>
            </label>
            {allKeys.loading && <Spinner />}
          </div>
          <div class="row">
            <label class="inline-field">
              <span class="muted small">Forecast</span>
              <select value={horizon} onChange={(e) => setQuery({ fc: e.currentTarget.value || undefined })} disabled={!key} data-testid="forecast-horizon">
                <option value="">off</option>
                {HORIZONS.map((h) => (
                  <option key={h} value={h}>
                    next {h}
                  </option>
                ))}
              </select>
            </label>
            <TimeRangePicker value={range} onChange={setRange} />
            <button class="icon" aria-label="Reload" title="Reload" onClick={() => (setReload((t) => t + 1), setAlarmTick((t) => t + 1))}>
              ↻
            </button>
          </div>
        </div>
        <ErrorAlert error={chartErr} />
        <ErrorAlert error={forecast.error} />
        {!key ? (
          allKeys.loading ? (
            <Loading />
          ) : (
            <Empty title="No numeric telemetry yet">
              <span>Analytics work on numeric keys: send some values first.</span>
            </Empty>
          )
        ) : (
          <div class={'chart-area' + (loading ? ' reloading' : '')} data-testid="device-analytics-chart">
            <AnalyticsChart
              label={key}
              values={values}
              score={hasScore ? score : undefined}
              periods={periods}
              forecast={fc && fc.length ? fc : undefined}
              from={bounds.from}
              to={chartTo}
              height={320}
            />
          </div>
        )}
        {key && (
          <div class="muted small chart-foot">
            {hasScore ? (
              <span>
                <span class="legend-swatch score" /> anomaly score (right axis, max per bucket)
              </span>
            ) : (
              <span>No detector scores this key yet.</span>
            )}
            {periods.length > 0 && (
              <span>
                {' · '}
                <span class="legend-swatch alarm" /> {periods.length} alarm {periods.length === 1 ? 'period' : 'periods'}
              </span>
            )}
            {resolution && <span> · {resolution === 'raw' ? 'raw points' : `average per ${resolution}`}</span>}
            {forecast.loading && horizon && (
              <span>
                {' · '}
                <Spinner /> forecasting…
              </span>
            )}
            {forecast.data && (
              <span data-testid="forecast-info">
                {' · '}
                <span class="legend-swatch forecast" /> forecast {forecast.data.points.length ? `to ${formatDateTime(forecast.data.points[forecast.data.points.length - 1][0])}` : '(not enough history)'}
                {forecast.data.season_ms > 0 ? `, season ${formatDuration(forecast.data.season_ms)}` : ', no season found'}, fitted on {forecast.data.fitted_points.toLocaleString()} points,
                95 % band
              </span>
            )}
          </div>
        )}
        {key && <InsightsCards data={insights.data ?? null} loading={insights.loading} error={insights.error} />}
      </section>

      <div class="grid-2 analytics-config">
        <section class="panel flush" aria-label="Detectors of this device" data-testid="device-detectors">
          <div class="panel-bar">
            <h2>Detectors</h2>
            <span class="spacer" />
            {editable && (
              <button class="small primary" onClick={() => setNewDetector(true)} disabled={!kinds.data} data-testid="device-new-detector">
                + New detector for this device
              </button>
            )}
          </div>
          <ErrorAlert error={detectors.error} />
          {detectors.loading && !detectors.data ? (
            <Loading />
          ) : (detectors.data?.items.length ?? 0) === 0 ? (
            <div class="empty small-empty">No detector applies to this device.</div>
          ) : (
            <ul class="config-list">
              {detectors.data!.items.map((d) => (
                <li key={d.id} data-testid="device-detector">
                  <div class="alarm-main">
                    {editable ? (
                      <button class="linklike strong" onClick={() => setEditDetector(d)}>
                        {d.name}
                      </button>
                    ) : (
                      <span class="strong">{d.name}</span>
                    )}
                    <div class="muted small">
                      {kindTitle(kinds.data, d.kind)} · <span class="mono">{d.keys.join(', ')}</span> · threshold {formatNumber(d.threshold, undefined, 2)}
                    </div>
                  </div>
                  <SeverityBadge severity={d.severity} />
                  {!d.enabled && <span class="badge">off</span>}
                </li>
              ))}
            </ul>
          )}
        </section>
        <section class="panel flush" aria-label="Rules of this device" data-testid="device-rules">
          <div class="panel-bar">
            <h2>Rules</h2>
            <span class="spacer" />
            {editable && (
              <button class="small primary" onClick={() => setNewRule(true)} data-testid="device-new-rule">
                + New rule
              </button>
            )}
          </div>
          <ErrorAlert error={rules.error} />
          {rules.loading && !rules.data ? (
            <Loading />
          ) : (rules.data?.items.length ?? 0) === 0 ? (
            <div class="empty small-empty">No rule applies to this device.</div>
          ) : (
            <ul class="config-list">
              {rules.data!.items.map((r) => (
                <li key={r.id} data-testid="device-rule">
                  <div class="alarm-main">
                    {editable ? (
                      <button class="linklike strong" onClick={() => setEditRule(r)}>
                        {r.name}
                      </button>
                    ) : (
                      <span class="strong">{r.name}</span>
                    )}
                    <div class="muted small">
                      <code>{ruleText(r)}</code>
                    </div>
                  </div>
                  <SeverityBadge severity={r.severity} />
                  {!r.enabled && <span class="badge">off</span>}
                </li>
              ))}
            </ul>
          )}
        </section>
      </div>

      {(newDetector || editDetector) && kinds.data && (
        <DetectorDialog
          kinds={kinds.data}
          detector={editDetector ?? undefined}
          initial={{ device_filter: { device_ids: [device.id] }, keys: key ? [key] : [], name: key ? `${device.name} · ${key}` : '' }}
          onClose={() => (setNewDetector(false), setEditDetector(null))}
          onSaved={(d) => {
            toast(`Saved ${d.name}`);
            setNewDetector(false);
            setEditDetector(null);
            detectors.reload();
          }}
        />
      )}
      {(newRule || editRule) && (
        <RuleDialog
          rule={editRule ?? undefined}
          initial={{ device_filter: { device_ids: [device.id] }, condition: key ? `${key} > ` : '' }}
          onClose={() => (setNewRule(false), setEditRule(null))}
          onSaved={(r) => {
            toast(`Saved ${r.name}`);
            setNewRule(false);
            setEditRule(null);
            rules.reload();
          }}
        />
      )}
    </div>
  );
}

function InsightsCards(props: { data: Insights | null; loading: boolean; error: unknown }) {
  if (props.error) return <ErrorAlert error={props.error} />;
  if (!props.data) return props.loading ? <Loading text="Computing insights…" /> : null;
  const d = props.data;
  const q = d.quality;
  const slope = d.trend?.slope_per_day;
  return (
    <div class={'insights' + (props.loading ? ' reloading' : '')} data-testid="insights">
      <div class="insight">
        <div class="insight-label">Trend</div>
        <div class="insight-value" data-testid="insight-trend">
          {slope === undefined || slope === null || !Number.isFinite(slope) ? (
            '—'
          ) : (
            <>
              {slope > 0 ? '↗' : slope < 0 ? '↘' : '→'} {slope > 0 ? '+' : ''}
              {formatNumber(slope)} <span class="muted small">per day</span>
            </>
          )}
        </div>
        <div class="muted small">
          {typeof d.trend?.r2 === 'number' ? `r² ${d.trend.r2.toFixed(2)} · ` : ''}
          {d.points.toLocaleString()} points{d.truncated ? ' (first ones only)' : ''}
        </div>
      </div>
      <div class="insight">
        <div class="insight-label">Gaps</div>
        <div class={'insight-value' + (q.gap_count ? ' warn-text' : '')} data-testid="insight-gaps">
          {q.gap_count} <span class="muted small">{q.gap_count === 1 ? 'gap' : 'gaps'}</span>
        </div>
        <div class="muted small">
          {pct(q.missing_share)} missing{q.expected_interval_ms ? ` · every ${formatDuration(q.expected_interval_ms)} expected` : ''}
        </div>
      </div>
      <div class="insight">
        <div class="insight-label">Stuck</div>
        <div class={'insight-value' + (q.stuck_share > 0 ? ' warn-text' : '')} data-testid="insight-stuck">
          {pct(q.stuck_share)}
        </div>
        <div class="muted small">
          {q.stuck.length} stuck {q.stuck.length === 1 ? 'period' : 'periods'}
        </div>
      </div>
      <div class="insight">
        <div class="insight-label">Out of range</div>
        <div class={'insight-value' + (q.out_of_range_share > 0 ? ' warn-text' : '')} data-testid="insight-range">
          {pct(q.out_of_range_share)}
        </div>
        <div class="muted small">
          {q.range && (typeof q.range.lo === 'number' || typeof q.range.hi === 'number')
            ? `outside ${expectedText(q.range.lo, q.range.hi)} (${q.range.source === 'given' ? 'given' : 'robust estimate'})`
            : 'no range yet'}
        </div>
      </div>
    </div>
  );
}
