// Markdown text, rendered with marked and sanitized with DOMPurify (no scripts, no handlers).
// Both libraries load on first use, so dashboards without text widgets do not pay for them.
import { useEffect, useState } from 'preact/hooks';
import { WidgetMessage } from './common';
import { useReady } from './data';
import type { Widget } from './model';

type Render = (text: string) => string;
let loading: Promise<Render> | null = null;

function loadRenderer(): Promise<Render> {
  loading ??= Promise.all([import('marked'), import('dompurify')]).then(([{ marked }, { default: DOMPurify }]) => (text: string) => {
    const html = marked.parse(text, { async: false, gfm: true, breaks: false }) as string;
    return DOMPurify.sanitize(html, { USE_PROFILES: { html: true } });
  });
  loading.catch(() => (loading = null));
  return loading;
}

/** Sanitized HTML of a Markdown text (null while the renderer loads). */
export function useMarkdown(text: string): { html: string | null; error: unknown } {
  const [out, setOut] = useState<{ html: string | null; error: unknown }>({ html: null, error: null });
  useEffect(() => {
    let alive = true;
    loadRenderer().then(
      (render) => alive && setOut({ html: render(text), error: null }),
      (error) => alive && setOut({ html: null, error }),
    );
    return () => {
      alive = false;
    };
  }, [text]);
  return out;
}

export function MarkdownWidget({ w }: { w: Widget }) {
  const text = w.config.text ?? '';
  const { html, error } = useMarkdown(text);
  useReady(w.id, html !== null || !!error || !text.trim());
  if (!text.trim()) return <WidgetMessage title="Empty text">Write Markdown in this widget's settings.</WidgetMessage>;
  if (error) return <WidgetMessage kind="error" title="Cannot show the text">Reload the page and try again.</WidgetMessage>;
  return <div class="markdown" dangerouslySetInnerHTML={{ __html: html ?? '' }} />;
}

export function MarkdownPreview({ text }: { text: string }) {
  const { html } = useMarkdown(text);
  return <div class="markdown md-preview" dangerouslySetInnerHTML={{ __html: html ?? '' }} />;
}
