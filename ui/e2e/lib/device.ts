// Device-side helpers: telemetry over HTTP (device API) and over MQTT (mosquitto_pub), and an
// MQTT device that answers RPCs (paho-mqtt script lib/rpc_device.py).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { server } from './env';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** POST /api/v1/{token}/telemetry; resolves to the number of points the server stored. */
export async function postTelemetry(token: string, body: unknown): Promise<number> {
  const res = await fetch(`${server.url}/api/v1/${token}/telemetry`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`telemetry over HTTP: ${res.status} ${text}`);
  return JSON.parse(text).points as number;
}

/** Publishes one message as the device (username = access token), QoS 1, with mosquitto_pub. */
export function mqttPublish(token: string, payload: unknown, topic = 'v1/devices/me/telemetry'): Promise<void> {
  const args = ['-h', '127.0.0.1', '-p', String(server.mqttPort), '-u', token, '-t', topic, '-q', '1', '-m', JSON.stringify(payload)];
  return new Promise((resolve, reject) => {
    execFile('mosquitto_pub', args, { timeout: 15_000 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`mosquitto_pub ${topic} failed: ${err.message} ${stderr}`));
      else resolve();
    });
  });
}

export interface RpcRequest {
  id: string;
  request: { method?: string; params?: unknown };
}

/** A connected device that answers every RPC with {"ok":true,"method","echo":params}. */
export class RpcDevice {
  readonly requests: RpcRequest[] = [];
  private constructor(private readonly proc: ChildProcess) {}

  static start(token: string): Promise<RpcDevice> {
    const proc = spawn('/usr/bin/python3', [path.join(HERE, 'rpc_device.py'), '--port', String(server.mqttPort), `--token=${token}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const dev = new RpcDevice(proc);
    let stderr = '';
    proc.stderr!.on('data', (d) => (stderr += d));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`RPC device did not get ready in 15 s: ${stderr}`));
      }, 15_000);
      proc.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`RPC device exited with ${code}: ${stderr}`));
      });
      createInterface({ input: proc.stdout! }).on('line', (line) => {
        let ev: any;
        try {
          ev = JSON.parse(line);
        } catch {
          return;
        }
        if (ev.event === 'ready') {
          clearTimeout(timer);
          resolve(dev);
        } else if (ev.event === 'request') dev.requests.push({ id: ev.id, request: ev.request });
        else if (ev.event === 'error') {
          clearTimeout(timer);
          proc.kill('SIGKILL');
          reject(new Error(`RPC device: ${ev.detail}`));
        }
      });
    });
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const done = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await done;
    clearTimeout(t);
  }
}
