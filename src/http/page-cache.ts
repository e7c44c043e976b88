/**
 * The page cache (SPEC §6, Django's `middleware/cache.py`) over Node's request and response: `fetch`
 * answers from the cache with prebuilt headers and body, `capture` stores what the view sends.
 * Concurrent misses of one page wait for one render (a `PageFlight`) and are handed its page; the
 * store happens behind the response and never holds anyone up. The view runs in a request scope, so
 * a cache that is down costs the request one timeout, not one per call.
 */
import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import type { BaseCache, MaybePromise } from '../base.js';
import { ServerCache } from '../backends/server.js';
import { BoundedMemo } from '../memo.js';
import { inRequestScope } from '../scope.js';
import { teeResponse } from './capture.js';
import { hasPreconditions, NOT_MODIFIED_HEADERS, parseHttpDate, preconditionStatus } from './conditional.js';
import { PageFlight, PageFlights, type RenderedPage } from './flight.js';
import { getMaxAge, headerText, patchResponseHeaders } from './headers.js';
import {
  absoluteUrl,
  headerKeyFor,
  headerValuesHash,
  type LearnedHeaders,
  learnVariant,
  md5,
  newPathVersion,
  type PageKeyOptions,
  pageKeyFor,
  pathVersionKeyFor,
  requestPath,
  resolveCache,
  varyHeaderList,
} from './keys.js';
import { storageDecision, varyOnCredentials } from './policy.js';

/** Options of the page cache middleware. */
export interface PageCacheOptions extends PageKeyOptions {
  /** Seconds to keep a page whose response names no `max-age`. @default 600 */
  seconds?: number;
  /** Response header saying `HIT` or `MISS`; `false` for none. @default 'X-Cache' */
  statusHeader?: string | false;
  /** Bodies larger than this many bytes pass through uncached (and are not buffered). @default 1048576 */
  maxBodyBytes?: number;
}

export const DEFAULT_SECONDS = 600;
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

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
  /** The version of the page's path when its render began; `invalidatePage` replaces it. */
  pathVersion: string;
}

/** The keys a URL's lookup reads. */
interface UrlKeys {
  urlHash: string;
  headerKey: string;
  pathVersionKey: string;
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
  /** The path's version read before the render, or undefined when the path has none yet. */
  pathVersion: string | undefined;
  /** The flight this layer leads, if it leads one. */
  flight: PageFlight<StoredPage> | undefined;
}

/** Per request, the state of each page-cache layer that marked it for storing, by keyspace. */
const STATES = Symbol('cachegrain.pageCache');
type WithStates = IncomingMessage & { [STATES]?: Map<string, PageState> };

/** Headers that describe one connection or one sending, never a stored page. */
const NOT_STORED = new Set(['connection', 'keep-alive', 'transfer-encoding', 'date', 'age', 'upgrade', 'trailer']);
const flightsByCache = new WeakMap<BaseCache, PageFlights<StoredPage>>();
const instanceIds = new WeakMap<object, number>();
let instancesSeen = 0;

export class PageCache {
  private readonly cacheOption: string | BaseCache;
  private readonly keyPrefix: string;
  private readonly seconds: number;
  private readonly statusHeader: string | false;
  private readonly maxBodyBytes: number;
  /** Which cache and prefix this layer stores under: split middleware with the same options meet here. */
  private readonly keyspace: string;
  /** The keys of recently requested URLs: the same strings each time, so each cache lookup hashes nothing new. */
  private readonly urlKeys = new BoundedMemo<UrlKeys>();

