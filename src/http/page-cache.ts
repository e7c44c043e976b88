/**
 * The page cache (Django's `middleware/cache.py`) over Node's request and response:
 * `fetch` answers from the cache with prebuilt headers and body, `capture` stores what the view sends.
 * Concurrent misses of one page wait for one render (a `PageFlight`) and are handed its page; the
 * store happens behind the response and never holds anyone up. The view runs in a request scope, so
 * a cache that is down costs the request one timeout, not one per call, and the tags of the fragments
 * it renders reach the stored page. Every page carries the tags `url:<path>` and `url://<host><path>`:
 * their versions, read with the header list, are what the page is stamped with, so an invalidation
 * during a render drops it too.
 */
import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { BaseCache, CachedEntry, MaybePromise, TagSnapshot } from '../core/base.js';
import { ServerCache } from '../backends/server.js';
import { describe } from '../core/keys.js';
import { CacheServerError } from '../core/errors.js';
import { BoundedMemo } from '../core/memo.js';
import { checkOptions, optionShape } from '../options.js';
import { inRequestScope, scopeOf } from '../cacheability/scope.js';
import { teeResponse } from './capture.js';
import { hasPreconditions, judgeFreshnessHere, NOT_MODIFIED_HEADERS, parseHttpDate, preconditionStatus } from './conditional.js';
import { PageFlight, PageFlights, type RenderedPage } from './flight.js';
import { getMaxAge, headerText, patchResponseHeaders, secondsOf } from './headers.js';
import {
  absoluteUrl,
  headerKeyFor,
  headerValuesHash,
  type LearnedHeaders,
  learnVariant,
  md5,
  type PageKeyOptions,
  pageKeyFor,
  requestPath,
  resolveCache,
  hostUrlTag,
  requestHostname,
  urlTag,
  varyHeaderList,
} from './keys.js';
import { storageDecision, varyOnCredentials } from './policy.js';
import { carriesRefreshHeader, isRefreshRequest, REFRESH_SECONDS, refreshTarget, requestRefresh } from './refresh.js';
import { CountsByName, type HitCounts } from '../core/observe.js';

/** Options of the page cache middleware. */
export interface PageCacheOptions extends PageKeyOptions {
  /** Seconds to keep a page whose response names no `max-age`. @default 600 */
  seconds?: number;
  /**
   * Seconds browsers (and other caches downstream) may keep a page: the `max-age` and `Expires` sent
   * with it, on a MISS, a HIT and a 304, where the view did not ask for less. Shorter than the page's
   * timeout, a page invalidated on the server reaches browsers that much sooner. @default the page's timeout, as Django sends
   */
  browserMaxAge?: number;
  /**
   * Response header saying `HIT`, `MISS` (looked up, not found, stored now), `STALE` or `BYPASS`
   * (the request or the response cannot be cached); `false` for none. @default 'X-Cache'
   */
  statusHeader?: string | false;
  /** Adds `X-Cache-Reason` to a BYPASS, naming the rule (`Set-Cookie`, `Cache-Control: private`, `method POST`…). @default false */
  debug?: boolean;
  /** Bodies larger than this many bytes pass through uncached (and are not buffered). @default 1048576 */
  maxBodyBytes?: number;
  /**
   * Seconds past a page's timeout during which it is served stale (`X-Cache: STALE`) while one
   * refresh renders it again behind; a view's `Cache-Control: stale-while-revalidate=N` counts too. @default 0
   */
  staleWhileRevalidate?: number;
  /** Seconds past a page's timeout during which it is served when its view fails (throws, or answers 5xx); also `stale-if-error=N`. @default 0 */
  staleIfError?: number;
  /** A response header that lists the page's tags, space-separated, for a CDN to purge by (`'Cache-Tag'`, `'Surrogate-Key'`). @default false */
  tagHeader?: string | false;
  /** Cold misses of one page render once across every process sharing the cache; the others wait for that render. @default false */
  lock?: boolean;
  /** How long a request waits for another process's render under `lock` before rendering itself. @default 5000 */
  lockTimeoutMs?: number;
}

/** The page cache's option names: `cacheMiddleware` and its split halves take them all. */
export const PAGE_CACHE_OPTIONS = optionShape<PageCacheOptions>({
  cache: true,
  keyPrefix: true,
  seconds: true,
  statusHeader: true,
  debug: true,
  maxBodyBytes: true,
  staleWhileRevalidate: true,
  staleIfError: true,
  tagHeader: true,
  lock: true,
  lockTimeoutMs: true,
  browserMaxAge: true,
});
/** `cachePage` takes its timeout as its first argument, never as `seconds`. */
const { seconds: _seconds, ...CACHE_PAGE_OPTIONS } = PAGE_CACHE_OPTIONS;

export const DEFAULT_SECONDS = 600;
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
export const DEFAULT_LOCK_TIMEOUT_MS = 5000;
/** How often a request waiting on another process's render looks for its page. */
const LOCK_POLL_MS = 25;
/** How long a refresh keeps its lock after its response, waiting for its page to be stored. */
const REFRESH_STORE_WAIT_MS = 1000;

