/**
 * The page cache's side of holes (the per-visitor parts of a cached page): a page is stored with its
 * holes' placeholders sealed, and every response that carries it, HIT or MISS, gets them filled for
 * its request before it goes out (`private` from then on, as it is one visitor's page), replaced by
 * signed ESI includes (`holes: 'esi'`, for a request from an ESI processor) that `holeHandler()`
 * answers, or streamed after its shell (`holes: 'stream'`, see stream-holes.ts). Also the request
 * scope as middleware, for pages rendered with no page cache around them.
 */
import { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import { keepFrameworkRequest } from '../cacheability/framework-request.js';
import { inRequestScope, openedScope } from '../cacheability/request-scope.js';
import {
  esiIncludes,
  type HoleDeliverer,
  type HoleForm,
  type HoleMode,
  HolePlan,
  type HoleReport,
  holePlanOf,
  HoleSigner,
  RESPONSE_HOLES,
  sealedBody,
  unsealedBody,
} from '../holes/index.js';
import { ValueRule } from '../options/option-rules.js';
import { hasPreconditions, preconditionStatus } from '../headers/conditional.js';
import { headerText, maxAgeOf, secondsOf } from '../headers/header-values.js';
import { mergeCacheControl, patchCacheControl } from '../headers/headers.js';
import { BoundedMemo } from '../memos/bounded-memo.js';
import { processMemo } from '../memos/process-memos.js';
import type { MaybePromise } from '../store/maybe-promise.js';
import { codedEtag, uncodedEtag } from '../headers/content-coding.js';
import { type DeflatedParts, deflatedHole, gzipMemberWriter, joinedGzip } from './gzip-join.js';
import { beforeHeaders } from '../headers/response-phase.js';
import { type BodyWriter, endInParts, lengthOf, responseWriter, type WritesItself } from '../headers/body-writer.js';
import { type HolesInOrder, HoleStreamer } from './stream-holes.js';

export type { HoleMode };

export const HOLE_MODE = new ValueRule("'fill', 'esi' or 'stream'", (value) => value === 'fill' || value === 'esi' || value === 'stream');
export const HOLE_SECRET = new ValueRule('a string of at least 16 characters', (value) => typeof value === 'string' && value.length >= 16);

/** A stored page as its holes' delivery reads it: its body (sealed) and its headers (name, value…). */
export interface PageWithHoles {
  body: Buffer;
  headers: readonly string[];
  /** The coding a representation of it is sent in (`compress`), joined from its deflated parts. */
  holesCoding?: 'gzip';
  deflatedParts?: DeflatedParts;
}

/**
 * The head of a hit: the headers its shell would go out with, whether it goes out alone (a HEAD's),
 * and how the filled page's go out (with its status).
 */
export interface PrebuiltHead {
  headers: readonly string[];
  bodyless: boolean;
  send(filled: string[]): void;
}

/** How a page-cache layer delivers holes: its options of them. */
export interface HoleDeliveryOptions {
  mode: HoleMode;
  /** The key of the ESI URLs' signatures. */
  secret: string | undefined;
  /** Under `'stream'`: which requests get their holes in order whatever their client runs. */
  holesInOrder: HolesInOrder | undefined;
}

/** A page-cache layer's delivery of the holes of the responses it is the outermost layer of. */
export class HoleDelivery implements HoleDeliverer {
  readonly mode: HoleMode;
  private readonly signer: HoleSigner;
  /** Reports a builder whose hole's fallback was sent in its place. */
  private readonly reportFallback: HoleReport;
  private readonly streamer: HoleStreamer;

  constructor(
    options: HoleDeliveryOptions,
    /** Reports a failure behind a response: a builder whose fallback was sent, a fill that failed. */
    private readonly report: (what: string, error: unknown) => void,
  ) {
    this.mode = options.mode;
    this.signer = new HoleSigner(options.secret);
    this.reportFallback = (failure) => this.report("a hole's fallback was sent", failure);
    this.streamer = new HoleStreamer(this.reportFallback, report, options.holesInOrder);
  }

  /**
   * Whether this layer fills the holes of a page it sends to `req` itself: not as ESI includes for an
   * ESI processor, nor passed on to a layer further out that fills them.
   */
  fillsHere(req: IncomingMessage, res: ServerResponse): boolean {
    if (this.mode === 'esi' && asksForEsi(req)) return false;
    const holes = openedScope(res)?.get(RESPONSE_HOLES);
    return holes?.deliveredBy === undefined || holes.deliveredBy === this;
  }

  /**
   * The plan of a hit of `page` for `req` that can go out with its head made in one step
   * (`sendPrebuilt`), or undefined where it cannot: its holes are filled here, for a request with no
   * preconditions (a 304 is judged on the response), and its placeholders are as this process stored
   * them. The caller knows its head is too (not encoded by its view). `headers`: the request's, where
   * the caller has read them already.
   */
  prebuiltPlan(req: IncomingMessage, res: ServerResponse, page: PageWithHoles, headers: IncomingHttpHeaders = req.headers): HolePlan | undefined {
    if (openedScope(res) !== undefined || (this.mode === 'esi' && asksForEsi(req)) || hasPreconditions(headers)) return undefined;
    try {
      return holePlanOf(page.body);
    } catch {
      // A placeholder changed since it was stored: the response that says so is made on the response.
      return undefined;
    }
  }

  /**
   * Sends a hit of `page` filled for `req` by `plan` (see `prebuiltPlan`), with the head it would go
   * out with made into the filled page's: `private`, with no Last-Modified, the filled page's length
   * and, where the page had one, its own ETag (see `HolePlan.filledEtag`). Its parts go out as they
   * are stored, the holes' bytes between them (or in its representation's coding); at once when every
   * builder answers at once.
   */
  sendPrebuilt(req: IncomingMessage, res: ServerResponse, prebuilt: { page: PageWithHoles & { etag?: string }; plan: HolePlan }, head: PrebuiltHead): void {
    const { page, plan } = prebuilt;
    if (this.mode === 'stream') {
      head.send(streamedHeaders(head.headers));
      return this.streamer.send(req, plan, bodyWriterFor(res, page), headerIn(head.headers, 'content-type'));
    }
    const send = (holes: Buffer[]) => {
      const filled = filledPage(plan, page, holes);
      head.send(filledHeaders(head.headers, filled.length, page.etag === undefined ? undefined : filled.etag(page.etag)));
      writeChunks(res, filled.chunks, head.bodyless);
    };
    const filling = plan.fill(req, this.reportFallback);
    if (!(filling instanceof Promise)) return send(filling);
    // Its holes are filled from the request after the page cache has answered it.
    keepFrameworkRequest(req);
    void filling.then(send);
  }

  /**
   * Sends a stored page whose body holds holes (sealed), its status, reason phrase and headers set on
   * `res`: filled, included or streamed here, its parts written as they are stored with the holes' bytes
   * between them, or, when a layer further out delivers them, passed on to it as this process's text.
   */
  sendStored(req: IncomingMessage, res: ServerResponse, page: PageWithHoles): void {
    const holes = openedScope(res)?.get(RESPONSE_HOLES);
    if (holes?.deliveredBy !== undefined && holes.deliveredBy !== this) {
      // That layer fills them from the request once this one has answered.
      keepFrameworkRequest(req);
      holes.left = true;
      res.writeHead(res.statusCode, res.statusMessage);
      // A HEAD's body too: the layer delivering the holes declares the length of the page they make.
      res.end(unsealedBody(page.body));
      return;
    }
    const sending = this.deliver(req, res, page, () => holePlanOf(page.body));
    const send = (body: Buffer[] | WritesItself) => {
      res.writeHead(res.statusCode, res.statusMessage);
      if (Array.isArray(body)) writeChunks(res, body, req.method === 'HEAD');
      else body(bodyWriterFor(res, page));
    };
    if (!(sending instanceof Promise)) return send(sending);
    // Its holes are filled from the request after the page cache has answered it.
    keepFrameworkRequest(req);
    void sending.then(send);
  }

  /**
   * The body to send for `body`, a response of the view whose holes' placeholders are in `form`
   * (or a stored page's, sealed), with the head made right (see `deliver`).
   */
  async bodyFor(req: IncomingMessage, res: ServerResponse, body: Buffer | undefined, form: HoleForm): Promise<Buffer | Buffer[] | undefined | WritesItself> {
    // Frameworks answer a HEAD without handing its body on: the length they declared is that of the
    // page before its holes were delivered, which its GET would not get, and the delivered one is unknown.
    if (body === undefined || body.length === 0) {
      if (req.method === 'HEAD') res.removeHeader('content-length');
      await this.deliver(req, res, { body: Buffer.alloc(0), headers: [] }, () => undefined);
      return body;
    }
    // Sealed as the store keeps it (once, for the store and for this): the page is filled, and its ETag made, as its hits will be.
    const sealed = form === 'sealed' ? { body, holes: true } : sealedBody(body);
    const delivered = await this.deliver(req, res, { body: sealed.body, headers: [] }, () =>
      sealed.holes ? holePlanOf(sealed.body, { remember: false }) : undefined,
    );
    // Its parts go out as they are, as a hit's do, never copied into one page.
    return Array.isArray(delivered) ? nonEmpty(delivered) : delivered;
  }

  /** The body to send for `page` (`plan` cuts its body), the head made right: streamed under `'stream'` (see `streamFor`), else its chunks (see `chunksFor`). */
  private deliver(req: IncomingMessage, res: ServerResponse, page: PageWithHoles, plan: () => HolePlan | undefined): MaybePromise<Buffer[] | WritesItself> {
    return this.mode === 'stream' ? this.streamFor(req, res, page, plan) : this.chunksFor(req, res, page, plan);
  }

  /**
   * The body to send for `page` (`plan` cuts its body) with its holes streamed, the head made right:
   * a streamed page's (see `streamHead`), or a 500 for a body this layer cannot stream into (see
   * `refuseEncoded`). An empty body (a HEAD's) stays empty.
   */
  private streamFor(req: IncomingMessage, res: ServerResponse, page: PageWithHoles, plan: () => HolePlan | undefined): WritesItself | Buffer[] {
    const sealed = page.body;
    let cut: HolePlan | undefined;
    try {
      streamHead(res);
      if (sealed.length === 0) return [];
      refuseEncoded(res, page);
      cut = plan();
    } catch (error) {
      return this.failed(req, res, error);
    }
    if (cut === undefined) return [sealed];
    const contentType = headerText(res, 'content-type');
    return (out) => this.streamer.send(req, cut, out, contentType);
  }

  /**
   * The chunks to send for `page`, whose body's holes' placeholders are sealed (`plan` cuts it), with
   * the head made right: ESI includes for a request from an ESI processor (`'esi'`, see
   * `asksForEsi`), else filled for it: the response becomes `private`, its Content-Length is the
   * filled page's, and its validators are the filled page's own (an ETag where the page had
   * one, judged against the request's preconditions: 304 or 412 with no body). A fill that fails
   * sends a 500 instead, reported. An empty body (a HEAD's, whose length is unknown) stays empty.
   * At once when every builder answers at once.
   */
  private chunksFor(req: IncomingMessage, res: ServerResponse, page: PageWithHoles, plan: () => HolePlan | undefined): MaybePromise<Buffer[]> {
    const sealed = page.body;
    let cut: HolePlan | undefined;
    try {
      if (this.mode === 'esi' && asksForEsi(req)) {
        sendForAssembly(res);
        // An empty body is a HEAD's, its length unknown: a body made of no includes would declare 0.
        return sealed.length === 0 ? [] : [withContentLength(res, Buffer.from(esiIncludes(sealed.toString('utf8'), 'sealed', this.signer)))];
      }
      patchCacheControl(res, { private: true });
      // The holes may change while the page around them does not: a date tells nothing of them.
      res.removeHeader('last-modified');
      if (sealed.length === 0) {
        res.removeHeader('etag');
        return [];
      }
      refuseEncoded(res, page);
      cut = plan();
      if (cut === undefined) return [withContentLength(res, sealed)];
    } catch (error) {
      return this.failed(req, res, error);
    }
    const filled = (holes: Buffer[]) => {
      const made = filledPage(cut, page, holes);
      res.setHeader('Content-Length', made.length);
      const shellEtag = headerText(res, 'etag');
      if (shellEtag !== undefined && judgedByItsOwnEtag(req, res, made.etag(shellEtag)) !== 200) return [];
      return made.chunks;
    };
    const filling = cut.fill(req, this.reportFallback);
    return filling instanceof Promise ? filling.then(filled, (error: unknown) => this.failed(req, res, error)) : filled(filling);
  }

  /** A fill that failed: reported, and a 500 made on the response instead, its body answered. */
  private failed(req: IncomingMessage, res: ServerResponse, error: unknown): Buffer[] {
    this.report(`filling the holes of ${req.method ?? 'GET'} ${req.url ?? '/'} failed; a 500 was sent`, error);
    for (const name of res.getHeaderNames()) if (name.startsWith('content-') || name === 'etag' || name === 'last-modified') res.removeHeader(name);
    res.statusCode = 500;
    res.statusMessage = 'Internal Server Error';
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    return [withContentLength(res, Buffer.from('Internal Server Error'))];
  }
}

/** Refuses a body encoded by a layer inside this one (not the page cache's own representation of `page`): its holes cannot be filled into it. */
function refuseEncoded(res: ServerResponse, page: PageWithHoles): void {
  if (page.holesCoding !== undefined || !res.hasHeader('content-encoding')) return;
  throw new Error(`the body is ${String(res.getHeader('content-encoding'))}-encoded, so its holes cannot be filled: put compression() before the page cache`);
}

/**
 * The head of a page whose holes are streamed, on the response: final as the shell leaves, so a hole
 * cannot change it. One visitor's page (`private`, its `max-age` kept for the browser) of a length
 * not known yet (chunked; close-delimited over HTTP/1.0), with no validators (no 304 can stand for
 * holes not made yet), that proxies are asked not to buffer.
 */
function streamHead(res: ServerResponse): void {
  patchCacheControl(res, { private: true });
  for (const name of ['content-length', 'etag', 'last-modified']) res.removeHeader(name);
  res.setHeader('X-Accel-Buffering', 'no');
}

/** The headers of a streamed page (see `streamHead`) from those of its shell's hit. */
function streamedHeaders(shell: readonly string[]): string[] {
  const headers = filledHeaders(shell, undefined, undefined);
  headers.push('X-Accel-Buffering', 'no');
  return headers;
}

/** The value of header `name` (lower-cased) in a list of names and values; undefined when it has none. */
function headerIn(headers: readonly string[], name: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2) if (headers[i]!.toLowerCase() === name) return headers[i + 1];
  return undefined;
}

