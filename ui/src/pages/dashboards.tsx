// Dashboards of the tenant: server-paged list with search; create, rename, duplicate, delete,
// import (an exported JSON file, checked before upload) and export (a JSON download).
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, qs, type Dashboard, type DashboardSummary, type Page as ApiPage } from '../api';
import { Page } from '../components/layout';
import { Pager, usePaged } from '../components/pager';
import { Confirm, Empty, ErrorAlert, Loading, Modal, toast } from '../components/ui';
import { formatAgo, formatDateTime } from '../format';
import { Link, navigate, setQuery, useLocation } from '../router';
import { canEdit, useSession } from '../session';
import { emptyLayout, LayoutError, parseImport } from '../widgets/model';
import { prefetchDashboard, preloadDashboard } from './dashboard';

const PAGE_SIZE = 25;

function NameDialog(props: {
  title: string;
  submitLabel: string;
  name?: string;
  description?: string;
  onSubmit: (name: string, description: string) => Promise<void>;
  onClose: () => void;
}) {
  const [name, setName] = useState(props.name ?? '');
  const [description, setDescription] = useState(props.description ?? '');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const fieldError = error instanceof ApiError && error.field === 'name' ? error.message : '';
  return (
    <Modal
      title={props.title}
      onClose={props.onClose}
      footer={
        <>
          <button type="button" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" form="dash-name-form" class="primary" disabled={busy} data-testid="dashboard-name-submit">
            {props.submitLabel}
          </button>
        </>
      }
    >
      <form
        id="dash-name-form"
        class="form"
        onSubmit={async (e) => {
          e.preventDefault();
          if (!name.trim()) {
            setError(new ApiError({ status: 400, code: 'invalid_argument', detail: 'Enter a name.', field: 'name' }));
            return;
          }
          setBusy(true);
          setError(null);
          try {
            await props.onSubmit(name.trim(), description.trim());
          } catch (err) {
            setError(err);
            setBusy(false);
          }
        }}
      >
        <label class="field">
          <span>Name</span>
          <input value={name} maxLength={200} onInput={(e) => setName(e.currentTarget.value)} data-testid="dashboard-name" placeholder="e.g. Plant overview" />
          {fieldError && <span class="field-error">{fieldError}</span>}
        </label>
        <label class="field">
          <span>Description (optional)</span>
          <textarea rows={2} maxLength={4000} value={description} onInput={(e) => setDescription(e.currentTarget.value)} style={{ fontFamily: 'var(--font)' }} />
        </label>
        {!fieldError && <ErrorAlert error={error} />}
      </form>
    </Modal>
  );
}

