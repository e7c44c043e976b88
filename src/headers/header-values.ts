/**
 * Reading header values, the pure half every layer that sees a response shares: a header's items,
 * a Cache-Control value's directive names and seconds, and a response's header as one string.
 * Writing them (`patchCacheControl`, Vary) is the page cache's (`headers/headers.ts`).
 */
import type { OutgoingMessage } from 'node:http';

/** Whether `text` is a header field name (RFC 9110 §5.1: a token). */
export function isHeaderName(text: string): boolean {
  return /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(text);
}

/** A header's items: split on commas, whitespace trimmed, empty items dropped. */
export function splitHeaderValue(value: string | undefined): string[] {
  if (!value) return [];
  const items: string[] = [];
  for (const item of value.split(',')) {
    const trimmed = item.trim();
    if (trimmed !== '') items.push(trimmed);
  }
  return items;
}

/** The lower-cased directive names of a Cache-Control value: `'max-age=60, Private="x"'` → `['max-age', 'private']`. */
export function directiveNames(cacheControl: string | undefined): string[] {
  return splitHeaderValue(cacheControl).map((item) => directiveName(item));
}

/** The lower-cased name of one Cache-Control item: `Private="x"` → `private`. */
export function directiveName(item: string): string {
  const equals = item.indexOf('=');
  return (equals === -1 ? item : item.slice(0, equals)).trim().toLowerCase();
}

/** The `max-age` of a Cache-Control value in whole seconds (the last one counts), or null. */
export function maxAgeOf(cacheControl: string | undefined): number | null {
  return secondsOf(cacheControl, 'max-age');
}

/** A directive's value in whole seconds (`max-age`, `stale-while-revalidate`; the last one counts), or null. */
export function secondsOf(cacheControl: string | undefined, directive: string): number | null {
  let seconds: number | null = null;
  for (const item of splitHeaderValue(cacheControl)) {
    if (directiveName(item) !== directive) continue;
    const value = item.slice(item.indexOf('=') + 1).trim();
    seconds = item.includes('=') && /^[+-]?\d+$/.test(value) ? Number(value) : null;
  }
  return seconds;
}

/** A header's value as one string, however it was set (number, list, string). */
export function headerText(res: Pick<OutgoingMessage, 'getHeader'>, name: string): string | undefined {
  const value = res.getHeader(name);
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(', ') : String(value);
}
