// Starts one sensoworks server for the whole run and returns the teardown that stops it.
// The server's address is handed to the workers through environment variables (read by
// e2e/lib/env.ts). Fails loudly, with the server log, when the server cannot start.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FullConfig } from '@playwright/test';

const UI_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ADMIN_PASSWORD = 'e2e-Admin-Passw0rd';
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 30_000;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tail(file: string, lines = 80): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export default async function globalSetup(_config: FullConfig): Promise<() => Promise<void>> {
  const binary = path.resolve(UI_DIR, process.env.SW_BINARY ?? '../build/sensoworks');
  if (!existsSync(binary)) throw new Error(`sensoworks binary not found: ${binary} (build it, or set SW_BINARY)`);
  const dist = path.resolve(UI_DIR, process.env.SW_E2E_UI_DIR ?? 'dist');
  if (!existsSync(path.join(dist, 'index.html')))
    throw new Error(`${dist}/index.html missing: run \`npx vite build\` in ui/ before the browser tests`);

  const work = mkdtempSync(path.join(tmpdir(), 'sw-e2e-'));
  const logFile = path.join(work, 'server.log');
  const httpPort = await freePort();
  let mqttPort = await freePort();
  while (mqttPort === httpPort) mqttPort = await freePort();

  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SW_') && v !== undefined) env[k] = v;
  Object.assign(env, {
    SW_DATA_DIR: path.join(work, 'data'),
    SW_HTTP_PORT: String(httpPort),
    SW_MQTT_PORT: String(mqttPort),
    SW_HTTP_BIND: '127.0.0.1',
    SW_ADMIN_PASSWORD: ADMIN_PASSWORD,
    SW_UI_DIR: dist,
    SW_DEVICE_MAX_MSGS_PER_S: '100000',
    SW_DEVICE_BURST: '100000',
    SW_WEBHOOKS_ALLOW_PRIVATE: 'true', // the tests' receivers listen on 127.0.0.1
    SW_LOG_LEVEL: 'info',
  });

  const fd = openSync(logFile, 'a');
  const proc: ChildProcess = spawn(binary, ['serve'], { env, cwd: work, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exited = new Promise<void>((resolve) =>
    proc.on('exit', (code, signal) => {
      exit = { code, signal };
      resolve();
    }),
  );

  // Never leave the server behind, even when the runner dies without its teardown.
  const killOnExit = () => {
    if (!exit) proc.kill('SIGKILL');
  };
  process.on('exit', killOnExit);

  const url = `http://127.0.0.1:${httpPort}`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = '';
  for (;;) {
    if (exit) throw new Error(`sensoworks exited (${JSON.stringify(exit)}) before becoming ready; log ${logFile}:\n${tail(logFile)}`);
    try {
      const r = await fetch(url + '/readyz');
      last = `${r.status} ${await r.text()}`;
      if (r.ok) break;
    } catch (e) {
      last = String(e);
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`sensoworks not ready after ${READY_TIMEOUT_MS} ms (last /readyz: ${last}); log ${logFile}:\n${tail(logFile)}`);
    }
    await sleep(50);
  }
  // The UI must be served by the binary (SW_UI_DIR), else every spec would fail obscurely.
  const index = await fetch(url + '/');
  const html = await index.text();
  if (!index.ok || !html.includes('id="app"')) {
    proc.kill('SIGTERM');
    await exited;
    throw new Error(`sensoworks at ${url} does not serve the UI at / (HTTP ${index.status}); is SW_UI_DIR supported by ${binary}?`);
  }

  process.env.SW_E2E_URL = url;
  process.env.SW_E2E_MQTT_PORT = String(mqttPort);
  process.env.SW_E2E_ADMIN_PASSWORD = ADMIN_PASSWORD;
  process.env.SW_E2E_LOG = logFile;
  console.log(`sensoworks ${binary} serving ${url} (mqtt ${mqttPort}), log ${logFile}`);

  return async () => {
    process.off('exit', killOnExit);
    if (!exit) {
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }
    const e = exit as { code: number | null; signal: NodeJS.Signals | null } | null;
    if (!e || e.code !== 0) {
      throw new Error(`sensoworks did not exit cleanly on SIGTERM (${JSON.stringify(e)}); log ${logFile}:\n${tail(logFile)}`);
    }
    if (!process.env.SW_E2E_KEEP) rmSync(work, { recursive: true, force: true });
  };
}
