/**
 * The page cache's response phase (Django's `UpdateCacheMiddleware`): judges the response its request
 * phase let through, describes what to store, hands the page to the requests waiting on its render,
 * and stores it before the end of the response goes out. The surprise: a render that fails while a
 * page inside its `staleIfError` window is stored sends that page instead, decided at the head.
 */
import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import { HOLD_BODY, KEEP_BODY, PASS_BODY, teeResponse } from './capture.js';
import { parseHttpDate } from './conditional.js';
import {
  type CacheControlDirectives,
  getMaxAge,
  headerText,
  patchCacheControl,
  patchResponseHeaders,
  patchVaryHeaders,
  secondsOf,
  splitHeaderValue,
} from './headers.js';
import { setTagHeader } from './tag-header.js';
import { hitHeaders, putHeaders, type StoredPage } from './hit.js';
import { absoluteUrl, learnVariant, type PageVariance, requestPath, resolveCache, variantHash, variesOn } from './keys.js';
import type { PageLayer } from './layer.js';
import { PageRequest, type RenderedPage } from './page-request.js';
import { countOnce, noteVariant, routeOf } from './page-stats.js';
import { storageDecision, varyOnCredentials } from './policy.js';
import { reportPageFailure } from './report.js';
import { inRequestScope, scopeOf } from '../cacheability/scope.js';
import { sealedBody, unsealedBody } from './holes.js';
import { cookiesStoodForByVary, foldContexts, varyHeadersOf } from '../cacheability/contexts.js';
import { fitForEdge } from '../edge/context.js';
import { limitNginxLifetime } from '../edge/nginx-lifetime.js';
import { pageTemplates } from '../digests/index.js';

/** The start of the debug headers' names: the status header's (`X-Cache-Contexts`, `X-Cache-Max-Age`). */
function debugPrefix(layer: PageLayer): string {
  return layer.statusHeader === false ? 'X-Cache' : layer.statusHeader;
}

/** Headers that describe one connection or one sending, never a stored page. */
const NOT_STORED = new Set(['connection', 'keep-alive', 'transfer-encoding', 'date', 'age', 'upgrade', 'trailer']);

/**
 * Watches the response for `layer`: stores it if a lookup of the layer's store missed for the request
 * (found when the head goes out, so this may be installed before the lookup runs) and the rules allow,
 * before the end of the response goes out. The outermost layer a response passes delivers its
 * holes: it holds the body back and sends it filled, while each layer stores the page with its holes'
 * placeholders.
 */
export function captureResponse(layer: PageLayer, req: IncomingMessage, res: ServerResponse): void {
  let lookup: PageRequest | undefined;
  let timeout = 0;
  /** The contexts the page varies on, folded, once its head is judged. */
  let contexts: string[] = [];
  /**
   * The Vary value of the response before its contexts' headers were added: the page's key varies on
   * those headers, where a context's own header (the Cookie an application's context is read from)
   * goes downstream only, its value standing for it in the key.
   */
  let ownVary: string | undefined;
  let stale: StaleWindows = NOT_STALE;
  let page: Omit<StoredPage, 'body'> | undefined;
  /** A stored page with holes, sent instead of a failed render (see `replaceWithFallback`). */
  let fallbackBody: Buffer | undefined;
  const scope = scopeOf(res);
  scope.holesDeliveredBy ??= layer;
  const holds = () => scope.holesLeft && scope.holesDeliveredBy === layer;
  const missed = () => (lookup ??= PageRequest.missedIn(res, layer));
  teeResponse(res, layer.maxBodyBytes, {
    mayReplace: () => holds() || missed()?.fallback !== undefined,
    head: () => {
      const hold = holds() ? HOLD_BODY : PASS_BODY;
      const lookup = missed();
      if (lookup === undefined) return hold;
      if (lookup.fallback !== undefined && res.statusCode >= 500) {
        const body = replaceWithFallback(layer, lookup, lookup.fallback);
        if (lookup.fallback.holes !== true) return { kind: 'replace', body };
        if (scope.holesDeliveredBy !== layer) {
          scope.holesLeft = true;
          return { kind: 'replace', body: unsealedBody(body) };
        }
        // Its holes are filled for this request before it goes out.
        fallbackBody = body;
        return HOLD_BODY;
      }
      varyOnCredentials(req, res);
      contexts = foldContexts(scope.cacheability.contexts);
      ownVary = headerText(res, 'vary');
      // Downstream, a page stored once per theme is still one visitor's to a cache that cannot tell themes apart,
      // save one that tells them apart by the edge's Cachegrain-Context.
      if (contexts.length > 0) patchVaryHeaders(res, varyHeadersOf(contexts));
      const contextCookies = cookiesStoodForByVary(contexts, splitHeaderValue(ownVary));
      const decision = storageDecision(req, res, { pageTimeout: layer.pageTimeout, defaultSeconds: layer.seconds, maxBodyBytes: layer.maxBodyBytes });
      countOnce(lookup, decision.store ? 'miss' : 'bypass', routeOf(req, res));
      if (layer.debug) {
        if (contexts.length > 0) res.setHeader(`${debugPrefix(layer)}-Contexts`, contexts.join(', '));
        res.setHeader(`${debugPrefix(layer)}-Max-Age`, String(decision.store ? decision.timeout : (decision.patchTimeout ?? 0)));
      }
      if (decision.store) {
        timeout = decision.timeout;
        // Its Expires and its hits' Age are read off one clock, the one its copy expires by.
        const now = lookup.cache.now();
        // The browser's lifetime is the site's to choose, within what the page's parts have left.
        patchResponseHeaders(res, Math.min(layer.browserMaxAge ?? timeout, decision.partsMaxAge ?? Infinity), now);
        stale = staleWindows(layer, res);
        // The caches downstream serve it stale as this one does (RFC 5861), while one refresh runs.
        patchCacheControl(res, staleDirectives(stale));
        const tags = pageTags(res, lookup);
        for (const format of layer.tagHeadersFor(lookup.cache)) setTagHeader(res, tags, format);
        limitNginxLifetime(res, tags, lookup.cache.purgedEdges);
        // Stored with the Vary any request may get; this one's is made after.
        if (lookup.stores) page = { ...describePage(layer, req, res, contextCookies), freshUntil: now + timeout };
        fitForEdge(req, res, contextCookies, lookup.cache.purgedEdges);
        return hold === HOLD_BODY || !lookup.stores ? hold : KEEP_BODY;
      }
      layer.markBypass(res, decision.reason);
      // A page that may not be kept goes out with max-age 0, whatever the browser's lifetime would be.
      if (decision.patchTimeout !== undefined)
        patchResponseHeaders(res, decision.patchTimeout <= 0 ? decision.patchTimeout : (layer.browserMaxAge ?? decision.patchTimeout));
      fitForEdge(req, res, contextCookies, lookup.cache.purgedEdges);
      lookup.settle();
      return hold;
    },
    done: (body) => {
      if (lookup === undefined || page === undefined) return;
      if (body === null) return lookup.settle();
      const sealed = sealedBody(body);
      if (!lookup.mayStore(contexts, sealed.holes)) return lookup.settle();
      const stored: StoredPage = { ...page, body: sealed.body };
      if (sealed.holes) stored.holes = true;
      setContentLength(stored.headers, sealed.body.length);
      const varies = variesOn(ownVary, contexts);
      const rendered: RenderedPage = { page: stored, varies, variant: variantHash(req, varies) };
      lookup.settle(rendered);
      const request = lookup;
      // In the request's scope: the store shares the request's cache budget, whoever ends the response.
      const storing = inRequestScope(res, () => storePage(layer, request, { page: stored, timeout, stale }, { ownVary, contexts }));
      lookup.storingWith(storing);
      // Django stores, then returns: the end of the response waits for a store that lands later than now.
      return lookup.cache.writesLandAtOnce ? undefined : storing;
    },
    send: (body) => layer.holeDelivery.bodyFor(req, res, fallbackBody ?? body, fallbackBody === undefined ? 'live' : 'sealed'),
  });
}

