// Issue 4: a dashboard (or device) URL of another tenant shows "not found", exactly like an id
// that does not exist; the API answers 404 too.
import { createDevice, createTenant } from './lib/api';
import { unique } from './lib/env';
import { expect, login, test } from './fixtures';

test("another tenant's dashboard and device URLs show not found", async ({ page, tenant }) => {
  const other = await createTenant('other');
  const theirDash = await other.admin.api.ok('POST', '/api/v1/dashboards', {
    name: unique('Secret'),
    layout: { schema: 1, time: { range: '1h' }, widgets: [{ id: 'w1', type: 'markdown', x: 0, y: 0, w: 6, h: 3, title: 'Secret', config: { text: 'secret text' } }] },
  });
  const theirDev = await createDevice(other.admin.api, unique('secret-dev'));

  expect((await tenant.admin.api.call('GET', `/api/v1/dashboards/${theirDash.id}`)).status).toBe(404);
  expect((await tenant.admin.api.call('GET', `/api/v1/devices/${theirDev.id}`)).status).toBe(404);

  await login(page, tenant.admin);
  await page.goto(`/dashboards/${theirDash.id}`);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Not found');
  await expect(page.getByTestId('empty')).toContainText('This dashboard does not exist');
  await expect(page.getByText('secret text')).toHaveCount(0);
  await expect(page.getByText(theirDash.name)).toHaveCount(0);

  // Same page for an id that never existed: nothing tells the two apart.
  await page.goto('/dashboards/00000000-0000-4000-8000-000000000000');
  await expect(page.getByTestId('empty')).toContainText('This dashboard does not exist');

  await page.goto(`/devices/${theirDev.id}`);
  await expect(page.getByTestId('empty')).toContainText('This device does not exist');
  await expect(page.getByText(theirDev.name)).toHaveCount(0);

  // The other tenant's own admin sees it.
  await page.getByTestId('logout').click();
  await login(page, other.admin);
  await page.goto(`/dashboards/${theirDash.id}`);
  await expect(page.getByTestId('widget')).toContainText('secret text');
});
