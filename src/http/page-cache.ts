/**
 * The page cache (SPEC §6, Django's `middleware/cache.py`) over Node's request and response: `fetch`
 * answers from the cache with prebuilt headers and body, `capture` stores what the view sends. The
 * surprise: concurrent misses of one page wait for the first one's response instead of each running
 * the view, and then look up their own variant (they never get another visitor's response).
 */
import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import type { BaseCache } from '../base.js';
import { teeResponse } from './capture.js';
import { hasPreconditions, NOT_MODIFIED_HEADERS, preconditionStatus } from './conditional.js';
import { directiveNames, getMaxAge, headerText, patchResponseHeaders, patchVaryHeaders } from './headers.js';
import { absoluteUrl, headerKeyFor, headerValuesHash, type LearnedHeaders, learnVariant, md5, type PageKeyOptions, pageKeyFor, resolveCache } from './keys.js';
import { cacheTimeout, uncacheableReason } from './policy.js';

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
}

/** What the request phase tells the response phase. */
interface PageState {
  update: boolean;
  statusHeader: string | false;
  storing: boolean;
  settle(): void;
}

const STATE = Symbol('cachegrain.pageCache');
type WithState = IncomingMessage & { [STATE]?: PageState };

/** Headers that describe one connection or one sending, never a stored page. */
const NOT_STORED = new Set(['connection', 'keep-alive', 'transfer-encoding', 'date', 'age', 'upgrade', 'trailer']);
const flightsByCache = new WeakMap<BaseCache, Map<string, Promise<void>>>();
const noop = () => undefined;

