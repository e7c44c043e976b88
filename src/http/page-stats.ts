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

/** The variants a route's pages were stored as, in this process: what they vary on, and how many there were. */
export interface RouteVariants {
  /** The cache contexts and request headers its pages vary on, as stored last. */
  variesOn: string[];
  /** Distinct pages stored (each URL's variants) since start or `resetPageStats()`, counted up to `VARIANTS_COUNTED`. */
  variants: number;
}

/** Past this many a route's variants are not told apart any more: the count stops there. */
export const VARIANTS_COUNTED = 10_000;
const ROUTES_COUNTED = 1000;
const variantsByRoute = new Map<string, { variesOn: string[]; seen: Set<string> }>();

/** Notes a page of `route` stored under `key` (one URL's variant of what it varies on). */
export function noteVariant(route: string, variesOn: string[], key: string): void {
  let known = variantsByRoute.get(route);
  if (known === undefined) {
    if (variantsByRoute.size >= ROUTES_COUNTED) return;
    variantsByRoute.set(route, (known = { variesOn, seen: new Set() }));
  }
  known.variesOn = variesOn;
  if (known.seen.size < VARIANTS_COUNTED) known.seen.add(key);
}

/** Per route, what its stored pages vary on and how many variants of them were stored, in this process. */
export function pageVariants(): Map<string, RouteVariants> {
  return new Map([...variantsByRoute].map(([route, { variesOn, seen }]) => [route, { variesOn: [...variesOn], variants: seen.size }]));
}

/** Hits, stale hits and misses of the page cache by route pattern (Express `req.route.path`, else the path), since start or `resetPageStats()`. */
export function pageStats(): Map<string, HitCounts> {
  return countsByRoute.snapshot();
}

export function resetPageStats(): void {
  countsByRoute.reset();
  variantsByRoute.clear();
}

/**
 * Counts a request once, however many page cache layers it passes. Only a miss is remembered (in the
 * request's scope): a hit ends the request, so no layer can count it after, and the hot path writes
 * nothing on the request.
 */
export function countOnce(req: IncomingMessage, res: ServerResponse, outcome: keyof HitCounts, route: string): void {
  if (openedScope(res)?.missCounted === true) return;
  if (outcome === 'misses') scopeOf(res).missCounted = true;
  countsByRoute.of(route)[outcome]++;
}

/**
 * The route pattern that served the request, by which its pages are counted: as its framework's
 * adapter names it (`nameRoute`), else the Express route that matched (with its router's mount
 * path), else the request's path.
 */
export function routeOf(req: IncomingMessage, res: ServerResponse): string {
  const named = openedScope(res)?.routeName?.();
  if (named !== undefined) return named;
  const { route, baseUrl } = req as IncomingMessage & { route?: { path?: unknown }; baseUrl?: string };
  if (route?.path === undefined) return requestPath(req);
  return `${baseUrl ?? ''}${String(route.path)}`;
}

/**
 * For a framework adapter: how the framework names the route that serves the request `res` answers,
 * asked once its page is known (undefined: no route matched, the path counts).
 */
export function nameRoute(res: ServerResponse, name: () => string | undefined): void {
  scopeOf(res).routeName = name;
}
