// Issue 5 (UI part): screenshots of the analytics screens into docs/screenshots/ — alarms, detectors
// (list, and the edit dialog with its backtest preview), rules, webhooks (with deliveries), and the
// device page's Analytics tab (light and dark; alarms and device also at 820 px). A plant is seeded
// with detectors and rules first, then 24 h of history with injected anomalies, so the engine
// scores the history and raises (and auto-clears) alarms; a local HTTP receiver takes webhooks.
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from '@playwright/test';
import { type Api, createDevice, type DeviceInfo } from './lib/api';
import { postTelemetry } from './lib/device';
import { waitDashboardReady } from './lib/ui';
import { expect, login, test } from './fixtures';

const DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'screenshots');
mkdirSync(DIR, { recursive: true });

async function shot(page: Page, name: string, fullPage = false) {
  // No caret, no animations, no toasts in the pictures.
  await page.addStyleTag({ content: '*,*::before,*::after{animation:none!important;transition:none!important;caret-color:transparent!important} .toasts{display:none!important}' });
  await page.screenshot({ path: path.join(DIR, `${name}.png`), animations: 'disabled', fullPage });
}

const MIN = 60_000;
const H = 60 * MIN;
const STEP = 5 * MIN;

interface Plant {
  boiler1: DeviceInfo;
  boiler2: DeviceInfo;
  chiller: DeviceInfo;
  pumps: DeviceInfo[];
  detectorId: string;
}

/** A webhook receiver answering 200 to every POST. */
function receiver(): Promise<{ url: string; server: Server; count: () => number }> {
  let n = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      n++;
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"ok":true}');
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      resolve({ url: `http://127.0.0.1:${port}/hooks/sensoworks`, server, count: () => n });
    }),
  );
}