export class PageCache {
  private readonly cacheOption: string | BaseCache;
  private readonly keyPrefix: string;
  private readonly seconds: number;
  private readonly statusHeader: string | false;
  private readonly maxBodyBytes: number;

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
    if (typeof seconds !== 'number' || !Number.isFinite(seconds)) throw new TypeError(`${what}: options.seconds must be a finite number of seconds (got ${String(seconds)})`);
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
  }

  /** Both phases, as one middleware: answers a hit, else watches the response and calls `next`. */
  async handle(req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void): Promise<void> {
    let answered: boolean;
    try {
      answered = await this.fetch(req, res);
    } catch (error) {
      next(error);
      return;
    }
    if (answered) return;
    this.capture(req, res);
    next();
  }

  /**
   * The request phase: answers from the cache and resolves true, or resolves false after marking
   * the request for the response phase (GET and HEAD only).
   */
  async fetch(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const state: PageState = { update: false, statusHeader: this.statusHeader, storing: false, settle: noop };
    const method = req.method;
    if (method === 'GET' || method === 'HEAD') {
      const cache = resolveCache(this.cacheOption);
      const urlHash = md5(absoluteUrl(req));
      let flights = flightsByCache.get(cache);
      if (flights === undefined) flightsByCache.set(cache, (flights = new Map()));
      for (let waited = false; ; waited = true) {
        const learned = await cache.getShared<LearnedHeaders>(headerKeyFor(this.keyPrefix, urlHash));
        let variant = '?';
        if (learned !== undefined) {
          variant = headerValuesHash(req, learned.headers);
          let page = await cache.getShared<StoredPage>(pageKeyFor(this.keyPrefix, 'GET', urlHash, variant));
          if (page === undefined && method === 'HEAD') page = await cache.getShared<StoredPage>(pageKeyFor(this.keyPrefix, 'HEAD', urlHash, variant));
          if (page !== undefined) {
            this.serve(req, res, page);
            return true;
          }
        }
        const flightKey = `${this.keyPrefix}.${method}.${urlHash}.${variant}`;
        const running = flights.get(flightKey);
        if (running !== undefined && !waited) {
          await running;
          continue;
        }
        state.update = true;
        if (running === undefined) this.lead(res, state, flights, flightKey);
        break;
      }
    }
    // Only now: a hit never carries the state, and adding a property reshapes the request object.
    (req as WithState)[STATE] = state;
    if (this.statusHeader !== false) res.setHeader(this.statusHeader, 'MISS');
    return false;
  }

  /** Makes this request the one that others missing the same page wait for. */
  private lead(res: ServerResponse, state: PageState, flights: Map<string, Promise<void>>, flightKey: string): void {
    let resolve!: () => void;
    const flight = new Promise<void>((done) => (resolve = done));
    flights.set(flightKey, flight);
    state.settle = () => {
      state.settle = noop;
      if (flights.get(flightKey) === flight) flights.delete(flightKey);
      resolve();
    };
    res.once('close', () => {
      if (!state.storing) state.settle();
    });
  }

  /** The response phase: stores the response if the request phase asked for it and the rules allow. */
  capture(req: IncomingMessage, res: ServerResponse): void {
    let timeout = 0;
    let page: Omit<StoredPage, 'body'> | undefined;
    teeResponse(res, this.maxBodyBytes, {
      head: () => {
        const state = (req as WithState)[STATE];
        if (state === undefined || !state.update) return false;
        const reason = uncacheableReason(req, res, this.pageTimeout);
        if (reason !== null) return this.skip(state);
        timeout = cacheTimeout(res, this.pageTimeout, this.seconds);
        patchResponseHeaders(res, timeout);
        // The credentials are part of the key unless the response says it is the same for everyone.
        if (req.headers.authorization && !directiveNames(headerText(res, 'cache-control')).includes('public')) {
          patchVaryHeaders(res, ['Authorization']);
        }
        if (timeout <= 0 || Number(res.getHeader('content-length') ?? 0) > this.maxBodyBytes) return this.skip(state);
        page = this.describe(res, state.statusHeader);
        state.storing = true;
        return true;
      },
      done: (body) => {
        const state = (req as WithState)[STATE]!;
        if (body === null || page === undefined) {
          state.storing = false;
          state.settle();
          return;
        }
        this.store(req, { ...page, body }, timeout).finally(() => state.settle());
      },
    });
  }

  private skip(state: PageState): false {
    state.update = false;
    state.settle();
    return false;
  }

  /** The status and headers to store, as the view left them (connection headers and the HIT/MISS header left out). */
  private describe(res: ServerResponse, statusHeader: string | false): Omit<StoredPage, 'body'> {
    const skipped = statusHeader === false ? '' : statusHeader.toLowerCase();
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
    const expires = Date.parse(headerText(res, 'expires') ?? '');
    const page: Omit<StoredPage, 'body'> = {
      status: res.statusCode,
      statusMessage: res.statusMessage || (STATUS_CODES[res.statusCode] ?? ''),
      headers,
      maxAge: getMaxAge(res),
      expires: Number.isNaN(expires) ? null : Math.floor(expires / 1000),
    };
    const etag = headerText(res, 'etag');
    const lastModified = headerText(res, 'last-modified');
    if (etag !== undefined) page.etag = etag;
    if (lastModified !== undefined) page.lastModified = lastModified;
    return page;
  }

  private async store(req: IncomingMessage, page: StoredPage, timeout: number): Promise<void> {
    const cache = resolveCache(this.cacheOption);
    try {
      if (req.method === 'HEAD') page.body = Buffer.alloc(0);
      else if (!page.headers.some((name, i) => i % 2 === 0 && name.toLowerCase() === 'content-length')) {
        page.headers.push('Content-Length', String(page.body.length));
      }
      const vary = varyOf(page.headers);
      const key = await learnVariant(cache, this.keyPrefix, req, md5(absoluteUrl(req)), vary, timeout);
      await cache.set(key, page, timeout);
    } catch (error) {
      // The response has gone out already; a failed store only costs the next request a miss.
      if (cache.listenerCount('error') > 0) cache.emit('error', error);
      else console.error('cachegrain: storing a page failed:', error);
    }
  }

  /** Sends a stored page: no view runs; Age and the HIT header are the only additions. */
  private serve(req: IncomingMessage, res: ServerResponse, page: StoredPage): void {
    let status = page.status;
    let headers = page.headers;
    if ((page.etag !== undefined || page.lastModified !== undefined) && hasPreconditions(req.headers)) {
      status = preconditionStatus(req.method, req.headers, page);
      if (status !== 200) headers = status === 304 ? headers.filter((_, i, all) => NOT_MODIFIED_HEADERS.has(all[i - (i % 2)]!.toLowerCase())) : [];
    }
    headers = headers.slice();
    if (page.maxAge !== null && page.expires !== null) {
      headers.push('Age', String(Math.max(0, page.maxAge - (page.expires - Math.floor(Date.now() / 1000)))));
    }
    if (this.statusHeader !== false) headers.push(this.statusHeader, 'HIT');
    // Always a reason phrase: some wrappers of writeHead (on-headers) lose the headers after an undefined one.
    res.writeHead(status, status === page.status ? page.statusMessage : (STATUS_CODES[status] ?? ''), headers);
    res.end(status === 200 && req.method !== 'HEAD' ? page.body : undefined);
  }
}

function varyOf(headers: string[]): string | undefined {
  const values: string[] = [];
  for (let i = 0; i < headers.length; i += 2) if (headers[i]!.toLowerCase() === 'vary') values.push(headers[i + 1]!);
  return values.length === 0 ? undefined : values.join(', ');
}
