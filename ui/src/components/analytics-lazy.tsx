// Lazy entry points of the analytics screens: the chunk (analytics-screens.ts) is fetched on the
// first visit of /alarms, /analytics/* or a device's Analytics tab.
import { useEffect, useState } from 'preact/hooks';
import type { Device, Value } from '../api';
import { Page } from './layout';
import { ErrorAlert, Loading } from './ui';

type Mod = typeof import('./analytics-screens');
let loaded: Mod | null = null;
let loading: Promise<Mod> | null = null;

export function preloadAnalytics(): Promise<Mod> {
  loading ??= import('./analytics-screens').then((m) => (loaded = m));
  loading.catch(() => (loading = null));
  return loading;
}

function useAnalytics(): { mod: Mod | null; error: unknown } {
  const [mod, setMod] = useState<Mod | null>(loaded);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (!mod) preloadAnalytics().then(setMod, setError);
  }, []);
  return { mod, error };
}

const TITLES = { alarms: 'Alarms', detectors: 'Detectors', rules: 'Rules', webhooks: 'Webhooks' };

export function AnalyticsScreen({ screen }: { screen: keyof typeof TITLES }) {
  const { mod, error } = useAnalytics();
  if (!mod)
    return (
      <Page title={TITLES[screen]}>
        {error ? <ErrorAlert error={new Error('Cannot load this screen; reload the page.')} /> : <Loading />}
      </Page>
    );
  const C = { alarms: mod.AlarmsPage, detectors: mod.DetectorsPage, rules: mod.RulesPage, webhooks: mod.WebhooksPage }[screen];
  return <C />;
}

export function LazyDeviceAnalytics(props: { device: Device; editable: boolean; latest: Record<string, { ts: number; value: Value }> }) {
  const { mod, error } = useAnalytics();
  if (error) return <ErrorAlert error={new Error('Cannot load the analytics tab; reload the page.')} />;
  if (!mod) return <Loading />;
  return <mod.DeviceAnalytics {...props} />;
}
