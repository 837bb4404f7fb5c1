// One dashboard: view mode for everyone, edit mode (tenant admins) with drag / resize on a
// 12-column grid, widget settings, save with optimistic concurrency (PUT with the version; a 409
// means someone else saved first). Time range and auto-refresh are in the URL, and their
// defaults in the layout. Widgets load independently and update live over the WebSocket.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, ApiError, type Dashboard } from '../api';
import { LiveIndicator, Page } from '../components/layout';
import { decodeRange, encodeRange, resolveRange, TimeRangePicker, type TimeRange } from '../components/timechart';
import { Confirm, ErrorAlert, Loading, Modal, toast } from '../components/ui';
import { formatDateTime } from '../format';
import { setQuery, useLocation } from '../router';
import { canEdit, useSession } from '../session';
import { WidgetConfigDialog } from './config';
import { hasData } from './common';
import { DashContext, DataScope, historyOptions, latestKeys, usesLatest, type DashEnv } from './data';
import { WidgetFrame } from './frame';
import { DashGrid, type Placement } from './grid';
import { WidgetIcon } from './icons';
import { fromTimeRange, LayoutError, newWidgetId, REFRESH_CHOICES, toTimeRange, validateLayout, WIDGET_TYPES, type Layout, type Widget, type WidgetType } from './model';
import { newWidget, WIDGETS } from './registry';
import { takePrefetched } from '../pages/dashboard';
import { NotFound } from '../pages/notfound';

const REFRESH_LABEL = (s: number) => (s === 0 ? 'Off' : s < 60 ? `${s} s` : `${s / 60} min`);

function WidgetTypePicker(props: { onPick: (t: WidgetType) => void; onClose: () => void }) {
  return (
    <Modal title="Add a widget" wide onClose={props.onClose}>
      <div class="wtype-grid">
        {WIDGET_TYPES.map((t) => (
          <button type="button" key={t} class="wtype" onClick={() => props.onPick(t)} data-testid={`widget-type-${t}`}>
            <span class="wtype-icon">
              <WidgetIcon type={t} size={26} />
            </span>
            <span class="wtype-name">{WIDGETS[t].label}</span>
            <span class="muted small">{WIDGETS[t].description}</span>
          </button>
        ))}
      </div>
    </Modal>
  );
}

function SettingsDialog(props: { name: string; description: string; onSave: (name: string, description: string) => void; onClose: () => void }) {
  const [name, setName] = useState(props.name);
  const [description, setDescription] = useState(props.description);
  const [error, setError] = useState('');
  return (
    <Modal
      title="Dashboard settings"
      onClose={props.onClose}
      footer={
        <>
          <button type="button" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" form="dash-settings" class="primary">
            Apply
          </button>
        </>
      }
    >
      <form
        id="dash-settings"
        class="form"
        onSubmit={(e) => {
          e.preventDefault();
          if (!name.trim()) return setError('Enter a name.');
          props.onSave(name.trim(), description.trim());
        }}
      >
        <label class="field">
          <span>Name</span>
          <input value={name} maxLength={200} onInput={(e) => setName(e.currentTarget.value)} />
          {error && <span class="field-error">{error}</span>}
        </label>
        <label class="field">
          <span>Description</span>
          <textarea rows={3} value={description} maxLength={4000} onInput={(e) => setDescription(e.currentTarget.value)} style={{ fontFamily: 'var(--font)' }} />
        </label>
        <p class="muted small" style={{ margin: 0 }}>
          Saving also makes the current time range and auto-refresh the dashboard's defaults.
        </p>
      </form>
    </Modal>
  );
}

interface Loaded {
  /** Which load this is: a reload (after a conflict) builds the view anew. */
  tick: number;
  dash: Dashboard;
  layout: Layout | null;
  layoutError: LayoutError | null;
}

function parse(d: Dashboard, tick: number): Loaded {
  try {
    return { tick, dash: d, layout: validateLayout(d.layout), layoutError: null };
  } catch (e) {
    if (e instanceof LayoutError) return { tick, dash: d, layout: null, layoutError: e };
    throw e;
  }
}

interface Started {
  scope: DataScope;
  first: { from: number; to: number; live: boolean };
}

