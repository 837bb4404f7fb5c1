// Pieces shared by widgets: state placeholders and number formatting with the widget's settings.
import type { ComponentChildren } from 'preact';
import { ApiError } from '../api';
import { Spinner } from '../components/ui';
import { formatNumber, formatValue } from '../format';
import type { WidgetConfig } from './model';
import { unitOf } from './model';

export function WidgetMessage(props: { kind?: 'error' | 'empty' | 'info'; title?: string; children?: ComponentChildren }) {
  return (
    <div class={'wmsg ' + (props.kind ?? 'empty')} data-testid={props.kind === 'error' ? 'widget-error' : 'widget-empty'}>
      {props.title && <div class="wmsg-title">{props.title}</div>}
      {props.children && <div>{props.children}</div>}
    </div>
  );
}

export function WidgetLoading() {
  return (
    <div class="wmsg" data-testid="widget-loading">
      <Spinner />
    </div>
  );
}

export function errorText(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.status === 404) return 'A device of this widget no longer exists. Edit the widget to pick others.';
    return e.message;
  }
  return e instanceof Error ? e.message : String(e);
}

export function WidgetError({ error }: { error: unknown }) {
  return (
    <WidgetMessage kind="error" title="Cannot load data">
      {errorText(error)}
    </WidgetMessage>
  );
}

/** A value with the widget's unit for `key` and its decimals. */
export function fmt(c: WidgetConfig, key: string, v: unknown, withUnit = true): string {
  const unit = withUnit ? unitOf(c, key) : undefined;
  if (typeof v === 'number') return formatNumber(v, unit, c.decimals ?? undefined);
  return formatValue(v, unit);
}

/** True when the widget has devices and keys to show. */
export function hasData(c: WidgetConfig, needKeys = true): boolean {
  const ds = c.datasource;
  if (!ds) return false;
  const devicesOk = ds.mode === 'filter' ? !!(ds.filter?.type || ds.filter?.label) : (ds.device_ids?.length ?? 0) > 0;
  return devicesOk && (!needKeys || (ds.keys?.length ?? 0) > 0);
}

export function NotConfigured({ what = 'devices and keys' }: { what?: string }) {
  return (
    <WidgetMessage title="Not configured">
      Pick {what} in this widget's settings.
    </WidgetMessage>
  );
}