/** What a body in parts of `page` is written through: the response, or a gzip member around it where `page` is sent in gzip. */
function bodyWriterFor(res: ServerResponse, page: PageWithHoles): BodyWriter {
  const out = responseWriter(res);
  return page.holesCoding === 'gzip' ? gzipMemberWriter(out) : out;
}

/**
 * The page of `plan` filled with `holes` as it is sent: its chunks, their length, and its ETag from
 * its shell's (see `HolePlan.filledEtag`). In its representation's coding, gzip joined from its deflated parts (see `joinedGzip`),
 * under an ETag of that coding's own; else its parts as they are stored, the holes between them.
 */
function filledPage(plan: HolePlan, page: PageWithHoles, holes: Buffer[]): { chunks: Buffer[]; length: number; etag(shellEtag: string): string } {
  if (page.holesCoding === undefined)
    return { chunks: plan.chunks(holes), length: plan.filledLength(holes), etag: (shellEtag) => plan.filledEtag(shellEtag, holes) };
  const chunks = joinedGzip(page.deflatedParts!, holes, holes.map(deflatedHole));
  const length = lengthOf(chunks);
  // The filled page's ETag in the coding is its identity ETag's, made from the shell's own.
  const coding = page.holesCoding;
  return { chunks, length, etag: (shellEtag) => codedEtag(plan.filledEtag(uncodedEtag(shellEtag, coding), holes), coding) };
}