/** The page's tags: those of every fragment rendered into it and those the view added, and its `url:` tags. */
function pageTags(res: ServerResponse, lookup: PageRequest): string[] {
  return [...new Set([...scopeOf(res).cacheability.tags, ...lookup.urlTags])];
}

/** How long past its timeout a page may be served: while one refresh renders it, and instead of a failed render. */
interface StaleWindows {
  staleWhileRevalidate: number;
  staleIfError: number;
}
const NOT_STALE: StaleWindows = { staleWhileRevalidate: 0, staleIfError: 0 };

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

/**
 * A render that failed (an error page, 5xx) while a page inside its `staleIfError` window is
 * stored: that page goes out instead, marked STALE, and the failure is reported. Answers its body;
 * the head is on the response.
 */
function replaceWithFallback(layer: PageLayer, lookup: PageRequest, fallback: StoredPage): Buffer {
  const { req, res } = lookup;
  reportPageFailure(resolveCache(layer.cacheOption), `the view for ${absoluteUrl(req)} answered ${res.statusCode}; the stale page was sent instead`);
  lookup.settle();
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  res.statusCode = fallback.status;
  res.statusMessage = fallback.statusMessage;
  putHeaders(res, hitHeaders(fallback, 'STALE', layer.statusHeader, lookup.cache.now()));
  fitForEdge(req, res, fallback.contextCookies, lookup.cache.purgedEdges);
  return fallback.body;
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

/** A page to store, for `timeout` seconds and then its stale windows. */
interface PageToStore {
  page: StoredPage;
  timeout: number;
  stale: StaleWindows;
}

/**
 * Stores a page being sent to its requester, with its tags at the versions read
 * before its render began (its path's) or now (its fragments'): an invalidation since then drops
 * it. It may be served stale for the longer of the layer's and the view's stale windows.
 */
async function storePage(layer: PageLayer, lookup: PageRequest, { page, timeout, stale }: PageToStore, variance: PageVariance): Promise<void> {
  const { staleWhileRevalidate, staleIfError } = stale;
  const { req, res } = lookup;
  const cache = resolveCache(layer.cacheOption);
  try {
    // Down for a while (its breaker open): storing would only fail; the next request renders again.
    if (cache.unreachable) return;
    // The header list lives as long as the page may be served, stale included.
    const listTimeout = timeout + Math.max(staleWhileRevalidate, staleIfError);
    const learned = await learnVariant(req, { cache, keyPrefix: layer.keyPrefix }, variance, listTimeout);
    const key = learned.key;
    noteVariant(page.route ?? requestPath(req), [...(learned.varies.contexts ?? []), ...learned.varies.headers], key);
    await cache.set(key, page, { timeout, tags: pageTags(res, lookup), tagsAsOf: lookup.snapshot, staleWhileRevalidate, staleIfError });
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
