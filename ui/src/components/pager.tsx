// Server-side cursor paging: keeps the cursors of the pages seen so "Previous" works too.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Page } from '../api';

export function usePaged<T>(fetchPage: (cursor: string | null) => Promise<Page<T>>, deps: unknown[]) {
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [page, setPage] = useState<Page<T> | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const index = cursors.length - 1;

  // A new filter starts again at the first page (not on mount: that would fetch twice).
  const mounted = useRef(false);
  useEffect(() => {
    if (mounted.current) setCursors([null]);
    mounted.current = true;
  }, deps);

  useEffect(() => {
    let alive = true;
    setLoading(true);
    setError(null);
    fetchPage(cursors[index])
      .then((p) => alive && setPage(p))
      .catch((e) => alive && setError(e))
      .finally(() => alive && setLoading(false));
    return () => {
      alive = false;
    };
  }, [cursors, tick]);

  return {
    items: page?.items ?? [],
    loading,
    error,
    pageNumber: index + 1,
    hasNext: !!page?.next_cursor,
    hasPrev: index > 0,
    next: () => page?.next_cursor && setCursors((c) => [...c, page.next_cursor]),
    prev: () => index > 0 && setCursors((c) => c.slice(0, -1)),
    reload: () => setTick((t) => t + 1),
  };
}

export function Pager(props: { pageNumber: number; hasPrev: boolean; hasNext: boolean; prev: () => void; next: () => void }) {
  if (!props.hasPrev && !props.hasNext) return null;
  return (
    <div class="row end" style={{ padding: '10px 12px' }}>
      <button class="small" disabled={!props.hasPrev} onClick={props.prev} aria-label="Previous page">
        ‹ Previous
      </button>
      <span class="muted small">Page {props.pageNumber}</span>
      <button class="small" disabled={!props.hasNext} onClick={props.next} aria-label="Next page">
        Next ›
      </button>
    </div>
  );
}
