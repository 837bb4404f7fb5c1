// Routes and the signed-in frame. Pages live in pages/, dashboard widgets in widgets/.
import { useEffect } from 'preact/hooks';
import { hasSession, onSessionChange } from './api';
import { AnalyticsScreen } from './components/analytics-lazy';
import { Shell } from './components/layout';
import { Loading, Toasts } from './components/ui';
import { DashboardPage } from './pages/dashboard';
import { DashboardsPage } from './pages/dashboards';
import { DevicePage } from './pages/device';
import { DevicesPage } from './pages/devices';
import { LoginPage } from './pages/login';
import { NotFound } from './pages/notfound';
import { ProfilePage } from './pages/profile';
import { TenantsPage } from './pages/tenants';
import { UsersPage } from './pages/users';
import { match, navigate, useLocation } from './router';
import { loadSession, useSession } from './session';

let started = false;

export function App() {
  const { path } = useLocation();
  const { user } = useSession();

  useEffect(() => {
    if (!started) {
      started = true;
      loadSession().then((u) => {
        if (!u && location.pathname !== '/login') navigate('/login?next=' + encodeURIComponent(location.pathname + location.search), true);
      });
    }
    return onSessionChange(() => {
      if (!hasSession() && location.pathname !== '/login') navigate('/login', true);
    });
  }, []);

  if (path === '/login') {
    return (
      <>
        <LoginPage />
        <Toasts />
      </>
    );
  }
  if (!user) return <Loading text="Signing in…" />;

  let page;
  let m: Record<string, string> | null;
  if (path === '/') {
    navigate(user.role === 'sysadmin' ? '/tenants' : '/dashboards', true);
    return null;
  } else if (path === '/devices') page = <DevicesPage />;
  else if ((m = match('/devices/:id', path))) page = <DevicePage id={m.id} />;
  else if (path === '/dashboards') page = <DashboardsPage />;
  else if ((m = match('/dashboards/:id', path))) page = <DashboardPage id={m.id} />;
  else if (path === '/users') page = <UsersPage />;
  else if (path === '/tenants') page = <TenantsPage />;
  else if (path === '/profile') page = <ProfilePage />;
  else if (path === '/alarms') page = <AnalyticsScreen screen="alarms" />;
  else if (path === '/analytics' || path === '/analytics/') {
    navigate('/analytics/detectors', true);
    return null;
  } else if (path === '/analytics/detectors') page = <AnalyticsScreen screen="detectors" />;
  else if (path === '/analytics/rules') page = <AnalyticsScreen screen="rules" />;
  else if (path === '/analytics/webhooks') page = <AnalyticsScreen screen="webhooks" />;
  else page = <NotFound />;

  return (
    <>
      <Shell>{page}</Shell>
      <Toasts />
    </>
  );
}
