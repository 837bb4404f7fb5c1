// Issue 4: create a dashboard, add a value card and a line chart on a device's key in edit mode,
// save, then send telemetry over HTTP and over MQTT and see the widgets change without reload.
import { createDevice } from './lib/api';
import { mqttPublish, postTelemetry } from './lib/device';
import { unique } from './lib/env';
import { addWidget, createDashboard, saveDashboard, waitDashboardReady } from './lib/ui';
import { expect, login, test } from './fixtures';

test('value card and line chart update live from HTTP and MQTT telemetry', async ({ page, tenant }) => {
  const dev = await createDevice(tenant.admin.api, unique('boiler'), { type: 'boiler' });
  await postTelemetry(dev.token, { temperature: 20 });

  await login(page, tenant.admin);
  const id = await createDashboard(page, unique('Boiler room'));
  await addWidget(page, { type: 'value', title: 'Temperature now', device: dev.name, keys: ['temperature'], unit: '°C' });
  await addWidget(page, { type: 'line', title: 'Temperature trend', device: dev.name, keys: ['temperature'], unit: '°C' });
  await saveDashboard(page);

  // Saved on the server with both widgets bound to the device's key.
  const saved = await tenant.admin.api.ok('GET', `/api/v1/dashboards/${id}`);
  const types = saved.layout.widgets.map((w: any) => w.type).sort();
  expect(types).toEqual(['line', 'value']);
  for (const w of saved.layout.widgets) {
    expect(w.config.datasource.device_ids).toEqual([dev.id]);
    expect(w.config.datasource.keys).toEqual(['temperature']);
  }

  const card = page.locator('[data-testid="widget"][data-widget-type="value"]');
  const chart = page.locator('[data-testid="widget"][data-widget-type="line"]');
  await waitDashboardReady(page);
  await expect(card.getByTestId('widget-value')).toHaveText('20');
  await expect(card).toContainText('°C');
  await expect(chart.getByTestId('timechart')).toBeVisible();
  await expect(chart.locator('canvas')).toHaveCount(1);
  await expect(page.getByTestId('live-state')).toHaveText(/Live/);
  await page.evaluate(() => ((window as any).__e2eNoReload = true));

  // HTTP: the card shows the new value; the chart's legend (latest value per series) follows.
  await postTelemetry(dev.token, { temperature: 31.25 });
  await expect(card.getByTestId('widget-value')).toHaveText('31.25');
  await expect(card.getByTestId('widget-value')).toHaveAttribute('data-value', '31.25');
  await expect(chart.locator('.u-legend')).toContainText('31.25 °C');
  await expect(card.getByTestId('widget-live')).toBeVisible();

  // MQTT with the device token.
  await mqttPublish(dev.token, { temperature: 42.5 });
  await expect(card.getByTestId('widget-value')).toHaveText('42.5');
  await expect(chart.locator('.u-legend')).toContainText('42.5 °C');

  expect(await page.evaluate(() => (window as any).__e2eNoReload)).toBe(true);
});
