// Issue 5 (UI part): a rule made in the UI raises an alarm from HTTP telemetry that appears live
// on the alarms page, is acknowledged and cleared there, and shows in the dashboard alarm-list
// widget; a detector's backtest preview draws a chart over data the test wrote; a viewer sees no
// ack / clear / edit controls and the server refuses them anyway.
import type { Page } from '@playwright/test';
import { Api, createDevice, type DeviceInfo } from './lib/api';
import { postTelemetry } from './lib/device';
import { unique } from './lib/env';
import { expect, login, test } from './fixtures';

/** Polls the API until the device has an open alarm; resolves to it. */
async function waitOpenAlarm(api: Api, deviceId: string, timeoutMs = 15_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await api.ok('GET', `/api/v1/alarms?device_id=${deviceId}&status=open`);
    if (r.items.length) return r.items[0];
    if (Date.now() > deadline) throw new Error(`no open alarm on ${deviceId} after ${timeoutMs} ms`);
    await new Promise((res) => setTimeout(res, 150));
  }
}

/** Picks a device by name in the device picker inside `scope`. */
async function pickDevice(page: Page, scopeTestId: string, name: string) {
  const scope = page.getByTestId(scopeTestId);
  const input = scope.getByTestId('device-picker-input');
  await input.click();
  await input.fill(name);
  await page.getByTestId('device-option').filter({ hasText: name }).click();
  await input.press('Escape');
}

/** 24 h of 5-minute temperatures (a smooth daily wave) with one spike an hour ago. */
async function writeHistory(dev: DeviceInfo, spikeAt: number): Promise<void> {
  const step = 5 * 60_000;
  const now = Date.now();
  const from = Math.floor((now - 24 * 3600_000) / step) * step;
  const rows = [];
  for (let ts = from, i = 0; ts < now - step; ts += step, i++) {
    const base = 21 + 2 * Math.sin(((ts - from) / 86_400_000) * 2 * Math.PI) + 0.3 * Math.sin(i * 1.7);
    rows.push({ ts, values: { temperature: Math.abs(ts - spikeAt) < step / 2 ? 48 : Math.round(base * 100) / 100 } });
  }
  await postTelemetry(dev.token, rows);
}

