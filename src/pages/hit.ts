/**
 * A stored page and how a hit sends it: its stored headers with Age and the HIT (or STALE) header
 * added, or a 304/412 when the request's preconditions say so (RFC 9110 §13). The surprise: the
 * headers go on the response before `writeHead`, so the layers around the page cache change a HIT as
 * they changed the MISS that stored it.
 */
import type { INTEGRATION } from '../cache/integration.js';
import { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import { hasPreconditions, NOT_MODIFIED_HEADERS, preconditionStatus } from '../headers/conditional.js';
import { httpDate, mergeCacheControl } from '../headers/headers.js';
import type { BaseCache } from '../cache/base-cache.js';
import type { PageLayer } from './page-settings.js';
import { requestPath } from './page-keys.js';
import { countOnce } from './page-stats.js';
import { edgesPurgedBy } from '../edge/cache-edges.js';
import { EDGE_CONTEXT_HEADER, fitForEdge } from '../edge/edge-contexts.js';
import type { StoredPage } from './stored-page.js';

export type { StoredPage };

/** The request header an edge names its contexts in, as Node lower-cases it: a hit that carries it is fitted for the edge. */
const EDGE_CONTEXT_HEADER_NAME = EDGE_CONTEXT_HEADER.toLowerCase();

/**
 * How a sent page is labelled (the status header) and counted: found fresh, found stale, or a MISS
 * that took the page of another request's render (nothing came from the cache).
 */
export type HitLabel = 'HIT' | 'STALE' | 'MISS';

/** What `pageStats()` and the page channel count a page sent with each label as. */
const COUNTED_AS = { HIT: 'hit', STALE: 'stale', MISS: 'miss' } as const satisfies Record<HitLabel, 'hit' | 'stale' | 'miss'>;

/** The headers a 304 from the cache sends: those of the stored page RFC 9110 keeps, and the cache's own. */
const KEPT_BY_NOT_MODIFIED = new Set([...NOT_MODIFIED_HEADERS, 'age']);

/**
 * A page's headers as a hit sends them, kept on the decoded page (never stored: the key is a symbol).
 * `distinctNames`: no name is listed twice, so each header can replace its name's in one call.
 */
const HIT_HEADERS = Symbol('cachegrain.hitHeaders');
interface HitHeaders {
  statusHeader: string | false;
  headers: string[];
  /** Where the values of Age, Expires and Cache-Control are in `headers` (-1: none), rewritten for each hit. */
  ageAt: number;
  expiresAt: number;
  cacheControlAt: number;
  distinctNames: boolean;
  /** Whether its view encoded the page (a Content-Encoding not of its representation's own): its holes cannot be filled into it. */
  encodedByView: boolean;
  /** Where the names of the headers a 304 sends are in `headers`. */
  keptByNotModified: number[];
  /** The headers of a 304, filled from `headers` for each one sent (see `labelled`). */
  notModified: string[];
}
type PageWithHitHeaders = StoredPage & { [HIT_HEADERS]?: HitHeaders };

/**
 * The request a hit answers, with the page cache layer and the cache that found its page. Its method
 * and headers as read once: a framework that re-prototypes its requests (Express) makes every read
 * of a request's property cost more.
 */
export interface HitRequest {
  req: IncomingMessage;
  res: ServerResponse;
  method: string;
  headers: IncomingHttpHeaders;
  layer: Pick<PageLayer, 'statusHeader' | 'holeDelivery'>;
  cache: Pick<BaseCache, 'now' | 'alias' | typeof INTEGRATION>;
}

/**
 * Sends a stored page: no view runs; Age and the HIT (or STALE) header are the only additions (and a
 * copy older than its browser lifetime gets that lifetime anew, see `browserLifetime`), and a page
 * with holes gets them delivered by the layer's delivery. Its clock is the cache's.
 */
export function sendStoredPage(request: HitRequest, page: StoredPage, label: HitLabel): void {
  const { req, res, method, headers: requestHeaders } = request;
  const { statusHeader, holeDelivery: holes } = request.layer;
  const now = request.cache.now();
  countOnce(request, COUNTED_AS[label], page.route ?? requestPath(req));
  let status = page.status;
  const hit = hitHeadersOf(page, statusHeader);
  let headers = labelled(hit, page, label, now);
  // A page whose holes are delivered goes out with validators of what the visitor gets, or none: never its shell's.
  const judgedDelivered = page.holes === true && holes !== undefined;
  if ((page.etag !== undefined || page.lastModified !== undefined) && !judgedDelivered && hasPreconditions(requestHeaders)) {
    status = preconditionStatus(method, requestHeaders, page);
    if (status === 304) headers = notModified(headers, hit);
    else if (status !== 200) headers = headers.slice(page.headers.length);
  }
  // Always a reason phrase: some wrappers of writeHead (on-headers) lose the headers after an undefined one.
  const statusMessage = status === page.status ? page.statusMessage : (STATUS_CODES[status] ?? '');
  const body = status === 200 ? page.body : undefined;
  const delivered = judgedDelivered && status !== 304;
  const throughEdge = requestHeaders[EDGE_CONTEXT_HEADER_NAME] !== undefined;
  if (!delivered && !throughEdge && res.getHeaderNames().length === 0 && !watchesHeaders(res)) {
    // Nothing on the response yet, no layer watching the headers go out, none owed to the edge: they go
    // straight to writeHead, as a server sends prebuilt headers. (Onto headers set before, writeHead's own
    // merge would remove and append each one: putHeaders sets each once.)
    res.writeHead(status, statusMessage, headers);
    res.end(method === 'HEAD' ? undefined : body);
    return;
  }
  const plan = delivered && !throughEdge && !hit.encodedByView ? holes.prebuiltPlan(req, res, page, requestHeaders) : undefined;
  if (plan !== undefined) {
    // A filled page's headers are made anew for each hit, then go out in one step: straight to writeHead
    // when nothing watches it (whatever its merge costs onto a framework's own, Express's X-Powered-By),
    // else onto the response before it, as a hit's are.
    const watched = watchesHeaders(res);
    return holes.sendPrebuilt(
      req,
      res,
      { page, plan },
      {
        headers,
        bodyless: method === 'HEAD',
        send(filled) {
          if (!watched) return void res.writeHead(status, statusMessage, filled);
          putHeaders(res, filled, hit.distinctNames);
          res.writeHead(status, statusMessage);
        },
      },
    );
  }
  putHeaders(res, headers, hit.distinctNames);
  // What a response owes an edge, it owes only where the request came through one.
  if (throughEdge) fitForEdge(req, res, page.contextCookies, edgesPurgedBy(request.cache));
  // A HEAD's holes are delivered too, unsent: its Content-Length is that of the page its GET would get.
  if (delivered) {
    res.statusCode = status;
    res.statusMessage = statusMessage;
    return holes.sendStored(req, res, page);
  }
  res.writeHead(status, statusMessage);
  res.end(method === 'HEAD' ? undefined : body);
}

/**
 * Whether a layer around the page cache wraps this response's `writeHead` or `setHeader` (on-headers
 * does, for compression, sessions and loggers): it must find the hit's headers on the response before
 * writeHead, as it found the MISS's.
 */
function watchesHeaders(res: ServerResponse): boolean {
  return Object.hasOwn(res, 'writeHead') || Object.hasOwn(res, 'setHeader');
}

/**
 * The headers a hit on the page sends, built once per decoded page (a page read from a cache in this
 * process is one object for every reader): only the Age value changes, and it is written in place
 * just before the synchronous `writeHead` that copies it.
 */
export function hitHeaders(page: StoredPage, label: HitLabel, statusHeader: string | false, now: number): string[] {
  return labelled(hitHeadersOf(page, statusHeader), page, label, now);
}

function hitHeadersOf(page: StoredPage, statusHeader: string | false): HitHeaders {
  const known = (page as PageWithHitHeaders)[HIT_HEADERS];
  if (known !== undefined && known.statusHeader === statusHeader) return known;
  const headers = page.headers.slice();
  let ageAt = -1;
  if (page.maxAge !== null && page.expires !== null) {
    headers.push('Age', '0');
    ageAt = headers.length - 1;
  }
  if (statusHeader !== false) headers.push(statusHeader, 'HIT');
  const names: string[] = [];
  for (let i = 0; i < headers.length; i += 2) names.push(headers[i]!.toLowerCase());
  const valueOf = (name: string) => (ageAt === -1 ? -1 : names.lastIndexOf(name) * 2 + 1);
  const hit: HitHeaders = {
    statusHeader,
    headers,
    ageAt,
    expiresAt: valueOf('expires'),
    cacheControlAt: valueOf('cache-control'),
    distinctNames: new Set(names).size === names.length,
    encodedByView: page.holesCoding === undefined && names.includes('content-encoding'),
    keptByNotModified: names.flatMap((name, pair) => (KEPT_BY_NOT_MODIFIED.has(name) || headers[2 * pair] === statusHeader ? [2 * pair] : [])),
    notModified: [],
  };
  Object.defineProperty(page, HIT_HEADERS, { value: hit, writable: true, configurable: true });
  return hit;
}

/**
 * The headers of a hit's 304, from the headers its 200 would send: written into the page's one list
 * of them just before the synchronous `writeHead` that copies it, as its 200's are.
 */
function notModified(headers: readonly string[], hit: HitHeaders): string[] {
  const sent = hit.notModified;
  let at = 0;
  for (const kept of hit.keptByNotModified) {
    sent[at++] = headers[kept]!;
    sent[at++] = headers[kept + 1]!;
  }
  return sent;
}

/** The hit's headers with the browser lifetime of `now` (see `browserLifetime`), and `label` in the status header. */
function labelled(hit: HitHeaders, page: StoredPage, label: HitLabel, now: number): string[] {
  if (hit.ageAt !== -1) {
    const { age, maxAge, expires } = browserLifetime(page, now);
    hit.headers[hit.ageAt] = String(age);
    if (hit.expiresAt > 0) hit.headers[hit.expiresAt] = expires === page.expires ? page.headers[hit.expiresAt]! : httpDate(expires);
    if (hit.cacheControlAt > 0) {
      const stored = page.headers[hit.cacheControlAt]!;
      hit.headers[hit.cacheControlAt] = maxAge === page.maxAge ? stored : mergeCacheControl(stored, { maxAge });
    }
  }
  if (label === 'HIT' || hit.statusHeader === false) return hit.headers;
  const headers = hit.headers.slice();
  headers[headers.length - 1] = label;
  return headers;
}

/**
 * The Age, max-age and Expires (epoch seconds) a hit at `now` sends, by the clock the page's copy
 * expires by. A copy within its browser lifetime goes out as its MISS did, aged. One older than that
 * would arrive stale (an Age past its max-age, an Expires before its Date) and no cache downstream
 * would keep it (Varnish, nginx and browsers refuse it), so its browser lifetime counts from the
 * moment it is sent, Age 0: the server vouches for it as current while its own copy is fresh, as for a
 * page rendered now. That lifetime is cut to what the server's copy has left, so that no copy
 * downstream outlives the server's (a STALE one goes out with max-age 0).
 */
function browserLifetime(page: StoredPage, now: number): { age: number; maxAge: number; expires: number } {
  const maxAge = page.maxAge!;
  const left = page.expires! - Math.floor(now);
  if (left > 0) return { age: Math.max(0, maxAge - left), maxAge, expires: page.expires! };
  const serverLeft = page.freshUntil === undefined ? maxAge : Math.max(0, Math.floor(page.freshUntil - now));
  const lifetime = Math.min(maxAge, serverLeft);
  // Rounded up: the Date beside it is the second begun, and a lifetime of 0 must not end before it.
  return { age: 0, maxAge: lifetime, expires: Math.ceil(now) + lifetime };
}

/**
 * Puts a stored page's headers on the response, each replacing any of its name as writeHead's own
 * list would, but before writeHead: the layers around this one then change them as they changed the
 * MISS that stored them, so a HIT carries the MISS's headers whatever the order of the middleware.
 * With `distinctNames` (no name listed twice) each header replaces its name's in one `setHeader`.
 */
export function putHeaders(res: ServerResponse, headers: readonly string[], distinctNames = false): void {
  if (distinctNames) {
    for (let i = 0; i < headers.length; i += 2) res.setHeader(headers[i]!, headers[i + 1]!);
    return;
  }
  for (let i = 0; i < headers.length; i += 2) res.removeHeader(headers[i]!);
  for (let i = 0; i < headers.length; i += 2) res.appendHeader(headers[i]!, headers[i + 1]!);
}
