import { useState } from 'preact/hooks';
import { ApiError, login } from '../api';
import { navigate } from '../router';
import { loadSession } from '../session';

export function LoginPage() {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    if (!username || !password) {
      setError('Enter your username and password.');
      return;
    }
    setBusy(true);
    setError('');
    try {
      await login(username, password);
      const u = await loadSession();
      const next = new URLSearchParams(location.search).get('next');
      navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : u?.role === 'sysadmin' ? '/tenants' : '/dashboards', true);
    } catch (err) {
      setError(err instanceof ApiError ? err.message : 'Sign-in failed.');
      setBusy(false);
    }
  };

  return (
    <div class="login-page">
      <form class="panel login-card form" onSubmit={submit} aria-label="Sign in" noValidate>
        <div class="brand">
          <span class="brand-mark" aria-hidden="true" />
          Sensoworks
        </div>
        <p class="muted" style={{ textAlign: 'center', margin: 0 }}>
          Sign in to your IoT platform
        </p>
        <label class="field">
          <span>Username</span>
          <input name="username" autocomplete="username" value={username} onInput={(e) => setUsername(e.currentTarget.value)} autofocus />
        </label>
        <label class="field">
          <span>Password</span>
          <input
            name="password"
            type="password"
            autocomplete="current-password"
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        {error && (
          <div class="alert error" role="alert" data-testid="login-error">
            {error}
          </div>
        )}
        <button class="primary" type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </div>
  );
}
