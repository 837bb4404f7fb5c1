// Who is signed in. Screens read it with useSession(); role checks hide edit controls
// (the server refuses edits anyway).
import { useEffect, useState } from 'preact/hooks';
import { api, hasSession, me, onSessionChange, type User } from './api';
import { setMqttPort } from './pages/devices';

let current: User | null = null;
let loading = false;
const subs = new Set<() => void>();
const emit = () => subs.forEach((s) => s());

export async function loadSession(): Promise<User | null> {
  if (!hasSession()) {
    current = null;
    emit();
    return null;
  }
  loading = true;
  try {
    const [u, info] = await Promise.all([me(), api<{ mqtt_port: number }>('GET', '/api/v1/info').catch(() => null)]);
    current = u;
    if (info) setMqttPort(info.mqtt_port);
  } catch {
    current = null;
  } finally {
    loading = false;
    emit();
  }
  return current;
}

onSessionChange(() => {
  if (!hasSession()) {
    current = null;
    emit();
  }
});

export function useSession(): { user: User | null; loading: boolean } {
  const [, set] = useState(0);
  useEffect(() => {
    const s = () => set((n) => n + 1);
    subs.add(s);
    return () => {
      subs.delete(s);
    };
  }, []);
  return { user: current, loading };
}

export function currentUser(): User | null {
  return current;
}

/** True when the signed-in user may change tenant data (devices, dashboards, users). */
export function canEdit(u: User | null = current): boolean {
  return u?.role === 'tenant_admin';
}
