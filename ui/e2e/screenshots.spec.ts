// Issue 4: "Screenshots of each main screen are saved under docs/screenshots/ by the test run".
// A realistic tenant (devices with 24 h of history, a dashboard of every widget type, users) is
// seeded, then every main screen is captured in the light theme at 1366x850, the dashboard and
// the device page also in the dark theme and at 820 px (tablet). Files are overwritten each run.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from '@playwright/test';
import { Api, createDevice, type DeviceInfo, type TenantCtx } from './lib/api';
import { mqttPublish, postTelemetry, RpcDevice } from './lib/device';
import { PASSWORD, unique } from './lib/env';
import { waitDashboardReady } from './lib/ui';
import { expect, login, loginSysadmin, test } from './fixtures';

const DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'screenshots');
mkdirSync(DIR, { recursive: true });

async function shot(page: Page, name: string) {
  // No caret blinking, no running CSS animations (flash / pulse) in the pictures.
  await page.addStyleTag({ content: '*,*::before,*::after{animation:none!important;transition:none!important;caret-color:transparent!important}' });
  await page.screenshot({ path: path.join(DIR, `${name}.png`), animations: 'disabled' });
}

interface Plant {
  boilers: DeviceInfo[];
  chiller: DeviceInfo;
  weather: DeviceInfo;
  dashId: string;
}

const H = 3600_000;

