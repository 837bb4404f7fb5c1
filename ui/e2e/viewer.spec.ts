// Issue 4: a viewer sees no edit controls on dashboards and devices, and the server refuses edits.
import { createDevice } from './lib/api';
import { unique } from './lib/env';
import { expect, login, test } from './fixtures';

test('a viewer sees no edit controls and the server refuses edits', async ({ page, tenant }) => {
  const admin = tenant.admin.api;
  const dev = await createDevice(admin, unique('meter'), { type: 'meter' });
  const dash = await admin.ok('POST', '/api/v1/dashboards', {
    name: unique('Shared'),
    layout: { schema: 1, time: { range: '1h' }, widgets: [{ id: 'w1', type: 'markdown', x: 0, y: 0, w: 6, h: 3, title: 'Notes', config: { text: 'Read only' } }] },
  });

  await login(page, tenant.viewer);
  await expect(page.getByTestId('whoami')).toContainText('viewer');
  // No user management in the navigation.
  await expect(page.getByRole('link', { name: 'Users' })).toHaveCount(0);

  // Dashboards list: rows but no create / import / rename / duplicate / delete.
  const row = page.getByTestId('dashboard-row').filter({ hasText: dash.name });
  await expect(row).toHaveCount(1);
  for (const id of ['dashboard-create', 'dashboard-import', 'dashboard-rename', 'dashboard-duplicate', 'dashboard-delete'])
    await expect(page.getByTestId(id)).toHaveCount(0);
  await expect(row.getByTestId('dashboard-export')).toBeVisible();

  // Dashboard: view only, even when asking for edit mode in the URL.
  await page.goto(`/dashboards/${dash.id}?edit=1`);
  await expect(page.getByTestId('widget')).toHaveCount(1);
  await expect(page.getByTestId('widget')).toContainText('Read only');
  for (const id of ['dashboard-edit', 'edit-bar', 'add-widget', 'dashboard-save', 'widget-config', 'widget-remove'])
    await expect(page.getByTestId(id)).toHaveCount(0);

  // Devices: no create / edit / delete; device page without edit, delete, RPC, regenerate.
  await page.goto('/devices');
  await expect(page.getByTestId('device-row')).toHaveCount(1);
  await expect(page.getByTestId('device-create')).toHaveCount(0);
  await expect(page.getByRole('button', { name: `Edit ${dev.name}` })).toHaveCount(0);
  await expect(page.getByRole('button', { name: `Delete ${dev.name}` })).toHaveCount(0);
  await page.getByTestId('device-row').click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText(dev.name);
  for (const id of ['device-edit', 'device-delete', 'tab-rpc']) await expect(page.getByTestId(id)).toHaveCount(0);
  await page.getByTestId('tab-attributes').click();
  await expect(page.locator('[data-testid^="attr-add-"]')).toHaveCount(0);
  await page.getByTestId('tab-connect').click();
  await expect(page.getByTestId('token-regenerate')).toHaveCount(0);
  await expect(page.getByTestId('mqtt-basic-edit')).toHaveCount(0);
  await page.goto(`/devices/${dev.id}?tab=rpc`);
  await expect(page.getByTestId('rpc-send')).toHaveCount(0);

  // The server refuses anyway.
  const viewer = tenant.viewer.api;
  const full = await viewer.ok('GET', `/api/v1/dashboards/${dash.id}`);
  const put = await viewer.call('PUT', `/api/v1/dashboards/${dash.id}`, { name: 'hacked', layout: full.layout, version: full.version });
  expect(put.status).toBe(403);
  expect(put.body.code).toBe('permission_denied');
  expect((await viewer.call('DELETE', `/api/v1/dashboards/${dash.id}`)).status).toBe(403);
  expect((await viewer.call('POST', '/api/v1/dashboards', { name: 'x', layout: { schema: 1, widgets: [] } })).status).toBe(403);
  expect((await viewer.call('POST', '/api/v1/devices', { name: 'x' })).status).toBe(403);
  expect((await viewer.call('PATCH', `/api/v1/devices/${dev.id}`, { name: 'y' })).status).toBe(403);
  expect((await viewer.call('POST', `/api/v1/devices/${dev.id}/rpc`, { method: 'm' })).status).toBe(403);
  const after = await admin.ok('GET', `/api/v1/dashboards/${dash.id}`);
  expect(after.name).toBe(dash.name);
  expect(after.version).toBe(dash.version);
});
