/**
 * One page-cache layer's settings (`cacheMiddleware`, `cachePage`, either split half), read and
 * checked once from its options, and what every step of a request reads from them: the URL's keys
 * and the marks the layer puts on a response it did not answer (MISS, BYPASS).
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { BaseCache } from '../cache/base-cache.js';
import { caches } from '../config/cache-registry.js';
import { checkOptions, checkValue, MUST_BE, optionShape, ValueRule } from '../options/option-rules.js';
import { isHeaderName } from '../headers/header-values.js';
import { HOLE_MODE, HOLE_SECRET, HoleDelivery, type HoleMode } from './page-holes.js';
import type { HolesInOrder } from './stream-holes.js';
import { COMPRESS_OPTION, type CompressOptions, PageCompression } from './page-compression.js';
import type { StoredPage } from './stored-page.js';
import { type PageKeyOptions, resolveCache } from './page-keys.js';
import { DEFAULT_SECONDS, type RequestPolicy, type ResponsePolicy } from './policy.js';
import { DEFAULT_MAX_BODY_BYTES } from '../headers/capture.js';
import { reportPageFailure } from './page-failures.js';
import { compareDeployedTemplates } from '../digests/index.js';
import { UrlKeyring } from './url-keys.js';
import { edgeTagHeaders, TAG_HEADER_OPTION, type TagHeader, tagHeaderOf, type TagHeaderOption, unreadTagHeaderError } from './tag-header.js';
import { edgesPurgedBy, edgeTagHeadersOf } from '../edge/cache-edges.js';
import { tagHeadersReadBy } from '../edge/purge-config.js';

/**
 * How many URLs' keys each page cache layer remembers (by absolute URL behind a proxy, by Host and
 * path off one): a site's hot pages, not every URL ever asked for (random query strings).
 */

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
   * refresh renders it again behind; a view's `Cache-Control: stale-while-revalidate=N` counts too.
   * Sent downstream as that directive, so an edge in front does the same. @default 0
   */
  staleWhileRevalidate?: number;
  /** Seconds past a page's timeout during which it is served when its view fails (throws, or answers 5xx); also `stale-if-error=N`, and sent downstream as it. @default 0 */
  staleIfError?: number;
  /**
   * A response header that lists the page's tags for the edge in front to purge by, in its format:
   * `'xkey'` (Varnish) and `'Surrogate-Key'` (Fastly) space-separated, `'Cache-Tag'` (Cloudflare,
   * Akamai) comma-separated, any other name space-separated, or a format of its own
   * (`{ name, separator, maxLineLength, maxLength }`, see `TagHeaderFormat`); false for none.
   * @default the headers the edges of the page's cache read (its `purge` option): `xkey` for Varnish, `Surrogate-Key` for Fastly, `Cache-Tag` for Cloudflare
   */
  tagHeader?: TagHeaderOption;
  /** Cold misses of one page render once across every process sharing the cache; the others wait for that render. @default false */
  lock?: boolean;
  /** How long a request waits for another process's render under `lock` before rendering itself. @default 5000 */
  lockTimeoutMs?: number;
  /**
   * How the holes of a page (`defineHole`) reach the visitor: `'fill'`, put in place before the page
   * is sent (then `Cache-Control: private`); `'esi'`, as `<esi:include>` tags with signed URLs for
   * a CDN or proxy to fetch from `holeHandler()` (the page keeps its shared lifetime), to a request
   * whose `Surrogate-Capability` names `ESI/1.0`, any other request getting them filled; or
   * `'stream'`, the page's shell sent at once and each hole after it as it is made (`private`, no
   * validators, `X-Accel-Buffering: no`), moved into place by the package's script (its path served
   * by this layer) or, to a client that has not run it, filled in order. @default 'fill'
   */
  holes?: HoleMode;
  /**
   * Under `holes: 'stream'`, the requests whose holes go out in order, filled in place, even from a
   * browser that runs the script: `(req) => boolean`, given the request as builders get it (a
   * crawler told by its User-Agent). @default none: only clients that have not run the script
   */
  holesInOrder?: HolesInOrder;
  /**
   * Rules of the site's own, asked after the page cache's: `request` policies say whether a request
   * may use the page cache at all (a site whose visitors with a session cookie get their own pages,
   * say), `response` policies whether a response may be stored (see `RequestPolicy`,
   * `ResponsePolicy`); a refusal goes out as BYPASS with its reason. @default none
   */
  policies?: { request?: readonly RequestPolicy[]; response?: readonly ResponsePolicy[] };
  /**
   * The key that signs the holes' ESI URLs: the same in every process, and given to `holeHandler`
   * too. @default a random key of this process's own, which suits a site of one process
   */
  secret?: string;
  /**
   * Stores each page once, with its gzip, and makes its Brotli (quality 11) once, on zlib's
   * threadpool, off the request's path; each hit goes in the coding its `Accept-Encoding` accepts
   * best, with `Vary: Accept-Encoding`. A page with holes keeps its shell deflated in parts and goes
   * out as gzip, its holes joined in for each request. Text only (HTML, CSS, JSON, XML, JavaScript,
   * SVG); a response already encoded, or marked `no-transform`, goes out as it is. Middleware after
   * the page cache sees a request that accepts the identity alone: a compression middleware goes in
   * front of it. `{ encodings, quality }` names the codings and Brotli's quality. @default false
   */
  compress?: boolean | CompressOptions;
}

