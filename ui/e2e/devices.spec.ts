// Issue 4: create a device in the UI (token shown once, copy button, snippets with this server's
// address), search / filter the server-paged list, and watch telemetry sent over HTTP and over
// MQTT arrive live on the device page without a reload.
import { createDevice } from './lib/api';
import { mqttPublish, postTelemetry } from './lib/device';
import { server, unique } from './lib/env';
import { expect, login, test } from './fixtures';

test('create a device: token shown once with copy button and ready-to-paste snippets', async ({ page, context, tenant }) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  await login(page, tenant.admin);
  await page.getByRole('link', { name: 'Devices' }).click();
  await expect(page).toHaveURL(/\/devices$/);
  await expect(page.getByTestId('empty')).toContainText('No devices yet');

  const name = unique('boiler');
  await page.getByTestId('device-create').click();
  const dialog = page.getByRole('dialog', { name: 'New device' });
  // Empty name: a clear error next to the field, nothing created.
  await dialog.getByTestId('device-save').click();
  await expect(dialog.getByText('Give the device a name.')).toBeVisible();
  await dialog.getByTestId('device-name-input').fill(name);
  await dialog.getByLabel('Type').fill('thermostat');
  await dialog.getByRole('button', { name: '+ Add label' }).click();
  await dialog.getByLabel('Label 1 key').fill('site');
  await dialog.getByLabel('Label 1 value').fill('north');
  await dialog.getByTestId('device-save').click();

  const tokenDialog = page.getByRole('dialog', { name: 'Device created' });
  await expect(tokenDialog).toBeVisible();
  const token = (await tokenDialog.getByTestId('token-value').textContent())?.trim() ?? '';
  expect(token.length).toBeGreaterThan(10);

  // The token is the device's real credential: the server accepts telemetry with it.
  expect(await postTelemetry(token, { temperature: 19.5 })).toBe(1);

  // Copy button puts the token on the clipboard.
  await tokenDialog.getByRole('button', { name: 'Copy token' }).click();
  await expect(tokenDialog.getByRole('button', { name: 'Copied' })).toBeVisible();
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(token);

  // Snippets carry the token and this server's address.
  const host = new URL(server.url).hostname;
  const mq = tokenDialog.getByTestId('snippet-mosquitto');
  await expect(mq).toContainText(`mosquitto_pub -h ${host} `);
  await expect(mq).toContainText(`-u ${token}`);
  await expect(mq).toContainText('-t v1/devices/me/telemetry');
  await expect(mq).toContainText(`-p ${server.mqttPort}`);
  const curl = tokenDialog.getByTestId('snippet-curl');
  await expect(curl).toContainText(`${server.url}/api/v1/${token}/telemetry`);

  await tokenDialog.getByRole('button', { name: 'Done' }).click();
  await expect(tokenDialog).toHaveCount(0);
  const row = page.getByTestId('device-row').filter({ hasText: name });
  await expect(row).toHaveCount(1);
  await expect(row).toContainText('thermostat');
  await expect(row).toContainText('site');

  // Shown once: the device page never shows the token again after a reload.
  await row.getByRole('link', { name }).click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText(name);
  await page.reload();
  await page.getByTestId('tab-connect').click();
  await expect(page.getByTestId('token-value')).toHaveCount(0);
  await expect(page.getByTestId('snippet-curl')).toContainText('$TOKEN');
});

test('device list: search and filters are server-side and kept in the URL', async ({ page, tenant }) => {
  const api = tenant.admin.api;
  await createDevice(api, 'pump-alpha', { type: 'pump', labels: { site: 'north' } });
  await createDevice(api, 'pump-beta', { type: 'pump', labels: { site: 'south' } });
  await createDevice(api, 'valve-gamma', { type: 'valve', labels: { site: 'north' } });
  const online = await createDevice(api, 'sensor-delta', { type: 'sensor' });
  // One device connected over MQTT: mosquitto_pub connects, publishes and leaves, so use the
  // device's activity (last_activity) only; the online filter is checked with nobody online.
  await postTelemetry(online.token, { t: 1 });

  await login(page, tenant.admin);
  await page.goto('/devices');
  const rows = page.getByTestId('device-row');
  await expect(rows).toHaveCount(4);
  // Ordered by name.
  await expect(rows.first()).toContainText('pump-alpha');

  await page.getByTestId('device-search').fill('PUMP');
  await expect(page).toHaveURL(/[?&]q=PUMP/);
  await expect(rows).toHaveCount(2);
  await expect(rows.nth(0)).toContainText('pump-alpha');
  await expect(rows.nth(1)).toContainText('pump-beta');

  await page.getByTestId('filter-label').fill('site:north');
  await expect(page).toHaveURL(/label=site%3Anorth/);
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText('pump-alpha');

  // The filters survive a reload (they live in the URL).
  await page.reload();
  await expect(page.getByTestId('device-search')).toHaveValue('PUMP');
  await expect(rows).toHaveCount(1);

  await page.getByRole('button', { name: 'Clear filters' }).first().click();
  await expect(rows).toHaveCount(4);
  await page.getByTestId('filter-type').fill('valve');
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText('valve-gamma');

  await page.getByTestId('filter-type').fill('');
  await expect(rows).toHaveCount(4);
  await page.getByTestId('filter-online').selectOption('true');
  await expect(page.getByTestId('empty')).toContainText('No device matches these filters');
  await page.getByTestId('filter-online').selectOption('false');
  await expect(rows).toHaveCount(4);

  await page.getByTestId('device-search').fill('no-such-device');
  await expect(page.getByTestId('empty')).toContainText('No device matches these filters');
});

test('device page: latest values update live from HTTP and MQTT telemetry', async ({ page, tenant }) => {
  const dev = await createDevice(tenant.admin.api, unique('live'), { type: 'thermostat' });
  await postTelemetry(dev.token, { temperature: 20.25 });

  await login(page, tenant.admin);
  await page.goto(`/devices/${dev.id}`);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText(dev.name);
  await expect(page.getByTestId('latest-temperature')).toHaveText('20.25');
  // The live stream is connected (else the page falls back to polling).
  await expect(page.locator('section[aria-label="Latest values"] .panel-bar .badge')).toHaveText(/Live/);
  // Marks this document: a reload would lose it.
  await page.evaluate(() => ((window as any).__e2eNoReload = true));

  // Over HTTP, a value for an existing key and a brand-new key.
  await postTelemetry(dev.token, { temperature: 21.75, humidity: 48 });
  await expect(page.getByTestId('latest-temperature')).toHaveText('21.75');
  await expect(page.getByTestId('latest-humidity')).toHaveText('48');

  // Over MQTT with the token as username.
  await mqttPublish(dev.token, { temperature: 23.5, valve_open: true });
  await expect(page.getByTestId('latest-temperature')).toHaveText('23.5');
  await expect(page.getByTestId('latest-valve_open')).toHaveText('true');

  expect(await page.evaluate(() => (window as any).__e2eNoReload)).toBe(true);
  await expect(page.getByTestId('last-activity')).not.toHaveText('never');
});