test('a rule made in the UI raises a live alarm that is acknowledged, cleared and shown on a dashboard', async ({ page, tenant }) => {
  test.setTimeout(90_000);
  const admin = tenant.admin.api;
  const dev = await createDevice(admin, unique('boiler'), { type: 'boiler' });
  await postTelemetry(dev.token, { temperature: 20 });

  await login(page, tenant.admin);
  await page.goto('/analytics/rules');
  await expect(page.getByTestId('empty')).toBeVisible();
  await page.getByTestId('rule-create').click();
  const dlg = page.getByRole('dialog', { name: 'New rule' });
  await dlg.getByTestId('rule-name').fill('Boiler too hot');
  // The server's parse error is shown at the condition field.
  await dlg.getByTestId('rule-condition').fill('temperature >');
  await dlg.getByTestId('filter-mode-devices').check();
  await pickDevice(page, 'device-filter', dev.name);
  await dlg.getByTestId('rule-save').click();
  await expect(dlg.getByTestId('error-condition')).toContainText(/position/);
  await dlg.getByTestId('rule-condition').fill('temperature > 80');
  await dlg.getByTestId('rule-severity').selectOption('critical');
  await dlg.getByTestId('rule-save').click();
  await expect(dlg).toHaveCount(0);
  const row = page.getByTestId('rule-row').filter({ hasText: 'Boiler too hot' });
  await expect(row).toContainText('temperature > 80');
  const rules = await admin.ok('GET', '/api/v1/rules');
  expect(rules.items).toHaveLength(1);
  expect(rules.items[0].device_filter).toEqual({ device_ids: [dev.id] });
  expect(rules.items[0].severity).toBe('critical');

  // The alarms page (open alarms: none yet), live.
  await page.getByRole('link', { name: 'Alarms' }).click();
  await expect(page).toHaveURL(/\/alarms$/);
  await expect(page.getByTestId('empty')).toContainText('No open alarms');
  await expect(page.getByTestId('live-state')).toHaveText(/Live/);
  await page.evaluate(() => ((window as any).__e2eNoReload = true));
  await page.waitForTimeout(300); // the alarm subscription reaches the server

  await postTelemetry(dev.token, { temperature: 91.5 });
  const alarm = page.getByTestId('alarm-row');
  await expect(alarm).toHaveCount(1);
  await expect(alarm).toHaveAttribute('data-status', 'active');
  await expect(alarm.getByTestId('severity')).toHaveText('Critical');
  await expect(alarm).toContainText(dev.name);
  await expect(alarm).toContainText('Boiler too hot');
  await expect(page.getByTestId('nav-alarms-count')).toHaveText('1');
  expect(await page.evaluate(() => (window as any).__e2eNoReload)).toBe(true);

  // Acknowledge it.
  await alarm.getByTestId('alarm-ack').click();
  await expect(alarm).toHaveAttribute('data-status', 'acknowledged');
  await expect(alarm.getByTestId('alarm-ack')).toHaveCount(0);
  const id = await alarm.getAttribute('data-alarm-id');
  const acked = await admin.ok('GET', `/api/v1/alarms/${id}`);
  expect(acked.status).toBe('acknowledged');
  expect(acked.acked_by).toBe(tenant.admin.id);

  // The dashboard alarm-list widget shows it; clearing it there removes it.
  const dash = await admin.ok('POST', '/api/v1/dashboards', {
    name: unique('Alarms board'),
    layout: { schema: 1, time: { range: '1h' }, widgets: [{ id: 'a1', type: 'alarms', x: 0, y: 0, w: 8, h: 4, title: 'Open alarms', config: {} }] },
  });
  await page.goto(`/dashboards/${dash.id}`);
  const wAlarm = page.getByTestId('widget-alarm');
  await expect(wAlarm).toHaveCount(1);
  await expect(wAlarm).toHaveAttribute('data-alarm-id', id!);
  await expect(wAlarm).toHaveAttribute('data-status', 'acknowledged');
  await expect(wAlarm).toContainText(dev.name);
  await expect(wAlarm).toContainText('temperature > 80');
  await wAlarm.getByTestId('alarm-clear').click();
  await expect(wAlarm).toHaveCount(0);
  await expect(page.getByTestId('widget-empty')).toContainText('No open alarms');
  const cleared = await admin.ok('GET', `/api/v1/alarms/${id}`);
  expect(cleared.status).toBe('cleared');
  expect(cleared.cleared_by).toBe(tenant.admin.id);

  // The condition ends and comes back: a new alarm appears in the widget live.
  await expect(page.getByTestId('live-state')).toHaveText(/Live/);
  await page.evaluate(() => ((window as any).__e2eNoReload = true));
  await page.waitForTimeout(300);
  await postTelemetry(dev.token, { temperature: 20 });
  await postTelemetry(dev.token, { temperature: 95 });
  await expect(wAlarm).toHaveCount(1);
  await expect(wAlarm).toHaveAttribute('data-status', 'active');
  await expect(wAlarm).toContainText('95');
  const id2 = await wAlarm.getAttribute('data-alarm-id');
  expect(id2).not.toBe(id);
  expect(await page.evaluate(() => (window as any).__e2eNoReload)).toBe(true);

  // Clear the new one on the alarms page: it leaves the open list; both are listed as cleared.
  await page.goto('/alarms');
  await expect(alarm).toHaveCount(1);
  await expect(alarm).toHaveAttribute('data-alarm-id', id2!);
  await alarm.getByTestId('alarm-clear').click();
  await expect(alarm).toHaveCount(0);
  await expect(page.getByTestId('empty')).toContainText('No open alarms');
  await page.getByTestId('alarm-status-cleared').click();
  await expect(page).toHaveURL(/status=cleared/);
  await expect(alarm).toHaveCount(2);
  for (const r of await alarm.all()) await expect(r).toHaveAttribute('data-status', 'cleared');
  await expect(page.getByTestId('alarm-clear')).toHaveCount(0);
  expect((await admin.ok('GET', `/api/v1/alarms/${id2}`)).status).toBe('cleared');
  // The detail dialog tells the story of the first one.
  await page.locator(`[data-testid="alarm-row"][data-alarm-id="${id}"]`).click();
  const detail = page.getByRole('dialog', { name: 'Alarm' });
  await expect(detail).toContainText('Acknowledged');
  await expect(detail).toContainText('by you');
  await page.keyboard.press('Escape');
  await expect(detail).toHaveCount(0);
  await expect(page.getByTestId('nav-alarms-count')).toHaveCount(0);
});

