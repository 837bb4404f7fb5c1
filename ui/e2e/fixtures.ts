// The `test` every spec imports: baseURL = the server started by global-setup.ts, a fresh tenant
// per test (tenant_admin + viewer), UI login, and a guard that fails a test on uncaught page errors.
import { test as base, expect, type Page } from '@playwright/test';
import { createTenant, type Account, type TenantCtx } from './lib/api';
import { server } from './lib/env';

export { expect };

export const test = base.extend<{ tenant: TenantCtx; pageErrors: string[] }>({
  baseURL: async ({}, use) => {
    await use(server.url);
  },
  tenant: async ({}, use) => {
    await use(await createTenant());
  },
  pageErrors: [
    async ({ page }, use) => {
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(`${e.name}: ${e.message} (on ${page.url()}, viewport ${page.viewportSize()?.width}px)\n${(e.stack ?? '').split('\n').slice(1, 4).join('\n')}`));
      await use(errors);
      expect(errors, 'uncaught errors in the page').toEqual([]);
    },
    { auto: true },
  ],
});

/** Signs in through the login form and waits for the landing page. */
export async function login(page: Page, who: Pick<Account, 'username' | 'password'>, landing: RegExp = /\/(dashboards|tenants)(\?|$)/) {
  await page.goto('/login');
  await page.getByLabel('Username').fill(who.username);
  await page.getByLabel('Password').fill(who.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(landing);
}

/** Signs in as the sysadmin created by the server on first start. */
export function loginSysadmin(page: Page) {
  return login(page, { username: 'admin', password: server.adminPassword }, /\/tenants/);
}
