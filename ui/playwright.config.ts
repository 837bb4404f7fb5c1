// Browser tests of the web UI: Playwright driving Debian's chromium (never a downloaded browser).
// globalSetup starts ONE sensoworks server (binary: $SW_BINARY, default ../build/sensoworks) on
// free ports with a fresh data directory and serves ui/dist from it; every spec creates its own
// tenant and users, so specs are independent. Run: `cd ui && npx vite build && npx playwright test`.
import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: './e2e',
  outputDir: './test-results',
  globalSetup: './e2e/global-setup.ts',
  // Two cores: two workers run spec files side by side; the perf spec runs alone afterwards
  // (project dependency) so its number is not disturbed by a parallel browser.
  workers: Number(process.env.SW_E2E_WORKERS ?? 2),
  fullyParallel: false,
  retries: 0, // a flaky test is a bug to fix, not to retry
  forbidOnly: !!process.env.CI,
  reporter: 'list',
  timeout: 60_000,
  globalTimeout: 6 * 60_000,
  expect: { timeout: 10_000 },
  use: {
    // The real baseURL is the server globalSetup started (overridden in e2e/fixtures.ts).
    baseURL: process.env.SW_E2E_URL,
    viewport: { width: 1366, height: 850 },
    colorScheme: 'light',
    locale: 'en-GB',
    timezoneId: 'UTC',
    actionTimeout: 10_000,
    navigationTimeout: 15_000,
    trace: process.env.SW_E2E_TRACE ? 'retain-on-failure' : 'off',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: process.env.SW_CHROMIUM ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
      ],
    },
  },
  projects: [
    { name: 'e2e', testIgnore: /perf\.spec\.ts/ },
    { name: 'perf', testMatch: /perf\.spec\.ts/, dependencies: ['e2e'] },
  ],
});