/** Devices, 24 h of history, attributes, a second user and a dashboard of every widget type. */
async function seedPlant(t: TenantCtx): Promise<Plant> {
  const api = t.admin.api;
  const boilers = [
    await createDevice(api, 'Boiler room 1', { type: 'boiler', labels: { site: 'north', floor: '1' } }),
    await createDevice(api, 'Boiler room 2', { type: 'boiler', labels: { site: 'north', floor: '2' } }),
    await createDevice(api, 'Boiler room 3', { type: 'boiler', labels: { site: 'south' } }),
  ];
  const chiller = await createDevice(api, 'Chiller A', { type: 'chiller', labels: { site: 'south' } });
  const weather = await createDevice(api, 'Weather station', { type: 'weather', labels: { site: 'roof' } });
  await createDevice(api, 'Gateway 01', { type: 'gateway', gateway: true, labels: { site: 'north' } });
  for (let i = 1; i <= 6; i++) await createDevice(api, `Pump ${String(i).padStart(2, '0')}`, { type: 'pump', labels: { site: i % 2 ? 'north' : 'south' } });

  const now = Date.now();
  const step = 5 * 60_000;
  const from = Math.floor((now - 24 * H) / step) * step;
  const series = (phase: number, base: number, amp: number) => (ts: number) =>
    Math.round((base + amp * Math.sin(((ts - from) / (24 * H)) * 2 * Math.PI + phase) + amp * 0.15 * Math.sin(ts / 700_000)) * 100) / 100;
  const devs = [...boilers, chiller];
  for (const [i, d] of devs.entries()) {
    const temp = series(i, d === chiller ? 7 : 62 + i * 4, d === chiller ? 1.5 : 6);
    const hum = series(i + 1, 45, 8);
    const rows = [];
    for (let ts = from; ts < now - 60_000; ts += step)
      rows.push({ ts, values: { temperature: temp(ts), humidity: hum(ts), pressure: Math.round((1.8 + 0.1 * Math.sin(ts / 3e6 + i)) * 100) / 100, energy: Math.round(4 + 3 * Math.abs(Math.sin(ts / 5e6 + i))) } });
    await postTelemetry(d.token, rows);
  }
  const coords: [DeviceInfo, number, number][] = [
    [boilers[0], 48.1374, 11.5755],
    [boilers[1], 48.1391, 11.5802],
    [boilers[2], 48.1302, 11.5668],
    [chiller, 48.1333, 11.5901],
    [weather, 48.1421, 11.5712],
  ];
  for (const [d, lat, lon] of coords) await postTelemetry(d.token, { latitude: lat, longitude: lon });
  await postTelemetry(weather.token, { wind_speed: 4.2, outside_temp: 12.5 });
  await fetch(`${process.env.SW_E2E_URL}/api/v1/${boilers[0].token}/attributes`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ firmware: '2.4.1', model: 'BX-200', serial: 'SN-00412' }),
  });
  await api.ok('POST', `/api/v1/devices/${boilers[0].id}/attributes?scope=shared`, { setpoint: 65, reporting_interval_s: 30 });
  await api.ok('POST', '/api/v1/users', { username: unique('operator'), password: PASSWORD, role: 'viewer' });

  const ids = (ds: DeviceInfo[]) => ds.map((d) => d.id);
  const layout = {
    schema: 1,
    time: { range: '24h' },
    widgets: [
      { id: 'v1', type: 'value', x: 0, y: 0, w: 3, h: 3, title: 'Boiler 1 temperature', config: { datasource: { mode: 'devices', device_ids: [boilers[0].id], keys: ['temperature'] }, unit: '°C', decimals: 1, thresholds: [{ value: 70, color: '#e02f44' }] } },
      { id: 'v2', type: 'value', x: 3, y: 0, w: 3, h: 3, title: 'Chiller temperature', config: { datasource: { mode: 'devices', device_ids: [chiller.id], keys: ['temperature'] }, unit: '°C', decimals: 1 } },
      { id: 'g1', type: 'gauge', x: 6, y: 0, w: 3, h: 3, title: 'Humidity', config: { datasource: { mode: 'devices', device_ids: [boilers[1].id], keys: ['humidity'] }, unit: '%', min: 0, max: 100, thresholds: [{ value: 60, color: '#f2cc0c' }, { value: 80, color: '#e02f44' }] } },
      { id: 'm1', type: 'markdown', x: 9, y: 0, w: 3, h: 3, title: 'About', config: { text: '### Plant overview\nBoilers and chiller of the **north** and **south** sites. Temperatures in °C, live.' } },
      { id: 'l1', type: 'line', x: 0, y: 3, w: 8, h: 5, title: 'Boiler temperatures', config: { datasource: { mode: 'devices', device_ids: ids(boilers), keys: ['temperature'] }, unit: '°C' } },
      { id: 'map', type: 'map', x: 8, y: 3, w: 4, h: 5, title: 'Sites', config: { datasource: { mode: 'devices', device_ids: ids([...boilers, chiller, weather]), keys: [] } } },
      { id: 'b1', type: 'bar', x: 0, y: 8, w: 5, h: 5, title: 'Energy per hour', config: { datasource: { mode: 'devices', device_ids: [boilers[0].id, boilers[1].id], keys: ['energy'] }, agg: 'sum', unit: 'kWh' } },
      { id: 't1', type: 'table', x: 5, y: 8, w: 7, h: 5, title: 'Boilers', config: { datasource: { mode: 'filter', filter: { type: 'boiler' }, keys: ['temperature', 'humidity', 'pressure'] }, units: { temperature: '°C', humidity: '%', pressure: 'bar' } } },
      { id: 'a1', type: 'alarms', x: 0, y: 13, w: 12, h: 3, title: 'Alarms', config: {} },
    ],
  };
  const dash = await api.ok('POST', '/api/v1/dashboards', { name: 'Plant overview', description: 'Boilers, chiller and weather of both sites', layout });
  for (const name of ['Energy report', 'Chiller room', 'Site south']) {
    await api.ok('POST', '/api/v1/dashboards', {
      name,
      layout: { schema: 1, time: { range: '1h' }, widgets: [{ id: 'x', type: 'markdown', x: 0, y: 0, w: 4, h: 3, title: name, config: { text: name } }] },
    });
  }
  return { boilers, chiller, weather, dashId: dash.id };
}

