/**
 * What the page cache may store (Django's `UpdateCacheMiddleware.process_response`): one
 * clause per rule, each naming why not. It reads the response as the view left it, before the page
 * cache adds Expires and max-age. The surprise, as in Django: a 304 is not stored but still gets the
 * cache's Expires and max-age when every other rule lets it through.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { directiveNames, headerText } from '../common/header-values.js';
import { getMaxAge, hasVaryHeader, patchVaryHeaders } from './headers.js';
import { scopeOf } from '../cacheability/request-scope.js';

const REFUSING_DIRECTIVES = new Set(['private', 'no-cache', 'no-store']);

/** Seconds a page is kept when its response names no max-age. */
export const DEFAULT_SECONDS = 600;
/** The largest body stored, in bytes: a bigger one passes through uncached. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/** The page cache's settings that the rules read. */
export interface StorageRules {
  /** A route's own timeout (`cachePage`): wins over the response's max-age, `max-age=0` included. */
  pageTimeout?: number | null;
  /** Seconds to keep a page whose response names no max-age. @default 600 */
  defaultSeconds?: number;
  /** Bodies larger than this many bytes are not stored. @default 1048576 (1 MiB), as the page cache's */
  maxBodyBytes?: number;
}

/** The page cache's decision about one response: store it for `timeout` seconds, or why not. */
export type StorageDecision =
  /** `partsMaxAge`: the shortest time any part rendered into the page has left, when one has a bound; `timeout` is within it. */
  | { store: true; timeout: number; partsMaxAge?: number }
  /** `patchTimeout`: a response that is not stored still gets Expires and max-age for this many seconds. */
  | { store: false; reason: string; patchTimeout?: number };

/** The reason a body that outgrew `maxBodyBytes` is not stored. */
export function bodyTooLargeReason(maxBodyBytes: number): string {
  return `body over ${maxBodyBytes} bytes`;
}

/**
 * Whether and for how long to store the response, with the one reason when not. A request with
 * `Authorization` must have been given `varyOnCredentials` first.
 */
export function storageDecision(req: IncomingMessage, res: ServerResponse, rules: StorageRules = {}): StorageDecision {
  const { pageTimeout = null, defaultSeconds = DEFAULT_SECONDS, maxBodyBytes = DEFAULT_MAX_BODY_BYTES } = rules;
  // Only GET (and HEAD, answered from GET) are safe to replay.
  if (req.method !== 'GET' && req.method !== 'HEAD') return { store: false, reason: `method ${req.method}` };
  if (res.statusCode !== 200 && res.statusCode !== 304) return { store: false, reason: `status ${res.statusCode}` };
  // A cookie set for one visitor must never be replayed to the next, whatever Vary says.
  if (res.hasHeader('set-cookie')) return { store: false, reason: 'Set-Cookie' };
  // Any letter case, bare or qualified (`private="Set-Cookie"`).
  const refusing = directiveNames(headerText(res, 'cache-control')).find((name) => REFUSING_DIRECTIVES.has(name));
  if (refusing !== undefined) return { store: false, reason: `Cache-Control: ${refusing}` };
  if (hasVaryHeader(res, '*')) return { store: false, reason: 'Vary: *' };
  const maxAge = getMaxAge(res);
  if (pageTimeout === null && maxAge === 0) return { store: false, reason: 'max-age=0' };
  const timeout = pageTimeout ?? maxAge ?? defaultSeconds;
  if (res.statusCode === 304) return { store: false, reason: 'status 304', patchTimeout: timeout };
  if (timeout <= 0) return { store: false, reason: `timeout ${timeout}`, patchTimeout: timeout };
  const parts = scopeOf(res).cacheability;
  // Its stale fragments are being rendered again: the next request gets them fresh, not this page.
  if (parts.stale) return { store: false, reason: 'a stale fragment' };
  // A part that may not be kept (a fragment with timeout 0, `uncacheable(why)`) keeps the page out of every cache.
  if (!parts.cacheable) return { store: false, reason: parts.reason ?? 'max-age 0', patchTimeout: 0 };
  if (Number(res.getHeader('content-length') ?? 0) > maxBodyBytes) return { store: false, reason: bodyTooLargeReason(maxBodyBytes), patchTimeout: timeout };
  if (parts.maxAge === Infinity) return { store: true, timeout };
  // No longer than its shortest-lived part has left (a whole second at least: headers count in seconds).
  const partsMaxAge = Math.max(1, Math.floor(parts.maxAge));
  return { store: true, timeout: Math.min(timeout, partsMaxAge), partsMaxAge };
}

/** Why the response must not be stored, or null when it may be (`storageDecision`'s reason). */
export function uncacheableReason(req: IncomingMessage, res: ServerResponse, rules: StorageRules = {}): string | null {
  const decision = storageDecision(req, res, rules);
  return decision.store ? null : decision.reason;
}

/**
 * Makes a response to a request with credentials vary on them, unless it says it is the same for
 * everyone (`public`): one visitor's page is never served to another.
 */
export function varyOnCredentials(req: IncomingMessage, res: ServerResponse): void {
  if (req.headers.authorization && !directiveNames(headerText(res, 'cache-control')).includes('public')) patchVaryHeaders(res, ['Authorization']);
}

/** How long to keep a response: the route's timeout, else its max-age, else the middleware's default. */
export function cacheTimeout(res: ServerResponse, pageTimeout: number | null, defaultSeconds: number): number {
  return pageTimeout ?? getMaxAge(res) ?? defaultSeconds;
}
