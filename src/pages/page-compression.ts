/**
 * Pages stored compressed once (`compress`). A page is stored at once with its gzip (a
 * millisecond of zlib for a page of 60 KB, beside the render that made it), so that every hit from
 * the first, and every cache in front that asks for gzip, gets it compressed; then, off the
 * request's path, its Brotli at high quality is made on zlib's threadpool (a tenth of a second) and
 * the page written again with it, stamped as of the same render, so that an invalidation since
 * keeps that write out. A page with holes keeps its shell deflated in parts instead, which each hit
 * joins around its holes into one gzip member (gzip-join.ts). Each hit is sent in the coding its
 * request accepts best, from one stored page: its representation in that coding is made once per
 * decoded page. The chain after the page cache is shown a request that accepts the identity alone,
 * so that a compression middleware there compresses nothing, and no page is stored per
 * Accept-Encoding: the page cache negotiates it itself.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import { brotliCompress, constants, crc32, deflateRawSync, gzipSync } from 'node:zlib';
import type { BaseCache, TagSnapshot } from '../cache/base-cache.js';
import { cacheForPages } from './cache-for-pages.js';
import { optionShape, ValueRule } from '../options/option-rules.js';
import { holePlanOf } from '../holes/index.js';
import { codedEtag, CONTENT_CODINGS, type ContentCoding, negotiatedCoding, uncompressibleReason } from '../headers/content-coding.js';
import { appendVary, patchVaryHeaders } from '../headers/headers.js';
import type { StoredPage } from './stored-page.js';
import { headerText } from '../headers/header-values.js';
import { copyWith } from '../store/copies.js';

/** The `compress` option's form as an object. */
export interface CompressOptions {
  /** The codings pages are stored in, beside the identity. @default ['br', 'gzip'] */
  encodings?: ContentCoding[];
  /** Brotli's quality, 1 to 11; gzip's level follows it, up to 9. Each page is compressed once, off the request's path. @default 11 */
  quality?: number;
}

const COMPRESS_FIELDS = optionShape<CompressOptions>({
  encodings: new ValueRule(
    "a list of 'br' and 'gzip', at least one",
    (value) => Array.isArray(value) && value.length > 0 && value.every((coding) => (CONTENT_CODINGS as readonly unknown[]).includes(coding)),
  ),
  quality: new ValueRule('an integer from 1 to 11', (value) => Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 11),
});

/** The rule of `compress`: a boolean, or its options, checked as options are. */
export const COMPRESS_OPTION = new ValueRule(
  'a boolean or { encodings, quality }',
  (value) => typeof value === 'boolean' || (typeof value === 'object' && value !== null && !Array.isArray(value)),
  'be',
  COMPRESS_FIELDS,
);

/**
 * The most pages a layer holds waiting to be compressed: past it a page stays as the view made it
 * until it is stored again, rather than the queue (and the threadpool it feeds) growing without
 * bound after a purge of every page.
 */
const MOST_WAITING = 100;

/** Where the request's own Accept-Encoding is kept while the chain after the page cache sees the identity alone. */
const CLIENT_ACCEPT_ENCODING = Symbol('cachegrain.clientAcceptEncoding');
type RequestAccepting = IncomingMessage & { [CLIENT_ACCEPT_ENCODING]?: string | undefined };

/** The codings a page is stored in, and its representation in each, made once per decoded page (never stored: the key is a symbol). */
const REPRESENTATIONS = Symbol('cachegrain.representations');
type Representations = Partial<Record<ContentCoding, StoredPage>> & { stored: ContentCoding[] };
type PageWithRepresentations = StoredPage & { [REPRESENTATIONS]?: Representations };

/** What the second write of a page needs: where the first put it, and as of which render. */
export interface StoredWrite {
  key: string;
  page: StoredPage;
  timeout: number;
  tags: readonly string[];
  tagsAsOf: TagSnapshot;
  staleWhileRevalidate: number;
  staleIfError: number;
}

const compressBrotli = promisify(brotliCompress);

/** A page-cache layer's compression of the pages it stores and of the hits it sends. */
export class PageCompression {
  readonly codings: readonly ContentCoding[];
  private readonly quality: number;
  private queue: Promise<void> = Promise.resolve();
  private waiting = 0;

