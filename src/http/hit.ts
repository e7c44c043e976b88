/**
 * A stored page and how a hit sends it: its stored headers with Age and the HIT (or STALE) header
 * added, or a 304/412 when the request's preconditions say so (RFC 9110 §13). The surprise: the
 * headers go on the response before `writeHead`, so the layers around the page cache change a HIT as
 * they changed the MISS that stored it.
 */
import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import { hasPreconditions, NOT_MODIFIED_HEADERS, preconditionStatus } from './conditional.js';
import type { HoleDelivery } from './holes.js';
import { requestPath } from './keys.js';
import { countOnce } from './page-stats.js';

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
  /** Whether its body holds holes' placeholders (sealed), filled for each request it is sent to. Absent: none. */
  holes?: true;
  /**
   * The templates it was rendered from, by engines with digests on, and their digests then (see
   * `src/digests/pages.ts`): a hit where they differ now is a miss. Absent: none.
   */
  templates?: string;
  digests?: string;
}

export type HitLabel = 'HIT' | 'STALE';

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
  ageAt: number;
  distinctNames: boolean;
}
type PageWithHitHeaders = StoredPage & { [HIT_HEADERS]?: HitHeaders };

/**
 * Sends a stored page: no view runs; Age and the HIT (or STALE) header are the only additions, and a
 * page with holes gets them delivered by `holes`, the layer's delivery.
 */
export function serve(req: IncomingMessage, res: ServerResponse, page: StoredPage, label: HitLabel, statusHeader: string | false, holes?: HoleDelivery): void {
  countOnce(req, res, label === 'HIT' ? 'hits' : 'staleHits', page.route ?? requestPath(req));
  let status = page.status;
  const hit = hitHeadersOf(page, statusHeader);
  let headers = labelled(hit, page, label);
  // A page whose holes are filled in place is judged by the filled page's own validators, once filled.
  const judgedFilled = page.holes === true && holes?.fillsInPlace === true;
  if ((page.etag !== undefined || page.lastModified !== undefined) && !judgedFilled && hasPreconditions(req.headers)) {
    status = preconditionStatus(req.method, req.headers, page);
    if (status === 304) headers = headers.filter((_, i, all) => KEPT_BY_NOT_MODIFIED.has(all[i - (i % 2)]!.toLowerCase()) || all[i - (i % 2)] === statusHeader);
    else if (status !== 200) headers = headers.slice(page.headers.length);
  }
  putHeaders(res, headers, hit.distinctNames);
  // Always a reason phrase: some wrappers of writeHead (on-headers) lose the headers after an undefined one.
  const statusMessage = status === page.status ? page.statusMessage : (STATUS_CODES[status] ?? '');
  const body = status === 200 ? page.body : undefined;
  // A HEAD's holes are delivered too, unsent: its Content-Length is that of the page its GET would get.
  if (page.holes === true && holes !== undefined && status !== 304) return holes.sendStored(req, res, status, statusMessage, body);
  res.writeHead(status, statusMessage);
  res.end(req.method === 'HEAD' ? undefined : body);
}

/**
 * The headers a hit on the page sends, built once per decoded page (a page read from a cache in this
 * process is one object for every reader): only the Age value changes, and it is written in place
 * just before the synchronous `writeHead` that copies it.
 */
export function hitHeaders(page: StoredPage, label: HitLabel, statusHeader: string | false): string[] {
  return labelled(hitHeadersOf(page, statusHeader), page, label);
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
  const names = new Set<string>();
  for (let i = 0; i < headers.length; i += 2) names.add(headers[i]!.toLowerCase());
  const hit: HitHeaders = { statusHeader, headers, ageAt, distinctNames: names.size === headers.length / 2 };
  Object.defineProperty(page, HIT_HEADERS, { value: hit, writable: true, configurable: true });
  return hit;
}

/** The hit's headers with the Age of now, and `label` in the status header. */
function labelled(hit: HitHeaders, page: StoredPage, label: HitLabel): string[] {
  if (hit.ageAt !== -1) hit.headers[hit.ageAt] = String(Math.max(0, page.maxAge! - (page.expires! - Math.floor(Date.now() / 1000))));
  if (label === 'HIT' || hit.statusHeader === false) return hit.headers;
  const headers = hit.headers.slice();
  headers[headers.length - 1] = label;
  return headers;
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