/** A stored response, ready to send. */
export interface StoredPage {
  status: number;
  statusMessage: string;
  /** Name, value, name, value… as `writeHead` takes them. */
  headers: string[];
  body: Buffer;
  etag?: string;
  lastModified?: string;
  /** For the Age header: the max-age sent and the Expires time (epoch seconds). */
  maxAge: number | null;
  expires: number | null;
  /**
   * What `pageStats()` counts its hits under: the route pattern that rendered it (Express
   * `req.route`), else its path. Absent from pages stored by earlier versions.
   */
  route?: string;
}

/** The keys a URL's lookup reads. */
interface UrlKeys {
  urlHash: string;
  headerKey: string;
  /** `url:<path>` and `url://<host><path>`: the tags every page of the path (on its host) carries. */
  urlTags: readonly [string, string];
  /** The page key when the URL's responses vary on no request header. */
  unvariedPageKey: string;
}

/** The headers a 304 from the cache sends: those of the stored page RFC 9110 keeps, and the cache's own. */
const KEPT_BY_NOT_MODIFIED = new Set([...NOT_MODIFIED_HEADERS, 'age']);

/** A page's headers as a hit sends them, kept on the decoded page (never stored: the key is a symbol). */
const HIT_HEADERS = Symbol('cachegrain.hitHeaders');
type PageWithHitHeaders = StoredPage & { [HIT_HEADERS]?: { statusHeader: string | false; headers: string[]; ageAt: number } };

/** What the request phase of one layer tells its response phase. */
interface PageState {
  /** The page's `url:` tags (its path's, its host's), and their versions read before the render. */
  urlTags: readonly string[];
  snapshot: TagSnapshot;
  /** The flight this layer leads, if it leads one. */
  flight: PageFlight<StoredPage> | undefined;
  /** A page past its stale window but inside `staleIfError`: sent instead of a failed render. */
  fallback: StoredPage | undefined;
  /** Releases the cross-process render lock (`lock`), once the page is stored or will not be. */
  release: (() => Promise<void>) | undefined;
  /** False for HEAD: its response gets the headers its GET would get, and nothing is stored. */
  stores: boolean;
}

/** Requests this process sent as refreshes: they never ask for one themselves. */
const REFRESH = Symbol('cachegrain.refresh');
type MaybeRefresh = IncomingMessage & { [REFRESH]?: boolean };
/** Pages this process is refreshing now, per cache, by page key. */
const refreshing = new WeakMap<BaseCache, Set<string>>();
/** Layers' states whose page is being stored: the store releases their render lock. */
const storing = new WeakSet<PageState>();

/** Per request, the state of each page-cache layer that marked it for storing, by keyspace. */
const STATES = Symbol('cachegrain.pageCache');
type WithStates = IncomingMessage & { [STATES]?: Map<string, PageState> };

/** Headers that describe one connection or one sending, never a stored page. */
const NOT_STORED = new Set(['connection', 'keep-alive', 'transfer-encoding', 'date', 'age', 'upgrade', 'trailer']);
const flightsByCache = new WeakMap<BaseCache, PageFlights<StoredPage>>();
const instanceIds = new WeakMap<object, number>();
let instancesSeen = 0;

/** Hits, stale hits and misses by route pattern. */
const countsByRoute = new CountsByName();

/** Hits, stale hits and misses of the page cache by route pattern (Express `req.route.path`, else the path), since start or `resetPageStats()`. */
export function pageStats(): Map<string, HitCounts> {
  return countsByRoute.snapshot();
}

export function resetPageStats(): void {
  countsByRoute.reset();
}

/** Requests a layer counted as a miss: a layer further in that answers them counts nothing more. */
const countedMisses = new WeakSet<IncomingMessage>();

/**
 * Counts a request once, however many page cache layers it passes. Only a miss is remembered: a hit
 * ends the request, so no layer can count it after, and the hot path writes nothing on the request.
 */
function countOnce(req: IncomingMessage, outcome: keyof HitCounts, route?: string): void {
  if (countedMisses.has(req)) return;
  if (outcome === 'misses') countedMisses.add(req);
  countsByRoute.of(route ?? routeOf(req) ?? requestPath(req))[outcome]++;
}

/** The Express route pattern that matched the request (with its router's mount path), if any did. */
function routeOf(req: IncomingMessage): string | undefined {
  const { route, baseUrl } = req as IncomingMessage & { route?: { path?: unknown }; baseUrl?: string };
  if (route?.path === undefined) return undefined;
  return `${baseUrl ?? ''}${String(route.path)}`;
}