  constructor(option: true | CompressOptions) {
    const { encodings = CONTENT_CODINGS, quality = 11 } = option === true ? {} : option;
    this.codings = CONTENT_CODINGS.filter((coding) => encodings.includes(coding));
    this.quality = quality;
  }

  /**
   * Before the view of a page runs (a GET or HEAD, which may be stored): the chain after the page
   * cache sees a request that accepts the identity alone (a compression middleware there compresses
   * nothing), the request's own value kept for the page cache's negotiation and given back at the head.
   */
  hideAcceptEncoding(req: IncomingMessage): void {
    const request = req as RequestAccepting;
    if ((req.method !== 'GET' && req.method !== 'HEAD') || Object.hasOwn(request, CLIENT_ACCEPT_ENCODING)) return;
    request[CLIENT_ACCEPT_ENCODING] = req.headers['accept-encoding'];
    req.headers['accept-encoding'] = 'identity';
  }

  /** At the head: the request's own Accept-Encoding back, for the layers in front of the page cache (a compression middleware there). */
  restoreAcceptEncoding(req: IncomingMessage): void {
    const request = req as RequestAccepting;
    if (!Object.hasOwn(request, CLIENT_ACCEPT_ENCODING)) return;
    const own = request[CLIENT_ACCEPT_ENCODING];
    if (own === undefined) delete req.headers['accept-encoding'];
    else req.headers['accept-encoding'] = own;
  }

  /**
   * At the head of a page to store (`page`, as the head described it, and `ownVary`, the Vary its
   * key is learned from): the page cache negotiates the coding itself, so the key never varies on
   * Accept-Encoding, and a page it may compress goes out, and is stored, with `Vary: Accept-Encoding`.
   */
  negotiateFor(res: ServerResponse, toStore: { page: { headers: string[] }; ownVary: string | undefined }): void {
    toStore.ownVary = withoutAcceptEncoding(toStore.ownVary);
    if (uncompressibleReason((name) => headerText(res, name)) !== undefined) return;
    patchVaryHeaders(res, ['Accept-Encoding']);
    const headers = toStore.page.headers;
    const at = headers.findIndex((name, i) => i % 2 === 0 && name.toLowerCase() === 'vary');
    if (at === -1) headers.push('Vary', 'Accept-Encoding');
    else headers[at + 1] = appendVary(headers[at + 1], ['Accept-Encoding']);
  }

  /**
   * The representation of `page` to send to `req`: in the coding the request accepts best among
   * those the page is stored in (made once per decoded page), else the page as stored. `headers`:
   * the request's, where the caller has read them already.
   */
  representation(page: StoredPage, req: IncomingMessage, headers: IncomingHttpHeaders = req.headers): StoredPage {
    const kept = representationsOf(page);
    const stored = this.codings.length === CONTENT_CODINGS.length ? kept.stored : kept.stored.filter((coding) => this.codings.includes(coding));
    if (stored.length === 0) return page;
    const request = req as RequestAccepting;
    const accepted = Object.hasOwn(request, CLIENT_ACCEPT_ENCODING) ? request[CLIENT_ACCEPT_ENCODING] : headers['accept-encoding'];
    const coding = negotiatedCoding(accepted, stored);
    if (coding === 'identity') return page;
    return (kept[coding] ??= representationIn(page, coding));
  }

  /**
   * Before the first write of a page that may be compressed: its gzip, or, for a page with holes,
   * its shell's parts deflated, added to it (kept only where smaller than the page).
   */
  compressAtOnce(page: StoredPage): void {
    if (!this.codings.includes('gzip') || uncompressibleReason((name) => headerOf(page.headers, name)) !== undefined) return;
    const level = Math.min(this.quality, 9);
    if (page.holes !== true) {
      const gzipped = gzipSync(page.body, { level });
      if (gzipped.length < page.body.length) page.encoded = { gzip: gzipped };
      return;
    }
    const plan = holePlanOf(page.body);
    if (plan === undefined) return;
    const parts = plan.parts.map((part) => deflateRawSync(part, { level, finishFlush: constants.Z_SYNC_FLUSH }));
    page.deflatedParts = { parts, crcs: plan.parts.map((part) => crc32(part)), lengths: plan.parts.map((part) => part.length) };
  }