/** `body`, its length declared on the response. */
function withContentLength(res: ServerResponse, body: Buffer): Buffer {
  res.setHeader('Content-Length', body.length);
  return body;
}

/**
 * Ends the response with `chunks`, corked into one write of them all: the stored parts go out as they
 * are, never copied into one page, and so do the holes' bytes between them. Joining the small ones
 * would cost a copy and a buffer made on every response, more than the writes it saves: the socket
 * takes them all in one `writev`. A HEAD's (`bodyless`) are not sent (its Content-Length is that of
 * its GET's page).
 */
function writeChunks(res: ServerResponse, chunks: Buffer[], bodyless: boolean): void {
  if (bodyless || chunks.length === 0) {
    res.end();
    return;
  }
  endInParts(res, nonEmpty(chunks));
}

/** `chunks` less the empty ones (a hole that made nothing, a part before a hole at the start): itself when none is. */
function nonEmpty(chunks: Buffer[]): Buffer[] {
  for (const chunk of chunks) if (chunk.length === 0) return chunks.filter((kept) => kept.length > 0);
  return chunks;
}

/** The Cache-Control of a filled page for each of a shell's (`private` merged in), remembered: a site's pages send few. */
const privateCacheControl = processMemo('page-holes: private Cache-Control by stored value', new BoundedMemo<string>(1000));

