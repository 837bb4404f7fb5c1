// The application frame: sidebar navigation (role-aware), page header with actions, theme switch.
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { logout } from '../api';
import { live, type LiveState } from '../live';
import { useOpenAlarmCount } from './analytics';
import { Link, navigate, useLocation } from '../router';
import { useSession } from '../session';
import { currentTheme, toggleTheme } from '../theme';

const icons: Record<string, string> = {
  dashboards: '▦',
  devices: '⌁',
  users: '☺',
  tenants: '⌂',
  profile: '⚙',
  alarms: '⚠',
  detectors: '∿',
  rules: '≥',
  webhooks: '⇄',
};

function NavLink({ href, name, label, badge }: { href: string; name: string; label: string; badge?: string | null }) {
  const { path } = useLocation();
  const active = path === href || path.startsWith(href + '/');
  return (
    <Link href={href} class={'nav-link' + (active ? ' active' : '')} aria-current={active ? 'page' : undefined} title={badge ? `${label} (${badge} open)` : label}>
      <span aria-hidden="true" class="nav-icon">
        {icons[name]}
        {badge && <span class="nav-dot" />}
      </span>
      <span class="label">{label}</span>
      {badge && (
        <span class="nav-badge label" data-testid={`nav-${name}-count`} aria-label={`${badge} open`}>
          {badge}
        </span>
      )}
    </Link>
  );
}

export function LiveIndicator() {
  const [state, setState] = useState<LiveState>(live.state);
  useEffect(() => {
    setState(live.state); // the socket may have changed state before this effect ran
    return live.onState(setState);
  }, []);
  const label = state === 'open' ? 'Live' : state === 'connecting' ? 'Connecting…' : 'Offline';
  return (
    <span class={'badge ' + (state === 'open' ? 'ok' : state === 'connecting' ? 'warn' : '')} data-testid="live-state" title="Live data connection">
      <span class={'dot' + (state === 'open' ? ' ok' : '')} /> {label}
    </span>
  );
}

export function Shell({ children }: { children: ComponentChildren }) {
  const { user } = useSession();
  const [theme, setTheme] = useState(currentTheme());
  useEffect(() => {
    const l = () => setTheme(currentTheme());
    window.addEventListener('sw-theme', l);
    return () => window.removeEventListener('sw-theme', l);
  }, []);
  const isSys = user?.role === 'sysadmin';
  const openAlarms = useOpenAlarmCount(!!user && !isSys);
  return (
    <div class="shell">
      <nav class="sidebar" aria-label="Main">
        <Link href="/" class="brand">
          <span class="brand-mark" aria-hidden="true" />
          <span class="label">Sensoworks</span>
        </Link>
        {!isSys && <NavLink href="/dashboards" name="dashboards" label="Dashboards" />}
        {!isSys && <NavLink href="/devices" name="devices" label="Devices" />}
        {!isSys && <NavLink href="/alarms" name="alarms" label="Alarms" badge={openAlarms} />}
        {!isSys && (
          <>
            <div class="nav-section label">Analytics</div>
            <NavLink href="/analytics/detectors" name="detectors" label="Detectors" />
            <NavLink href="/analytics/rules" name="rules" label="Rules" />
            <NavLink href="/analytics/webhooks" name="webhooks" label="Webhooks" />
            <div class="nav-sep" />
          </>
        )}
        {(isSys || user?.role === 'tenant_admin') && <NavLink href="/users" name="users" label="Users" />}
        {isSys && <NavLink href="/tenants" name="tenants" label="Tenants" />}
        <NavLink href="/profile" name="profile" label="Account" />
        <div class="sidebar-foot">
          <span class="label" data-testid="whoami">
            {user?.username} · {user?.role.replace('_', ' ')}
          </span>
          <button class="small" onClick={() => setTheme(toggleTheme())} aria-label="Toggle dark theme" data-testid="theme-toggle">
            {theme === 'dark' ? '☀' : '☾'} <span class="label">{theme === 'dark' ? 'Light' : 'Dark'} theme</span>
          </button>
          <button
            class="small"
            data-testid="logout"
            onClick={async () => {
              await logout();
              navigate('/login');
            }}
          >
            ⎋ <span class="label">Sign out</span>
          </button>
        </div>
      </nav>
      <div class="main">{children}</div>
    </div>
  );
}

/** A page: header (breadcrumbs, title, actions) and content. */
export function Page(props: {
  title: ComponentChildren;
  crumbs?: { href: string; label: string }[];
  actions?: ComponentChildren;
  children: ComponentChildren;
}) {
  useEffect(() => {
    if (typeof props.title === 'string') document.title = `${props.title} · Sensoworks`;
  }, [props.title]);
  return (
    <>
      <header class="topbar">
        <div>
          {props.crumbs && (
            <div class="breadcrumbs">
              {props.crumbs.map((c) => (
                <span key={c.href}>
                  <Link href={c.href}>{c.label}</Link> /{' '}
                </span>
              ))}
            </div>
          )}
          <h1>{props.title}</h1>
        </div>
        <div class="spacer" />
        <div class="row">{props.actions}</div>
      </header>
      <main class="content">{props.children}</main>
    </>
  );
}
