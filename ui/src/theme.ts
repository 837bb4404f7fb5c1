// Light / dark theme: follows the system until the user picks one; remembered per browser.
export type Theme = 'light' | 'dark';
const KEY = 'sw.theme';

export function currentTheme(): Theme {
  const saved = localStorage.getItem(KEY);
  if (saved === 'light' || saved === 'dark') return saved;
  return window.matchMedia?.('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

export function applyTheme(t: Theme = currentTheme()) {
  document.documentElement.dataset.theme = t;
  window.dispatchEvent(new CustomEvent('sw-theme', { detail: t }));
}

export function toggleTheme(): Theme {
  const next: Theme = currentTheme() === 'dark' ? 'light' : 'dark';
  localStorage.setItem(KEY, next);
  applyTheme(next);
  return next;
}
