/**
 * The update phase (Django's `UpdateCacheMiddleware`): judges the response of a page whose lookup
 * missed and stores it. At the head: whether and how long it may be kept (`storageDecision`), the
 * headers a stored page goes out with (Expires and max-age, its stale windows, its tags for the edge,
 * what the edge needs to tell its variants apart), and the page to store, described before this
 * request's own Vary is made; at the view's end: its body sealed, handed to the requests waiting on
 * its render, and stored, before the end of the response goes out (Django stores, then returns).
 */
import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import { parseHttpDate } from '../headers/conditional.js';
import { type CacheControlDirectives, getMaxAge, patchCacheControl, patchResponseHeaders, patchVaryHeaders } from '../headers/headers.js';
import { headerText, secondsOf, splitHeaderValue } from '../headers/header-values.js';
import { setTagHeader } from './tag-header.js';
import type { StoredPage } from './hit.js';
import { absoluteUrl, learnVariant, requestPath, resolveCache, variantHash, variesOn } from './page-keys.js';
import type { PageLayer } from './page-settings.js';
import type { PageMiss, RenderedPage } from './page-miss.js';
import { countOnce, noteVariant, routeOf } from './page-stats.js';
import { storageDecision, varyOnCredentials } from './policy.js';
import { reportPageFailure } from './page-failures.js';
import { inRequestScope, scopeOf } from '../cacheability/request-scope.js';
import { sealedBody } from '../holes/index.js';
import { cookiesStoodForByVary, foldContexts, varyHeadersOf } from '../cacheability/contexts.js';
import { edgesPurgedBy } from '../edge/cache-edges.js';
import { fitForEdge } from '../edge/edge-contexts.js';
import { limitNginxLifetime } from '../edge/nginx-lifetime.js';
import { cacheForPages } from './cache-for-pages.js';
import { deployedTemplateTags, pageTemplates } from '../digests/index.js';
import { copyWith } from '../store/copies.js';

/** The start of the debug headers' names: the status header's (`X-Cache-Contexts`, `X-Cache-Max-Age`). */
function debugPrefix(layer: PageLayer): string {
  return layer.statusHeader === false ? 'X-Cache' : layer.statusHeader;
}

/** Headers that describe one connection or one sending, never a stored page. */
const NOT_STORED = new Set(['connection', 'keep-alive', 'transfer-encoding', 'date', 'age', 'upgrade', 'trailer']);

/** A page the head of its response said to store: what its store needs once the body is whole. */
export interface PageToStore {
  /** The layer whose settings judged it (the update half's, with the split middleware). */
  layer: PageLayer;
  miss: PageMiss;
  /** The page as the head described it, with all but its body. */
  page: Omit<StoredPage, 'body'>;
  timeout: number;
  stale: StaleWindows;
  /**
   * The Vary value of the response before its contexts' headers were added: the page's key varies on
   * those headers, where a context's own header (the Cookie an application's context is read from)
   * goes downstream only, its value standing for it in the key.
   */
  ownVary: string | undefined;
  /** The contexts the page varies on, folded. */
  contexts: string[];
}

/**
 * Judges the head of the response `miss` is for, by `layer`'s settings, and puts on it the headers
 * it goes out with: answers the page to store, or undefined when none is (a HEAD stores nothing, but
 * gets the headers its GET would get). A response that may not be kept goes out marked BYPASS, and
 * the render it settles shares no page.
 */