export class PageCache {
  private readonly cacheOption: string | BaseCache;
  private readonly keyPrefix: string;
  private readonly seconds: number;
  private readonly browserMaxAge: number | undefined;
  private readonly statusHeader: string | false;
  private readonly debug: boolean;
  private readonly maxBodyBytes: number;
  private readonly staleWhileRevalidate: number;
  private readonly staleIfError: number;
  private readonly tagHeader: string | false;
  private readonly lock: boolean;
  private readonly lockTimeoutMs: number;
  /** Which cache and prefix this layer stores under: split middleware with the same options meet here. */
  private readonly keyspace: string;
  /** The keys of recently requested URLs: the same strings each time, so each cache lookup hashes nothing new. */
  private readonly urlKeys = new BoundedMemo<UrlKeys>();
  private readonly urlKeysByHost = new UrlKeysByHost();

  /** `pageTimeout` is a route's own timeout (cachePage), which wins over the response's max-age. */
  constructor(
    options: PageCacheOptions,
    private readonly pageTimeout: number | null,
    what: string,
  ) {
    checkOptions(options, pageTimeout === null ? PAGE_CACHE_OPTIONS : CACHE_PAGE_OPTIONS, what);
    const {
      cache = 'default',
      keyPrefix = '',
      seconds = DEFAULT_SECONDS,
      browserMaxAge,
      statusHeader = 'X-Cache',
      maxBodyBytes = DEFAULT_MAX_BODY_BYTES,
      staleWhileRevalidate = 0,
      staleIfError = 0,
      tagHeader = false,
      lock = false,
      lockTimeoutMs = DEFAULT_LOCK_TIMEOUT_MS,
      debug = false,
    } = options;
    if (typeof cache !== 'string' && (typeof cache !== 'object' || cache === null || typeof cache.get !== 'function')) {
      throw new TypeError(`${what}: options.cache must be a cache alias or a cache (got ${describe(cache)})`);
    }
    if (typeof keyPrefix !== 'string') throw new TypeError(`${what}: options.keyPrefix must be a string (got ${describe(keyPrefix)})`);
    if (typeof seconds !== 'number' || !Number.isFinite(seconds))
      throw new TypeError(`${what}: options.seconds must be a finite number of seconds (got ${describe(seconds)})`);
    if (browserMaxAge !== undefined && (typeof browserMaxAge !== 'number' || !Number.isFinite(browserMaxAge) || browserMaxAge < 0)) {
      throw new TypeError(`${what}: options.browserMaxAge must be a non-negative number of seconds (got ${describe(browserMaxAge)})`);
    }
    for (const [name, header] of [
      ['statusHeader', statusHeader],
      ['tagHeader', tagHeader],
    ] as const) {
      if (header !== false && (typeof header !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(header))) {
        throw new TypeError(`${what}: options.${name} must be a header name or false (got ${describe(header)})`);
      }
    }
    for (const [name, value] of [
      ['staleWhileRevalidate', staleWhileRevalidate],
      ['staleIfError', staleIfError],
      ['lockTimeoutMs', lockTimeoutMs],
    ] as const) {
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
        throw new TypeError(`${what}: options.${name} must be a non-negative number (got ${describe(value)})`);
      }
    }
    if (typeof lock !== 'boolean') throw new TypeError(`${what}: options.lock must be a boolean (got ${describe(lock)})`);
    if (typeof debug !== 'boolean') throw new TypeError(`${what}: options.debug must be a boolean (got ${describe(debug)})`);
    if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 0) {
      throw new TypeError(`${what}: options.maxBodyBytes must be a non-negative integer (got ${describe(maxBodyBytes)})`);
    }
    if (pageTimeout !== null && (typeof pageTimeout !== 'number' || !Number.isFinite(pageTimeout))) {
      throw new TypeError(`${what}: timeout must be a finite number of seconds (got ${describe(pageTimeout)})`);
    }
    this.cacheOption = cache;
    this.keyPrefix = keyPrefix;
    this.seconds = seconds;
    this.browserMaxAge = browserMaxAge;
    this.statusHeader = statusHeader;
    this.debug = debug;
    this.maxBodyBytes = maxBodyBytes;
    this.staleWhileRevalidate = staleWhileRevalidate;
    this.staleIfError = staleIfError;
    this.tagHeader = tagHeader;
    this.lock = lock;
    this.lockTimeoutMs = lockTimeoutMs;
    this.keyspace = `${typeof cache === 'string' ? `alias ${cache}` : `instance ${instanceId(cache)}`}\u0000${keyPrefix}`;
  }

  /** Both phases, as one middleware: answers a hit, else watches the response and calls `next`. */
  handle(req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void): void {
    this.fetchOrContinue(req, res, next, true);
  }

  /**
   * The request phase as middleware: answers a hit, else starts the response phase (`captureOnMiss`,
   * when this layer has both) and calls `next` in the request's scope. A hit on a cache in this
   * process is answered before this returns.
   */
  fetchOrContinue(req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void, captureOnMiss = false): void {
    const cache = resolveCache(this.cacheOption);
    // A cache on a server is read in the request's scope too, so that a lookup that waited for a
    // dead server is the request's only wait; a cache in this process cannot keep anyone waiting.
    if (cache instanceof ServerCache) {
      inRequestScope(res, () => this.fetch(req, res).then((answered) => answered || this.continueAfterMiss(req, res, next, captureOnMiss), next));
      return;
    }
    let answered: MaybePromise<boolean>;
    try {
      answered = this.lookup(req, res, cache);
    } catch (error) {
      next(error);
      return;
    }
    if (answered === false) this.continueAfterMiss(req, res, next, captureOnMiss);
    else if (answered !== true) answered.then((hit) => hit || this.continueAfterMiss(req, res, next, captureOnMiss), next);
  }

  private continueAfterMiss(req: IncomingMessage, res: ServerResponse, next: () => void, capture: boolean): void {
    // A hit answers preconditions as preconditionStatus reads them; so must a framework on a miss.
    judgeFreshnessHere(req, res);
    if (capture) this.capture(req, res);
    PageCache.continueInScope(res, next);
  }

  /**
   * Calls `next` in the request's scope, so that the view's cache calls share the request's budget
   * and its fragments' tags reach the page. A hit on an in-process cache never opens one.
   */
  static continueInScope(res: ServerResponse, next: () => void): void {
    inRequestScope(res, next);
  }

  /**
   * The request phase: answers from the cache (or from a concurrent render of the same page) and
   * resolves true, or resolves false after marking a GET for the response phase.
   */
  fetch(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    try {
      return Promise.resolve(this.lookup(req, res, resolveCache(this.cacheOption)));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  // The lookup is in steps that each go on at once when the store answered synchronously: a hit on
  // a cache in this process is sent within the request's own event, with no promise in between.
  private lookup(req: IncomingMessage, res: ServerResponse, cache: BaseCache): MaybePromise<boolean> {
    const method = req.method;
    if (method !== 'GET' && method !== 'HEAD') return this.bypass(res, `method ${method}`);
    if (carriesRefreshHeader(req)) {
      const refresh = isRefreshRequest(req, cache);
      const lookUp = (valid: boolean) => {
        (req as MaybeRefresh)[REFRESH] = valid;
        return this.lookupUrl(req, res, cache);
      };
      return refresh instanceof Promise ? refresh.then(lookUp) : lookUp(refresh);
    }
    return this.lookupUrl(req, res, cache);
  }

  private lookupUrl(req: IncomingMessage, res: ServerResponse, cache: BaseCache): MaybePromise<boolean> {
    const keys = this.keysOf(req);
    // The header list and the path's tag version are read together: one round trip, one timeout at most.
    const learned = cache.readShared<LearnedHeaders>(keys.headerKey);
    const snapshot = cache.readTagSnapshot(keys.urlTags);
    if (learned instanceof Promise || snapshot instanceof Promise) {
      return Promise.all([learned, snapshot]).then(([headers, versions]) => this.lookupVariant(req, res, cache, keys, headers, versions));
    }
    return this.lookupVariant(req, res, cache, keys, learned, snapshot);
  }

  /**
   * The keys of the request's URL. Off a proxy the URL is its scheme, Host and path, so the keys are
   * found by those as they came, with no absolute URL built (and hashed by the map) on every hit.
   */
  private keysOf(req: IncomingMessage): UrlKeys {
    const headers = req.headers;
    if (headers['x-forwarded-proto'] !== undefined || headers['x-forwarded-host'] !== undefined)
      return this.urlKeys.remember(absoluteUrl(req), () => this.keysFor(req));
    const secure = Boolean((req.socket as TLSSocket).encrypted);
    const host = headers.host ?? '';
    const path = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '/';
    return this.urlKeysByHost.find(secure, host, path) ?? this.urlKeysByHost.add(secure, host, path, this.keysFor(req));
  }

  private keysFor(req: IncomingMessage): UrlKeys {
    const hash = md5(absoluteUrl(req));
    return {
      urlHash: hash,
      headerKey: headerKeyFor(this.keyPrefix, hash),
      urlTags: [urlTag(requestPath(req)), hostUrlTag(requestHostname(req), requestPath(req))],
      unvariedPageKey: pageKeyFor(this.keyPrefix, 'GET', hash, headerValuesHash(req, [])),
    };
  }

  private lookupVariant(
    req: IncomingMessage,
    res: ServerResponse,
    cache: BaseCache,
    keys: UrlKeys,
    learned: LearnedHeaders | undefined,
    snapshot: TagSnapshot,
  ): MaybePromise<boolean> {
    const { urlHash } = keys;
    if (learned === undefined) return this.joinOrLead(req, res, cache, keys, '?', snapshot, undefined);
    const variant = headerValuesHash(req, learned.headers);
    // A refresh renders whatever is stored. (A path whose tag was never invalidated has no version, and may well have pages.)
    if ((req as MaybeRefresh)[REFRESH] === true) {
      return this.joinOrLead(req, res, cache, keys, variant, snapshot, undefined);
    }
    const pageKey = learned.headers.length === 0 ? keys.unvariedPageKey : pageKeyFor(this.keyPrefix, 'GET', urlHash, variant);
    // A method, not a closure: an answer from a cache in this process allocates nothing for it.
    const entry = cache.readSharedEntry<StoredPage>(pageKey, snapshot);
    if (entry instanceof Promise) return entry.then((found) => this.answer(req, res, cache, keys, variant, snapshot, pageKey, found));
    return this.answer(req, res, cache, keys, variant, snapshot, pageKey, entry);
  }

  /** Serves the page found for the variant, or goes on to render it. */
  private answer(
    req: IncomingMessage,
    res: ServerResponse,
    cache: BaseCache,
    keys: UrlKeys,
    variant: string,
    snapshot: TagSnapshot,
    pageKey: string,
    entry: CachedEntry<StoredPage> | undefined,
  ): MaybePromise<boolean> {
    if (entry === undefined) return this.joinOrLead(req, res, cache, keys, variant, snapshot, undefined);
    if (entry.state === 'fresh') {
      this.serve(req, res, entry.value, 'HIT');
      return true;
    }
    if (entry.state === 'stale') {
      this.serve(req, res, entry.value, 'STALE');
      // Read from the visitor's connection now, while it is open: the refresh runs after awaits.
      if (!carriesRefreshHeader(req)) this.refreshBehind(req, cache, pageKey);
      return true;
    }
    // Past its stale window: rendered afresh, and sent instead of a render that fails.
    return this.joinOrLead(req, res, cache, keys, variant, snapshot, entry.value);
  }

  /**
   * Renders a stale page again behind the visitor it was just sent to: once per page in this process,
   * and once across every process sharing the cache (the first to take the refresh lock).
   */
  private refreshBehind(req: IncomingMessage, cache: BaseCache, pageKey: string): void {
    let running = refreshing.get(cache);
    if (running === undefined) refreshing.set(cache, (running = new Set()));
    if (running.has(pageKey)) return;
    running.add(pageKey);
    const refresh = async () => {
      const target = refreshTarget(req);
      const release = await cache.acquireLock(`refresh:${pageKey}`, REFRESH_SECONDS);
      if (release === undefined) return;
      try {
        // Read stale before another process's refresh stored its page and let go of the lock: done already.
        if ((await cache.readSharedEntry<StoredPage>(pageKey))?.state === 'fresh') return;
        await requestRefresh(target, cache);
        // The page is stored behind the refresh's response: until it is, visitors are still sent the
        // stale one, and one of them would start another refresh if the lock were let go now.
        await this.untilFresh(cache, pageKey);
      } finally {
        await release();
      }
    };
    refresh()
      .catch((error: unknown) => report(cache, `refreshing the stale page ${absoluteUrl(req)} failed`, error))
      .finally(() => running.delete(pageKey));
  }

  /** Resolves once the page under `pageKey` is fresh, or after REFRESH_STORE_WAIT_MS (a render that was not stored). */
  private async untilFresh(cache: BaseCache, pageKey: string): Promise<void> {
    const deadline = Date.now() + REFRESH_STORE_WAIT_MS;
    for (;;) {
      const entry = await cache.readSharedEntry<StoredPage>(pageKey);
      if (entry?.state === 'fresh' || Date.now() >= deadline) return;
      await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
    }
  }

  /**
   * A miss: waits for a concurrent render of the same variant and serves its page, or leads the
   * render of it. HEAD is answered from the GET entry only: a miss runs the view, is judged as its
   * GET would be (the same headers, BYPASS and its reason), and stores nothing.
   */
  private joinOrLead(
    req: IncomingMessage,
    res: ServerResponse,
    cache: BaseCache,
    keys: UrlKeys,
    variant: string,
    snapshot: TagSnapshot,
    fallback: StoredPage | undefined,
  ): MaybePromise<boolean> {
    if (req.method !== 'GET') {
      this.remember(req, { urlTags: keys.urlTags, snapshot, flight: undefined, fallback: undefined, release: undefined, stores: false });
      return this.miss(res);
    }
    let flights = flightsByCache.get(cache);
    if (flights === undefined) flightsByCache.set(cache, (flights = new PageFlights()));
    const flightKey = `${this.keyPrefix}\u0000${keys.urlHash}\u0000${variant}`;
    const running = flights.find(flightKey);
    const state: PageState = { urlTags: keys.urlTags, snapshot, flight: undefined, fallback, release: undefined, stores: true };
    // A request never waits on its own render (a site cache in front of a route's cache).
    if (running !== undefined && running.leader !== req) {
      return running.settled.then((rendered) => {
        const page = PageFlight.pageFor(rendered, req);
        if (page === undefined) return this.lead(req, res, flights, flightKey, state);
        this.serve(req, res, page, 'HIT');
        return true;
      });
    }
    if (this.lock && running === undefined && (req as MaybeRefresh)[REFRESH] !== true) return this.leadUnderLock(req, res, cache, flights, flightKey, state);
    return this.lead(req, res, flights, flightKey, state);
  }

  /**
   * `lock`: leads the render when this process takes the page's render lock; else waits for the
   * holder's page (looking it up again every few ms) and serves it, or renders itself when the lock
   * is let go without one, or after `lockTimeoutMs`.
   */
  private async leadUnderLock(
    req: IncomingMessage,
    res: ServerResponse,
    cache: BaseCache,
    flights: PageFlights<StoredPage>,
    flightKey: string,
    state: PageState,
  ): Promise<boolean> {
    const lockName = `render:${flightKey}`;
    const lockSeconds = Math.max(1, Math.ceil(this.lockTimeoutMs / 1000));
    const deadline = Date.now() + this.lockTimeoutMs;
    for (;;) {
      const release = await cache.acquireLock(lockName, lockSeconds);
      if (release !== undefined) {
        // The lookup that missed may have come before another process stored the page and let go of the lock.
        const stored = await this.storedPage(req, cache);
        if (stored === undefined) {
          state.release = release;
          return this.lead(req, res, flights, flightKey, state);
        }
        this.serve(req, res, stored, 'HIT');
        release().catch((error: unknown) => report(cache, `releasing the render lock of ${absoluteUrl(req)} failed`, error));
        return true;
      }
      if (Date.now() >= deadline) return this.lead(req, res, flights, flightKey, state);
      await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
      const stored = await this.storedPage(req, cache);
      if (stored !== undefined) {
        this.serve(req, res, stored, 'HIT');
        return true;
      }
    }
  }

  /** The fresh stored page for the request, if there is one now. */
  private async storedPage(req: IncomingMessage, cache: BaseCache): Promise<StoredPage | undefined> {
    const urlHash = md5(absoluteUrl(req));
    const learned = await cache.readShared<LearnedHeaders>(headerKeyFor(this.keyPrefix, urlHash));
    if (learned === undefined) return undefined;
    const entry = await cache.readSharedEntry<StoredPage>(pageKeyFor(this.keyPrefix, 'GET', urlHash, headerValuesHash(req, learned.headers)));
    return entry?.state === 'fresh' ? entry.value : undefined;
  }

  /** Marks a GET for the response phase, leading the render unless someone else leads it now. */
  private lead(req: IncomingMessage, res: ServerResponse, flights: PageFlights<StoredPage>, flightKey: string, state: PageState): false {
    const flight = flights.find(flightKey) === undefined ? flights.lead(flightKey, req) : undefined;
    state.flight = flight;
    res.once('close', () => {
      flight?.settle();
      // The store (if any) has been handed its page by now; an unstored render frees the lock here.
      if (!storing.has(state)) void state.release?.();
    });
    this.remember(req, state);
    return this.miss(res);
  }

  /** Hands this layer's state of a miss to the response phase. */
  private remember(req: IncomingMessage, state: PageState): void {
    let states = (req as WithStates)[STATES];
    if (states === undefined) (req as WithStates)[STATES] = states = new Map();
    states.set(this.keyspace, state);
  }

  private miss(res: ServerResponse): false {
    if (this.statusHeader !== false) res.setHeader(this.statusHeader, 'MISS');
    return false;
  }

  /** Marks a response that could not be cached, and with `debug` why (one of `storageDecision`'s reasons). */
  private bypass(res: ServerResponse, reason: string): false {
    if (this.statusHeader === false || res.headersSent) return false;
    res.setHeader(this.statusHeader, 'BYPASS');
    if (this.debug) res.setHeader(`${this.statusHeader}-Reason`, reason);
    return false;
  }

  /** The response phase: stores the response if the request phase asked for it and the rules allow. */
  capture(req: IncomingMessage, res: ServerResponse): void {
    let state: PageState | undefined;
    let timeout = 0;
    let page: Omit<StoredPage, 'body'> | undefined;
    const stateOfLayer = () => (state ??= (req as WithStates)[STATES]?.get(this.keyspace));
    teeResponse(res, this.maxBodyBytes, {
      mayReplace: () => stateOfLayer()?.fallback !== undefined,
      head: () => {
        const state = stateOfLayer();
        if (state === undefined) return false;
        if (state.fallback !== undefined && res.statusCode >= 500) return this.replaceWithFallback(req, res, state, state.fallback);
        varyOnCredentials(req, res);
        const decision = storageDecision(req, res, { pageTimeout: this.pageTimeout, defaultSeconds: this.seconds, maxBodyBytes: this.maxBodyBytes });
        countOnce(req, 'misses');
        if (decision.store) {
          timeout = decision.timeout;
          patchResponseHeaders(res, this.browserMaxAge ?? timeout);
          if (this.tagHeader !== false) res.setHeader(this.tagHeader, this.pageTags(res, state).join(' '));
          if (!state.stores) return false;
          page = this.describe(req, res);
          return true;
        }
        this.bypass(res, decision.reason);
        if (decision.patchTimeout !== undefined) patchResponseHeaders(res, this.browserMaxAge ?? decision.patchTimeout);
        state.flight?.settle();
        return false;
      },
      done: (body) => {
        if (state === undefined || page === undefined) return;
        if (body === null) {
          state.flight?.settle();
          return;
        }
        const stored: StoredPage = { ...page, body };
        if (!stored.headers.some((name, i) => i % 2 === 0 && name.toLowerCase() === 'content-length'))
          stored.headers.push('Content-Length', String(body.length));
        const varyHeaders = varyHeaderList(varyOf(stored.headers));
        const rendered: RenderedPage<StoredPage> = { page: stored, varyHeaders, variant: headerValuesHash(req, varyHeaders) };
        state.flight?.settle(rendered);
        storing.add(state);
        void this.store(req, res, stored, timeout, state);
      },
    });
  }

  /** The page's tags: those of every fragment rendered into it and those the view added, and its `url:` tags. */
  private pageTags(res: ServerResponse, state: PageState): string[] {
    return [...new Set([...scopeOf(res).cacheability.tags, ...state.urlTags])];
  }

  /**
   * A render that failed (an error page, 5xx) while a page inside its `staleIfError` window is
   * stored: that page goes out instead, marked STALE, and the failure is reported.
   */
  private replaceWithFallback(req: IncomingMessage, res: ServerResponse, state: PageState, fallback: StoredPage): Buffer {
    report(resolveCache(this.cacheOption), `the view for ${absoluteUrl(req)} answered ${res.statusCode}; the stale page was sent instead`);
    state.flight?.settle();
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    res.statusCode = fallback.status;
    res.statusMessage = fallback.statusMessage;
    putHeaders(res, this.hitHeaders(fallback, 'STALE'));
    return fallback.body;
  }

  /** The status and headers to store, as the view left them (connection headers and the HIT/MISS header left out). */
  private describe(req: IncomingMessage, res: ServerResponse): Omit<StoredPage, 'body'> {
    const skipped = this.statusHeader === false ? '' : this.statusHeader.toLowerCase();
    const headers: string[] = [];
    // Node keeps the names as the view spelled them; getRawHeaderNames is missing from @types/node.
    const names = (res as ServerResponse & { getRawHeaderNames(): string[] }).getRawHeaderNames();
    for (const name of names) {
      const lower = name.toLowerCase();
      if (NOT_STORED.has(lower) || lower === skipped) continue;
      const value = res.getHeader(name)!;
      if (Array.isArray(value)) for (const item of value) headers.push(name, item);
      else headers.push(name, String(value));
    }
    const page: Omit<StoredPage, 'body'> = {
      status: res.statusCode,
      statusMessage: res.statusMessage || (STATUS_CODES[res.statusCode] ?? ''),
      headers,
      maxAge: getMaxAge(res),
      expires: parseHttpDate(headerText(res, 'expires')) ?? null,
    };
    const etag = headerText(res, 'etag');
    const lastModified = headerText(res, 'last-modified');
    if (etag !== undefined) page.etag = etag;
    if (lastModified !== undefined) page.lastModified = lastModified;
    page.route = routeOf(req) ?? requestPath(req);
    return page;
  }

  /**
   * Stores a page sent to its requester, in the background, with its tags at the versions read
   * before its render began (its path's) or now (its fragments'): an invalidation since then drops
   * it. It may be served stale for the longer of the layer's and the view's stale windows.
   */
  private async store(req: IncomingMessage, res: ServerResponse, page: StoredPage, timeout: number, state: PageState): Promise<void> {
    const cache = resolveCache(this.cacheOption);
    try {
      // Down for a while (its breaker open): storing would only fail; the next request renders again.
      if (cache.unreachable) return;
      const cacheControl = headerText(res, 'cache-control');
      const staleWhileRevalidate = Math.max(this.staleWhileRevalidate, secondsOf(cacheControl, 'stale-while-revalidate') ?? 0);
      const staleIfError = Math.max(this.staleIfError, secondsOf(cacheControl, 'stale-if-error') ?? 0);
      // The header list lives as long as the page may be served, stale included.
      const listTimeout = timeout + Math.max(staleWhileRevalidate, staleIfError);
      const key = await learnVariant(cache, this.keyPrefix, req, md5(absoluteUrl(req)), varyOf(page.headers), listTimeout);
      await cache.set(key, page, { timeout, tags: this.pageTags(res, state), tagsAsOf: state.snapshot, staleWhileRevalidate, staleIfError });
    } catch (error) {
      // The response has gone out already; a failed store only costs the next request a miss.
      report(cache, `storing the page ${absoluteUrl(req)} failed`, error);
    } finally {
      await state.release?.();
    }
  }

  /** Sends a stored page: no view runs; Age and the HIT (or STALE) header are the only additions. */
  private serve(req: IncomingMessage, res: ServerResponse, page: StoredPage, label: 'HIT' | 'STALE'): void {
    countOnce(req, label === 'HIT' ? 'hits' : 'staleHits', page.route);
    let status = page.status;
    let headers = this.hitHeaders(page, label);
    if ((page.etag !== undefined || page.lastModified !== undefined) && hasPreconditions(req.headers)) {
      status = preconditionStatus(req.method, req.headers, page);
      if (status === 304)
        headers = headers.filter((_, i, all) => KEPT_BY_NOT_MODIFIED.has(all[i - (i % 2)]!.toLowerCase()) || all[i - (i % 2)] === this.statusHeader);
      else if (status !== 200) headers = headers.slice(page.headers.length);
    }
    putHeaders(res, headers);
    // Always a reason phrase: some wrappers of writeHead (on-headers) lose the headers after an undefined one.
    res.writeHead(status, status === page.status ? page.statusMessage : (STATUS_CODES[status] ?? ''));
    res.end(status === 200 && req.method !== 'HEAD' ? page.body : undefined);
  }

  /**
   * The headers a hit on the page sends, built once per decoded page (a page read from a cache in this
   * process is one object for every reader): only the Age value changes, and it is written in place
   * just before the synchronous `writeHead` that copies it.
   */
  private hitHeaders(page: StoredPage, label: 'HIT' | 'STALE'): string[] {
    let hit = (page as PageWithHitHeaders)[HIT_HEADERS];
    if (hit === undefined || hit.statusHeader !== this.statusHeader) {
      const headers = page.headers.slice();
      let ageAt = -1;
      if (page.maxAge !== null && page.expires !== null) {
        headers.push('Age', '0');
        ageAt = headers.length - 1;
      }
      if (this.statusHeader !== false) headers.push(this.statusHeader, 'HIT');
      hit = { statusHeader: this.statusHeader, headers, ageAt };
      Object.defineProperty(page, HIT_HEADERS, { value: hit, writable: true, configurable: true });
    }
    if (hit.ageAt !== -1) hit.headers[hit.ageAt] = String(Math.max(0, page.maxAge! - (page.expires! - Math.floor(Date.now() / 1000))));
    if (label === 'HIT' || this.statusHeader === false) return hit.headers;
    const headers = hit.headers.slice();
    headers[headers.length - 1] = label;
    return headers;
  }
}

/**
 * URL keys by scheme, Host and path, as a request names them off a proxy: two lookups of the strings
 * the request came with. Bounded like a BoundedMemo: when full it starts afresh.
 */
class UrlKeysByHost {
  private readonly hosts = [new Map<string, Map<string, UrlKeys>>(), new Map<string, Map<string, UrlKeys>>()];
  private size = 0;

  constructor(private readonly limit = 10_000) {}

  find(secure: boolean, host: string, path: string): UrlKeys | undefined {
    return this.hosts[secure ? 1 : 0]!.get(host)?.get(path);
  }

  add(secure: boolean, host: string, path: string, keys: UrlKeys): UrlKeys {
    if (this.size >= this.limit) {
      for (const hosts of this.hosts) hosts.clear();
      this.size = 0;
    }
    const hosts = this.hosts[secure ? 1 : 0]!;
    let byPath = hosts.get(host);
    if (byPath === undefined) hosts.set(host, (byPath = new Map()));
    byPath.set(path, keys);
    this.size++;
    return keys;
  }
}

/**
 * Reports a failure behind a response through the cache's own reporting (`reportError`: an `error`
 * event when someone listens, else the cache's logger once per cause), counted once in its
 * `stats().errors`: a server's failure was counted where it happened, so it stays a CacheServerError.
 */
function report(cache: BaseCache, what: string, error?: unknown): void {
  if (error === undefined) return cache.reportError(new Error(`page cache: ${what}`));
  const cause = error instanceof Error ? error : new Error(String(error));
  // The cache names itself once, in front of the whole message.
  const own = `cache '${cache.alias}': `;
  const message = `page cache: ${what}: ${cause.message.startsWith(own) ? cause.message.slice(own.length) : cause.message}`;
  cache.reportError(cause instanceof CacheServerError ? new CacheServerError(message, cause.server, cause) : new Error(message, { cause }));
}

/**
 * Puts a stored page's headers on the response, each replacing any of its name as writeHead's own
 * list would, but before writeHead: the layers around this one then change them as they changed the
 * MISS that stored them, so a HIT carries the MISS's headers whatever the order of the middleware.
 */
function putHeaders(res: ServerResponse, headers: readonly string[]): void {
  for (let i = 0; i < headers.length; i += 2) res.removeHeader(headers[i]!);
  for (let i = 0; i < headers.length; i += 2) res.appendHeader(headers[i]!, headers[i + 1]!);
}

function instanceId(cache: object): number {
  let id = instanceIds.get(cache);
  if (id === undefined) instanceIds.set(cache, (id = ++instancesSeen));
  return id;
}

function varyOf(headers: string[]): string | undefined {
  const values: string[] = [];
  for (let i = 0; i < headers.length; i += 2) if (headers[i]!.toLowerCase() === 'vary') values.push(headers[i + 1]!);
  return values.length === 0 ? undefined : values.join(', ');
}