  /** `pageTimeout` is a route's own timeout (cachePage), which wins over the response's max-age. */
  constructor(
    options: PageCacheOptions,
    private readonly pageTimeout: number | null,
    what: string,
  ) {
    if (options === null || typeof options !== 'object') throw new TypeError(`${what}: options must be an object`);
    const { cache = 'default', keyPrefix = '', seconds = DEFAULT_SECONDS, statusHeader = 'X-Cache', maxBodyBytes = DEFAULT_MAX_BODY_BYTES } = options;
    if (typeof cache !== 'string' && (typeof cache !== 'object' || cache === null || typeof cache.get !== 'function')) {
      throw new TypeError(`${what}: options.cache must be a cache alias or a cache (got ${String(cache)})`);
    }
    if (typeof keyPrefix !== 'string') throw new TypeError(`${what}: options.keyPrefix must be a string (got ${String(keyPrefix)})`);
    if (typeof seconds !== 'number' || !Number.isFinite(seconds))
      throw new TypeError(`${what}: options.seconds must be a finite number of seconds (got ${String(seconds)})`);
    if (statusHeader !== false && (typeof statusHeader !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(statusHeader))) {
      throw new TypeError(`${what}: options.statusHeader must be a header name or false (got ${String(statusHeader)})`);
    }
    if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 0) {
      throw new TypeError(`${what}: options.maxBodyBytes must be a non-negative integer (got ${String(maxBodyBytes)})`);
    }
    if (pageTimeout !== null && (typeof pageTimeout !== 'number' || !Number.isFinite(pageTimeout))) {
      throw new TypeError(`${what}: timeout must be a finite number of seconds (got ${String(pageTimeout)})`);
    }
    this.cacheOption = cache;
    this.keyPrefix = keyPrefix;
    this.seconds = seconds;
    this.statusHeader = statusHeader;
    this.maxBodyBytes = maxBodyBytes;
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
    if (method !== 'GET' && method !== 'HEAD') return this.miss(res);
    const keys = this.urlKeys.remember(absoluteUrl(req), (url) => {
      const hash = md5(url);
      return {
        urlHash: hash,
        headerKey: headerKeyFor(this.keyPrefix, hash),
        pathVersionKey: pathVersionKeyFor(this.keyPrefix, md5(requestPath(req))),
        unvariedPageKey: pageKeyFor(this.keyPrefix, 'GET', hash, headerValuesHash(req, [])),
      };
    });
    // The header list and the path version are read together: one round trip, one timeout at most.
    const learned = cache.readShared<LearnedHeaders>(keys.headerKey);
    const pathVersion = cache.readShared<string>(keys.pathVersionKey);
    if (learned instanceof Promise || pathVersion instanceof Promise) {
      return Promise.all([learned, pathVersion]).then(([headers, version]) => this.lookupVariant(req, res, cache, keys, headers, version));
    }
    return this.lookupVariant(req, res, cache, keys, learned, pathVersion);
  }

  private lookupVariant(
    req: IncomingMessage,
    res: ServerResponse,
    cache: BaseCache,
    keys: UrlKeys,
    learned: LearnedHeaders | undefined,
    pathVersion: string | undefined,
  ): MaybePromise<boolean> {
    const { urlHash } = keys;
    if (learned === undefined) return this.joinOrLead(req, res, cache, urlHash, '?', pathVersion);
    const variant = headerValuesHash(req, learned.headers);
    if (pathVersion === undefined) return this.joinOrLead(req, res, cache, urlHash, variant, pathVersion);
    const answer = (page: StoredPage | undefined) => {
      if (page === undefined || page.pathVersion !== pathVersion) return this.joinOrLead(req, res, cache, urlHash, variant, pathVersion);
      this.serve(req, res, page);
      return true;
    };
    const pageKey = learned.headers.length === 0 ? keys.unvariedPageKey : pageKeyFor(this.keyPrefix, 'GET', urlHash, variant);
    const page = cache.readShared<StoredPage>(pageKey);
    return page instanceof Promise ? page.then(answer) : answer(page);
  }

  /**
   * A miss: waits for a concurrent render of the same variant and serves its page, or leads the
   * render of it. HEAD is answered from the GET entry only: a miss runs the view and stores nothing.
   */
  private joinOrLead(
    req: IncomingMessage,
    res: ServerResponse,
    cache: BaseCache,
    urlHash: string,
    variant: string,
    pathVersion: string | undefined,
  ): MaybePromise<boolean> {
    if (req.method !== 'GET') return this.miss(res);
    let flights = flightsByCache.get(cache);
    if (flights === undefined) flightsByCache.set(cache, (flights = new PageFlights()));
    const flightKey = `${this.keyPrefix}\u0000${urlHash}\u0000${variant}`;
    const running = flights.find(flightKey);
    // A request never waits on its own render (a site cache in front of a route's cache).
    if (running !== undefined && running.leader !== req) {
      return running.settled.then((rendered) => {
        const page = PageFlight.pageFor(rendered, req);
        if (page === undefined) return this.lead(req, res, flights, flightKey, pathVersion);
        this.serve(req, res, page);
        return true;
      });
    }
    return this.lead(req, res, flights, flightKey, pathVersion);
  }

  /** Marks a GET for the response phase, leading the render unless someone else leads it now. */
  private lead(req: IncomingMessage, res: ServerResponse, flights: PageFlights<StoredPage>, flightKey: string, pathVersion: string | undefined): false {
    const flight = flights.find(flightKey) === undefined ? flights.lead(flightKey, req) : undefined;
    if (flight !== undefined) res.once('close', () => flight.settle());
    let states = (req as WithStates)[STATES];
    if (states === undefined) (req as WithStates)[STATES] = states = new Map();
    states.set(this.keyspace, { pathVersion, flight });
    return this.miss(res);
  }

  private miss(res: ServerResponse): false {
    if (this.statusHeader !== false) res.setHeader(this.statusHeader, 'MISS');
    return false;
  }

  /** The response phase: stores the response if the request phase asked for it and the rules allow. */
  capture(req: IncomingMessage, res: ServerResponse): void {
    let state: PageState | undefined;
    let timeout = 0;
    let page: Omit<StoredPage, 'body'> | undefined;
    teeResponse(res, this.maxBodyBytes, {
      head: () => {
        state = (req as WithStates)[STATES]?.get(this.keyspace);
        if (state === undefined) return false;
        varyOnCredentials(req, res);
        const decision = storageDecision(req, res, { pageTimeout: this.pageTimeout, defaultSeconds: this.seconds, maxBodyBytes: this.maxBodyBytes });
        if (decision.store) {
          timeout = decision.timeout;
          patchResponseHeaders(res, timeout);
          page = this.describe(res, state.pathVersion);
          return true;
        }
        if (decision.patchTimeout !== undefined) patchResponseHeaders(res, decision.patchTimeout);
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
        void this.store(req, stored, state.pathVersion !== undefined, timeout);
      },
    });
  }

  /** The status and headers to store, as the view left them (connection headers and the HIT/MISS header left out). */
  private describe(res: ServerResponse, pathVersion: string | undefined): Omit<StoredPage, 'body'> {
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
      // A path without a version yet gets one now; the store claims it only if nobody set one meanwhile.
      pathVersion: pathVersion ?? newPathVersion(),
    };
    const etag = headerText(res, 'etag');
    const lastModified = headerText(res, 'last-modified');
    if (etag !== undefined) page.etag = etag;
    if (lastModified !== undefined) page.lastModified = lastModified;
    return page;
  }

  /**
   * Stores a page sent to its requester, in the background. The page carries the path version read
   * before its render began: an `invalidatePage` since then replaced it, and the page reads as a
   * miss. A path that had no version gets the page's own, unless another one was set meanwhile.
   */
  private async store(req: IncomingMessage, page: StoredPage, hadVersion: boolean, timeout: number): Promise<void> {
    const cache = resolveCache(this.cacheOption);
    try {
      if (!hadVersion && !(await cache.add(pathVersionKeyFor(this.keyPrefix, md5(requestPath(req))), page.pathVersion, null))) return;
      const key = await learnVariant(cache, this.keyPrefix, req, md5(absoluteUrl(req)), varyOf(page.headers), timeout);
      await cache.set(key, page, timeout);
    } catch (error) {
      // The response has gone out already; a failed store only costs the next request a miss.
      if (cache.listenerCount('error') > 0) cache.emit('error', error);
      else console.error(`cachegrain: storing the page ${absoluteUrl(req)} failed:`, error);
    }
  }

  /** Sends a stored page: no view runs; Age and the HIT header are the only additions. */
  private serve(req: IncomingMessage, res: ServerResponse, page: StoredPage): void {
    let status = page.status;
    let headers = this.hitHeaders(page);
    if ((page.etag !== undefined || page.lastModified !== undefined) && hasPreconditions(req.headers)) {
      status = preconditionStatus(req.method, req.headers, page);
      if (status === 304)
        headers = headers.filter((_, i, all) => KEPT_BY_NOT_MODIFIED.has(all[i - (i % 2)]!.toLowerCase()) || all[i - (i % 2)] === this.statusHeader);
      else if (status !== 200) headers = headers.slice(page.headers.length);
    }
    // Always a reason phrase: some wrappers of writeHead (on-headers) lose the headers after an undefined one.
    res.writeHead(status, status === page.status ? page.statusMessage : (STATUS_CODES[status] ?? ''), headers);
    res.end(status === 200 && req.method !== 'HEAD' ? page.body : undefined);
  }

  /**
   * The headers a hit on the page sends, built once per decoded page (a page read from a cache in this
   * process is one object for every reader): only the Age value changes, and it is written in place
   * just before the synchronous `writeHead` that copies it.
   */
  private hitHeaders(page: StoredPage): string[] {
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
    return hit.headers;
  }
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