export function judgeHead(layer: PageLayer, miss: PageMiss): PageToStore | undefined {
  const { req, res, cache } = miss;
  varyOnCredentials(req, res);
  const contexts = foldContexts(scopeOf(res).cacheability.contexts);
  const ownVary = headerText(res, 'vary');
  // Downstream, a page stored once per theme is still one visitor's to a cache that cannot tell themes apart,
  // save one that tells them apart by the edge's Cachegrain-Context.
  if (contexts.length > 0) patchVaryHeaders(res, varyHeadersOf(contexts));
  const contextCookies = cookiesStoodForByVary(contexts, splitHeaderValue(ownVary));
  const rules = { pageTimeout: layer.pageTimeout, defaultSeconds: layer.seconds, maxBodyBytes: layer.maxBodyBytes };
  const decision = storageDecision(req, res, rules, layer.responsePolicies);
  countOnce(miss, decision.store ? 'miss' : 'bypass', routeOf(req, res));
  if (layer.debug) {
    if (contexts.length > 0) res.setHeader(`${debugPrefix(layer)}-Contexts`, contexts.join(', '));
    res.setHeader(`${debugPrefix(layer)}-Max-Age`, String(decision.store ? decision.timeout : (decision.patchTimeout ?? 0)));
  }
  if (decision.store) {
    const timeout = decision.timeout;
    // Its Expires and its hits' Age are read off one clock, the one its copy expires by.
    const now = cache.now();
    // The browser's lifetime is the site's to choose, within what the page's parts have left.
    patchResponseHeaders(res, Math.min(layer.browserMaxAge ?? timeout, decision.partsMaxAge ?? Infinity), now);
    const stale = staleWindows(layer, res);
    // The caches downstream serve it stale as this one does (RFC 5861), while one refresh runs.
    patchCacheControl(res, staleDirectives(stale));
    const tags = pageTags(miss);
    for (const format of layer.tagHeadersFor(cache)) setTagHeader(res, tags, format);
    limitNginxLifetime(res, tags, edgesPurgedBy(cache));
    // Stored with the Vary any request may get; this one's is made after.
    const page = miss.stores ? copyWith(describePage(layer, req, res, contextCookies), { freshUntil: now + timeout }) : undefined;
    fitForEdge(req, res, contextCookies, edgesPurgedBy(cache));
    return page === undefined ? undefined : { layer, miss, page, timeout, stale, ownVary, contexts };
  }
  layer.markBypass(res, decision.reason);
  // A page that may not be kept goes out with max-age 0, whatever the browser's lifetime would be.
  if (decision.patchTimeout !== undefined)
    patchResponseHeaders(res, decision.patchTimeout <= 0 ? decision.patchTimeout : (layer.browserMaxAge ?? decision.patchTimeout), miss.cache.now());
  fitForEdge(req, res, contextCookies, edgesPurgedBy(cache));
  miss.settle();
  return undefined;
}

/**
 * The view ended with `body` (null: it outgrew the limit): the page is handed to the requests
 * waiting on its render and stored, unless it read what middleware after the lookup set. Answers
 * the store when the end of the response must wait for it.
 */
export function storeOnEnd(toStore: PageToStore, body: Buffer | null): Promise<void> | undefined {
  const { miss, contexts } = toStore;
  const sealed = body === null ? undefined : sealedBody(body);
  if (sealed === undefined || !miss.mayStore(contexts, sealed.holes)) {
    miss.settle();
    return undefined;
  }
  const stored: StoredPage = copyWith(toStore.page, { body: sealed.body });
  if (sealed.holes) stored.holes = true;
  toStore.layer.compression?.compressAtOnce(stored);
  setContentLength(stored.headers, sealed.body.length);
  const varies = variesOn(toStore.ownVary, contexts);
  const rendered: RenderedPage = { page: stored, varies, variant: variantHash(miss.req, varies) };
  miss.settle(rendered);
  // In the request's scope: the store shares the request's cache budget, whoever ends the response.
  const storing = inRequestScope(miss.res, () => storePage(toStore, stored));
  miss.storingWith(storing);
  // Django stores, then returns: the end of the response waits for a store that lands later than now.
  return cacheForPages(miss.cache).answersAtOnce ? undefined : storing;
}

/**
 * The page's tags: those of every fragment rendered into it and those the view added, its `url:`
 * tags, and, where its cache purges edges, its templates' (a deploy that changes one purges them).
 */
function pageTags(miss: PageMiss): string[] {
  const { cacheability } = scopeOf(miss.res);
  return [...new Set([...cacheability.tags, ...miss.urlTags, ...deployedTemplateTags(miss.cache, cacheability.templates)])];
}

/** How long past its timeout a page may be served: while one refresh renders it, and instead of a failed render. */
interface StaleWindows {
  staleWhileRevalidate: number;
  staleIfError: number;
}

