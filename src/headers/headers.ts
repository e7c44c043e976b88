/**
 * Cache-Control and Vary (Django's `utils/cache.py`): pure string functions over header
 * values, each with a thin wrapper over a Node `ServerResponse`; reading a value's items and
 * directives, which the edges share, is `headers/header-values.ts`. The surprise, kept from Django:
 * `no-cache` accumulates field names (`no-cache=Set-Cookie, no-cache=Link`) where others overwrite.
 */
import type { OutgoingMessage } from 'node:http';
import vary from 'vary';
import { closestName, MUST_BE, optionShape, ValueRule, valueMessage } from '../options/option-rules.js';
import { directiveName, headerText, maxAgeOf, splitHeaderValue } from './header-values.js';

/** The directives known by name (RFC 9111 and RFC 5861), in camelCase. */
export interface KnownCacheControlDirectives {
  /** Seconds; merged with an existing `max-age`, the smaller wins. */
  maxAge?: number;
  /** Seconds, for shared caches. */
  sMaxage?: number;
  /** Drops an existing `private`. */
  public?: boolean;
  /** Drops an existing `public`; a string names fields (`private="Set-Cookie"`). */
  private?: boolean | string;
  /** `true`, or a field name that accumulates (`no-cache=Set-Cookie`). */
  noCache?: boolean | string;
  noStore?: boolean;
  noTransform?: boolean;
  mustRevalidate?: boolean;
  proxyRevalidate?: boolean;
  immutable?: boolean;
  staleWhileRevalidate?: number;
  staleIfError?: number;
}

/** Directives for `patchCacheControl`, in camelCase (`maxAge` → `max-age`) or as written. */
export interface CacheControlDirectives extends KnownCacheControlDirectives {
  /** Any other directive: `true` for a bare name, a value for `name=value`, `false` to remove it. */
  [directive: string]: boolean | string | number | undefined;
}

const SECONDS = MUST_BE.nonNegativeSeconds;
const FLAG = MUST_BE.boolean;
const FLAG_OR_FIELDS = new ValueRule(
  'a boolean or header field names',
  (value) => typeof value === 'boolean' || (typeof value === 'string' && value.trim() !== ''),
);
/** What each known directive's value must be: a value of the wrong kind would be sent as written (`max-age=x`). */
const KNOWN_DIRECTIVE_RULES = optionShape<KnownCacheControlDirectives>({
  maxAge: SECONDS,
  sMaxage: SECONDS,
  public: FLAG,
  private: FLAG_OR_FIELDS,
  noCache: FLAG_OR_FIELDS,
  noStore: FLAG,
  noTransform: FLAG,
  mustRevalidate: FLAG,
  proxyRevalidate: FLAG,
  immutable: FLAG,
  staleWhileRevalidate: SECONDS,
  staleIfError: SECONDS,
});
const KNOWN_DIRECTIVES = Object.keys(KNOWN_DIRECTIVE_RULES);
const KNOWN_DIRECTIVE_NAMES = KNOWN_DIRECTIVES.map(directiveNameOf);
const EXTENSION_VALUE = new ValueRule('a boolean, a string or a number', (value) => ['boolean', 'string', 'number'].includes(typeof value));

/**
 * The error text for a directive's value that is not what the directive takes, else undefined. `false`
 * removes any directive; an extension directive takes any text or a non-negative number.
 */
export function directiveValueMessage(name: string, value: unknown): string | undefined {
  if (value === false) return undefined;
  const known = KNOWN_DIRECTIVE_NAMES.indexOf(directiveNameOf(name));
  if (known !== -1)
    return valueMessage(`directive ${name}`, value, KNOWN_DIRECTIVE_RULES[KNOWN_DIRECTIVES[known] as keyof KnownCacheControlDirectives] as ValueRule);
  return (
    valueMessage(`directive ${name}`, value, EXTENSION_VALUE) ?? (typeof value === 'number' ? valueMessage(`directive ${name}`, value, SECONDS) : undefined)
  );
}

/**
 * The error text for a directive name that is no known directive but a slip of one (`maxAgee`,
 * `sMaxAge`), else undefined: any other name is an extension directive, sent as written.
 */
export function misspeltDirectiveMessage(name: string): string | undefined {
  const written = directiveNameOf(name);
  if (KNOWN_DIRECTIVE_NAMES.includes(written)) return undefined;
  const closest = closestName(written, KNOWN_DIRECTIVE_NAMES);
  if (closest === undefined) return undefined;
  return `unknown directive '${name}' (did you mean '${KNOWN_DIRECTIVES[KNOWN_DIRECTIVE_NAMES.indexOf(closest)]}'?)`;
}

/** `maxAge` → `max-age`, `sMaxage` → `s-maxage`, `NO-Store` → `no-store`. */
export function directiveNameOf(name: string): string {
  if (/[-_]/.test(name) || name === name.toUpperCase()) return name.replace(/_/g, '-').toLowerCase();
  return name.replace(/(?<=.)[A-Z]/g, (letter) => `-${letter}`).toLowerCase();
}

