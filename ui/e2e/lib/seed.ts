// Bulk history for the performance spec: N devices x K keys, one point per `stepMs` over `days`,
// sent through the device HTTP API with explicit timestamps in big batches.
import { Api, createDevice, type DeviceInfo } from './api';
import { postTelemetry } from './device';
import { server, unique } from './env';

export interface SeedResult {
  devices: DeviceInfo[];
  keys: string[];
  points: number;
  from: number;
  to: number;
}

export async function seedHistory(api: Api, opts: { devices: number; keys: number; days: number; stepMs: number; batch?: number }): Promise<SeedResult> {
  const keys = Array.from({ length: opts.keys }, (_, i) => `k${i}`);
  const devices: DeviceInfo[] = [];
  for (let d = 0; d < opts.devices; d++) devices.push(await createDevice(api, unique(`perf-${String(d).padStart(2, '0')}`), { type: 'perf' }));
  const to = Math.floor(Date.now() / opts.stepMs) * opts.stepMs;
  const from = to - opts.days * 86_400_000;
  const batch = opts.batch ?? 1440;
  let points = 0;
  // Two devices at a time: the server acknowledges after the batch is durable.
  const work = devices.map((dev, di) => async () => {
    let rows: { ts: number; values: Record<string, number> }[] = [];
    for (let ts = from; ts < to; ts += opts.stepMs) {
      const values: Record<string, number> = {};
      const t = (ts - from) / 86_400_000;
      keys.forEach((k, ki) => {
        values[k] = Math.round((20 + 5 * Math.sin(t * 2 * Math.PI + di + ki) + ki * 3 + di) * 100) / 100;
      });
      rows.push({ ts, values });
      if (rows.length === batch) {
        const n = await postTelemetry(dev.token, rows); // (not `points += await`: two jobs interleave)
        points += n;
        rows = [];
      }
    }
    if (rows.length) {
      const n = await postTelemetry(dev.token, rows);
      points += n;
    }
  });
  const queue = [...work];
  await Promise.all(
    [0, 1].map(async () => {
      for (let job = queue.shift(); job; job = queue.shift()) await job();
    }),
  );
  return { devices, keys, points, from, to };
}

/** Waits until the store has no hour bucket waiting for its rollup (sw_store_pending_rollups 0). */
export async function waitForRollups(timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const text = await (await fetch(server.url + '/metrics')).text();
    const m = /^sw_store_pending_rollups(?:\{[^}]*\})?\s+(\S+)/m.exec(text);
    if (!m) return; // metric not exported by this build: nothing to wait for
    last = m[1];
    if (Number(m[1]) === 0) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`rollups still pending after ${timeoutMs} ms (sw_store_pending_rollups ${last})`);
}