async function seed(api: Api, hookUrl: string): Promise<Plant> {
  const boiler1 = await createDevice(api, 'Boiler room 1', { type: 'boiler', labels: { site: 'north' } });
  const boiler2 = await createDevice(api, 'Boiler room 2', { type: 'boiler', labels: { site: 'north' } });
  const chiller = await createDevice(api, 'Chiller A', { type: 'chiller', labels: { site: 'south' } });
  const pumps = [
    await createDevice(api, 'Pump 01', { type: 'pump', labels: { site: 'south' } }),
    await createDevice(api, 'Pump 02', { type: 'pump', labels: { site: 'north' } }),
  ];

  // Configuration first, so the engine scores the history written below.
  const det = await api.ok('POST', '/api/v1/detectors', {
    name: 'Boiler temperature anomalies',
    description: 'Robust z-score over the last readings of every boiler',
    kind: 'zscore',
    keys: ['temperature'],
    device_filter: { type: 'boiler' },
    severity: 'major',
  });
  await api.ok('POST', '/api/v1/detectors', { name: 'Chiller daily pattern', kind: 'holt_winters', keys: ['temperature'], device_filter: { type: 'chiller' }, severity: 'minor' });
  await api.ok('POST', '/api/v1/detectors', { name: 'Stuck pressure sensor', kind: 'flatline', keys: ['pressure'], device_filter: { type: 'pump' }, severity: 'warning' });
  await api.ok('POST', '/api/v1/detectors', {
    name: 'Pump pressure vs flow',
    kind: 'multivariate',
    keys: ['pressure', 'flow'],
    device_filter: { type: 'pump', label: 'site=south' },
    severity: 'minor',
    enabled: false,
  });
  await api.ok('POST', '/api/v1/rules', {
    name: 'Boiler overheating',
    condition: 'temperature > 80',
    duration_ms: 5 * MIN,
    hysteresis: 2,
    device_filter: { type: 'boiler' },
    severity: 'critical',
    message: 'Boiler above 80 °C for 5 minutes',
  });
  await api.ok('POST', '/api/v1/rules', { name: 'Low pump pressure', condition: 'pressure < 1.2', device_filter: { type: 'pump' }, severity: 'major', hysteresis: 0.1 });
  await api.ok('POST', '/api/v1/rules', {
    name: 'Pump cavitation',
    description: 'Flow collapses while the pump runs',
    condition: 'flow < 5 and rpm > 1000',
    duration_ms: 2 * MIN,
    device_filter: { type: 'pump' },
    severity: 'warning',
  });
  await api.ok('POST', '/api/v1/webhooks', { name: 'Ops chat', url: hookUrl, min_severity: 'major' });
  await api.ok('POST', '/api/v1/webhooks', { name: 'Legacy pager', url: 'http://127.0.0.1:9/page', min_severity: 'critical' });

  // 24 h of history every 5 min, with anomalies.
  const now = Date.now();
  const from = Math.floor((now - 24 * H) / STEP) * STEP;
  const wave = (ts: number, base: number, amp: number, phase = 0) => base + amp * Math.sin(((ts - from) / (24 * H)) * 2 * Math.PI + phase);
  const noise = (i: number, a: number) => a * Math.sin(i * 2.3) * Math.cos(i * 0.7);
  const r2 = (v: number) => Math.round(v * 100) / 100;
  const rows: Record<string, { ts: number; values: Record<string, number> }[]> = { b1: [], b2: [], ch: [], p1: [], p2: [] };
  let i = 0;
  for (let ts = from; ts < now - MIN; ts += STEP, i++) {
    const ago = now - ts;
    let t1 = wave(ts, 64, 5) + noise(i, 0.8);
    if (ago < 9 * H && ago > 8.5 * H) t1 = 92 + noise(i, 1.5); // an overheating episode
    if (ago < 25 * MIN) t1 = 84 + noise(i, 0.6); // overheating now
    let t2 = wave(ts, 60, 4, 1) + noise(i + 3, 0.7);
    if (ago < 4 * H) t2 += 9; // a level shift
    rows.b1.push({ ts, values: { temperature: r2(t1), pressure: r2(1.8 + noise(i, 0.05)) } });
    rows.b2.push({ ts, values: { temperature: r2(t2), pressure: r2(1.9 + noise(i + 1, 0.05)) } });
    rows.ch.push({ ts, values: { temperature: r2(wave(ts, 7, 1.5, 2) + noise(i, 0.2) + (ago < 2 * H && ago > 1.5 * H ? 4 : 0)) } });
    const stuck = ago < 6 * H && ago > 3 * H;
    rows.p1.push({ ts, values: { pressure: stuck ? 2.4 : r2(2.4 + noise(i, 0.3)), flow: r2(42 + noise(i, 3)), rpm: 1450 } });
    rows.p2.push({ ts, values: { pressure: r2(ago < 40 * MIN ? 0.9 : 2.1 + noise(i + 2, 0.25)), flow: r2(38 + noise(i + 5, 3)), rpm: 1400 } });
  }
  await postTelemetry(boiler1.token, rows.b1);
  await postTelemetry(boiler2.token, rows.b2);
  await postTelemetry(chiller.token, rows.ch);
  await postTelemetry(pumps[0].token, rows.p1);
  await postTelemetry(pumps[1].token, rows.p2);
  return { boiler1, boiler2, chiller, pumps, detectorId: det.id };
}

