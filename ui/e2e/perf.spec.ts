// Issue 4, Quality: "a dashboard of 20 widgets and 50 series over 30 days renders in under 1 s on
// this machine, measured in the browser test and reported". Seeds 10 devices x 5 keys with one
// point per 10 min over 30 days (216,000 points), opens a 20-widget dashboard on the 30-day range
// and measures navigation start -> dashboard-ready marker (every widget has shown its data).
// Prints `dashboard render: N ms` and writes test-results/perf.json. Runs alone (project "perf").
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { seedHistory, waitForRollups } from './lib/seed';
import { unique } from './lib/env';
import { expect, login, test } from './fixtures';

const OUT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'test-results', 'perf.json');
const RUNS = 5;

test('20 widgets, 50 series, 30 days: time to dashboard-ready', async ({ page, tenant }) => {
  test.setTimeout(120_000);
  const api = tenant.admin.api;
  const t0 = Date.now();
  const seed = await seedHistory(api, { devices: 10, keys: 5, days: 30, stepMs: 10 * 60_000 });
  expect(seed.points).toBe(10 * 5 * 30 * 144);
  await waitForRollups();
  const seedMs = Date.now() - t0;

  const ids = seed.devices.map((d) => d.id);
  const widgets: any[] = [];
  let y = 0;
  // 10 line charts: one device each, all 5 keys -> 50 series.
  for (let i = 0; i < 10; i++) {
    widgets.push({ id: `line${i}`, type: 'line', x: (i % 2) * 6, y: y + Math.floor(i / 2) * 4, w: 6, h: 4, title: `Device ${i}`, config: { datasource: { mode: 'devices', device_ids: [ids[i]], keys: seed.keys }, unit: '°C' } });
  }
  y += 20;
  for (let i = 0; i < 4; i++)
    widgets.push({ id: `value${i}`, type: 'value', x: i * 3, y, w: 3, h: 3, title: `Value ${i}`, config: { datasource: { mode: 'devices', device_ids: [ids[i]], keys: ['k0'] }, unit: '°C' } });
  y += 3;
  for (let i = 0; i < 2; i++)
    widgets.push({ id: `gauge${i}`, type: 'gauge', x: i * 3, y, w: 3, h: 4, title: `Gauge ${i}`, config: { datasource: { mode: 'devices', device_ids: [ids[4 + i]], keys: ['k1'] }, min: 0, max: 60, thresholds: [{ value: 40, color: '#e02f44' }] } });
  for (let i = 0; i < 2; i++)
    widgets.push({ id: `bar${i}`, type: 'bar', x: 6 + i * 3, y, w: 3, h: 4, title: `Bars ${i}`, config: { datasource: { mode: 'devices', device_ids: [ids[6 + i]], keys: ['k2', 'k3'] }, agg: 'avg' } });
  y += 4;
  widgets.push({ id: 'table', type: 'table', x: 0, y, w: 8, h: 6, title: 'All devices', config: { datasource: { mode: 'filter', filter: { type: 'perf' }, keys: seed.keys } } });
  widgets.push({ id: 'notes', type: 'markdown', x: 8, y, w: 4, h: 6, title: 'Notes', config: { text: '# Perf\n20 widgets, 50 series, 30 days.' } });
  expect(widgets).toHaveLength(20);
  const dash = await api.ok('POST', '/api/v1/dashboards', { name: unique('Perf 20x50'), layout: { schema: 1, time: { range: '30d' }, widgets } });

  await login(page, tenant.admin);
  // Time from navigation start to the moment the UI sets body[data-dashboard-ready="1"].
  await page.addInitScript(() => {
    const w = window as any;
    w.__readyAt = null;
    new MutationObserver(() => {
      if (w.__readyAt === null && document.body?.dataset.dashboardReady === '1') w.__readyAt = performance.now();
    }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-dashboard-ready'] });
  });
  let apiRequests = 0;
  let slowestApi = 0;
  const isApi = (url: string) => new URL(url).pathname.startsWith('/api/v1/') && !url.includes('/api/v1/ws');
  page.on('request', (r) => {
    if (isApi(r.url())) apiRequests++;
  });
  page.on('requestfinished', (r) => {
    if (isApi(r.url())) slowestApi = Math.max(slowestApi, r.timing().responseEnd);
  });

  const runs: number[] = [];
  const uiMarks: number[] = [];
  const requests: number[] = [];
  const slowest: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    apiRequests = 0;
    slowestApi = 0;
    await page.goto(`/dashboards/${dash.id}`);
    await page.waitForFunction(() => (window as any).__readyAt !== null, undefined, { timeout: 30_000 });
    runs.push(Math.round(await page.evaluate(() => (window as any).__readyAt as number)));
    uiMarks.push(Number(await page.evaluate(() => document.body.dataset.dashboardRenderMs)));
    requests.push(apiRequests);
    slowest.push(Math.round(slowestApi));
    // Every widget rendered real data, none failed or is empty.
    await expect(page.getByTestId('widget')).toHaveCount(20);
    await expect(page.getByTestId('widget-error')).toHaveCount(0);
    await expect(page.getByTestId('chart-empty')).toHaveCount(0);
    await expect(page.getByTestId('widget-loading')).toHaveCount(0);
    await expect(page.locator('[data-widget-type="line"] canvas')).toHaveCount(10);
    await expect(page.locator('[data-widget-type="line"] .u-legend .u-series')).toHaveCount(10 * 6); // time + 5 series each
  }
  const sorted = [...runs].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  const result = {
    dashboard_render_ms: median,
    first_load_ms: runs[0],
    runs_ms: runs,
    ui_marker_ms: uiMarks,
    api_requests_per_load: requests,
    slowest_api_response_ms: slowest,
    widgets: 20,
    series: 50,
    points: seed.points,
    range: '30d',
    seed_ms: seedMs,
    budget_ms: Number(process.env.SW_E2E_PERF_BUDGET_MS ?? 1000),
    load_average: os.loadavg().map((x) => Math.round(x * 100) / 100),
    measured: 'navigation start -> body[data-dashboard-ready="1"], median of ' + RUNS + ' page loads (HTTP cache warm, fresh document each)',
    at: new Date().toISOString(),
  };
  mkdirSync(path.dirname(OUT), { recursive: true });
  writeFileSync(OUT, JSON.stringify(result, null, 2) + '\n');
  console.log(`dashboard render: ${median} ms (runs ${runs.join(', ')} ms; UI marker ${uiMarks.join(', ')} ms; ${requests[0]} API requests per load, slowest answers ${slowest.join(', ')} ms) -> ${OUT}`);
  test.info().annotations.push({ type: 'dashboard render ms', description: String(median) });
  // The acceptance bar (SW_E2E_PERF_BUDGET_MS overrides it; 0 = report only).
  const budget = Number(process.env.SW_E2E_PERF_BUDGET_MS ?? 1000);
  if (budget > 0) expect(median, `dashboard render time (ms), issue 4 requires < ${budget}`).toBeLessThan(budget);
});
