// The chrome around every widget: title, live pulse, and (in edit mode) settings, duplicate and
// remove buttons. A widget that throws shows its error here instead of breaking the dashboard.
import { useEffect, useErrorBoundary, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { formatAgo } from '../format';
import { WidgetMessage } from './common';
import { FrameContext, useDash } from './data';
import type { Widget } from './model';
import { WIDGETS } from './registry';
import { ToolIcon } from './icons';

export function WidgetFrame(props: {
  w: Widget;
  editing: boolean;
  onConfigure: () => void;
  onDuplicate: () => void;
  onRemove: () => void;
  /** Keyboard move (arrows) and resize (Shift+arrows) in edit mode. */
  onNudge?: (d: { dx?: number; dy?: number; dw?: number; dh?: number }) => void;
}) {
  const { w } = props;
  const def = WIDGETS[w.type];
  const env = useDash();
  const [error, resetError] = useErrorBoundary((e) => {
    console.error('widget', w.id, e);
    env.ready(w.id);
  });
  const [liveAt, setLiveAt] = useState<number | null>(null);
  // In or near the viewport (charts outside it draw later, when the page is idle).
  const root = useRef<HTMLElement>(null);
  const [visible, setVisible] = useState<boolean | null>(null);
  useLayoutEffect(() => {
    const el = root.current;
    if (!el || typeof IntersectionObserver !== 'function') return setVisible(true);
    // The first notification tells where the widget is (once the grid has placed it).
    const io = new IntersectionObserver(
      (entries) => {
        const hit = entries.some((e) => e.isIntersecting);
        setVisible(hit);
        if (hit) io.disconnect();
      },
      { rootMargin: '150px' },
    );
    io.observe(el);
    return () => io.disconnect();
  }, []);
  const pulse = useMemo(() => () => setLiveAt(Date.now()), []);
  const frame = useMemo(() => ({ pulse, visible }), [visible]);
  // A changed configuration gets a fresh try after an error.
  const cfg = JSON.stringify(w.config);
  useEffect(() => {
    if (error) resetError();
  }, [cfg]);
  const stop = (e: Event) => e.stopPropagation();
  const title = w.title || def.label;
  return (
    <section ref={root} class={'widget' + (props.editing ? ' editing' : '')} data-testid="widget" data-widget-type={w.type} data-widget-id={w.id} aria-label={title}>
      <header
        class="widget-head"
        tabIndex={props.editing ? 0 : undefined}
        aria-label={props.editing ? `${title}: arrow keys move it, Shift+arrow keys resize it` : undefined}
        onKeyDown={(e) => {
          if (!props.editing || !props.onNudge || e.target !== e.currentTarget) return;
          const k = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }[e.key];
          if (!k) return;
          e.preventDefault();
          props.onNudge(e.shiftKey ? { dw: k[0], dh: k[1] } : { dx: k[0], dy: k[1] });
        }}
      >
        <h3 class="widget-title" title={title}>
          {title}
        </h3>
        {liveAt && (
          <span class="widget-live" key={liveAt} title={`Live · last update ${formatAgo(liveAt)}`} data-testid="widget-live">
            <span class="pulse" />
          </span>
        )}
        {props.editing && (
          <div class="widget-tools" onMouseDown={stop} onTouchStart={stop} onPointerDown={stop}>
            <button type="button" class="ghost icon small" title="Settings" aria-label={`Settings of ${title}`} onClick={props.onConfigure} data-testid="widget-config">
              <ToolIcon name="settings" />
            </button>
            <button type="button" class="ghost icon small" title="Duplicate" aria-label={`Duplicate ${title}`} onClick={props.onDuplicate} data-testid="widget-duplicate">
              <ToolIcon name="copy" />
            </button>
            <button type="button" class="ghost icon small danger-text" title="Remove" aria-label={`Remove ${title}`} onClick={props.onRemove} data-testid="widget-remove">
              <ToolIcon name="remove" />
            </button>
          </div>
        )}
      </header>
      <div class="widget-body">
        <FrameContext.Provider value={frame}>
          {error ? (
            <WidgetMessage kind="error" title="This widget failed">
              {String((error as Error)?.message ?? error)}
            </WidgetMessage>
          ) : (
            <def.Component w={w} />
          )}
        </FrameContext.Provider>
      </div>
    </section>
  );
}
