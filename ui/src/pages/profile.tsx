// Your account: who you are, change your own password, theme, sign out.
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, logout } from '../api';
import { Page } from '../components/layout';
import { toast } from '../components/ui';
import { formatDateTime } from '../format';
import { navigate } from '../router';
import { useSession } from '../session';
import { applyTheme, currentTheme } from '../theme';
import { RoleBadge } from './users';

// Same key as theme.ts: "system" removes the choice so the OS preference applies.
const THEME_KEY = 'sw.theme';
type ThemeChoice = 'light' | 'dark' | 'system';

function themeChoice(): ThemeChoice {
  const v = localStorage.getItem(THEME_KEY);
  return v === 'light' || v === 'dark' ? v : 'system';
}

function setThemeChoice(c: ThemeChoice) {
  if (c === 'system') localStorage.removeItem(THEME_KEY);
  else localStorage.setItem(THEME_KEY, c);
  applyTheme(currentTheme());
}

function PasswordForm({ userId }: { userId: string }) {
  const [current, setCurrent] = useState('');
  const [pw, setPw] = useState('');
  const [confirm, setConfirm] = useState('');
  const [err, setErr] = useState<{ field?: string; msg: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    setDone(false);
    if (!current) return setErr({ field: 'current_password', msg: 'Enter your current password.' });
    if (pw.length < 8) return setErr({ field: 'password', msg: 'The new password needs at least 8 characters.' });
    if (pw !== confirm) return setErr({ field: 'confirm', msg: 'The two new passwords differ.' });
    if (pw === current) return setErr({ field: 'password', msg: 'The new password is the same as the current one.' });
    setBusy(true);
    setErr(null);
    try {
      await api('PATCH', `/api/v1/users/${userId}`, { current_password: current, password: pw });
      setCurrent('');
      setPw('');
      setConfirm('');
      setDone(true);
      toast('Password changed');
    } catch (ex) {
      if (ex instanceof ApiError && (ex.field === 'current_password' || ex.status === 403))
        setErr({ field: 'current_password', msg: 'Your current password is not correct.' });
      else if (ex instanceof ApiError && ex.field === 'password') setErr({ field: 'password', msg: ex.message });
      else setErr({ msg: ex instanceof Error ? ex.message : String(ex) });
    } finally {
      setBusy(false);
    }
  };
  const fe = (f: string) =>
    err?.field === f ? (
      <span class="field-error" role="alert" data-testid={`error-${f}`}>
        {err.msg}
      </span>
    ) : null;

  return (
    <form class="form" onSubmit={submit} noValidate aria-label="Change password">
      <label class="field">
        <span>Current password</span>
        <input
          type="password"
          autocomplete="current-password"
          value={current}
          onInput={(e) => setCurrent(e.currentTarget.value)}
          aria-invalid={err?.field === 'current_password'}
          data-testid="current-password"
        />
        {fe('current_password')}
      </label>
      <label class="field">
        <span>New password</span>
        <input
          type="password"
          autocomplete="new-password"
          value={pw}
          onInput={(e) => setPw(e.currentTarget.value)}
          aria-invalid={err?.field === 'password'}
          data-testid="new-password"
        />
        <span class="muted small">At least 8 characters.</span>
        {fe('password')}
      </label>
      <label class="field">
        <span>Repeat new password</span>
        <input
          type="password"
          autocomplete="new-password"
          value={confirm}
          onInput={(e) => setConfirm(e.currentTarget.value)}
          aria-invalid={err?.field === 'confirm'}
          data-testid="confirm-password"
        />
        {fe('confirm')}
      </label>
      {err && !err.field && (
        <div class="alert error" role="alert">
          {err.msg}
        </div>
      )}
      {done && (
        <div class="alert info" role="status" data-testid="password-changed">
          Your password was changed. Use it the next time you sign in.
        </div>
      )}
      <div>
        <button class="primary" type="submit" disabled={busy} data-testid="password-submit">
          {busy ? 'Changing…' : 'Change password'}
        </button>
      </div>
    </form>
  );
}

export function ProfilePage() {
  const { user } = useSession();
  const [theme, setTheme] = useState<ThemeChoice>(themeChoice());
  useEffect(() => {
    const l = () => setTheme(themeChoice());
    window.addEventListener('sw-theme', l);
    return () => window.removeEventListener('sw-theme', l);
  }, []);
  if (!user) return null;

  return (
    <Page title="Your account">
      <div class="grid-2 profile-grid">
        <div class="stack">
        <section class="panel" aria-label="Who you are">
          <div class="profile-head">
            <span class="avatar" aria-hidden="true">
              {user.username.slice(0, 1).toUpperCase()}
            </span>
            <div>
              <div class="strong big" data-testid="profile-username">
                {user.username}
              </div>
              <RoleBadge role={user.role} />
            </div>
          </div>
          <dl class="kv">
            <dt>Role</dt>
            <dd>
              {user.role === 'sysadmin'
                ? 'Manages tenants and users of the whole platform.'
                : user.role === 'tenant_admin'
                  ? 'Manages devices, dashboards and users of your tenant.'
                  : 'Sees devices and dashboards of your tenant, read-only.'}
            </dd>
            {user.tenant_id && (
              <>
                <dt>Tenant</dt>
                <dd>
                  <code class="small">{user.tenant_id}</code>
                </dd>
              </>
            )}
            <dt>Account created</dt>
            <dd>{formatDateTime(user.created_at)}</dd>
          </dl>
          <div class="section-gap">
            <button
              data-testid="profile-logout"
              onClick={async () => {
                await logout();
                navigate('/login');
              }}
            >
              ⎋ Sign out
            </button>
          </div>
        </section>

        <section class="panel" aria-label="Appearance">
          <h2>Appearance</h2>
          <fieldset class="theme-choice">
            <legend class="sr-only">Theme</legend>
            {(['light', 'dark', 'system'] as ThemeChoice[]).map((t) => (
              <label key={t} class={'theme-option' + (theme === t ? ' on' : '')}>
                <input
                  type="radio"
                  name="theme"
                  value={t}
                  checked={theme === t}
                  onChange={() => {
                    setThemeChoice(t);
                    setTheme(t);
                  }}
                  data-testid={`theme-${t}`}
                />
                <span class={'theme-swatch ' + t} aria-hidden="true" />
                <span>{t === 'light' ? 'Light' : t === 'dark' ? 'Dark' : 'Same as system'}</span>
              </label>
            ))}
          </fieldset>
        </section>
        </div>

        <section class="panel" aria-label="Password">
          <h2>Change password</h2>
          <PasswordForm userId={user.id} />
        </section>
      </div>
    </Page>
  );
}