const isPolicy = (value: unknown) =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as { name?: unknown }).name === 'string' &&
  typeof (value as { check?: unknown }).check === 'function';
const POLICY_LIST = new ValueRule('a list of policies, each { name, check }', (value) => Array.isArray(value) && value.every(isPolicy));
const POLICIES = new ValueRule(
  'an object of policies: { request?, response? }',
  (value) => typeof value === 'object' && value !== null && !Array.isArray(value),
  'be',
  { request: POLICY_LIST, response: POLICY_LIST },
);

const HEADER_NAME_OR_FALSE = new ValueRule('a header name or false', (value) => value === false || (typeof value === 'string' && isHeaderName(value)));
const CACHE_ALIAS_OR_CACHE = new ValueRule(
  'a cache alias or a cache',
  (value) => typeof value === 'string' || (typeof value === 'object' && value !== null && typeof (value as { get?: unknown }).get === 'function'),
);

/** The page cache's options, each with the rule its value keeps: `cacheMiddleware` and its split halves take them all. */
export const PAGE_CACHE_OPTIONS = optionShape<PageCacheOptions>({
  cache: CACHE_ALIAS_OR_CACHE,
  keyPrefix: MUST_BE.string,
  seconds: MUST_BE.seconds,
  statusHeader: HEADER_NAME_OR_FALSE,
  debug: MUST_BE.boolean,
  maxBodyBytes: MUST_BE.nonNegativeInteger,
  staleWhileRevalidate: MUST_BE.nonNegativeNumber,
  staleIfError: MUST_BE.nonNegativeNumber,
  tagHeader: TAG_HEADER_OPTION,
  lock: MUST_BE.boolean,
  lockTimeoutMs: MUST_BE.nonNegativeNumber,
  browserMaxAge: MUST_BE.nonNegativeSeconds,
  holes: HOLE_MODE,
  holesInOrder: new ValueRule('a function (req) => boolean', (value) => typeof value === 'function'),
  policies: POLICIES,
  secret: HOLE_SECRET,
  compress: COMPRESS_OPTION,
});
/** `cachePage` takes its timeout as its first argument, never as `seconds`. */
const { seconds: _seconds, ...CACHE_PAGE_OPTIONS } = PAGE_CACHE_OPTIONS;
export { CACHE_PAGE_OPTIONS };

export const DEFAULT_LOCK_TIMEOUT_MS = 5000;