test('a detector preview (backtest) charts the data the test wrote, without raising alarms', async ({ page, tenant }) => {
  test.setTimeout(90_000);
  const admin = tenant.admin.api;
  const dev = await createDevice(admin, unique('chiller'), { type: 'chiller' });
  const spikeAt = Math.floor((Date.now() - 3600_000) / 300_000) * 300_000;
  await writeHistory(dev, spikeAt);

  await login(page, tenant.admin);
  await page.goto('/analytics/detectors');
  await page.getByTestId('detector-create').click();
  const dlg = page.getByRole('dialog', { name: 'New detector' });
  await dlg.getByTestId('detector-name').fill('Chiller temperature');
  // Kinds come from the server, each with its parameters and defaults.
  await expect(dlg.getByTestId('kind-zscore')).toBeVisible();
  await expect(dlg.getByTestId('kind-holt_winters')).toBeVisible();
  await dlg.getByTestId('kind-zscore').click();
  await expect(dlg.getByTestId('param-window')).toHaveValue(/\d+/);
  await dlg.getByTestId('filter-mode-devices').check();
  await pickDevice(page, 'device-filter', dev.name);
  // The device's keys are suggested.
  await dlg.getByTestId('key-suggestion').filter({ hasText: 'temperature' }).click();
  await expect(dlg.getByTestId('keys-input')).toContainText('temperature');

  await dlg.getByTestId('backtest-run').click();
  const result = dlg.getByTestId('backtest-result');
  await expect(result).toBeVisible({ timeout: 20_000 });
  await expect(result.getByTestId('backtest-series')).toHaveCount(1);
  await expect(result.locator('canvas')).toHaveCount(1);
  await expect(result.getByTestId('chart-empty')).toHaveCount(0);
  await expect(dlg.getByTestId('backtest-stats')).toContainText(/points scanned/);
  // The spike an hour ago is a would-be alarm.
  const wouldBe = result.getByTestId('backtest-alarm');
  await expect(wouldBe.first()).toBeVisible();
  const starts = await admin.ok('POST', '/api/v1/detectors/backtest', {
    detector: { name: 'x', keys: ['temperature'], kind: 'zscore', device_filter: { device_ids: [dev.id] } },
    from: Date.now() - 86_400_000,
    to: Date.now(),
    device_id: dev.id,
  });
  const near = starts.series[0].alarms.some((a: any) => Math.abs(a.start_ms - spikeAt) <= 10 * 60_000);
  expect(near, 'the backtest finds the spike').toBe(true);
  // No side effects.
  expect((await admin.ok('GET', `/api/v1/alarms?device_id=${dev.id}`)).items).toHaveLength(0);

  // Moving the threshold shows it is stale; then save.
  await dlg.getByTestId('detector-threshold').evaluate((el: HTMLInputElement) => {
    el.value = '0.95';
    el.dispatchEvent(new Event('input', { bubbles: true }));
  });
  await expect(dlg.getByTestId('detector-threshold-value')).toHaveText('0.95');
  await dlg.getByTestId('detector-save').click();
  await expect(dlg).toHaveCount(0);
  const row = page.getByTestId('detector-row').filter({ hasText: 'Chiller temperature' });
  await expect(row).toContainText('Robust z-score');
  await expect(row).toContainText('0.95');
  const saved = (await admin.ok('GET', '/api/v1/detectors')).items[0];
  expect(saved).toMatchObject({ kind: 'zscore', keys: ['temperature'], threshold: 0.95, enabled: true, device_filter: { device_ids: [dev.id] } });

  // Disable from the list.
  await row.getByTestId('detector-enabled').click();
  await expect.poll(async () => (await admin.ok('GET', `/api/v1/detectors/${saved.id}`)).enabled).toBe(false);

  // The device page's Analytics tab lists it and shows the chart and insights.
  await page.goto(`/devices/${dev.id}?tab=analytics`);
  await expect(page.getByTestId('device-detector')).toContainText('Chiller temperature');
  await expect(page.getByTestId('device-analytics-chart').locator('canvas')).toHaveCount(1);
  await expect(page.getByTestId('insights')).toBeVisible();
  await expect(page.getByTestId('insight-trend')).not.toHaveText('');
});

