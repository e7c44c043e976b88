/**
 * The page cache's side of holes (the per-visitor parts of a cached page): a page is stored with its
 * holes' placeholders sealed, and every response that carries it, HIT or MISS, gets them filled for
 * its request before it goes out (`private` from then on, as it is one visitor's page), or replaced
 * by signed ESI includes (`holes: 'esi'`, for a request from an ESI processor) that `holeHandler()`
 * answers. Also the request scope as middleware, for pages rendered with no page cache around them.
 */
import { isUtf8 } from 'node:buffer';
import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import { keepFrameworkRequest } from '../cacheability/framework-request.js';
import { inRequestScope, openedScope } from '../cacheability/request-scope.js';
import {
  bytesMayHoldHoles,
  esiIncludes,
  fillHoles,
  type HoleDeliverer,
  type HoleForm,
  type HoleMode,
  HoleSigner,
  holdsHoles,
  RESPONSE_HOLES,
  sealHoles,
  unsealHoles,
} from '../holes/index.js';
import { ValueRule } from '../common/option-rules.js';
import { hasPreconditions, preconditionStatus, strongEtag } from './conditional.js';
import { headerText, maxAgeOf, secondsOf } from '../common/header-values.js';
import { patchCacheControl } from './headers.js';
import { beforeHeaders } from './response-phase.js';

export type { HoleMode };

export const HOLE_MODE = new ValueRule("'fill' or 'esi'", (value) => value === 'fill' || value === 'esi');
export const HOLE_SECRET = new ValueRule('a string of at least 16 characters', (value) => typeof value === 'string' && value.length >= 16);

/** A page-cache layer's delivery of the holes of the responses it is the outermost layer of. */
export class HoleDelivery implements HoleDeliverer {
  private readonly signer: HoleSigner;

  constructor(
    readonly mode: HoleMode,
    secret: string | undefined,
    /** Reports a failure behind a response: a builder whose fallback was sent, a fill that failed. */
    private readonly report: (what: string, error: unknown) => void,
  ) {
    this.signer = new HoleSigner(secret);
  }

  /**
   * Sends a stored page whose body holds holes (sealed), its status, reason phrase and headers set on
   * `res`: filled (or included) here, or, when a layer further out delivers them, passed on to it as
   * this process's text.
   */
  sendStored(req: IncomingMessage, res: ServerResponse, body: Buffer | undefined): void {
    // Its holes are filled from the request after the page cache has answered it.
    keepFrameworkRequest(req);
    const holes = openedScope(res)?.get(RESPONSE_HOLES);
    if (holes?.deliveredBy !== undefined && holes.deliveredBy !== this) {
      holes.left = true;
      res.writeHead(res.statusCode, res.statusMessage);
      // A HEAD's body too: the layer delivering the holes declares the length of the page they make.
      res.end(body === undefined ? undefined : unsealedBody(body));
      return;
    }
    void this.bodyFor(req, res, body, 'sealed').then((sent) => {
      if (sent !== body && sent !== undefined && res.statusCode !== 304) res.setHeader('Content-Length', sent.length);
      res.writeHead(res.statusCode, res.statusMessage);
      res.end(req.method === 'HEAD' ? undefined : sent);
    });
  }

  /**
   * The body to send for `body`, whose holes' placeholders are in `form`, with the head made right:
   * ESI includes for a request from an ESI processor (`'esi'`, see `asksForEsi`), else filled for
   * it: the response becomes `private`, and validators are the filled page's own (a strong ETag
   * where the page had one, judged against the request's preconditions: 304 or 412 with no body). A
   * fill that fails sends a 500 instead, reported.
   */
  async bodyFor(req: IncomingMessage, res: ServerResponse, body: Buffer | undefined, form: HoleForm): Promise<Buffer | undefined> {
    // Frameworks answer a HEAD without handing its body on: the length they declared is that of the
    // page before its holes were delivered, which its GET would not get, and the delivered one is unknown.
    if (req.method === 'HEAD' && (body === undefined || body.length === 0)) res.removeHeader('content-length');
    try {
      if (this.mode === 'esi' && asksForEsi(req)) {
        sendForAssembly(res);
        // An empty body is a HEAD's, its length unknown: a body made of no includes would declare 0.
        return body === undefined || body.length === 0 ? body : Buffer.from(esiIncludes(body.toString('utf8'), form, this.signer));
      }
      patchCacheControl(res, { private: true });
      // The holes may change while the page around them does not: a date tells nothing of them.
      res.removeHeader('last-modified');
      if (body === undefined || body.length === 0) {
        res.removeHeader('etag');
        return body;
      }
      if (res.hasHeader('content-encoding')) {
        throw new Error(
          `the body is ${String(res.getHeader('content-encoding'))}-encoded, so its holes cannot be filled: put compression() before the page cache`,
        );
      }
      const filled = Buffer.from(await fillHoles(body.toString('utf8'), form, req, (failure) => this.report("a hole's fallback was sent", failure)));
      return res.hasHeader('etag') ? judgedByItsOwnEtag(req, res, filled) : filled;
    } catch (error) {
      this.report(`filling the holes of ${req.method ?? 'GET'} ${req.url ?? '/'} failed; a 500 was sent`, error);
      for (const name of res.getHeaderNames()) if (name.startsWith('content-') || name === 'etag' || name === 'last-modified') res.removeHeader(name);
      res.statusCode = 500;
      res.statusMessage = 'Internal Server Error';
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.setHeader('Cache-Control', 'no-store');
      return Buffer.from('Internal Server Error');
    }
  }
}

