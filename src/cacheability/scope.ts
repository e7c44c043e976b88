/**
 * The request a cache call belongs to. The page cache opens one scope per request; everything that
 * runs for that request (the view, its cache calls, its fragment renders) finds it through
 * `currentScope()`. It carries the request's cache budget (a request whose caches are down
 * waits at most `timeoutMs` in all, however many calls and caches it makes) and the cacheability
 * of what was rendered into the response. Outside a scope every call stands alone.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Cacheability } from './record.js';

export class RequestScope {
  constructor(
    /** The request the scope is for: the one whose values of cache contexts fragments and pages vary on. */
    readonly request: IncomingMessage | undefined,
  ) {}

  /** Servers (or caches) that failed during this request: later calls skip them at once. */
  private readonly down = new Set<unknown>();
  /**
   * The request's cache budget in ms: the largest `timeoutMs` among the caches it has called. One
   * budget for every cache the request touches, so a page whose page cache and fragments sit on two
   * aliases of one dead server waits for it once, not once per alias.
   */
  private budgetMs = 0;
  /** How long this request has waited on cache calls that failed, in ms; waits that overlap count once. */
  private lostMs = 0;
  /** When the last wait counted in `lostMs` ended (`performance.now()`). */
  private lostUntil = 0;
  /** What everything rendered into this response depends on: its fragments, and what the view added (`addCacheTags`). */
  readonly cacheability = new Cacheability();
  /**
   * The page-cache lookups of this request that missed, one per store (cache and key prefix): a
   * layer's response phase finds its request phase here, as the split middleware are two objects that
   * meet only in the request. The page cache (src/http/page-miss.ts) owns what they hold.
   */
  readonly pageLookups: object[] = [];
  /**
   * The generation of each cache (see `TagSnapshot`) as the request's first page lookup in it read
   * it, before the view ran: a fragment the view renders is written as of it, as the data the view
   * hands it may have been read since.
   */
  readonly renderGenerations = new Map<object, number>();
  /** Whether a page-cache layer counted this request as a miss: a layer further in counts nothing more. */
  missCounted = false;
  /**
   * The page-cache layer that fills the holes of this response (or sends them as ESI includes): the
   * outermost one it passes, as the body it stores must still hold them. A render leaves the
   * placeholders to it; with none, the outermost render fills them itself.
   */
  holesDeliveredBy: object | undefined = undefined;
  /** Whether the body holds live hole placeholders left for `holesDeliveredBy`. */
  holesLeft = false;
  /** Whether a render filled holes into this response: it is one visitor's page from then on. */
  holesFilled = false;
  /**
   * How the framework serving the request names the route that served it (`/items/:id`), told by its
   * adapter as it passes the request on (`nameRoute`): its router matches only after that, so it is
   * asked once the page is known. Undefined: Express's own route on the request, else the path.
   */
  routeName: (() => string | undefined) | undefined = undefined;

  /**
   * How long a call to a cache whose deadline is `timeoutMs` may wait now: its own deadline, cut to
   * what is left of the request's budget (0 or less once the budget is spent).
   */
  allowanceMs(timeoutMs: number): number {
    if (timeoutMs > this.budgetMs) this.budgetMs = timeoutMs;
    return Math.min(timeoutMs, this.budgetMs - this.lostMs);
  }

  /** Records that a call to `server`, started at `startedAt` (`performance.now()`), failed just now. */
  markDown(server: unknown, startedAt: number): void {
    this.down.add(server);
    const now = performance.now();
    // Failures are recorded in the order they end, so the part of this wait that overlaps the
    // waits already counted lies between its start and the end of the last one.
    this.lostMs += Math.max(0, now - Math.max(startedAt, this.lostUntil));
    this.lostUntil = now;
  }

  /** Whether `server` already failed in this request. */
  isDown(server: unknown): boolean {
    return this.down.size > 0 && this.down.has(server);
  }
}

const storage = new AsyncLocalStorage<RequestScope>();
/** Requests in a scope right now; at none, the storage is switched off (see `inRequestScope`). */
let openScopes = 0;

/** The scope of the request this code runs for, if one was opened. */
export function currentScope(): RequestScope | undefined {
  // With no request in a scope the storage is off and holds nothing: asking it would cost a lookup.
  return openScopes === 0 ? undefined : storage.getStore();
}

/** Each response's scope, for code that holds the response rather than runs in its scope (`addCacheTags`). */
const SCOPE = Symbol('cachegrain.scope');
type WithScope = ServerResponse & { [SCOPE]?: RequestScope };

/** The scope of the request `res` answers, made on first use. */
export function scopeOf(res: ServerResponse): RequestScope {
  return ((res as WithScope)[SCOPE] ??= new RequestScope((res as ServerResponse & { req?: IncomingMessage }).req));
}

/** The scope of the request `res` answers if one was made: a hit answered from memory makes none. */
export function openedScope(res: ServerResponse): RequestScope | undefined {
  return (res as WithScope)[SCOPE];
}

/**
 * Runs `fn` in a scope of its own for `request`, inside whatever scope it is called from: a hole's
 * builder renders and caches for the request, and what it depends on stays in its own record.
 */
export async function inScopeOfItsOwn<T>(request: IncomingMessage, fn: () => T | Promise<T>): Promise<T> {
  openScopes++;
  try {
    return await storage.run(new RequestScope(request), fn);
  } finally {
    if (--openScopes === 0) storage.disable();
  }
}

/**
 * Runs `fn` in the scope of the request `res` answers, opening one if there is none: nested page-cache
 * layers and a site middleware in front of a route share one scope per request. The scope ends when
 * the response closes. On Node 20 an enabled AsyncLocalStorage slows every promise in the process
 * (async hooks), so the storage is switched off whenever no request is in a scope.
 */
export function inRequestScope<T>(res: ServerResponse, fn: () => T): T {
  if (storage.getStore() !== undefined) return fn();
  openScopes++;
  res.once('close', () => {
    if (--openScopes === 0) storage.disable();
  });
  return storage.run(scopeOf(res), fn);
}
