// Small building blocks shared by every screen: modal dialogs, confirmation, toasts, loading and
// empty states, copy-to-clipboard, error alerts.
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from '../api';

export function Spinner() {
  return <span class="spinner" role="status" aria-label="Loading" />;
}

export function Loading({ text = 'Loading…' }: { text?: string }) {
  return (
    <div class="loading" data-testid="loading">
      <Spinner /> {text}
    </div>
  );
}

export function Empty(props: { title: string; children?: ComponentChildren }) {
  return (
    <div class="empty" data-testid="empty">
      <div class="title">{props.title}</div>
      {props.children}
    </div>
  );
}

export function ErrorAlert({ error }: { error: unknown }) {
  if (!error) return null;
  const msg = error instanceof ApiError || error instanceof Error ? error.message : String(error);
  return (
    <div class="alert error" role="alert">
      {msg}
    </div>
  );
}

export function Modal(props: {
  title: string;
  onClose: () => void;
  children: ComponentChildren;
  footer?: ComponentChildren;
  wide?: boolean;
}) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const prev = document.activeElement as HTMLElement | null;
    const first = ref.current?.querySelector<HTMLElement>('input, select, textarea, button:not(.close)');
    first?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') props.onClose();
    };
    document.addEventListener('keydown', onKey);
    return () => {
      document.removeEventListener('keydown', onKey);
      prev?.focus?.();
    };
  }, []);
  return (
    <div class="modal-backdrop" onMouseDown={(e) => e.target === e.currentTarget && props.onClose()}>
      <div class={'modal' + (props.wide ? ' wide' : '')} role="dialog" aria-modal="true" aria-label={props.title} ref={ref}>
        <header>
          <h2>{props.title}</h2>
          <button class="ghost icon close" aria-label="Close" onClick={props.onClose}>
            ✕
          </button>
        </header>
        <div class="body">{props.children}</div>
        {props.footer && <footer>{props.footer}</footer>}
      </div>
    </div>
  );
}

/** A yes/no dialog for destructive actions. */
export function Confirm(props: {
  title: string;
  message: ComponentChildren;
  confirmLabel?: string;
  onConfirm: () => Promise<void> | void;
  onClose: () => void;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  return (
    <Modal
      title={props.title}
      onClose={props.onClose}
      footer={
        <>
          <button onClick={props.onClose}>Cancel</button>
          <button
            class="danger solid"
            disabled={busy}
            onClick={async () => {
              setBusy(true);
              setError(null);
              try {
                await props.onConfirm();
                props.onClose();
              } catch (e) {
                setError(e);
                setBusy(false);
              }
            }}
          >
            {props.confirmLabel ?? 'Delete'}
          </button>
        </>
      }
    >
      <div>{props.message}</div>
      <ErrorAlert error={error} />
    </Modal>
  );
}

type ToastKind = 'info' | 'ok' | 'error';
let pushToast: (text: string, kind: ToastKind) => void = () => {};

/** Shows a short message in the corner for a few seconds. */
export function toast(text: string, kind: ToastKind = 'ok') {
  pushToast(text, kind);
}

export function Toasts() {
  const [items, setItems] = useState<{ id: number; text: string; kind: ToastKind }[]>([]);
  useEffect(() => {
    let n = 0;
    pushToast = (text, kind) => {
      const id = ++n;
      setItems((xs) => [...xs, { id, text, kind }]);
      setTimeout(() => setItems((xs) => xs.filter((x) => x.id !== id)), kind === 'error' ? 7000 : 3500);
    };
  }, []);
  return (
    <div class="toasts" aria-live="polite">
      {items.map((t) => (
        <div key={t.id} class={'toast ' + t.kind} role={t.kind === 'error' ? 'alert' : 'status'}>
          {t.text}
        </div>
      ))}
    </div>
  );
}

export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [done, setDone] = useState(false);
  return (
    <button
      class="small"
      type="button"
      onClick={async () => {
        try {
          await navigator.clipboard.writeText(text);
        } catch {
          // Clipboard API needs a secure context; fall back to a hidden textarea.
          const ta = document.createElement('textarea');
          ta.value = text;
          document.body.appendChild(ta);
          ta.select();
          document.execCommand('copy');
          ta.remove();
        }
        setDone(true);
        setTimeout(() => setDone(false), 1500);
      }}
    >
      {done ? 'Copied' : label}
    </button>
  );
}

/** Runs an async loader and tracks loading / error / data; reload() re-runs it. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
  setData: (t: T) => void;
} {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let alive = true;
    setLoading(true);
    setError(null);
    load()
      .then((d) => alive && setData(d))
      .catch((e) => alive && setError(e))
      .finally(() => alive && setLoading(false));
    return () => {
      alive = false;
    };
  }, [...deps, tick]);
  return { data, error, loading, reload: () => setTick((t) => t + 1), setData };
}