/**
 * Whether the request comes from a surrogate that assembles ESI: its `Surrogate-Capability` (Edge
 * Architecture 1.0) gives some device `ESI/1.0` (`cachegrain="ESI/1.0"`, `abc="ESI/1.0 ESI-Inline/1.0"`).
 * Any other request (a browser, a proxy that does not assemble) would get the includes as text.
 */
export function asksForEsi(req: IncomingMessage): boolean {
  const given = req.headers['surrogate-capability'];
  if (given === undefined) return false;
  const capability = Array.isArray(given) ? given.join(', ') : given;
  for (const [, quoted, bare] of capability.matchAll(/=\s*(?:"([^"]*)"|([^\s,"]+))/g)) {
    if ((quoted ?? bare)!.split(/\s+/).some((name) => name.toUpperCase() === 'ESI/1.0')) return true;
  }
  return false;
}

/**
 * The head of a page whose holes go out as ESI includes. Its lifetime for the ESI proxy (its
 * `s-maxage`, else its `max-age`) and its stale windows go in `Surrogate-Control`, which that proxy
 * reads and drops; the page it assembles is one visitor's, so `Cache-Control` says `private` to every
 * cache after it (a CDN in front of Varnish), its `max-age` kept for the browser. The page's
 * validators stand for the shell, not for what the proxy assembles from it: a proxy would answer 304
 * to a visitor whose holes changed, so there are none.
 */
function sendForAssembly(res: ServerResponse): void {
  const cacheControl = headerText(res, 'cache-control');
  const lifetime = secondsOf(cacheControl, 's-maxage') ?? maxAgeOf(cacheControl);
  const directives = lifetime === null ? [] : [`max-age=${lifetime}`];
  for (const stale of ['stale-while-revalidate', 'stale-if-error']) {
    const seconds = secondsOf(cacheControl, stale);
    if (seconds !== null) directives.push(`${stale}=${seconds}`);
  }
  res.setHeader('Surrogate-Control', [...directives, 'content="ESI/1.0"'].join(', '));
  patchCacheControl(res, { private: true, 's-maxage': false });
  res.removeHeader('etag');
  res.removeHeader('last-modified');
}

/**
 * A filled page with the strong ETag of its own bytes, answered 304 (or 412) with no body when the
 * request's preconditions say so, as conditional GET answers a page (RFC 9110 §13).
 */
function judgedByItsOwnEtag(req: IncomingMessage, res: ServerResponse, filled: Buffer): Buffer {
  const etag = strongEtag(filled);
  res.setHeader('ETag', etag);
  if (res.statusCode !== 200 || !hasPreconditions(req.headers)) return filled;
  const status = preconditionStatus(req.method, req.headers, { etag });
  if (status === 200) return filled;
  res.statusCode = status;
  res.statusMessage = STATUS_CODES[status] ?? '';
  for (const name of res.getHeaderNames()) if (name.startsWith('content-') && name !== 'content-location') res.removeHeader(name);
  if (status === 412) res.removeHeader('etag');
  return Buffer.alloc(0);
}

/**
 * A body as a store keeps it: its holes' placeholders sealed (and what only looks like one
 * disarmed), with whether it holds holes. The same bytes when there is nothing of the kind in them.
 */
export function sealedBody(body: Buffer): { body: Buffer; holes: boolean } {
  if (!bytesMayHoldHoles(body) || !isUtf8(body)) return { body, holes: false };
  const sealed = sealHoles(body.toString('utf8'));
  return { body: Buffer.from(sealed), holes: holdsHoles(sealed, 'sealed') };
}

/** A stored body as this process's text: its holes' placeholders live, for the layer that delivers them. */
export function unsealedBody(body: Buffer): Buffer {
  return Buffer.from(unsealHoles(body.toString('utf8')));
}

/**
 * Middleware that opens the request's scope for what follows, as the page cache does: fragments with
 * `contexts=` and holes find the request there, and the request's cache calls share one budget. Only
 * needed where no page cache stands in front of the views; a page whose holes a render filled then
 * goes out `private`.
 */
export function cacheScope(): (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void {
  return function cacheScope(_req, res, next) {
    beforeHeaders(res, (response) => {
      if (openedScope(response)?.get(RESPONSE_HOLES).filled === true) patchCacheControl(response, { private: true });
    });
    inRequestScope(res, () => next());
  };
}