/** Resolves the range and starts every widget's first query (in parallel with rendering). */
function begin(layout: Layout, range: TimeRange): Started {
  const scope = new DataScope();
  const first = resolveRange(range);
  // Top of the page first (the browser runs ~6 requests at a time); latest values first, as
  // they need only a device list before their live snapshot.
  const order = [...layout.widgets].sort((a, b) => a.y - b.y || a.x - b.x);
  for (const w of order)
    if (usesLatest(w) && hasData(w.config, w.type === 'value' || w.type === 'gauge')) scope.latest(w.config.datasource, latestKeys(w));
  for (const w of order) {
    const o = historyOptions(w);
    if (o && hasData(w.config)) scope.history(w, first.from, first.to, 0, o).catch(() => {});
  }
  return { scope, first };
}

let started: { id: string; version: number; rangeKey: string; at: number; s: Started } | null = null;

/**
 * Called as soon as the dashboard JSON is read (before the app has rendered anything): starts
 * the widgets' queries for the range in the URL, or the layout's default.
 */
export function startDashboard(d: Dashboard) {
  try {
    const layout = validateLayout(d.layout);
    const range = decodeRange(new URLSearchParams(location.search).get('range'), toTimeRange(layout.time?.range));
    started = { id: d.id, version: d.version, rangeKey: encodeRange(range), at: Date.now(), s: begin(layout, range) };
  } catch {
    started = null; // the view reports the invalid layout
  }
}

function takeStart(id: string, version: number, rangeKey: string): Started | null {
  const x = started;
  started = null;
  return x && x.id === id && x.version === version && x.rangeKey === rangeKey && Date.now() - x.at < 10_000 ? x.s : null;
}

export function DashboardScreen({ id }: { id: string }) {
  const { user } = useSession();
  const editor = canEdit(user);
  const { query } = useLocation();
  // A dashboard read ahead (pages/dashboard.tsx) that has already arrived renders at once.
  // (A copy: the prefetch fills in `value` when it arrives, possibly after this first render.)
  const [pre] = useState(() => {
    const x = takePrefetched(id);
    return x && { p: x.p, value: x.value };
  });
  const [loaded, setLoaded] = useState<Loaded | null>(() => (pre?.value ? parse(pre.value, 0) : null));
  const [loadError, setLoadError] = useState<unknown>(null);
  const [reloadTick, setReloadTick] = useState(0);

  useEffect(() => {
    if (reloadTick === 0 && pre?.value) return;
    let alive = true;
    setLoadError(null);
    ((reloadTick === 0 && pre?.p) || api<Dashboard>('GET', `/api/v1/dashboards/${encodeURIComponent(id)}`))
      .then((d) => alive && setLoaded(parse(d, reloadTick)))
      .catch((e) => alive && setLoadError(e));
    return () => {
      alive = false;
    };
  }, [id, reloadTick]);

  if (loadError instanceof ApiError && (loadError.status === 404 || loadError.status === 400)) return <NotFound what="dashboard" />;
  if (loadError)
    return (
      <Page title="Dashboard" crumbs={[{ href: '/dashboards', label: 'Dashboards' }]}>
        <ErrorAlert error={loadError} />
        <div>
          <button onClick={() => setReloadTick((t) => t + 1)}>Try again</button>
        </div>
      </Page>
    );
  if (!loaded)
    return (
      <Page title="Dashboard" crumbs={[{ href: '/dashboards', label: 'Dashboards' }]}>
        <Loading />
      </Page>
    );
  if (!loaded.layout)
    return (
      <Page title={loaded.dash.name} crumbs={[{ href: '/dashboards', label: 'Dashboards' }]}>
        <div class="alert error" role="alert">
          <strong>This dashboard's layout cannot be shown.</strong>
          <ul class="problems">
            {loaded.layoutError!.problems.slice(0, 20).map((p) => (
              <li key={p}>{p}</li>
            ))}
          </ul>
          It was probably written by a newer or a modified version. Export it from the dashboards list to inspect it.
        </div>
      </Page>
    );
  return (
    <DashboardView
      key={loaded.dash.id + ':' + loaded.tick}
      dash={loaded.dash}
      layout={loaded.layout}
      editor={editor}
      startEditing={editor && query.get('edit') === '1'}
      onSaved={(d) => setLoaded(parse(d, loaded.tick))}
      onReload={() => setReloadTick((t) => t + 1)}
    />
  );
}

