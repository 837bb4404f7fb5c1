// Device selection by name, searched on the server (a tenant may hold many thousands of devices).
//
//   <DevicePicker value={ids} onChange={setIds} multiple />        // chips + search box
//   <DevicePicker value={id ? [id] : []} onChange={(ids) => setId(ids[0] ?? '')} />  // single
//   const names = useDeviceNames(ids);   // { [id]: name }, fetched by id and cached
//
// The picker works with ids (what dashboards store) and shows names. Label it with
// <label for={id}> + the `id` prop rather than wrapping it in a <label> (a wrapping label sends
// clicks on chips to the input). Keyboard: type to search,
// ArrowUp/ArrowDown to move, Enter to pick, Backspace on an empty box removes the last chip,
// Escape closes the list.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, qs, type Device, type Page } from '../api';

// ---- name cache -------------------------------------------------------------------------------

const names = new Map<string, string>();
const inflight = new Map<string, Promise<void>>();
const nameListeners = new Set<() => void>();

/** Shown for an id that no longer exists (deleted, or another tenant's). */
export const MISSING_DEVICE = '(deleted device)';

/** Feeds the cache from any device list the page already has (saves requests). */
export function rememberDevices(devices: Pick<Device, 'id' | 'name'>[]) {
  let changed = false;
  for (const d of devices) {
    if (names.get(d.id) !== d.name) {
      names.set(d.id, d.name);
      changed = true;
    }
  }
  if (changed) nameListeners.forEach((l) => l());
}

/** Forgets a device (after a rename or delete) so the next lookup fetches it again. */
export function forgetDevice(id: string) {
  names.delete(id);
}

function fetchName(id: string): Promise<void> {
  let p = inflight.get(id);
  if (!p) {
    p = api<Device>('GET', `/api/v1/devices/${encodeURIComponent(id)}`)
      .then((d) => rememberDevices([d]))
      .catch((e) => {
        if (e instanceof ApiError && (e.status === 404 || e.status === 400)) {
          names.set(id, MISSING_DEVICE);
          nameListeners.forEach((l) => l());
        }
        // Other errors (network): leave it out of the cache so a later render retries.
      })
      .finally(() => inflight.delete(id));
    inflight.set(id, p);
  }
  return p;
}

/** Names of the given device ids ({id: name}); unknown ones are fetched once and cached. */
export function useDeviceNames(ids: string[]): Record<string, string> {
  const [, setTick] = useState(0);
  useEffect(() => {
    const l = () => setTick((t) => t + 1);
    nameListeners.add(l);
    return () => {
      nameListeners.delete(l);
    };
  }, []);
  const key = ids.join(',');
  useEffect(() => {
    for (const id of ids) if (id && !names.has(id)) fetchName(id);
  }, [key]);
  const out: Record<string, string> = {};
  for (const id of ids) {
    const n = names.get(id);
    if (n !== undefined) out[id] = n;
  }
  return out;
}

// ---- picker -----------------------------------------------------------------------------------

let pickerSeq = 0;

export interface DevicePickerProps {
  value: string[];
  onChange: (ids: string[]) => void;
  /** Allow several devices (chips); default: one. */
  multiple?: boolean;
  placeholder?: string;
  /** id for the text input, so a <label for> can point at it. */
  id?: string;
  disabled?: boolean;
}