/** The longer of the layer's and the view's (its `Cache-Control`) stale windows. */
function staleWindows(layer: PageLayer, res: ServerResponse): StaleWindows {
  const cacheControl = headerText(res, 'cache-control');
  return {
    staleWhileRevalidate: Math.max(layer.staleWhileRevalidate, secondsOf(cacheControl, 'stale-while-revalidate') ?? 0),
    staleIfError: Math.max(layer.staleIfError, secondsOf(cacheControl, 'stale-if-error') ?? 0),
  };
}

/** The stale windows as the directives that say them downstream, in whole seconds, each only where it is open. */
function staleDirectives(windows: StaleWindows): CacheControlDirectives {
  const directives: CacheControlDirectives = {};
  for (const name of ['staleWhileRevalidate', 'staleIfError'] as const) {
    const seconds = Math.floor(windows[name]);
    if (seconds > 0) directives[name] = seconds;
  }
  return directives;
}

/** The status and headers to store, as the view left them (connection headers and the HIT/MISS header left out). */
function describePage(layer: PageLayer, req: IncomingMessage, res: ServerResponse, contextCookies: string[] | undefined): Omit<StoredPage, 'body'> {
  const statusHeader = layer.statusHeader;
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
  page.route = routeOf(req, res);
  if (contextCookies !== undefined) page.contextCookies = contextCookies;
  // With its templates' digests as of its render: a deploy that edits one of them renders it again.
  return Object.assign(page, pageTemplates(scopeOf(res).cacheability.templates));
}

/**
 * Stores a page being sent to its requester, with its tags at the versions read before its render
 * began (its path's), as its view added them (on a server; see `TagsAhead`) or now: an invalidation
 * since its render began drops it. It may be served stale for the longer of the layer's and the
 * view's stale windows.
 */
async function storePage({ layer, miss, timeout, stale, ownVary, contexts }: PageToStore, page: StoredPage): Promise<void> {
  const { req } = miss;
  const { staleWhileRevalidate, staleIfError } = stale;
  const cache = resolveCache(layer.cacheOption);
  try {
    // Down for a while (its breaker open): storing would only fail; the next request renders again.
    if (cache.unreachable) return;
    // What the store owes its tags' versions was begun as the view rendered: it sends nothing before that is done.
    const asOf = miss.tagsAsOf();
    const tagsAsOf = asOf instanceof Promise ? await asOf : asOf;
    // The header list lives as long as the page may be served, stale included.
    const listTimeout = timeout + Math.max(staleWhileRevalidate, staleIfError);
    const learned = await learnVariant(req, { cache, keyPrefix: layer.keyPrefix }, { ownVary, contexts }, { timeout: listTimeout, read: miss.headerList });
    const key = learned.key;
    noteVariant(page.route ?? requestPath(req), [...(learned.varies.contexts ?? []), ...learned.varies.headers], key);
    const stamp = { timeout, tags: pageTags(miss), tagsAsOf, staleWhileRevalidate, staleIfError };
    // The header list and the page go to the store together: one round trip to a server, not two.
    // The store is over once both are, whichever failed.
    const [listed, stored] = await Promise.allSettled([learned.listWritten, cacheForPages(cache).setHeld(key, page, stamp)]);
    for (const outcome of [listed, stored]) if (outcome.status === 'rejected') throw outcome.reason;
    // Compressed behind, and written again as of the same render (see page-compression.ts).
    layer.compression?.compressBehind(cache, { key, page, ...stamp }, (error) =>
      reportPageFailure(cache, `compressing the page ${absoluteUrl(req)} failed`, error),
    );
  } catch (error) {
    // The response goes out all the same; a failed store only costs the next request a miss.
    reportPageFailure(cache, `storing the page ${absoluteUrl(req)} failed`, error);
  }
}

/** Sets the Content-Length among stored headers (name, value, …) to `length`. */
function setContentLength(headers: string[], length: number): void {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.toLowerCase() === 'content-length') {
      headers[i + 1] = String(length);
      return;
    }
  }
  headers.push('Content-Length', String(length));
}
