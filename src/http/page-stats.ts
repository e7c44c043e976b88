/**
 * Hits, stale hits and misses of the page cache by route pattern (Express `req.route.path`, else the
 * path), for `pageStats()` and the dashboard. A request is counted once, however many page-cache
 * layers it passes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CountsByName, type HitCounts } from '../core/observe.js';
import { openedScope, scopeOf } from '../cacheability/scope.js';
import { requestPath } from './keys.js';

const countsByRoute = new CountsByName();

/** Hits, stale hits and misses of the page cache by route pattern (Express `req.route.path`, else the path), since start or `resetPageStats()`. */
export function pageStats(): Map<string, HitCounts> {
  return countsByRoute.snapshot();
}

export function resetPageStats(): void {
  countsByRoute.reset();
}

/**
 * Counts a request once, however many page cache layers it passes. Only a miss is remembered (in the
 * request's scope): a hit ends the request, so no layer can count it after, and the hot path writes
 * nothing on the request.
 */
export function countOnce(req: IncomingMessage, res: ServerResponse, outcome: keyof HitCounts, route?: string): void {
  if (openedScope(res)?.missCounted === true) return;
  if (outcome === 'misses') scopeOf(res).missCounted = true;
  countsByRoute.of(route ?? routeOf(req) ?? requestPath(req))[outcome]++;
}

/** The Express route pattern that matched the request (with its router's mount path), if any did. */
export function routeOf(req: IncomingMessage): string | undefined {
  const { route, baseUrl } = req as IncomingMessage & { route?: { path?: unknown }; baseUrl?: string };
  if (route?.path === undefined) return undefined;
  return `${baseUrl ?? ''}${String(route.path)}`;
}