/** What becomes of each header of a shell's hit in its filled page's: kept, dropped, or made `private` (Cache-Control). */
type Fate = 'kept' | 'dropped' | 'private';

/**
 * Where the fate of each header of a shell's hit is kept (see `filledHeaders`), on its list itself:
 * a hit's list is one array for every hit of a page, its values rewritten in place, its names the
 * same. Never stored: the key is a symbol.
 */
const FATES = Symbol('cachegrain.filledFates');

function fatesOf(shell: readonly string[]): Fate[] {
  const known = (shell as readonly string[] & { [FATES]?: Fate[] })[FATES];
  if (known !== undefined) return known;
  const fates: Fate[] = [];
  for (let i = 0; i < shell.length; i += 2) {
    const name = shell[i]!.toLowerCase();
    fates.push(name === 'cache-control' ? 'private' : name === 'content-length' || name === 'etag' || name === 'last-modified' ? 'dropped' : 'kept');
  }
  Object.defineProperty(shell, FATES, { value: fates });
  return fates;
}

/**
 * The headers of a filled page from those of its shell's hit: Cache-Control made `private`, no
 * Last-Modified, and the filled page's Content-Length and ETag where they are given.
 */
function filledHeaders(shell: readonly string[], length: number | undefined, etag: string | undefined): string[] {
  const headers: string[] = [];
  let cacheControl = false;
  const fate = fatesOf(shell);
  for (let i = 0; i < shell.length; i += 2) {
    const kept = fate[i / 2];
    if (kept === 'kept') headers.push(shell[i]!, shell[i + 1]!);
    else if (kept === 'private') {
      cacheControl = true;
      headers.push(
        shell[i]!,
        privateCacheControl.remember(shell[i + 1]!, (stored) => mergeCacheControl(stored, { private: true })),
      );
    }
  }
  if (!cacheControl) headers.push('Cache-Control', 'private');
  if (length !== undefined) headers.push('Content-Length', String(length));
  if (etag !== undefined) headers.push('ETag', etag);
  return headers;
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
 * Gives the filled page its own strong `etag` and answers the status the request's preconditions
 * call for (RFC 9110 §13): a 304 or 412 goes out with no body, so its content headers are dropped.
 */
function judgedByItsOwnEtag(req: IncomingMessage, res: ServerResponse, etag: string): 200 | 304 | 412 {
  res.setHeader('ETag', etag);
  if (res.statusCode !== 200 || !hasPreconditions(req.headers)) return 200;
  const status = preconditionStatus(req.method, req.headers, { etag });
  if (status === 200) return status;
  res.statusCode = status;
  res.statusMessage = STATUS_CODES[status] ?? '';
  for (const name of res.getHeaderNames()) if (name.startsWith('content-') && name !== 'content-location') res.removeHeader(name);
  if (status === 412) res.removeHeader('etag');
  return status;
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