/**
 * Merges directives into a Cache-Control value (Django's `patch_cache_control`): names are
 * lower-cased, existing directives keep their place and the new ones follow, `public` and `private`
 * exclude each other, the smaller `max-age` wins, and `no-cache` field names accumulate (a bare
 * `no-cache` absorbs them). A directive given as `false` or `undefined` is removed.
 */
export function mergeCacheControl(existing: string | undefined, directives: CacheControlDirectives): string {
  const merged = new Map<string, string | true>();
  const noCache = new Set<string | true>();
  for (const item of splitHeaderValue(existing)) {
    const equals = item.indexOf('=');
    const name = directiveName(item);
    const value = equals === -1 ? true : item.slice(equals + 1).trim();
    if (name === 'no-cache') noCache.add(value);
    merged.set(name, value);
  }
  const wanted = Object.entries(directives).map(([name, value]) => [directiveNameOf(name), value] as const);
  const wants = (name: string) => wanted.some(([other, value]) => other === name && value !== false && value !== undefined);
  if (merged.has('private') && wants('public')) merged.delete('private');
  else if (merged.has('public') && wants('private')) merged.delete('public');
  for (const [name, value] of wanted) {
    if (value === false || value === undefined) {
      merged.delete(name);
      if (name === 'no-cache') noCache.clear();
      continue;
    }
    let text: string | true = value === true ? true : String(value);
    if (name === 'max-age' && typeof value === 'number') {
      const current = maxAgeOf(typeof merged.get('max-age') === 'string' ? `max-age=${merged.get('max-age')}` : undefined);
      text = String(Math.max(0, Math.floor(current === null ? value : Math.min(current, value))));
    }
    if (name === 'no-cache') noCache.add(text);
    merged.set(name, text);
  }
  const parts: string[] = [];
  for (const [name, value] of merged) {
    if (name === 'no-cache') {
      if (noCache.has(true)) parts.push('no-cache');
      else for (const field of noCache) parts.push(`no-cache=${field as string}`);
    } else {
      parts.push(value === true ? name : `${name}=${value}`);
    }
  }
  return parts.join(', ');
}

/**
 * Appends header names to a Vary value (Django's `patch_vary_headers`): existing items are
 * normalized to `a, b`, new names are added once whatever their case, and `*` absorbs everything.
 * An invalid header name is a TypeError.
 */
export function appendVary(existing: string | undefined, names: readonly string[]): string {
  const current = splitHeaderValue(existing).join(', ');
  const adding = names.map((name) => String(name).trim()).filter((name) => name !== '');
  if (adding.length === 0) return current;
  return vary.append(current, adding);
}

/** Whether a Vary value names the header, case-insensitively (`*` counts only as `*`). */
export function varyIncludes(varyValue: string | undefined, name: string): boolean {
  const wanted = name.trim().toLowerCase();
  return splitHeaderValue(varyValue).some((item) => item.toLowerCase() === wanted);
}

/** An IMF-fixdate: `Mon, 01 Jan 2007 01:54:21 GMT`. */
export function httpDate(epochSeconds: number): string {
  return new Date(Math.floor(epochSeconds) * 1000).toUTCString();
}

// ---- Wrappers over a response ---------------------------------------------------------------

/** Merges directives into the response's Cache-Control (see `mergeCacheControl`). */
export function patchCacheControl(res: OutgoingMessage, directives: CacheControlDirectives): void {
  const merged = mergeCacheControl(headerText(res, 'cache-control'), directives);
  if (merged === '') res.removeHeader('cache-control');
  else res.setHeader('Cache-Control', merged);
}

/** The response's `max-age` in seconds, or null when it has none (or not an integer). */
export function getMaxAge(res: Pick<OutgoingMessage, 'getHeader'>): number | null {
  return maxAgeOf(headerText(res, 'cache-control'));
}

/**
 * Adds `Expires` (only if absent) and `Cache-Control: max-age` (the smaller of the existing one and
 * `seconds`), as a cached response carries them. A negative `seconds` counts as 0.
 */
export function patchResponseHeaders(res: OutgoingMessage, seconds = 600, now = Date.now() / 1000): void {
  const timeout = Math.max(0, seconds);
  if (!res.hasHeader('expires')) res.setHeader('Expires', httpDate(now + timeout));
  patchCacheControl(res, { maxAge: timeout });
}

/** Marks a response as never to be cached: `max-age=0, no-cache, no-store, must-revalidate, private` and `Expires` now. */
export function addNeverCacheHeaders(res: OutgoingMessage): void {
  patchResponseHeaders(res, -1);
  patchCacheControl(res, { noCache: true, noStore: true, mustRevalidate: true, private: true });
}

/** Adds header names to the response's Vary (see `appendVary`). */
export function patchVaryHeaders(res: OutgoingMessage, names: readonly string[]): void {
  const merged = appendVary(headerText(res, 'vary'), names);
  if (merged !== '') res.setHeader('Vary', merged);
}

/** Whether the response varies on the header (case-insensitive, whitespace ignored). */
export function hasVaryHeader(res: Pick<OutgoingMessage, 'getHeader'>, name: string): boolean {
  return varyIncludes(headerText(res, 'vary'), name);
}