  /**
   * After the first write of a page: makes its Brotli on the threadpool, one page of the layer at a
   * time, and writes it again with it, if the page stored under its key is still this one. Failures
   * are reported to `report`; the page stays as it was stored. (A page with holes has none: Brotli
   * cannot be joined around them.)
   */
  compressBehind(cache: BaseCache, write: StoredWrite, report: (error: unknown) => void): void {
    if (!this.codings.includes('br') || write.page.holes === true) return;
    if (uncompressibleReason((name) => headerOf(write.page.headers, name)) !== undefined) return;
    if (this.waiting >= MOST_WAITING) return;
    this.waiting++;
    // The page lives as long from now as it was stored for: the second write does not lengthen it.
    const expiresAt = cache.now() + write.timeout;
    this.queue = this.queue
      .then(async () => {
        const { key, page, tags, tagsAsOf, staleWhileRevalidate, staleIfError } = write;
        const br = await this.brotli(page.body);
        if (br.length >= page.body.length || !(await this.stillStored(cache, write))) return;
        const timeout = expiresAt - cache.now();
        if (timeout <= 0) return;
        await cacheForPages(cache).setHeld(key, copyWith(page, { encoded: copyWith(page.encoded ?? {}, { br }) }), {
          timeout,
          tags,
          tagsAsOf,
          staleWhileRevalidate,
          staleIfError,
        });
      })
      .catch(report)
      .finally(() => this.waiting--);
  }

  private brotli(body: Buffer): Promise<Buffer> {
    return compressBrotli(body, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: this.quality,
        [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
        [constants.BROTLI_PARAM_SIZE_HINT]: body.length,
      },
    });
  }

  /** Whether the page its key holds is still the one written first: a later render's page is never replaced by this one. */
  private async stillStored(cache: BaseCache, { key, page }: StoredWrite): Promise<boolean> {
    const entry = await cacheForPages(cache).readSharedEntry<StoredPage>(key);
    return entry?.state === 'fresh' && entry.value.freshUntil === page.freshUntil && entry.value.body.length === page.body.length;
  }
}

/** What is kept on a decoded page of its representations, made on first use: the codings it is stored in to begin with. */
function representationsOf(page: StoredPage): Representations {
  const known = (page as PageWithRepresentations)[REPRESENTATIONS];
  if (known !== undefined) return known;
  const stored: ContentCoding[] =
    page.holes === true
      ? page.deflatedParts === undefined
        ? []
        : ['gzip']
      : page.encoded === undefined
        ? []
        : CONTENT_CODINGS.filter((coding) => page.encoded![coding] !== undefined);
  const made: Representations = { stored };
  Object.defineProperty(page, REPRESENTATIONS, { value: made, configurable: true });
  return made;
}

/**
 * `page` in `coding`: its body that coding's bytes (for a page with holes, still its shell: its
 * hits join the deflated parts), Content-Encoding added, its Content-Length and ETag the coding's own.
 */
function representationIn(page: StoredPage, coding: ContentCoding): StoredPage {
  const body = page.holes === true ? page.body : page.encoded![coding]!;
  const headers: string[] = [];
  for (let i = 0; i < page.headers.length; i += 2) {
    const name = page.headers[i]!;
    const lower = name.toLowerCase();
    if (lower === 'content-length') headers.push(name, String(body.length));
    else if (lower === 'etag') headers.push(name, codedEtag(page.headers[i + 1]!, coding));
    else headers.push(name, page.headers[i + 1]!);
  }
  headers.push('Content-Encoding', coding);
  const representation: StoredPage = copyWith(page, { body, headers });
  if (page.etag !== undefined) representation.etag = codedEtag(page.etag, coding);
  if (page.holes === true) representation.holesCoding = 'gzip';
  return representation;
}

/** A Vary value less Accept-Encoding (undefined when nothing else is left). */
function withoutAcceptEncoding(vary: string | undefined): string | undefined {
  if (vary === undefined) return undefined;
  const kept = vary
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '' && name.toLowerCase() !== 'accept-encoding');
  return kept.length === 0 ? undefined : kept.join(', ');
}

/** A header's value among stored headers (name, value…), lines of one name joined. */
function headerOf(headers: readonly string[], name: string): string | undefined {
  const values: string[] = [];
  for (let i = 0; i < headers.length; i += 2) if (headers[i]!.toLowerCase() === name) values.push(headers[i + 1]!);
  return values.length === 0 ? undefined : values.join(', ');
}
