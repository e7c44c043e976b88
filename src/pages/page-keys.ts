/**
 * Page keys (Django's `learn_cache_key`/`get_cache_key`): the URL as the application sees
 * it, plus the request's values for the headers the response varies on, learned per URL and kept in
 * the cache. Invalidation needs no list of variants: each stored page carries the tags `url:<path>`
 * and `url://<host><path>`, and `invalidatePage` invalidates one of them, so every page stored before it reads as a miss,
 * whichever process stored it and however concurrently. An absent header and an empty one hash
 * differently (each value is framed).
 */
import type { IncomingMessage, OutgoingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { BaseCache } from '../cache/base-cache.js';
import { cacheForPages } from './cache-for-pages.js';
import { caches } from '../config/cache-registry.js';
import { md5 as md5Hex, rememberingMd5 } from '../keys/hash.js';
import { checkOptions, optionShape } from '../options/option-rules.js';
import { describe } from '../errors/errors.js';
import { type EdgeWaitOptions, WAIT_FOR_EDGES } from '../store/cache-types.js';
import { lastsUntil } from '../store/call-options.js';
import { scopeOf } from '../cacheability/request-scope.js';
import { contextList, foldContexts, framedContextValue, framedContextValues, isCookieContext } from '../cacheability/contexts.js';
import { headerText, splitHeaderValue } from '../headers/header-values.js';
import { copyWith } from '../store/copies.js';

const PAGE_KEY = 'views.decorators.cache.cache_page';
const HEADER_KEY = 'views.decorators.cache.cache_header';
/** The hash of no values: the variant of a URL whose pages vary on nothing. */
export const EMPTY_MD5 = 'd41d8cd98f00b204e9800998ecf8427e';

/** What the cache holds under a URL's header key. */
export interface LearnedHeaders {
  /** The request headers the page varies on: lower-cased, sorted. */
  headers: string[];
  /**
   * The cache contexts its pages varied on: folded, sorted. Absent for a URL whose pages
   * vary on none, whose keys are then Django's.
   */
  contexts?: string[];
  /**
   * When the list expires (epoch seconds by the cache's clock; null: never): it is rewritten when a
   * variant is stored that outlives it. Absent from lists stored by earlier versions.
   */
  until?: number | null;
}

/** Where page keys live: a cache (an alias or an instance) and a key prefix. */
export interface PageKeyOptions {
  /** The cache alias, or a cache. @default 'default' */
  cache?: string | BaseCache;
  /** Inserted into every page key. @default '' */
  keyPrefix?: string;
}

/**
 * Where `invalidatePage` drops pages: a cache (its tags name a URL whatever the key prefix, so it takes
 * none); and whether it waits for the edges in front to take the purge.
 */
export type InvalidatePageOptions = Pick<PageKeyOptions, 'cache'> & EdgeWaitOptions;

const PAGE_KEY_OPTIONS = optionShape<PageKeyOptions>({ cache: true, keyPrefix: true });
const INVALIDATE_PAGE_OPTIONS = optionShape<InvalidatePageOptions>({ cache: true, waitForEdges: WAIT_FOR_EDGES });
const GET_CACHE_KEY_OPTIONS = optionShape<PageKeyOptions & { method?: string }>({ ...PAGE_KEY_OPTIONS, method: true });
const LEARN_CACHE_KEY_OPTIONS = optionShape<PageKeyOptions & { timeout?: number | null }>({ ...PAGE_KEY_OPTIONS, timeout: true });

/** Express's request additions, when there are any. */
interface ExpressRequest extends IncomingMessage {
  originalUrl?: string;
  protocol?: string;
  app?: { get(setting: string): unknown };
}

/** md5 hex of a URL or other repeating text (remembered: a site hashes the same URLs over and over). */
export const md5 = rememberingMd5();

/** How many variants' hashes are remembered, and the longest variant remembered. */
export const VARIANTS_REMEMBERED = 10_000;
export const REMEMBERED_VARIANT_LENGTH = 256;

export function resolveCache(cache: string | BaseCache | undefined): BaseCache {
  return typeof cache === 'object' && cache !== null ? cache : caches.get(cache ?? 'default');
}

/**
 * The absolute URL as the application sees it: Express's scheme and host (honouring `trust proxy`),
 * or the socket's scheme and the Host header on a bare server; path and query as sent.
 */
export function absoluteUrl(req: IncomingMessage): string {
  const request = req as ExpressRequest;
  // Express's scheme differs from the socket's only by a trusted X-Forwarded-Proto; its getter costs
  // a hit more than the rest of the lookup, so it is asked only when there is such a header.
  const protocol =
    req.headers['x-forwarded-proto'] !== undefined && typeof request.protocol === 'string'
      ? request.protocol
      : (req.socket as TLSSocket).encrypted
        ? 'https'
        : 'http';
  return `${protocol}://${requestHost(request)}${request.originalUrl ?? req.url ?? '/'}`;
}

function requestHost(req: ExpressRequest): string {
  const forwarded = req.headers['x-forwarded-host'];
  if (forwarded !== undefined && req.app !== undefined) {
    const trust = req.app.get('trust proxy fn');
    if (typeof trust === 'function' && trust(req.socket.remoteAddress, 0)) return String(forwarded).split(',')[0]!.trim();
  }
  return req.headers.host ?? '';
}

/** The header key of a URL: `views.decorators.cache.cache_header.<prefix>.<md5 url>`. */
export function headerKeyFor(keyPrefix: string, urlHash: string): string {
  return `${HEADER_KEY}.${keyPrefix}.${urlHash}`;
}

/** The tag every stored page of a path carries, whatever its host: `url:<path>`. */
export function urlTag(path: string): string {
  return `url:${path}`;
}

/** The tag every stored page of a path on one host carries: `url://<host><path>` (any scheme). */
export function hostUrlTag(host: string, path: string): string {
  return `url://${host}${path}`;
}

/**
 * The host of a request's absolute URL as `new URL` spells it (lower case, no default port), so that
 * the host of `invalidatePage('https://Shop.example:443/news')` names the same pages.
 */
export function requestHostname(req: IncomingMessage): string {
  const url = absoluteUrl(req);
  try {
    return new URL(url).host;
  } catch {
    return requestHost(req as ExpressRequest).toLowerCase();
  }
}

/**
 * Adds tags to the page being rendered for `res`: the page cache stores the page with
 * them, beside the tags of the fragments rendered into it, so `invalidateTags` of any of them drops it.
 */
export function addCacheTags(res: ServerResponse, ...tags: string[]): void {
  for (const tag of tags) {
    if (typeof tag !== 'string' || tag === '') throw new TypeError(`addCacheTags: tags must be non-empty strings (got ${describe(tag)})`);
  }
  checkResponse(res, 'addCacheTags');
  scopeOf(res).cacheability.addTags(tags);
}

/** Refuses a first argument that is not the response being rendered: its record would be nobody's. */
function checkResponse(res: unknown, caller: string): void {
  if (typeof (res as Partial<ServerResponse> | null)?.setHeader !== 'function') {
    throw new TypeError(`${caller}: the first argument is the response of the page being rendered (got ${describe(res)})`);
  }
}

/**
 * Adds cache contexts to the page being rendered for `res`: the page cache stores one page
 * per value of them (`cookie:theme`: one per theme), beside the contexts of its fragments.
 */
export function addCacheContexts(res: ServerResponse, ...contexts: string[]): void {
  const checked = contextList(contexts, 'addCacheContexts');
  checkResponse(res, 'addCacheContexts');
  scopeOf(res).cacheability.addContexts(checked);
}

/**
 * Makes the page being rendered for `res` uncacheable: it is not stored, goes out with
 * `X-Cache: BYPASS` and `max-age=0`, and with `debug: true` `X-Cache-Reason` says `why`.
 */
export function markUncacheable(res: ServerResponse, why: string): void {
  if (typeof why !== 'string' || why === '') throw new TypeError(`markUncacheable: say why, as a non-empty string (got ${describe(why)})`);
  checkResponse(res, 'markUncacheable');
  scopeOf(res).cacheability.markUncacheable(why);
}

/** The path of a request's URL, without the query: what a page's `url:` tag and `invalidatePage` name. */
export function requestPath(req: IncomingMessage): string {
  const url = (req as ExpressRequest).originalUrl ?? req.url ?? '/';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/** The page key of a variant: `views.decorators.cache.cache_page.<prefix>.<METHOD>.<md5 url>.<md5 header values>`. */
export function pageKeyFor(keyPrefix: string, method: string, urlHash: string, headersHash: string): string {
  return `${PAGE_KEY}.${keyPrefix}.${method}.${urlHash}.${headersHash}`;
}

/** The md5 of the request's values for the headers: each present one as `=value\n`, an absent one as `\n`. */
export function headerValuesHash(req: IncomingMessage, headers: readonly string[]): string {
  if (headers.length === 0) return EMPTY_MD5;
  return variantMd5(framedHeaderValues(req, headers));
}

/**
 * The variant values a site's visitors send repeat (a few languages, themes, roles): their hashes
 * are remembered, each hit's variant then costs a lookup. Long ones (a whole Cookie header) are one
 * visitor's and are hashed each time, so that the memo stays small.
 */
const rememberedVariantMd5 = rememberingMd5(VARIANTS_REMEMBERED);
function variantMd5(framed: string): string {
  return framed.length <= REMEMBERED_VARIANT_LENGTH ? rememberedVariantMd5(framed) : md5Hex(framed);
}

function framedHeaderValues(req: IncomingMessage, headers: readonly string[]): string {
  let framed = '';
  for (const name of headers) framed += framedHeaderValue(requestHeaderValue(req, name));
  return framed;
}

const framedHeaderValue = (value: string | undefined): string => (value === undefined ? '\n' : `=${value}\n`);

/** The request's value of a header a page varies on, its repeated lines joined as Node joins them. */
export function requestHeaderValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/**
 * `variantHash` from the request's values already read: those of `learned.headers`, then those of
 * its contexts, in their order.
 */
export function variantHashOf(learned: { headers: readonly string[]; contexts?: readonly string[] }, values: readonly (string | undefined)[]): string {
  const { headers } = learned;
  const contexts = learned.contexts ?? [];
  if (headers.length === 0 && contexts.length === 0) return EMPTY_MD5;
  let framed = '';
  for (let i = 0; i < headers.length; i++) framed += framedHeaderValue(values[i]);
  for (let i = 0; i < contexts.length; i++) framed += framedContextValue(contexts[i]!, values[headers.length + i]);
  return variantMd5(framed);
}

/**
 * The hash of the request's variant of a URL: of its values of the headers and contexts the URL's
 * pages vary on. Without contexts it is Django's `headerValuesHash`; with them, the framed context
 * values (which begin with a character no header's framing begins with) follow the headers'.
 */
export function variantHash(req: IncomingMessage, learned: { headers: readonly string[]; contexts?: readonly string[] }): string {
  const contexts = learned.contexts;
  if (contexts === undefined || contexts.length === 0) return headerValuesHash(req, learned.headers);
  return variantMd5(framedHeaderValues(req, learned.headers) + framedContextValues(contexts, req));
}

/**
 * What a page with the Vary value `varyValue` and the (folded) `contexts` varies on: the Vary list,
 * less the Cookie header where cookie contexts name the cookies the page depends on, and the contexts.
 */
export function variesOn(varyValue: string | undefined, contexts: readonly string[]): LearnedHeaders {
  const namesCookies = contexts.some(isCookieContext);
  const headers = varyHeaderList(varyValue).filter((header) => !(namesCookies && header === 'cookie'));
  return contexts.length === 0 ? { headers } : { headers, contexts: [...contexts] };
}

/** Whether a URL's pages vary on nothing of the request. */
export function variesOnNothing(learned: LearnedHeaders): boolean {
  return learned.headers.length === 0 && (learned.contexts === undefined || learned.contexts.length === 0);
}

/** The request headers a Vary value names: lower-cased, sorted, once each. */
export function varyHeaderList(varyValue: string | undefined): string[] {
  return [...new Set(splitHeaderValue(varyValue).map((name) => name.toLowerCase()))].sort();
}

/**
 * The page key for a request if its URL's header list has been learned, else null. `method` picks
 * the stored GET or HEAD response.
 */
export async function getCacheKey(req: IncomingMessage, options: PageKeyOptions & { method?: string } = {}): Promise<string | null> {
  checkOptions(options, GET_CACHE_KEY_OPTIONS, 'getCacheKey');
  const keyPrefix = options.keyPrefix ?? '';
  const urlHash = md5(absoluteUrl(req));
  const learned = await resolveCache(options.cache).get<LearnedHeaders>(headerKeyFor(keyPrefix, urlHash));
  if (learned === undefined) return null;
  return pageKeyFor(keyPrefix, options.method ?? 'GET', urlHash, variantHash(req, learned));
}

/**
 * Learns the headers the response varies on for the request's URL (stored for `timeout` seconds,
 * the cache's default when omitted) and returns the page key for the request's method.
 */
export async function learnCacheKey(
  req: IncomingMessage,
  res: Pick<OutgoingMessage, 'getHeader'>,
  options: PageKeyOptions & { timeout?: number | null } = {},
): Promise<string> {
  checkOptions(options, LEARN_CACHE_KEY_OPTIONS, 'learnCacheKey');
  const cache = resolveCache(options.cache);
  const learned = await learnVariant(
    req,
    { cache, keyPrefix: options.keyPrefix ?? '' },
    { ownVary: headerText(res, 'vary'), contexts: [] },
    { timeout: options.timeout },
  );
  await learned.listWritten;
  return learned.key;
}

/** Where a layer keeps its pages: its cache, and the prefix of its keys. */
export interface PagesKept {
  readonly cache: BaseCache;
  readonly keyPrefix: string;
}

/**
 * What a response's page varies on: the Vary value the view left (before its contexts' headers were
 * added), and its cache contexts, folded.
 */
export interface PageVariance {
  readonly ownVary: string | undefined;
  readonly contexts: readonly string[];
}

/**
 * A URL's header list as a lookup read it (undefined: it had none), under its key: the store of the
 * page that lookup missed need not read it again.
 */
export interface HeaderListRead {
  readonly key: string;
  readonly learned: LearnedHeaders | undefined;
}

/** A variant of a URL as a store learned it: its page key, and the write of the URL's header list it needed, under way (none: the list stood). */
export interface LearnedVariant {
  key: string;
  varies: LearnedHeaders;
  variant: string;
  listWritten: Promise<void> | undefined;
}

/**
 * Records the headers and cache contexts the request's URL's responses vary on, for at least `timeout` seconds
 * (the cache's default when undefined; a quarter more when it is written), and answers the page key
 * for the request's method and its values of those headers and contexts, with the write of the list
 * under way: a store of the page sends both together. Headers are the response's
 * Vary list (Django's rule: the list as the latest response gives it) as the view left it, before
 * its contexts' headers were added for downstream caches (their values stand for those headers),
 * save the Cookie header when cookie contexts name the cookies the page depends on; contexts are learned for good: those known
 * stay beside those the response adds, as a page's contexts are known only once it rendered. The
 * list is rewritten only when it changes or a variant stored now would outlive it: every variant
 * stays reachable as long as it lives. The list known is the one `read` at lookup when it is this
 * URL's, else it is read now.
 */
export async function learnVariant(
  req: IncomingMessage,
  { cache, keyPrefix }: PagesKept,
  { ownVary, contexts }: PageVariance,
  { timeout, read }: { timeout: number | null | undefined; read?: HeaderListRead },
): Promise<LearnedVariant> {
  const urlHash = md5(absoluteUrl(req));
  const headerKey = headerKeyFor(keyPrefix, urlHash);
  // A lookup of the page cache's own, not the application's: counted by the cache, published as no `get`.
  const known = read?.key === headerKey ? read.learned : await cacheForPages(cache).readShared<LearnedHeaders>(headerKey);
  const allContexts = foldContexts([...(known?.contexts ?? []), ...contexts]);
  const learned = variesOn(ownVary, allContexts);
  const { headers } = learned;
  const lifetime = timeout === undefined ? cache.defaultTimeout : timeout;
  const needed = lifetime === null ? null : cache.now() + lifetime;
  // A list of other headers or contexts is replaced whatever its expiry: the variants stored under it are out of reach now.
  const same = known !== undefined && known.headers.join(',') === headers.join(',') && (known.contexts ?? []).join(',') === allContexts.join(',');
  let listWritten: Promise<void> | undefined;
  if (!lastsUntil(same ? known.until : undefined, needed)) {
    // A quarter longer than needed, so that the variants stored after this one rewrite it once in that long, not each time.
    const kept = lifetime === null || lifetime <= 0 ? lifetime : Math.ceil(lifetime * 1.25);
    listWritten = cacheForPages(cache).setHeld(
      headerKey,
      copyWith(learned, { until: kept === null ? null : cache.now() + kept }) satisfies LearnedHeaders,
      kept,
    );
  }
  const variant = variantHash(req, learned);
  return { key: pageKeyFor(keyPrefix, req.method ?? 'GET', urlHash, variant), varies: learned, variant, listWritten };
}

/**
 * Drops cached pages of a URL, whatever their query and variant, in every process that shares the
 * cache: `url` is a path (`/news`: the page of every host) or an absolute URL (that host's page only;
 * its query is ignored). It is `invalidateTags(['url:<path>'])` on the cache, or for an absolute URL
 * `invalidateTags(['url://<host><path>'])`: nothing is listed or scanned, and the pages stored before
 * it are misses from now on (they expire on their own). Resolves, with nothing, when done; with
 * `waitForEdges`, once the edges in front took the purge too.
 */
export async function invalidatePage(url: string | URL, options: InvalidatePageOptions = {}): Promise<void> {
  checkOptions(options, INVALIDATE_PAGE_OPTIONS, 'invalidatePage');
  const text = typeof url === 'string' ? url : url.href;
  let tag: string;
  if (text.startsWith('/')) tag = urlTag(text.split('?')[0]!);
  else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    const parsed = new URL(text);
    tag = hostUrlTag(parsed.host, parsed.pathname);
  } else throw new TypeError(`invalidatePage: url must be a path such as '/news' or an absolute URL such as 'https://example.com/news' (got '${text}')`);
  await resolveCache(options.cache).invalidateTags([tag], { waitForEdges: options.waitForEdges });
}
