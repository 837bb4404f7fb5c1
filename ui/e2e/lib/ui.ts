// UI steps shared by the dashboard specs.
import { expect, type Page } from '@playwright/test';

export interface WidgetSpec {
  type: 'line' | 'bar' | 'value' | 'gauge' | 'table' | 'map' | 'alarms' | 'markdown';
  title: string;
  device?: string;
  keys?: string[];
  unit?: string;
}

/** In edit mode: add a widget of a type and fill its settings dialog (device, keys, unit). */
export async function addWidget(page: Page, spec: WidgetSpec) {
  const before = await page.getByTestId('widget').count();
  await page.getByTestId('add-widget').click();
  await page.getByRole('dialog', { name: 'Add a widget' }).getByTestId(`widget-type-${spec.type}`).click();
  const dlg = page.getByRole('dialog').filter({ has: page.getByTestId('widget-config-form') });
  await expect(dlg).toBeVisible();
  // Data widgets open on the Data tab; the title is on General.
  await dlg.getByTestId('config-tab-general').click();
  await dlg.getByTestId('widget-title').fill(spec.title);
  if (spec.device) {
    await dlg.getByTestId('config-tab-data').click();
    const input = dlg.getByTestId('device-picker-input');
    await input.click();
    await input.fill(spec.device);
    await dlg.getByTestId('device-option').filter({ hasText: spec.device }).click();
    if (spec.type === 'line' || spec.type === 'bar' || spec.type === 'table') await input.press('Escape');
    for (const k of spec.keys ?? []) {
      const chip = dlg.getByTestId('key-chip').filter({ hasText: new RegExp(`^(✓ )?${k}$`) });
      await expect(chip).toBeVisible();
      if ((await chip.getAttribute('aria-pressed')) !== 'true') await chip.click();
      await expect(chip).toHaveAttribute('aria-pressed', 'true');
    }
  }
  if (spec.unit) {
    await dlg.getByTestId('config-tab-display').click();
    await dlg.getByTestId('widget-unit').fill(spec.unit);
  }
  await dlg.getByTestId('widget-config-apply').click();
  await expect(dlg).toHaveCount(0);
  await expect(page.getByTestId('widget')).toHaveCount(before + 1);
}

/** Creates a dashboard from the list page; resolves to its id (the page is then in edit mode). */
export async function createDashboard(page: Page, name: string): Promise<string> {
  await page.goto('/dashboards');
  await page.getByTestId('dashboard-create').click();
  const dlg = page.getByRole('dialog', { name: 'New dashboard' });
  await dlg.getByTestId('dashboard-name').fill(name);
  await dlg.getByTestId('dashboard-name-submit').click();
  await expect(page).toHaveURL(/\/dashboards\/[0-9a-f-]{36}\?edit=1$/);
  await expect(page.getByTestId('edit-bar')).toBeVisible();
  return /\/dashboards\/([0-9a-f-]{36})/.exec(page.url())![1];
}

/** Saves the dashboard being edited and waits for view mode. */
export async function saveDashboard(page: Page) {
  await page.getByTestId('dashboard-save').click();
  await expect(page.getByTestId('edit-bar')).toHaveCount(0);
  await expect(page.getByTestId('dashboard-edit')).toBeVisible();
}

/** Waits for the dashboard-ready marker (every widget has shown its first data). */
export async function waitDashboardReady(page: Page) {
  await page.waitForFunction(() => document.body.dataset.dashboardReady === '1');
}
