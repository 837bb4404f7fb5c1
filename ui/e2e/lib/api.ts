// REST helpers for the browser tests: a tiny client over fetch, and the per-spec tenant set-up
// (tenant + tenant_admin + viewer) so every spec is independent of the others.
import { PASSWORD, server, unique } from './env';

export interface Reply<T = any> {
  status: number;
  body: T;
}

export class Api {
  constructor(readonly token: string | null = null) {}

  static async login(username: string, password: string): Promise<Api> {
    const r = await new Api().call('POST', '/api/v1/auth/login', { username, password });
    if (r.status !== 200) throw new Error(`login ${username}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
    return new Api(r.body.access_token);
  }

  static admin(): Promise<Api> {
    return Api.login('admin', server.adminPassword);
  }

  /** Any status; the body parsed as JSON when it is JSON. */
  async call<T = any>(method: string, path: string, body?: unknown): Promise<Reply<T>> {
    const headers: Record<string, string> = {};
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(server.url + path, {
      method,
      headers,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: any = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON */
    }
    return { status: res.status, body: parsed as T };
  }

  /** A 2xx answer's body; anything else throws with the server's problem. */
  async ok<T = any>(method: string, path: string, body?: unknown): Promise<T> {
    const r = await this.call<T>(method, path, body);
    if (r.status < 200 || r.status > 299) throw new Error(`${method} ${path}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }
}

export interface Account {
  id: string;
  username: string;
  password: string;
  role: string;
  api: Api;
}

export interface TenantCtx {
  id: string;
  name: string;
  admin: Account;
  viewer: Account;
}

async function createUser(sys: Api, tenantId: string, role: string, prefix: string): Promise<Account> {
  const username = unique(prefix);
  const u = await sys.ok('POST', '/api/v1/users', { username, password: PASSWORD, role, tenant_id: tenantId });
  return { id: u.id, username, password: PASSWORD, role, api: await Api.login(username, PASSWORD) };
}

/** A fresh tenant with one tenant_admin and one viewer. */
export async function createTenant(prefix = 'e2e'): Promise<TenantCtx> {
  const sys = await Api.admin();
  const name = unique(prefix);
  const t = await sys.ok('POST', '/api/v1/tenants', { name });
  const admin = await createUser(sys, t.id, 'tenant_admin', `${prefix}-admin`);
  const viewer = await createUser(sys, t.id, 'viewer', `${prefix}-viewer`);
  return { id: t.id, name, admin, viewer };
}

export async function deleteTenant(t: TenantCtx): Promise<void> {
  const sys = await Api.admin();
  const r = await sys.call('DELETE', `/api/v1/tenants/${t.id}`);
  if (r.status !== 204 && r.status !== 404) throw new Error(`delete tenant: HTTP ${r.status} ${JSON.stringify(r.body)}`);
}

export interface DeviceInfo {
  id: string;
  name: string;
  token: string;
}

export async function createDevice(api: Api, name = unique('dev'), extra: Record<string, unknown> = {}): Promise<DeviceInfo> {
  const d = await api.ok('POST', '/api/v1/devices', { name, ...extra });
  return { id: d.id, name: d.name, token: d.credentials.access_token };
}