test('screenshots of every main screen', async ({ page, tenant }) => {
  test.setTimeout(150_000);
  const plant = await seedPlant(tenant);
  const b1 = plant.boilers[0];

  await page.goto('/login');
  await expect(page.getByLabel('Username')).toBeVisible();
  await page.getByLabel('Username').fill(tenant.admin.username);
  await shot(page, 'login');
  await page.getByLabel('Password').fill('wrong-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('login-error')).toBeVisible();
  await shot(page, 'login-error');

  await login(page, tenant.admin);
  await expect(page.getByTestId('dashboard-row')).toHaveCount(4);
  await shot(page, 'dashboards');

  // Dashboard view with live widgets.
  await page.goto(`/dashboards/${plant.dashId}`);
  await waitDashboardReady(page);
  await expect(page.getByTestId('live-state')).toHaveText(/Live/);
  await postTelemetry(b1.token, { temperature: 71.3 });
  await mqttPublish(plant.chiller.token, { temperature: 6.4 });
  await expect(page.locator('[data-widget-id="v1"] [data-testid="widget-value"]')).toHaveText('71.3');
  await expect(page.locator('[data-widget-id="v2"] [data-testid="widget-value"]')).toHaveText('6.4');
  await expect(page.getByTestId('widget-error')).toHaveCount(0);
  await shot(page, 'dashboard');

  // Edit mode with a widget's settings dialog.
  await page.getByTestId('dashboard-edit').click();
  await expect(page.getByTestId('edit-bar')).toBeVisible();
  await page.locator('[data-widget-id="l1"]').getByTestId('widget-config').click();
  const cfg = page.getByRole('dialog').filter({ has: page.getByTestId('widget-config-form') });
  await cfg.getByTestId('config-tab-data').click();
  await expect(cfg.getByTestId('key-chip').first()).toBeVisible();
  await shot(page, 'dashboard-edit');
  await cfg.getByRole('button', { name: 'Cancel' }).click();
  await page.getByTestId('dashboard-cancel').click();

  await page.goto('/devices');
  await expect(page.getByTestId('device-row')).toHaveCount(12);
  await shot(page, 'devices');

  // Device page tabs.
  const rpcDevice = await RpcDevice.start(b1.token);
  try {
    await page.goto(`/devices/${b1.id}`);
    await expect(page.getByTestId('latest-temperature')).toHaveText('71.3');
    await expect(page.getByTestId('online-state')).toHaveText(/Online/);
    await shot(page, 'device-latest');
    await page.getByTestId('tab-chart').click();
    await expect(page).toHaveURL(/tab=chart/);
    await page.goto(`/devices/${b1.id}?tab=chart&keys=temperature,humidity&range=24h`);
    await expect(page.locator('.chart-panel canvas')).toHaveCount(1);
    await expect(page.getByTestId('chart-key-humidity')).toHaveAttribute('aria-pressed', 'true');
    await expect(page.getByTestId('chart-empty')).toHaveCount(0);
    await shot(page, 'device-chart');
    await page.getByTestId('tab-attributes').click();
    await expect(page.getByTestId('attr-client-firmware')).toContainText('2.4.1');
    await shot(page, 'device-attributes');
    await page.getByTestId('tab-rpc').click();
    await page.getByTestId('rpc-method').fill('setSetpoint');
    await page.getByTestId('rpc-params').fill('{"value": 66}');
    await page.getByTestId('rpc-send').click();
    await expect(page.getByTestId('rpc-result')).toContainText('"ok": true');
    await shot(page, 'device-rpc');
    await page.getByTestId('tab-connect').click();
    await expect(page.getByTestId('snippet-curl')).toBeVisible();
    await shot(page, 'device-connect');
  } finally {
    await rpcDevice.stop();
  }

  await page.goto('/users');
  await expect(page.getByTestId('user-row')).toHaveCount(3);
  await shot(page, 'users');
  await page.goto('/profile');
  await expect(page.getByTestId('profile-username')).toContainText(tenant.admin.username);
  await shot(page, 'profile');

  // Dark theme (picked with the sidebar toggle, remembered across pages).
  await page.getByTestId('theme-toggle').click();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  await page.goto(`/dashboards/${plant.dashId}`);
  await waitDashboardReady(page);
  await expect(page.getByTestId('widget-error')).toHaveCount(0);
  await shot(page, 'dashboard-dark');
  await page.goto(`/devices/${b1.id}?tab=chart&keys=temperature,humidity&range=24h`);
  await expect(page.locator('.chart-panel canvas')).toHaveCount(1);
  await shot(page, 'device-dark');
  await page.getByTestId('theme-toggle').click();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'light');

  // Tablet width.
  await page.setViewportSize({ width: 820, height: 1100 });
  await page.goto(`/dashboards/${plant.dashId}`);
  await waitDashboardReady(page);
  await shot(page, 'dashboard-820');
  await page.goto(`/devices/${b1.id}`);
  await expect(page.getByTestId('latest-temperature')).toBeVisible();
  await shot(page, 'device-820');
  await page.goto('/devices');
  await expect(page.getByTestId('device-row')).toHaveCount(12);
  await shot(page, 'devices-820');
});

test('screenshot of the tenants screen (sysadmin)', async ({ page }) => {
  const sys = await Api.admin();
  expect((await sys.ok('GET', '/api/v1/tenants')).items.length).toBeGreaterThan(0);
  await loginSysadmin(page);
  await expect(page.getByTestId('tenant-row').first()).toBeVisible();
  await shot(page, 'tenants');
  await page.goto('/users');
  await expect(page.getByTestId('user-row').first()).toBeVisible();
  await shot(page, 'users-sysadmin');
});
