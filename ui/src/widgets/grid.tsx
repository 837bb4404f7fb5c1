// The 12-column dashboard grid on gridstack. Preact renders the items (keyed by widget id, with
// gs-* attributes) and their contents; gridstack owns their position and size styles. After each render new item
// elements are handed to gridstack and removed ones taken back; moves and resizes are reported
// through onChange (only at 12 columns: the one-column phone layout is never saved).
import { GridStack, type GridStackNode } from 'gridstack';
import type { ComponentChildren } from 'preact';
import { useLayoutEffect, useRef } from 'preact/hooks';
import { COLUMNS, type Widget } from './model';
import { WIDGETS } from './registry';

export const CELL_HEIGHT = 56;
export const ONE_COLUMN_BELOW = 640;

export interface Placement {
  id: string;
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Moves / resizes a widget from the keyboard (the grid then reports the change). */
export type Nudge = (id: string, d: { dx?: number; dy?: number; dw?: number; dh?: number }) => void;

interface GridProps {
  widgets: Widget[];
  editing: boolean;
  onChange: (p: Placement[]) => void;
  render: (w: Widget, nudge: Nudge) => ComponentChildren;
}

/** Inline styles gridstack leaves on items; the view mode's CSS positions them again. */
const GS_STYLES = ['top', 'left', 'right', 'width', 'height', 'min-width', 'min-height', 'max-width', 'max-height', '--gs-x', '--gs-y', '--gs-w', '--gs-h'];

/**
 * One element tree for both modes (so widgets keep their state and charts when the mode
 * changes); only class names, attributes and the owner of the positions differ.
 */
export function DashGrid(props: GridProps) {
  const el = useRef<HTMLDivElement>(null);
  const grid = useRef<GridStack | null>(null);
  const onChange = useRef(props.onChange);
  onChange.current = props.onChange;
  const editing = props.editing;

  // Edit mode: gridstack adopts the items (reading their gs-* attributes) and reports changes.
  useLayoutEffect(() => {
    if (!editing) return;
    const container = el.current!;
    const g = GridStack.init(
      {
        column: COLUMNS,
        cellHeight: CELL_HEIGHT,
        margin: 6,
        animate: true,
        handle: '.widget-head',
        resizable: { handles: 'se,e,s' },
        columnOpts: { breakpoints: [{ w: ONE_COLUMN_BELOW, c: 1 }], layout: 'list' },
      },
      container,
    )!;
    grid.current = g;
    const report = (_e: Event, nodes: GridStackNode[]) => {
      if (g.getColumn() !== COLUMNS) return;
      onChange.current(nodes.filter((n) => n.id).map((n) => ({ id: String(n.id), x: n.x ?? 0, y: n.y ?? 0, w: n.w ?? 1, h: n.h ?? 1 })));
    };
    g.on('change', report);
    g.on('added', report);
    return () => {
      g.offAll();
      g.destroy(false);
      grid.current = null;
      for (const c of Array.from(container.children) as HTMLElement[]) for (const p of GS_STYLES) c.style.removeProperty(p);
    };
  }, [editing]);

  // Edit mode, after every render: adopt new items, forget removed ones.
  useLayoutEffect(() => {
    const g = grid.current;
    if (!g || !editing) return;
    const gone = g.engine.nodes.filter((n) => !n.el || !n.el.isConnected);
    const fresh = Array.from(el.current!.children).filter((c): c is HTMLElement => c instanceof HTMLElement && !(c as any).gridstackNode);
    if (!gone.length && !fresh.length) return;
    g.batchUpdate();
    for (const n of gone) if (n.el) g.removeWidget(n.el, false, false);
    for (const c of fresh) g.makeWidget(c);
    g.batchUpdate(false);
  });

  const nudge: Nudge = (id, d) => {
    const g = grid.current;
    const n = g?.engine.nodes.find((x) => x.id === id);
    if (!g || !n?.el || g.getColumn() !== COLUMNS) return;
    const w = Math.max(1, Math.min(COLUMNS, (n.w ?? 1) + (d.dw ?? 0)));
    const x = Math.max(0, Math.min(COLUMNS - w, (n.x ?? 0) + (d.dx ?? 0)));
    g.update(n.el, { x, y: Math.max(0, (n.y ?? 0) + (d.dy ?? 0)), w, h: Math.max(1, (n.h ?? 1) + (d.dh ?? 0)) });
  };

  const rows = props.widgets.reduce((r, w) => Math.max(r, w.y + w.h), 0);
  // Top to bottom, left to right: the order of the one-column layout and of the keyboard.
  const ordered = [...props.widgets].sort((a, b) => a.y - b.y || a.x - b.x);
  // The grid element's class list belongs to gridstack while editing: it changes only with the mode.
  return (
    <div class={editing ? 'dash-grid-wrap editing' : 'dash-static-wrap'}>
      <div class={editing ? 'grid-stack dash-grid' : 'dash-static'} style={editing ? undefined : { '--rows': rows }} ref={el} data-testid="dashboard-grid">
        {ordered.map((w) => {
          const def = WIDGETS[w.type];
          const cw = Math.min(w.w, COLUMNS);
          // Edit: gridstack reads the gs-* attributes when it adopts an item. View: CSS variables.
          const attrs = editing
            ? { 'gs-id': w.id, 'gs-x': w.x, 'gs-y': w.y, 'gs-w': cw, 'gs-h': w.h, 'gs-min-w': Math.min(def.minW, w.w), 'gs-min-h': Math.min(def.minH, w.h) }
            : { style: { '--x': w.x, '--y': w.y, '--w': cw, '--h': w.h } };
          return (
            <div key={w.id} class={editing ? 'grid-stack-item' : 'dash-cell'} data-id={w.id} {...attrs}>
              <div class={editing ? 'grid-stack-item-content' : 'dash-cell-content'}>{props.render(w, editing ? nudge : noNudge)}</div>
            </div>
          );
        })}
      </div>
    </div>
  );
}

const noNudge: Nudge = () => {};
