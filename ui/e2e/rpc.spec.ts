// Issue 4: an RPC round trip from the device page: a connected MQTT device (paho) answers, and
// the reply shows in the UI; an offline device gives a clear error.
import { createDevice } from './lib/api';
import { RpcDevice } from './lib/device';
import { unique } from './lib/env';
import { expect, login, test } from './fixtures';

test('send an RPC from the device page and see the device reply', async ({ page, tenant }) => {
  const dev = await createDevice(tenant.admin.api, unique('valve'), { type: 'valve' });
  const device = await RpcDevice.start(dev.token);
  try {
    await login(page, tenant.admin);
    await page.goto(`/devices/${dev.id}`);
    await expect(page.getByTestId('online-state')).toHaveText(/Online/);
    await page.getByTestId('tab-rpc').click();
    await expect(page).toHaveURL(/tab=rpc/);

    await page.getByTestId('rpc-method').fill('setValve');
    await page.getByTestId('rpc-params').fill('{"open": true, "level": 3}');
    await page.getByTestId('rpc-send').click();

    const result = page.getByTestId('rpc-result');
    await expect(result).toContainText('"ok": true');
    await expect(result).toContainText('"method": "setValve"');
    await expect(result).toContainText('"level": 3');
    await expect(page.getByTestId('rpc-call').first()).toContainText('reply');
    // The device really received the call with these params.
    await expect.poll(() => device.requests.length).toBe(1);
    expect(device.requests[0].request).toEqual({ method: 'setValve', params: { open: true, level: 3 } });

    // Bad params are caught in the form, nothing is sent.
    await page.getByTestId('rpc-params').fill('{not json');
    await page.getByTestId('rpc-send').click();
    await expect(page.getByText(/Params must be JSON/)).toBeVisible();
    expect(device.requests).toHaveLength(1);
  } finally {
    await device.stop();
  }

  // The device is gone: a two-way call fails with a clear message.
  await expect.poll(async () => (await tenant.admin.api.ok('GET', `/api/v1/devices/${dev.id}`)).online).toBe(false);
  await page.getByTestId('rpc-params').fill('{}');
  await page.getByTestId('rpc-send').click();
  await expect(page.getByTestId('rpc-result')).toContainText('The device is not connected.');
  await expect(page.getByTestId('rpc-call').first()).toContainText('409 device_offline');
});
