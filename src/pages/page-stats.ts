/**
 * Hits, stale hits and misses of the page cache by route pattern (Express `req.route.path`, else the
 * path), for `pageStats()` and the dashboard. A request is counted once, however many page-cache
 * layers it passes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CountsByName, type HitCounts, PAGE_CHANNEL, type PageEvent } from '../observation/observation.js';
import { openedScope, ScopeSlot, scopeOf } from '../cacheability/request-scope.js';
import { requestPath } from './page-keys.js';

const countsByRoute = new CountsByName();

/** The variants a route's pages were stored as, in this process: what they vary on, and how many there were. */
export interface RouteVariants {
  /** The cache contexts and request headers its pages vary on, as stored last. */
  variesOn: string[];
  /** Distinct pages stored (each URL's variants) since start or `resetPageStats()`, while fewer than `VARIANTS_COUNTED` were told apart over every route. */
  variants: number;
}

/**
 * How many variants are told apart in all, over every route: each is told apart by its key, kept
 * until `resetPageStats()`, so past this many a new one is not counted. A budget per route would
 * still let a site whose paths are its routes keep a key per URL ever requested.
 */
export const VARIANTS_COUNTED = 10_000;
/** How many routes' variants are counted; past it a new route's are not. */
const ROUTES_COUNTED = 1000;
const variantsByRoute = new Map<string, { variesOn: string[]; seen: Set<string>; uncounted: boolean }>();
let variantsTold = 0;

/** Notes a page of `route` stored under `key` (one URL's variant of what it varies on). */
export function noteVariant(route: string, variesOn: string[], key: string): void {
  let known = variantsByRoute.get(route);
  if (known === undefined) {
    if (variantsByRoute.size >= ROUTES_COUNTED) return;
    variantsByRoute.set(route, (known = { variesOn, seen: new Set(), uncounted: false }));
  }
  known.variesOn = variesOn;
  if (known.seen.has(key)) return;
  if (variantsTold >= VARIANTS_COUNTED) known.uncounted = true;
  else {
    known.seen.add(key);
    variantsTold++;
  }
}

/** Per route, what its stored pages vary on and how many variants of them were stored, in this process. */
export function pageVariants(): Map<string, RouteVariants> {
  return new Map([...variantsByRoute].map(([route, { variesOn, seen }]) => [route, { variesOn: [...variesOn], variants: seen.size }]));
}

/** Whether some of `route`'s variants went uncounted, `VARIANTS_COUNTED` having been told apart already. */
export function variantsUncounted(route: string): boolean {
  return variantsByRoute.get(route)?.uncounted ?? false;
}

/** Hits, stale hits and misses of the page cache by route pattern (Express `req.route.path`, else the path), since start or `resetPageStats()`. */
export function pageStats(): Map<string, HitCounts> {
  return countsByRoute.snapshot();
}

export function resetPageStats(): void {
  countsByRoute.reset();
  variantsByRoute.clear();
  variantsTold = 0;
}

/** What the counting of pages keeps in a request's scope. */
interface PageCounting {
  /** Whether a page-cache layer counted this request as a miss: a layer further in counts nothing more. */
  missCounted: boolean;
  /**
   * How the framework serving the request names the route that served it (`/items/:id`), told by its
   * adapter as it passes the request on (`nameRoute`): its router matches only after that, so it is
   * asked once the page is known. Undefined: Express's own route on the request, else the path.
   */
  routeName: (() => string | undefined) | undefined;
}

const PAGE_COUNTING = new ScopeSlot<PageCounting>(() => ({ missCounted: false, routeName: undefined }));

/** A request a page cache layer looked up, and the cache it looked in. */
export interface LookedUp {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The request's method, read once: a framework that re-prototypes its requests (Express) makes every read of one cost more. */
  readonly method: string;
  readonly cache: { readonly alias: string };
}

const COUNTED_AS = { hit: 'hits', stale: 'staleHits', miss: 'misses', bypass: 'misses' } as const satisfies Record<PageEvent['outcome'], keyof HitCounts>;

/**
 * Counts a request once, however many page cache layers it passes, and publishes how it ended on
 * `cachegrain:page`. Only a miss or a bypass is remembered (in the request's scope): a hit ends the
 * request, so no layer can count it after, and the hot path writes nothing on the request.
 * `pageStats()` counts the requests that were looked up (GET and HEAD): one that could not be cached
 * was not found, and counts as a miss.
 */
export function countOnce(request: LookedUp, outcome: PageEvent['outcome'], route: string): void {
  const { res, method } = request;
  if (openedScope(res)?.get(PAGE_COUNTING).missCounted === true) return;
  if (outcome === 'miss' || outcome === 'bypass') scopeOf(res).get(PAGE_COUNTING).missCounted = true;
  const lookedUp = method === 'GET' || method === 'HEAD';
  if (lookedUp) countsByRoute.of(route)[COUNTED_AS[outcome]]++;
  if (PAGE_CHANNEL.hasSubscribers)
    PAGE_CHANNEL.publish({ alias: request.cache.alias, route: countsByRoute.nameOf(route), method, outcome } satisfies PageEvent);
}

/**
 * The route pattern that served the request, by which its pages are counted: as its framework's
 * adapter names it (`nameRoute`), else the Express route that matched (with its router's mount
 * path), else the request's path.
 */
export function routeOf(req: IncomingMessage, res: ServerResponse): string {
  const named = openedScope(res)?.get(PAGE_COUNTING).routeName?.();
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
  scopeOf(res).get(PAGE_COUNTING).routeName = name;
}