export class PageLayer {
  /** The cache option as given: an alias (resolved on each request, so a reconfiguration is seen) or a cache. */
  readonly cacheOption: string | BaseCache;
  readonly keyPrefix: string;
  readonly seconds: number;
  readonly browserMaxAge: number | undefined;
  readonly statusHeader: string | false;
  readonly debug: boolean;
  readonly maxBodyBytes: number;
  readonly staleWhileRevalidate: number;
  readonly staleIfError: number;
  /** The tag header the options name, false for none; undefined for those of the cache's edges (see `tagHeadersFor`). */
  readonly tagHeader: TagHeader | false | undefined;
  readonly lock: boolean;
  readonly lockTimeoutMs: number;
  /** The site's own policies, asked after the page cache's (see `PageCacheOptions.policies`). */
  readonly requestPolicies: readonly RequestPolicy[];
  readonly responsePolicies: readonly ResponsePolicy[];
  /** How this layer delivers the holes of the responses it is the outermost layer of. */
  readonly holeDelivery: HoleDelivery;
  /** How this layer compresses the pages it stores and negotiates the coding of its hits (`compress`); undefined: it does neither. */
  readonly compression: PageCompression | undefined;
  /** The mistakes this layer reported (of middleware order, see `SeenAtLookup.mayStore`; a tag header, see `meetCache`): each once. */
  readonly reportedMistakes = new Set<string>();
  /** The keys of the URLs this layer looks up (`urls.keysOf(req)`), and of their variants. */
  readonly urls: UrlKeyring;
  /** The tag header as the options name it (a string), the one form checked against the edges: a format's name is the site's own. */
  private readonly tagHeaderName: string | undefined;
  /** The cache this layer last met whose edges read its tag header: the next request meeting it checks nothing. */
  private checkedCache: BaseCache | undefined;

  /**
   * Until when a page rendered at `now` is kept, stale windows included, as this layer keeps pages
   * by default: a view's own max-age may keep one longer.
   */
  storedExpiryFrom(now: number): number {
    return now + (this.pageTimeout ?? this.seconds) + Math.max(this.staleWhileRevalidate, this.staleIfError);
  }

  /** `pageTimeout` is a route's own timeout (cachePage), which wins over the response's max-age. */
  constructor(
    options: PageCacheOptions,
    readonly pageTimeout: number | null,
    /** The function that made the layer, as its errors name it (`cacheMiddleware`). */
    private readonly what: string,
  ) {
    checkOptions(options, pageTimeout === null ? PAGE_CACHE_OPTIONS : CACHE_PAGE_OPTIONS, what);
    if (pageTimeout !== null) checkValue(pageTimeout, MUST_BE.seconds, what, 'timeout');
    this.cacheOption = options.cache ?? 'default';
    if (typeof this.cacheOption === 'string') caches.checkAlias(this.cacheOption, `${what}: options.cache`);
    this.keyPrefix = options.keyPrefix ?? '';
    this.urls = new UrlKeyring(this.keyPrefix);
    this.seconds = options.seconds ?? DEFAULT_SECONDS;
    this.browserMaxAge = options.browserMaxAge;
    this.statusHeader = options.statusHeader ?? 'X-Cache';
    this.debug = options.debug ?? false;
    this.maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.staleWhileRevalidate = options.staleWhileRevalidate ?? 0;
    this.staleIfError = options.staleIfError ?? 0;
    this.tagHeader = options.tagHeader === undefined ? undefined : tagHeaderOf(options.tagHeader, what);
    this.tagHeaderName = typeof options.tagHeader === 'string' ? options.tagHeader : undefined;
    this.refuseUnreadTagHeader();
    this.lock = options.lock ?? false;
    this.lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
    this.requestPolicies = [...(options.policies?.request ?? [])];
    this.responsePolicies = [...(options.policies?.response ?? [])];
    if (options.holesInOrder !== undefined && options.holes !== 'stream')
      throw new TypeError(`${what}: options.holesInOrder orders streamed holes: give it with holes: 'stream'`);
    this.holeDelivery = new HoleDelivery({ mode: options.holes ?? 'fill', secret: options.secret, holesInOrder: options.holesInOrder }, (what, error) =>
      reportPageFailure(resolveCache(this.cacheOption), what, error),
    );
    this.compression = options.compress === undefined || options.compress === false ? undefined : new PageCompression(options.compress);
    // A deploy that changed a template renews the edge's pages from it as the process starts, not once one is asked for.
    if (typeof this.cacheOption === 'object') compareDeployedTemplates(this.cacheOption);
    else if (caches.purgesEdges(this.cacheOption)) compareDeployedTemplates(caches.get(this.cacheOption));
  }