test('screenshots of the analytics screens', async ({ page, tenant }) => {
  test.setTimeout(150_000);
  const hook = await receiver();
  try {
    const plant = await seed(tenant.admin.api, hook.url);
    const api = tenant.admin.api;
    // The engine has raised alarms from the history (the open overheating one at least).
    await expect.poll(async () => (await api.ok('GET', `/api/v1/alarms?device_id=${plant.boiler1.id}&status=open`)).items.length, { timeout: 20_000 }).toBeGreaterThan(0);

    await login(page, tenant.admin);
    await page.goto('/alarms?status=all');
    await expect(page.getByTestId('alarm-row').first()).toBeVisible();
    await expect(page.getByTestId('live-state')).toHaveText(/Live/);
    await expect(page.getByTestId('nav-alarms-count')).toBeVisible(); // the sidebar's open-alarm count
    await shot(page, 'alarms');

    // A dashboard with the alarm-list widget next to the boilers' temperatures.
    const dash = await api.ok('POST', '/api/v1/dashboards', {
      name: 'Boiler house',
      layout: {
        schema: 1,
        time: { range: '24h' },
        widgets: [
          { id: 'al', type: 'alarms', x: 0, y: 0, w: 5, h: 6, title: 'Open alarms', config: {} },
          {
            id: 'tc',
            type: 'line',
            x: 5,
            y: 0,
            w: 7,
            h: 6,
            title: 'Boiler temperatures',
            config: { datasource: { mode: 'devices', device_ids: [plant.boiler1.id, plant.boiler2.id], keys: ['temperature'] }, unit: '°C' },
          },
        ],
      },
    });
    await page.goto(`/dashboards/${dash.id}`);
    await waitDashboardReady(page);
    await expect(page.getByTestId('widget-alarm').first()).toBeVisible();
    await shot(page, 'dashboard-alarms');

    await page.goto('/analytics/detectors');
    await expect(page.getByTestId('detector-row')).toHaveCount(4);
    await shot(page, 'detectors');

    // The edit dialog with a preview over Boiler room 1 (a tall window shows all of it).
    await page.setViewportSize({ width: 1366, height: 1640 });
    await page.goto(`/analytics/detectors?edit=${plant.detectorId}`);
    const dlg = page.getByRole('dialog', { name: /^Edit / });
    await expect(dlg).toBeVisible();
    await pickPreviewDevice(page, plant.boiler1.name);
    await dlg.getByTestId('backtest-run').click();
    await expect(dlg.getByTestId('backtest-result').locator('canvas')).toHaveCount(1, { timeout: 20_000 });
    await shot(page, 'detector-preview');
    await page.keyboard.press('Escape');
    await page.setViewportSize({ width: 1366, height: 850 });

    await page.goto('/analytics/rules');
    await expect(page.getByTestId('rule-row')).toHaveCount(3);
    await shot(page, 'rules');

    // Webhooks: a test ping, then the deliveries of "Ops chat".
    await page.goto('/analytics/webhooks');
    const ops = page.getByTestId('webhook-row').filter({ hasText: 'Ops chat' });
    await expect(ops).toBeVisible();
    await ops.getByTestId('webhook-test').click();
    await expect(page.getByTestId('deliveries')).toBeVisible();
    await expect.poll(() => hook.count(), { timeout: 15_000 }).toBeGreaterThan(0);
    await page.getByRole('button', { name: 'Reload deliveries' }).click();
    await expect(page.getByTestId('delivery-status').filter({ hasText: 'delivered' }).first()).toBeVisible();
    await shot(page, 'webhooks');

    // Device page, Analytics tab, with the forecast.
    await page.goto(`/devices/${plant.boiler1.id}?tab=analytics&akey=temperature&range=24h&fc=6h`);
    await expect(page.getByTestId('device-analytics-chart').locator('canvas')).toHaveCount(1);
    await expect(page.getByTestId('forecast-info')).toBeVisible({ timeout: 15_000 });
    await expect(page.getByTestId('insights')).toBeVisible();
    await expect(page.getByTestId('nav-alarms-count')).toBeVisible();
    await shot(page, 'device-analytics', true);

    await page.getByTestId('theme-toggle').click();
    await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
    await expect(page.getByTestId('device-analytics-chart').locator('canvas')).toHaveCount(1);
    await expect(page.getByTestId('forecast-info')).toBeVisible({ timeout: 15_000 });
    await shot(page, 'device-analytics-dark', true);
    await page.goto('/alarms?status=all');
    await expect(page.getByTestId('alarm-row').first()).toBeVisible();
    await shot(page, 'alarms-dark');
    await page.getByTestId('theme-toggle').click();
    await expect(page.locator('html')).toHaveAttribute('data-theme', 'light');

    await page.setViewportSize({ width: 820, height: 1100 });
    await page.goto('/alarms?status=all');
    await expect(page.getByTestId('alarm-row').first()).toBeVisible();
    await shot(page, 'alarms-820');
    await page.goto(`/devices/${plant.boiler1.id}?tab=analytics&akey=temperature&range=24h`);
    await expect(page.getByTestId('device-analytics-chart').locator('canvas')).toHaveCount(1);
    await expect(page.getByTestId('insights')).toBeVisible();
    await shot(page, 'device-analytics-820', true);
  } finally {
    hook.server.close();
  }
});

async function pickPreviewDevice(page: Page, name: string) {
  const input = page.getByTestId('backtest').getByTestId('device-picker-input');
  await input.click();
  await input.fill(name);
  await page.getByTestId('device-option').filter({ hasText: name }).click();
}