/** Saves text as a file download. */
export function downloadJson(fileName: string, data: unknown) {
  const blob = new Blob([JSON.stringify(data, null, 2) + '\n'], { type: 'application/json' });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function exportFileName(name: string): string {
  const base = name.replace(/[^A-Za-z0-9._ -]+/g, '_').replace(/^[ ._]+|[ .]+$/g, '').slice(0, 100);
  return (base || 'dashboard') + '.json';
}

async function exportDashboard(id: string) {
  const d = await api<Dashboard>('GET', `/api/v1/dashboards/${encodeURIComponent(id)}?download=1`);
  downloadJson(exportFileName(d.name), { name: d.name, description: d.description, layout: d.layout, exported_at: Date.now(), version: d.version });
}

export function DashboardsPage() {
  const { user } = useSession();
  const editor = canEdit(user);
  const { query } = useLocation();
  const q = query.get('q') ?? '';
  const [search, setSearch] = useState(q);
  const [dialog, setDialog] = useState<{ kind: 'create' } | { kind: 'rename'; d: DashboardSummary } | { kind: 'delete'; d: DashboardSummary } | null>(null);
  const [importError, setImportError] = useState<{ file: string; error: unknown } | null>(null);
  const fileInput = useRef<HTMLInputElement>(null);
  const searchTimer = useRef<number | undefined>(undefined);
  useEffect(() => {
    preloadDashboard().catch(() => {});
  }, []);

  const paged = usePaged<DashboardSummary>(
    (cursor) => api<ApiPage<DashboardSummary>>('GET', '/api/v1/dashboards' + qs({ q, page_size: PAGE_SIZE, cursor })),
    [q],
  );

  const onSearch = (v: string) => {
    setSearch(v);
    clearTimeout(searchTimer.current);
    searchTimer.current = window.setTimeout(() => setQuery({ q: v.trim() || undefined }), 250);
  };

  const duplicate = async (s: DashboardSummary) => {
    try {
      const d = await api<Dashboard>('GET', `/api/v1/dashboards/${encodeURIComponent(s.id)}`);
      const copy = await api<Dashboard>('POST', '/api/v1/dashboards', { name: `${d.name} (copy)`.slice(0, 200), description: d.description, layout: d.layout });
      toast(`Created “${copy.name}”`);
      paged.reload();
    } catch (e) {
      toast(e instanceof Error ? e.message : String(e), 'error');
    }
  };

  const onImport = async (file: File) => {
    setImportError(null);
    try {
      if (file.size > 4 * 1024 * 1024) throw new LayoutError(['the file is larger than 4 MiB']);
      const parsed = parseImport(await file.text(), file.name);
      const d = await api<Dashboard>('POST', '/api/v1/dashboards', parsed);
      toast(`Imported “${d.name}”`);
      navigate(`/dashboards/${d.id}`);
    } catch (e) {
      setImportError({ file: file.name, error: e });
    }
  };

  const actions = editor && (
    <>
      <input
        ref={fileInput}
        type="file"
        accept="application/json,.json"
        class="sr-only"
        tabIndex={-1}
        aria-hidden="true"
        data-testid="dashboard-import-file"
        onChange={(e) => {
          const f = e.currentTarget.files?.[0];
          e.currentTarget.value = '';
          if (f) onImport(f);
        }}
      />
      <button onClick={() => fileInput.current?.click()} data-testid="dashboard-import">
        ⤒ Import
      </button>
      <button class="primary" onClick={() => setDialog({ kind: 'create' })} data-testid="dashboard-create">
        + New dashboard
      </button>
    </>
  );

  return (
    <Page title="Dashboards" actions={actions}>
      {importError && (
        <div class="alert error" role="alert" data-testid="import-error">
          <div class="row">
            <strong>Cannot import {importError.file}.</strong>
            <span class="spacer" />
            <button class="small ghost" onClick={() => setImportError(null)} aria-label="Dismiss">
              ✕
            </button>
          </div>
          {importError.error instanceof LayoutError ? (
            <ul class="problems">
              {importError.error.problems.slice(0, 12).map((p) => (
                <li key={p}>{p}</li>
              ))}
              {importError.error.problems.length > 12 && <li>… and {importError.error.problems.length - 12} more</li>}
            </ul>
          ) : (
            <div>{importError.error instanceof Error ? importError.error.message : String(importError.error)}</div>
          )}
        </div>
      )}
      <div class="panel flush">
        <div class="list-toolbar">
          <input type="search" placeholder="Search dashboards by name…" aria-label="Search dashboards" value={search} onInput={(e) => onSearch(e.currentTarget.value)} data-testid="dashboard-search" />
        </div>
        {paged.error ? (
          <div style={{ padding: '12px' }}>
            <ErrorAlert error={paged.error} />
          </div>
        ) : paged.loading && !paged.items.length ? (
          <Loading />
        ) : !paged.items.length ? (
          q ? (
            <Empty title={`No dashboard matches “${q}”`}>
              <button onClick={() => onSearch('')}>Clear search</button>
            </Empty>
          ) : (
            <Empty title="No dashboards yet">
              <span>Dashboards show your devices' data as charts, gauges, tables and maps, updated live.</span>
              {editor ? (
                <div class="row">
                  <button class="primary" onClick={() => setDialog({ kind: 'create' })}>
                    + Create your first dashboard
                  </button>
                  <button onClick={() => fileInput.current?.click()}>Import a file</button>
                </div>
              ) : (
                <span>An administrator of your organisation can create them.</span>
              )}
            </Empty>
          )
        ) : (
          <div class="table-wrap">
            <table class="data">
              <thead>
                <tr>
                  <th>Name</th>
                  <th class="num">Widgets</th>
                  <th>Updated</th>
                  <th class="actions-col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {paged.items.map((d) => (
                  <tr
                    key={d.id}
                    class="clickable"
                    data-testid="dashboard-row"
                    onMouseDown={(e) => e.button === 0 && !(e.target as HTMLElement).closest('button') && prefetchDashboard(d.id)}
                    onClick={(e) => !(e.target as HTMLElement).closest('button, a') && navigate(`/dashboards/${d.id}`)}
                  >
                    <td>
                      <Link href={`/dashboards/${d.id}`} class="row-title" onKeyDown={(e) => e.key === 'Enter' && prefetchDashboard(d.id)}>
                        {d.name}
                      </Link>
                      {d.description && <div class="muted small clamp">{d.description}</div>}
                    </td>
                    <td class="num">{d.widgets ?? '—'}</td>
                    <td class="muted nowrap" title={formatDateTime(d.updated_at)}>
                      {formatAgo(d.updated_at)}
                    </td>
                    <td class="actions-col">
                      <div class="row-actions">
                        {editor && (
                          <>
                            <button class="small" onClick={() => setDialog({ kind: 'rename', d })} data-testid="dashboard-rename">
                              Rename
                            </button>
                            <button class="small" onClick={() => duplicate(d)} data-testid="dashboard-duplicate">
                              Duplicate
                            </button>
                          </>
                        )}
                        <button
                          class="small"
                          onClick={() => exportDashboard(d.id).catch((e) => toast(e instanceof Error ? e.message : String(e), 'error'))}
                          data-testid="dashboard-export"
                        >
                          Export
                        </button>
                        {editor && (
                          <button class="small danger" onClick={() => setDialog({ kind: 'delete', d })} data-testid="dashboard-delete">
                            Delete
                          </button>
                        )}
                      </div>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        <Pager {...paged} />
      </div>

      {dialog?.kind === 'create' && (
        <NameDialog
          title="New dashboard"
          submitLabel="Create"
          onClose={() => setDialog(null)}
          onSubmit={async (name, description) => {
            const d = await api<Dashboard>('POST', '/api/v1/dashboards', { name, description, layout: emptyLayout() });
            setDialog(null);
            navigate(`/dashboards/${d.id}?edit=1`);
          }}
        />
      )}
      {dialog?.kind === 'rename' && (
        <NameDialog
          title="Rename dashboard"
          submitLabel="Rename"
          name={dialog.d.name}
          description={dialog.d.description}
          onClose={() => setDialog(null)}
          onSubmit={async (name, description) => {
            const full = await api<Dashboard>('GET', `/api/v1/dashboards/${encodeURIComponent(dialog.d.id)}`);
            await api<Dashboard>('PUT', `/api/v1/dashboards/${encodeURIComponent(full.id)}`, { name, description, layout: full.layout, version: full.version });
            setDialog(null);
            toast('Dashboard renamed');
            paged.reload();
          }}
        />
      )}
      {dialog?.kind === 'delete' && (
        <Confirm
          title="Delete dashboard"
          message={
            <>
              Delete <strong>{dialog.d.name}</strong> and its {dialog.d.widgets ?? 0} widgets? This cannot be undone (export it first to keep a copy).
            </>
          }
          onConfirm={async () => {
            await api('DELETE', `/api/v1/dashboards/${encodeURIComponent(dialog.d.id)}`);
            toast('Dashboard deleted');
            paged.reload();
          }}
          onClose={() => setDialog(null)}
        />
      )}
    </Page>
  );
}