  /**
   * The representation of a stored page a hit sends to `req`: in the coding it accepts best (see
   * `PageCompression.representation`), except the shell of a page whose holes this layer does not
   * fill: ESI includes, which an ESI processor reads as they are, or left to a layer further out.
   * `headers`: the request's, where the caller has read them already.
   */
  representationOf(page: StoredPage, req: IncomingMessage, res: ServerResponse, headers: IncomingHttpHeaders = req.headers): StoredPage {
    if (this.compression === undefined || (page.holes === true && !this.holeDelivery.fillsHere(req, res))) return page;
    return this.compression.representation(page, req, headers);
  }

  /**
   * Refuses, where the layer is made, a tag header none of its cache's edges read, when the cache is
   * known by now (given as a cache, or an alias `configureCaches` named); else `meetCache` refuses it.
   */
  private refuseUnreadTagHeader(): void {
    if (this.tagHeaderName === undefined) return;
    const cache = this.cacheOption;
    const edges = typeof cache === 'string' ? caches.purgedEdgesOf(cache) : edgesPurgedBy(cache);
    if (edges === undefined) return;
    const refused = unreadTagHeaderError(this.what, this.tagHeaderName, typeof cache === 'string' ? cache : cache.alias, tagHeadersReadBy(edges));
    if (refused !== undefined) throw refused;
  }

  /**
   * The cache a request's page is looked up and stored in (an alias resolved now, so a
   * reconfiguration is seen). Each cache the layer meets has its edges checked against the tag header
   * first: one that none of them reads fails the request with a TypeError saying so (reported once
   * through the cache too), as every request meeting it will, since no purge by tag would reach its pages.
   */
  meetCache(): BaseCache {
    const cache = resolveCache(this.cacheOption);
    if (cache === this.checkedCache) return cache;
    const refused = this.tagHeaderName === undefined ? undefined : unreadTagHeaderError(this.what, this.tagHeaderName, cache.alias, edgeTagHeadersOf(cache));
    if (refused === undefined) {
      this.checkedCache = cache;
      return cache;
    }
    if (!this.reportedMistakes.has('options.tagHeader')) {
      this.reportedMistakes.add('options.tagHeader');
      reportPageFailure(cache, `every request through ${this.what} answers an error`, refused);
    }
    throw refused;
  }

  /** The tag headers a page stored in `cache` goes out with: the option's, else those its edges read. */
  tagHeadersFor(cache: BaseCache): readonly TagHeader[] {
    if (this.tagHeader !== undefined) return this.tagHeader === false ? [] : [this.tagHeader];
    return edgeTagHeaders(edgeTagHeadersOf(cache));
  }

  /** Whether `other` stores where this layer does (the same cache option and prefix): split middleware with the same options meet so. */
  storesWith(other: PageLayer): boolean {
    return other.cacheOption === this.cacheOption && other.keyPrefix === this.keyPrefix;
  }

  /** Marks a response this layer looked up and did not find. */
  markMiss(res: ServerResponse): false {
    if (this.statusHeader !== false) res.setHeader(this.statusHeader, 'MISS');
    return false;
  }

  /** Marks a response that could not be cached, and with `debug` why (one of `storageDecision`'s reasons). */
  markBypass(res: ServerResponse, reason: string): false {
    if (this.statusHeader === false || res.headersSent) return false;
    res.setHeader(this.statusHeader, 'BYPASS');
    this.explain(res, reason);
    return false;
  }

  /** With `debug`, says in `X-Cache-Reason` why the response is labelled as it is. */
  explain(res: ServerResponse, reason: string): void {
    if (this.debug && this.statusHeader !== false && !res.headersSent) res.setHeader(`${this.statusHeader}-Reason`, reason);
  }
}