test('a viewer sees alarms and analytics but no ack, clear or edit controls', async ({ page, tenant }) => {
  test.setTimeout(90_000);
  const admin = tenant.admin.api;
  const dev = await createDevice(admin, unique('pump'), { type: 'pump' });
  await postTelemetry(dev.token, { pressure: 2 });
  await admin.ok('POST', '/api/v1/rules', { name: 'High pressure', condition: 'pressure > 5', device_filter: { device_ids: [dev.id] } });
  await admin.ok('POST', '/api/v1/detectors', { name: 'Pressure z', keys: ['pressure'], kind: 'zscore' });
  await admin.ok('POST', '/api/v1/webhooks', { name: 'Pager', url: 'http://127.0.0.1:9/hook' });
  await postTelemetry(dev.token, { pressure: 7.5 });
  const alarm = await waitOpenAlarm(admin, dev.id);

  await login(page, tenant.viewer);
  await page.goto('/alarms');
  const row = page.getByTestId('alarm-row');
  await expect(row).toHaveCount(1);
  await expect(row).toContainText('High pressure');
  await expect(page.getByTestId('alarm-ack')).toHaveCount(0);
  await expect(page.getByTestId('alarm-clear')).toHaveCount(0);
  await row.click();
  await expect(page.getByRole('dialog', { name: 'Alarm' })).toBeVisible();
  await expect(page.getByTestId('alarm-ack')).toHaveCount(0);
  await page.keyboard.press('Escape');

  await page.goto('/analytics/detectors');
  await expect(page.getByTestId('detector-row')).toHaveCount(1);
  for (const id of ['detector-create', 'detector-enabled', 'detector-edit', 'detector-delete']) await expect(page.getByTestId(id)).toHaveCount(0);
  await page.goto('/analytics/rules');
  await expect(page.getByTestId('rule-row')).toHaveCount(1);
  for (const id of ['rule-create', 'rule-enabled', 'rule-edit', 'rule-delete']) await expect(page.getByTestId(id)).toHaveCount(0);
  await page.getByTestId('rule-row').click();
  await expect(page.getByRole('dialog')).toHaveCount(0);
  await page.goto('/analytics/webhooks');
  await expect(page.getByTestId('webhook-row')).toHaveCount(1);
  for (const id of ['webhook-create', 'webhook-enabled', 'webhook-test', 'webhook-edit', 'webhook-delete']) await expect(page.getByTestId(id)).toHaveCount(0);
  await page.getByTestId('webhook-deliveries').click();
  await expect(page.getByTestId('deliveries')).toBeVisible();

  await page.goto(`/devices/${dev.id}?tab=analytics`);
  await expect(page.getByTestId('device-alarm')).toHaveCount(1);
  await expect(page.getByTestId('device-rule')).toContainText('High pressure');
  for (const id of ['device-new-detector', 'device-new-rule', 'alarm-ack', 'alarm-clear']) await expect(page.getByTestId(id)).toHaveCount(0);

  // The server refuses anyway.
  const viewer = tenant.viewer.api;
  expect((await viewer.call('POST', `/api/v1/alarms/${alarm.id}/ack`)).status).toBe(403);
  expect((await viewer.call('POST', `/api/v1/alarms/${alarm.id}/clear`)).status).toBe(403);
  expect((await viewer.call('POST', '/api/v1/rules', { name: 'x', condition: 'a > 1' })).status).toBe(403);
  expect((await viewer.call('POST', '/api/v1/detectors', { name: 'x', keys: ['a'], kind: 'zscore' })).status).toBe(403);
  expect((await admin.ok('GET', `/api/v1/alarms/${alarm.id}`)).status).toBe('active');
});

test('a detector and a rule for a device type are started from the devices list filtered by type', async ({ page, tenant }) => {
  const admin = tenant.admin.api;
  await createDevice(admin, unique('kiln'), { type: 'kiln' });
  await login(page, tenant.admin);

  await page.goto('/devices?type=kiln');
  await page.getByTestId('type-new-detector').click();
  const dlg = page.getByRole('dialog', { name: 'New detector' });
  await expect(dlg.getByTestId('filter-type-input')).toHaveValue('kiln');
  await dlg.getByTestId('detector-name').fill('Kiln temperature');
  await dlg.getByTestId('kind-ewma').click();
  await dlg.getByTestId('keys-text').fill('temperature');
  await dlg.getByTestId('keys-text').press('Enter');
  await dlg.getByTestId('detector-save').click();
  await expect(dlg).toHaveCount(0);
  await expect
    .poll(async () => (await admin.ok('GET', '/api/v1/detectors')).items.find((d: any) => d.name === 'Kiln temperature')?.device_filter)
    .toEqual({ type: 'kiln' });

  await page.goto('/devices?type=kiln');
  await page.getByTestId('type-new-rule').click();
  const rdlg = page.getByRole('dialog', { name: 'New rule' });
  await expect(rdlg.getByTestId('filter-type-input')).toHaveValue('kiln');
  await rdlg.getByTestId('rule-name').fill('Kiln too hot');
  await rdlg.getByTestId('rule-condition').fill('temperature > 1200');
  await rdlg.getByTestId('rule-save').click();
  await expect(rdlg).toHaveCount(0);
  await expect
    .poll(async () => (await admin.ok('GET', '/api/v1/rules')).items.find((r: any) => r.name === 'Kiln too hot')?.device_filter)
    .toEqual({ type: 'kiln' });
});
