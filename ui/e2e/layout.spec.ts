// Issue 4: edit a layout in the browser (gridstack resize and drag, remove a widget), save, reload:
// the layout persists, in the UI and on the server (GET /api/v1/dashboards/{id}).
import { unique } from './lib/env';
import { saveDashboard } from './lib/ui';
import { expect, login, test } from './fixtures';

const md = (id: string, x: number, y: number, text: string) => ({ id, type: 'markdown', x, y, w: 4, h: 3, title: text, config: { text: `## ${text}` } });

test('resize, move and remove widgets, save, reload: the layout persists', async ({ page, tenant }) => {
  const api = tenant.admin.api;
  const created = await api.ok('POST', '/api/v1/dashboards', {
    name: unique('Layout'),
    layout: { schema: 1, time: { range: '1h' }, widgets: [md('wa', 0, 0, 'Alpha'), md('wb', 4, 0, 'Bravo'), md('wc', 8, 0, 'Charlie')] },
  });
  const id: string = created.id;
  // A widget's cell in the grid (gridstack item in edit mode, static cell in view mode).
  const item = (wid: string) => page.locator(`[data-testid="dashboard-grid"] > [data-id="${wid}"]`);
  /** Position of a widget in grid units, measured on the page (independent of how it is drawn). */
  const place = async (wid: string) => {
    const g = (await page.getByTestId('dashboard-grid').boundingBox())!;
    const b = (await item(wid).boundingBox())!;
    const col = g.width / 12;
    return { x: Math.round((b.x - g.x) / col), w: Math.round(b.width / col), hPx: b.height };
  };

  await login(page, tenant.admin);
  await page.goto(`/dashboards/${id}`);
  await expect(page.getByTestId('widget')).toHaveCount(3);
  // View mode: no resize handles, widgets are not draggable.
  await expect(page.locator('[data-testid="dashboard-grid"] .ui-resizable-handle:visible')).toHaveCount(0);
  const rowPx = (await place('wa')).hPx / 3; // Alpha is 3 rows high
  await page.getByTestId('dashboard-edit').click();
  await expect(page.getByTestId('edit-bar')).toContainText('No changes yet');

  // Remove Charlie (confirmation dialog).
  await item('wc').getByTestId('widget-remove').click();
  await page.getByRole('dialog', { name: 'Remove widget' }).getByRole('button', { name: 'Remove' }).click();
  await expect(page.getByTestId('widget')).toHaveCount(2);

  // Resize Alpha two rows taller with its bottom-right handle.
  const alpha = item('wa');
  await alpha.hover();
  const handle = alpha.locator('.ui-resizable-se');
  const hb = (await handle.boundingBox())!;
  await page.mouse.move(hb.x + hb.width / 2, hb.y + hb.height / 2);
  await page.mouse.down();
  for (let i = 1; i <= 10; i++) await page.mouse.move(hb.x + hb.width / 2, hb.y + hb.height / 2 + (rowPx * 2 * i) / 10);
  await page.mouse.up();
  await expect(alpha).toHaveAttribute('gs-h', '5');

  // Drag Bravo by its title bar into the free columns on the right.
  const bravoHead = item('wb').locator('.widget-head');
  const bb = (await bravoHead.boundingBox())!;
  const colPx = (await page.getByTestId('dashboard-grid').boundingBox())!.width / 12;
  await page.mouse.move(bb.x + 20, bb.y + bb.height / 2);
  await page.mouse.down();
  for (let i = 1; i <= 12; i++) await page.mouse.move(bb.x + 20 + (colPx * 4 * i) / 12, bb.y + bb.height / 2);
  await page.mouse.up();
  await expect(item('wb')).toHaveAttribute('gs-x', '8');
  await expect(page.getByTestId('edit-bar')).toContainText('Unsaved changes');

  await saveDashboard(page);
  const check = (ws: any[]) => {
    expect(ws.map((w) => w.id).sort()).toEqual(['wa', 'wb']);
    const a = ws.find((w) => w.id === 'wa');
    const b = ws.find((w) => w.id === 'wb');
    expect([a.x, a.y, a.w, a.h]).toEqual([0, 0, 4, 5]);
    expect([b.x, b.y, b.w, b.h]).toEqual([8, 0, 4, 3]);
  };
  const afterSave = await api.ok('GET', `/api/v1/dashboards/${id}`);
  expect(afterSave.version).toBe(created.version + 1);
  check(afterSave.layout.widgets);

  await page.reload();
  await expect(page.getByTestId('widget')).toHaveCount(2);
  await expect(item('wc')).toHaveCount(0);
  // View mode draws the saved layout: Bravo in columns 8-11, Alpha 5 rows high (Bravo 3).
  await expect.poll(async () => (await place('wb')).x).toBe(8);
  expect((await place('wb')).w).toBe(4);
  expect((await place('wa')).x).toBe(0);
  const ratio = (await place('wa')).hPx / (await place('wb')).hPx;
  expect(ratio).toBeGreaterThan(1.5);
  expect(ratio).toBeLessThan(1.8);
  // And the editor starts from it.
  await page.getByTestId('dashboard-edit').click();
  await expect(item('wa')).toHaveAttribute('gs-h', '5');
  await expect(item('wb')).toHaveAttribute('gs-x', '8');
  await page.getByTestId('dashboard-cancel').click();
  // The dashboards list counts the widgets too.
  await page.goto('/dashboards');
  await expect(page.getByTestId('dashboard-row').filter({ hasText: created.name }).locator('td.num')).toHaveText('2');
});