export function DevicePicker(props: DevicePickerProps) {
  const [q, setQ] = useState('');
  const [open, setOpen] = useState(false);
  const [results, setResults] = useState<Device[]>([]);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState('');
  const [active, setActive] = useState(0);
  const box = useRef<HTMLDivElement>(null);
  const input = useRef<HTMLInputElement>(null);
  const [listId] = useState(() => 'devpick-' + ++pickerSeq);
  const selectedNames = useDeviceNames(props.value);

  // Debounced server-side search while the list is open.
  useEffect(() => {
    if (!open) return;
    const ctl = new AbortController();
    setLoading(true);
    const t = window.setTimeout(() => {
      api<Page<Device>>('GET', '/api/v1/devices' + qs({ q: q.trim(), page_size: 20 }), undefined, { signal: ctl.signal })
        .then((p) => {
          rememberDevices(p.items);
          setResults(p.items);
          setActive(0);
          setError('');
        })
        .catch((e) => {
          if ((e as Error).name !== 'AbortError') setError(e instanceof ApiError ? e.message : 'Search failed.');
        })
        .finally(() => !ctl.signal.aborted && setLoading(false));
    }, 200);
    return () => {
      clearTimeout(t);
      ctl.abort();
    };
  }, [q, open]);

  useEffect(() => {
    if (!open) return;
    const onDoc = (e: MouseEvent) => {
      if (box.current && !box.current.contains(e.target as Node)) setOpen(false);
    };
    document.addEventListener('mousedown', onDoc);
    return () => document.removeEventListener('mousedown', onDoc);
  }, [open]);

  const pick = (d: Device) => {
    if (props.multiple) {
      const has = props.value.includes(d.id);
      props.onChange(has ? props.value.filter((x) => x !== d.id) : [...props.value, d.id]);
      setQ('');
      input.current?.focus();
    } else {
      props.onChange([d.id]);
      setQ('');
      setOpen(false);
    }
  };

  const remove = (id: string) => props.onChange(props.value.filter((x) => x !== id));

  const onKey = (e: KeyboardEvent) => {
    if (e.key === 'ArrowDown') {
      e.preventDefault();
      if (!open) setOpen(true);
      else setActive((a) => Math.min(a + 1, results.length - 1));
    } else if (e.key === 'ArrowUp') {
      e.preventDefault();
      setActive((a) => Math.max(a - 1, 0));
    } else if (e.key === 'Enter') {
      if (open && results[active]) {
        e.preventDefault();
        pick(results[active]);
      }
    } else if (e.key === 'Escape') {
      if (open) {
        e.preventDefault();
        e.stopPropagation(); // do not close an enclosing modal
        setOpen(false);
      }
    } else if (e.key === 'Backspace' && q === '' && props.multiple && props.value.length > 0) {
      remove(props.value[props.value.length - 1]);
    }
  };

  const single = !props.multiple && props.value.length > 0 ? props.value[0] : null;
  const placeholder =
    single && !open ? selectedNames[single] ?? 'Loading…' : props.placeholder ?? (props.multiple ? 'Add devices…' : 'Search devices…');

  return (
    <div class={'devpick' + (open ? ' open' : '') + (props.disabled ? ' disabled' : '')} ref={box} data-testid="device-picker">
      <div class="devpick-box" onClick={() => !props.disabled && input.current?.focus()}>
        {props.multiple &&
          props.value.map((id) => (
            <span class="chip" key={id}>
              {selectedNames[id] ?? '…'}
              <button
                type="button"
                class="ghost chip-x"
                aria-label={`Remove ${selectedNames[id] ?? 'device'}`}
                disabled={props.disabled}
                onClick={(e) => {
                  e.stopPropagation();
                  remove(id);
                }}
              >
                ×
              </button>
            </span>
          ))}
        <input
          ref={input}
          id={props.id}
          class={single && !open ? 'has-value' : ''}
          value={q}
          disabled={props.disabled}
          placeholder={placeholder}
          role="combobox"
          aria-expanded={open}
          aria-controls={listId}
          aria-autocomplete="list"
          autocomplete="off"
          onFocus={() => setOpen(true)}
          onInput={(e) => {
            setQ(e.currentTarget.value);
            setOpen(true);
          }}
          onKeyDown={onKey}
          data-testid="device-picker-input"
        />
      </div>
      {open && (
        <ul class="devpick-list" id={listId} role="listbox" aria-multiselectable={props.multiple}>
          {error && <li class="devpick-note error">{error}</li>}
          {!error && loading && results.length === 0 && <li class="devpick-note">Searching…</li>}
          {!error && !loading && results.length === 0 && <li class="devpick-note">{q ? `No device matches “${q}”` : 'No devices yet'}</li>}
          {results.map((d, i) => {
            const sel = props.value.includes(d.id);
            return (
              <li
                key={d.id}
                role="option"
                aria-selected={sel}
                class={(i === active ? 'active ' : '') + (sel ? 'selected' : '')}
                onMouseDown={(e) => e.preventDefault()}
                onMouseEnter={() => setActive(i)}
                onClick={() => pick(d)}
                data-testid="device-option"
              >
                <span class="check" aria-hidden="true">
                  {sel ? '✓' : ''}
                </span>
                <span class="name">{d.name}</span>
                <span class="muted small">{d.type}</span>
              </li>
            );
          })}
        </ul>
      )}
    </div>
  );
}
