/**
 * What the page cache may store (SPEC §6): one clause per rule, each returning why not. It reads the
 * response as the view left it, before the page cache adds Expires and max-age; the body-size rule
 * is applied while the body streams (see `captureResponse`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { directiveNames, getMaxAge, hasVaryHeader, headerText } from './headers.js';

const REFUSING_DIRECTIVES = new Set(['private', 'no-cache', 'no-store']);

/**
 * Why the response must not be stored, or null when it may be. `pageTimeout` is a route's own
 * timeout (`cachePage`), which overrides the response's `max-age=0`.
 */
export function uncacheableReason(req: IncomingMessage, res: ServerResponse, pageTimeout: number | null = null): string | null {
  // Only GET (and HEAD, answered from GET) are safe to replay.
  if (req.method !== 'GET' && req.method !== 'HEAD') return `method ${req.method}`;
  if (res.statusCode !== 200) return `status ${res.statusCode}`;
  // A cookie set for one visitor must never be replayed to the next, whatever Vary says.
  if (res.hasHeader('set-cookie')) return 'Set-Cookie';
  // Any letter case, bare or qualified (`private="Set-Cookie"`).
  const refusing = directiveNames(headerText(res, 'cache-control')).find((name) => REFUSING_DIRECTIVES.has(name));
  if (refusing !== undefined) return `Cache-Control: ${refusing}`;
  if (hasVaryHeader(res, '*')) return 'Vary: *';
  if (pageTimeout === null && getMaxAge(res) === 0) return 'max-age=0';
  return null;
}

/** How long to keep a response: the route's timeout, else its max-age, else the middleware's default. */
export function cacheTimeout(res: ServerResponse, pageTimeout: number | null, defaultSeconds: number): number {
  return pageTimeout ?? getMaxAge(res) ?? defaultSeconds;
}
