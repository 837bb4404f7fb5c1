// /dashboards/:id. The dashboard screen (grid, widgets, gridstack, markdown) is a separate chunk
// loaded on first use, so the rest of the app starts faster; the list page preloads it.
import { useEffect, useState } from 'preact/hooks';
import { api, hasSession, type Dashboard } from '../api';
import { Page } from '../components/layout';
import { ErrorAlert, Loading } from '../components/ui';

type ViewModule = typeof import('../widgets/dashview');
let loaded: ViewModule | null = null;
let loading: Promise<ViewModule> | null = null;

/** Starts fetching the dashboard screen's code (idempotent). */
export function preloadDashboard(): Promise<ViewModule> {
  loading ??= import('../widgets/dashview').then((m) => (loaded = m));
  loading.catch(() => (loading = null));
  return loading;
}

let prefetched: { id: string; at: number; p: Promise<Dashboard>; value?: Dashboard } | null = null;

/**
 * Starts reading a dashboard (and, once it and the screen's code are in, its widgets' queries):
 * on a direct load while the app starts, or from the list as the user clicks a row.
 */
export function prefetchDashboard(id: string) {
  const p = api<Dashboard>('GET', `/api/v1/dashboards/${encodeURIComponent(id)}`);
  const entry: NonNullable<typeof prefetched> = { id, at: Date.now(), p };
  p.then((d) => (entry.value = d), () => {});
  // With the code and the layout in hand the widgets' queries start at once.
  Promise.all([preloadDashboard(), p]).then(([m, d]) => m.startDashboard(d), () => {});
  prefetched = entry;
}

/**
 * The prefetched read of this dashboard, if one is fresh: its value when it has already
 * arrived (the screen then renders the dashboard at once), else the pending promise.
 */
export function takePrefetched(id: string): { value?: Dashboard; p: Promise<Dashboard> } | null {
  const x = prefetched;
  prefetched = null;
  return x && x.id === id && Date.now() - x.at < 5000 ? x : null;
}

// Opened directly on a dashboard URL: fetch the screen's code and the dashboard in parallel with
// the session check.
{
  const m = /^\/dashboards\/([^/]+)$/.exec(location.pathname);
  if (m) {
    preloadDashboard().catch(() => {});
    if (hasSession()) prefetchDashboard(decodeURIComponent(m[1]));
  }
}

export function DashboardPage({ id }: { id: string }) {
  const [mod, setMod] = useState<ViewModule | null>(loaded);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (mod) return;
    if (!prefetched || prefetched.id !== id) prefetchDashboard(id);
    preloadDashboard().then(setMod, setError);
  }, []);
  if (mod) return <mod.DashboardScreen key={id} id={id} />;
  return (
    <Page title="Dashboard" crumbs={[{ href: '/dashboards', label: 'Dashboards' }]}>
      {error ? <ErrorAlert error={new Error('Cannot load the dashboard screen; reload the page.')} /> : <Loading />}
    </Page>
  );
}
