// Issue 4, "Browser tests": log in (with a clear error on a wrong password) and log out.
import { expect, test } from './fixtures';

test('wrong password shows a clear error, right one lands on dashboards, logout returns to login', async ({ page, tenant }) => {
  await page.goto('/');
  // Not signed in: any page sends you to the login form.
  await expect(page).toHaveURL(/\/login/);
  await expect(page.getByLabel('Username')).toBeVisible();

  await page.getByLabel('Username').fill(tenant.admin.username);
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('login-error')).toHaveText(/wrong username or password/i);
  await expect(page).toHaveURL(/\/login/);

  // Empty fields are caught before asking the server.
  await page.getByLabel('Password').fill('');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('login-error')).toHaveText(/enter your username and password/i);

  await page.getByLabel('Password').fill(tenant.admin.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/dashboards$/);
  await expect(page.getByTestId('login-error')).toHaveCount(0);
  await expect(page.getByTestId('whoami')).toContainText(tenant.admin.username);

  // The session survives a reload.
  await page.reload();
  await expect(page).toHaveURL(/\/dashboards$/);
  await expect(page.getByTestId('whoami')).toContainText(tenant.admin.username);

  await page.getByTestId('logout').click();
  await expect(page).toHaveURL(/\/login/);
  await expect(page.getByLabel('Username')).toBeVisible();
  // Signed out for real: a protected page goes back to the login form.
  await page.goto('/devices');
  await expect(page).toHaveURL(/\/login\?next=%2Fdevices/);
  // And the login page remembers where to go.
  await page.getByLabel('Username').fill(tenant.admin.username);
  await page.getByLabel('Password').fill(tenant.admin.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/devices$/);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Devices');
});