function DashboardView(props: { dash: Dashboard; layout: Layout; editor: boolean; startEditing: boolean; onSaved: (d: Dashboard) => void; onReload: () => void }) {
  const { dash, layout } = props;
  const { query } = useLocation();
  const [editing, setEditing] = useState(props.startEditing);
  const [draft, setDraft] = useState<Layout>(layout);
  const [meta, setMeta] = useState({ name: dash.name, description: dash.description });
  const [picking, setPicking] = useState(false);
  const [configuring, setConfiguring] = useState<string | null>(null);
  const [removing, setRemoving] = useState<Widget | null>(null);
  const [settings, setSettings] = useState(false);
  const [saving, setSaving] = useState(false);
  const [saveError, setSaveError] = useState<unknown>(null);
  const [conflict, setConflict] = useState(false);
  const [discarding, setDiscarding] = useState(false);

  // After a save the same view stays (widgets keep their data and charts); only the copy changes.
  const savedVersion = useRef(dash.version);
  useEffect(() => {
    if (dash.version === savedVersion.current) return;
    savedVersion.current = dash.version;
    setDraft(layout);
    setMeta({ name: dash.name, description: dash.description });
    setEditing(false);
  }, [dash.version]);

  // Time range and refresh: URL first, then the layout's defaults.
  const range: TimeRange = decodeRange(query.get('range'), toTimeRange(layout.time?.range));
  const refreshParam = query.get('refresh');
  const refreshS = refreshParam !== null && REFRESH_CHOICES.includes(+refreshParam) ? +refreshParam : layout.refresh_s ?? 0;
  const rangeKey = encodeRange(range);

  // The data scope and first bounds: handed over by startDashboard() when it already started
  // the queries, else started here.
  const [{ scope, first }] = useState(() => takeStart(dash.id, dash.version, rangeKey) ?? begin(layout, range));
  // What the widgets show: the resolved range and a load generation (a refresh or a new range
  // bumps it once, so each widget queries once).
  const [view, setView] = useState({ gen: 0, ...first });
  const rangeRef = useRef(range);
  rangeRef.current = range;
  const reload = () => {
    scope.reset();
    setView((v) => ({ gen: v.gen + 1, ...resolveRange(rangeRef.current) }));
  };
  const firstRange = useRef(true);
  useEffect(() => {
    if (firstRange.current) {
      firstRange.current = false;
      return;
    }
    reload();
  }, [rangeKey]);
  useEffect(() => {
    if (!refreshS) return;
    const t = setInterval(reload, refreshS * 1000);
    return () => clearInterval(t);
  }, [refreshS]);

  // Readiness: every widget has shown its first data (for the browser test's time-to-render).
  const start = useRef(performance.now());
  const readySet = useRef(new Set<string>());
  const widgets = editing ? draft.widgets : layout.widgets;
  const markReady = () => {
    if (document.body.dataset.dashboardReady === '1') return;
    if (widgets.every((w) => readySet.current.has(w.id))) {
      document.body.dataset.dashboardReady = '1';
      performance.mark('sw-dashboard-ready');
      document.body.dataset.dashboardRenderMs = String(Math.round(performance.now() - start.current));
    }
  };
  const markRef = useRef(markReady);
  markRef.current = markReady;
  useEffect(() => {
    document.body.dataset.dashboardReady = '0';
    delete document.body.dataset.dashboardRenderMs;
    markRef.current();
    return () => {
      delete document.body.dataset.dashboardReady;
      delete document.body.dataset.dashboardRenderMs;
    };
  }, []);

  const env: DashEnv = useMemo(
    () => ({
      scope,
      range,
      from: view.from,
      to: view.to,
      follow: view.live,
      gen: view.gen,
      ready: (wid: string) => {
        readySet.current.add(wid);
        markRef.current();
      },
      setRange: (r: TimeRange) => setQuery({ range: encodeRange(r) }),
    }),
    [view, rangeKey],
  );

  const dirty = editing && (JSON.stringify(draft.widgets) !== JSON.stringify(layout.widgets) || meta.name !== dash.name || meta.description !== dash.description);
  useEffect(() => {
    if (!dirty) return;
    const h = (e: BeforeUnloadEvent) => {
      e.preventDefault();
      e.returnValue = '';
    };
    window.addEventListener('beforeunload', h);
    return () => window.removeEventListener('beforeunload', h);
  }, [dirty]);

  const setWidgets = (f: (ws: Widget[]) => Widget[]) => setDraft((d) => ({ ...d, widgets: f(d.widgets) }));

  const onPlace = (ps: Placement[]) => {
    if (!editing) return;
    const m = new Map(ps.map((p) => [p.id, p]));
    setWidgets((ws) => ws.map((w) => (m.has(w.id) ? { ...w, ...m.get(w.id)!, id: w.id } : w)));
  };

  const bottom = (ws: Widget[]) => ws.reduce((y, w) => Math.max(y, w.y + w.h), 0);

  const add = (t: WidgetType) => {
    const w = { ...newWidget(t), y: bottom(draft.widgets) };
    setWidgets((ws) => [...ws, w]);
    setPicking(false);
    if (WIDGETS[t].data !== 'none' || t === 'markdown') setConfiguring(w.id);
  };

  const duplicate = (w: Widget) => {
    const copy: Widget = { ...JSON.parse(JSON.stringify(w)), id: newWidgetId(), y: bottom(draft.widgets), title: w.title ? `${w.title} (copy)` : '' };
    setWidgets((ws) => [...ws, copy]);
  };

  const cancel = () => {
    setDraft(layout);
    setMeta({ name: dash.name, description: dash.description });
    setEditing(false);
    setSaveError(null);
    if (query.get('edit')) setQuery({ edit: undefined });
  };

  const body = (version: number) => ({
    name: meta.name,
    description: meta.description,
    version,
    layout: { ...draft, schema: 1, time: { range: fromTimeRange(range) }, refresh_s: refreshS || undefined } satisfies Layout,
  });

  const save = async (overwrite = false) => {
    setSaving(true);
    setSaveError(null);
    try {
      let version = dash.version;
      if (overwrite) version = (await api<Dashboard>('GET', `/api/v1/dashboards/${encodeURIComponent(dash.id)}`)).version;
      validateLayout(body(version).layout);
      const d = await api<Dashboard>('PUT', `/api/v1/dashboards/${encodeURIComponent(dash.id)}`, body(version));
      setConflict(false);
      toast('Dashboard saved');
      if (query.get('edit')) setQuery({ edit: undefined });
      props.onSaved(d);
    } catch (e) {
      if (e instanceof ApiError && e.status === 409) setConflict(true);
      else setSaveError(e);
    } finally {
      setSaving(false);
    }
  };

  const configuringWidget = configuring ? draft.widgets.find((w) => w.id === configuring) : undefined;

  const rangePicker = <TimeRangePicker value={range} onChange={(r) => setQuery({ range: encodeRange(r) })} />;
  const actions = editing ? (
    <>
      {rangePicker}
      <button onClick={() => setPicking(true)} data-testid="add-widget">
        + Add widget
      </button>
      <button onClick={() => setSettings(true)} data-testid="dashboard-settings">
        Settings
      </button>
      <button onClick={() => (dirty ? setDiscarding(true) : cancel())} data-testid="dashboard-cancel" disabled={saving}>
        Cancel
      </button>
      <button class="primary" onClick={() => save()} disabled={saving} data-testid="dashboard-save">
        {saving ? 'Saving…' : 'Save'}
      </button>
    </>
  ) : (
    <>
      {rangePicker}
      <label class="refresh-pick" title="Auto-refresh: re-query the history periodically (live values arrive anyway)">
        <span class="sr-only">Auto-refresh</span>
        <span aria-hidden="true">⟳</span>
        <select value={String(refreshS)} onChange={(e) => setQuery({ refresh: e.currentTarget.value })} data-testid="refresh-interval" aria-label="Auto-refresh">
          {REFRESH_CHOICES.map((s) => (
            <option key={s} value={String(s)}>
              {REFRESH_LABEL(s)}
            </option>
          ))}
        </select>
      </label>
      <button class="icon" title="Refresh now" aria-label="Refresh now" onClick={reload} data-testid="dashboard-refresh">
        ↻
      </button>
      <LiveIndicator />
      {props.editor && (
        <button class="primary" onClick={() => setEditing(true)} data-testid="dashboard-edit">
          ✎ Edit
        </button>
      )}
    </>
  );

  return (
    <Page title={meta.name} crumbs={[{ href: '/dashboards', label: 'Dashboards' }]} actions={actions}>
      {editing && (
        <div class="alert info edit-bar" data-testid="edit-bar">
          <strong>Editing.</strong> Drag widgets by their title and resize them from their edges (or focus a title: arrow keys move, Shift+arrows resize).{' '}
          {dirty ? 'Unsaved changes.' : 'No changes yet.'} <span class="muted small">Version {dash.version}, saved {formatDateTime(dash.updated_at)}.</span>
        </div>
      )}
      {dash.description && !editing && <p class="muted dash-desc">{meta.description}</p>}
      <ErrorAlert error={saveError} />
      <DashContext.Provider value={env}>
        {widgets.length === 0 ? (
          <div class="panel">
            <div class="empty" data-testid="empty">
              <div class="title">This dashboard is empty</div>
              {props.editor ? (
                editing ? (
                  <>
                    <span>Add charts, values, gauges, tables, maps and text.</span>
                    <button class="primary" onClick={() => setPicking(true)}>
                      + Add a widget
                    </button>
                  </>
                ) : (
                  <>
                    <span>Switch to edit mode to add widgets.</span>
                    <button class="primary" onClick={() => setEditing(true)}>
                      ✎ Edit dashboard
                    </button>
                  </>
                )
              ) : (
                <span>An administrator of your organisation can add widgets.</span>
              )}
            </div>
          </div>
        ) : (
          <DashGrid
            widgets={widgets}
            editing={editing}
            onChange={onPlace}
            render={(w, nudge) => (
              <WidgetFrame
                w={w}
                editing={editing}
                onConfigure={() => setConfiguring(w.id)}
                onDuplicate={() => duplicate(w)}
                onRemove={() => setRemoving(w)}
                onNudge={(d) => nudge(w.id, d)}
              />
            )}
          />
        )}
      </DashContext.Provider>
      {picking && <WidgetTypePicker onPick={add} onClose={() => setPicking(false)} />}
      {configuringWidget && (
        <DashContext.Provider value={env}>
          <WidgetConfigDialog
            widget={configuringWidget}
            onClose={() => setConfiguring(null)}
            onSave={(nw) => {
              setWidgets((ws) => ws.map((w) => (w.id === nw.id ? nw : w)));
              setConfiguring(null);
            }}
          />
        </DashContext.Provider>
      )}
      {removing && (
        <Confirm
          title="Remove widget"
          message={
            <>
              Remove <strong>{removing.title || WIDGETS[removing.type].label}</strong> from this dashboard? Nothing is deleted until you save.
            </>
          }
          confirmLabel="Remove"
          onConfirm={() => setWidgets((ws) => ws.filter((w) => w.id !== removing.id))}
          onClose={() => setRemoving(null)}
        />
      )}
      {discarding && (
        <Confirm
          title="Discard changes"
          message="Leave edit mode and discard the changes made since the last save?"
          confirmLabel="Discard"
          onConfirm={cancel}
          onClose={() => setDiscarding(false)}
        />
      )}
      {settings && (
        <SettingsDialog
          name={meta.name}
          description={meta.description}
          onClose={() => setSettings(false)}
          onSave={(name, description) => {
            setMeta({ name, description });
            setSettings(false);
          }}
        />
      )}
      {conflict && (
        <Modal
          title="Someone else changed this dashboard"
          onClose={() => setConflict(false)}
          footer={
            <>
              <button onClick={() => setConflict(false)}>Keep editing</button>
              <button class="danger" onClick={() => save(true)} disabled={saving} data-testid="conflict-overwrite">
                Overwrite with mine
              </button>
              <button class="primary" onClick={props.onReload} data-testid="conflict-reload">
                Reload their version
              </button>
            </>
          }
        >
          <div data-testid="conflict">
            This dashboard was saved by someone else after you opened it (you edited version {dash.version}). Reload to see their version (your changes are
            discarded), or overwrite it with yours.
          </div>
        </Modal>
      )}
    </Page>
  );
}
