/**
 * Pages stored compressed once (`compress`), on every stack: one page stored, compressed
 * once (gzip with the page, Brotli behind it), each request sent the coding its Accept-Encoding
 * accepts best with `Vary: Accept-Encoding`, a right Content-Length, an ETag per coding, 304s by
 * weak comparison and HEAD as GET; a response marked `no-transform`, encoded by its view, or no
 * text, sent as it is; compression() after the page cache compressing nothing and storing nothing
 * per Accept-Encoding, in front of it passing its bytes through; and a page with holes sent as one
 * gzip member, its holes joined to its shell's parts deflated once.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { brotliCompressSync, brotliDecompressSync, constants, gunzipSync, gzipSync } from 'node:zlib';
import compression from 'compression';
import nunjucks from 'nunjucks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defineHole, type Middleware } from '../../src/frameworks/express.js';
import { installCacheTag, renderString } from '../../src/engines/nunjucks.js';
import { forgetHole } from '../../src/http/index.js';
import { caches, configureCaches } from '../../src/index.js';
import { eventually } from '../setup/eventually.js';
import { listen, type Reply, send } from './client.js';
import { cacheMiddleware, cookieHeaderOf, STACKS, type View } from './stacks.js';

/** A page worth compressing: a few KB of text whose Brotli and gzip differ. */
const PAGE = `<!doctype html><title>Shop</title><ul>${Array.from({ length: 120 }, (_, i) => `<li>Item ${i}: ${['red', 'green', 'blue', 'amber'][i % 4]} wool, ${i * 7} left</li>`).join('')}</ul>`;
const BROWSER = 'gzip, deflate, br, zstd';
const env = installCacheTag(new nunjucks.Environment(null, { autoescape: true }));
const visitorOf = (request: object) => /visitor=(\w+)/.exec(cookieHeaderOf(request) ?? '')?.[1] ?? 'guest';

let location = 0;
let renders = 0;
const servers: Array<Awaited<ReturnType<typeof listen>>> = [];

beforeEach(async () => {
  renders = 0;
  await configureCaches({ default: { backend: 'locmem', location: `compression-${++location}` } });
  defineHole('cart', (req) => `<b>cart of ${visitorOf(req)}</b>`);
  // A hole whose HTML is large enough to go deflated, not as stored blocks.
  defineHole('wishlist', (req) => `<ol>${Array.from({ length: 80 }, (_, i) => `<li>${visitorOf(req)} wishes for item ${i}</li>`).join('')}</ol>`);
});
afterEach(async () => {
  forgetHole('cart');
  forgetHole('wishlist');
  await Promise.all(servers.splice(0).map((server) => server.close()));
  await caches.closeAll();
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = await listen(handler);
  servers.push(server);
  return server.url;
}

/** The view of the tests: the page (or `source` rendered), with an ETag, counting its renders; `head` changes its headers. */
function view(options: { source?: string; etag?: string; head?: (res: ServerResponse) => void; body?: (html: string) => Buffer } = {}): View {
  return async (_req, res) => {
    renders++;
    const html = options.source === undefined ? PAGE : await renderString(env, options.source, {});
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    if (options.etag !== undefined) res.setHeader('ETag', options.etag);
    options.head?.(res);
    res.end(options.body === undefined ? html : options.body(html));
  };
}

/** A reply's body as its Content-Encoding says to read it. */
function decoded(reply: Reply): string {
  const coding = reply.headers['content-encoding'];
  if (coding === 'br') return brotliDecompressSync(reply.body).toString();
  if (coding === 'gzip') return gunzipSync(reply.body).toString();
  expect(coding, 'a coding the test reads').toBeUndefined();
  return reply.text;
}

const accepting = (acceptEncoding: string | undefined, headers: Record<string, string> = {}) => ({
  headers: acceptEncoding === undefined ? headers : { ...headers, 'Accept-Encoding': acceptEncoding },
});

/** Waits until a HIT of `path` comes in `coding` (a page's Brotli is made behind its first store), and answers it. */
async function hitIn(base: string, path: string, coding: string | undefined, headers: Record<string, string> = {}): Promise<Reply> {
  let reply!: Reply;
  await eventually(async () => {
    reply = await send(base, path, accepting(BROWSER, headers));
    expect([reply.headers['x-cache'], reply.headers['content-encoding']]).toEqual(['HIT', coding]);
  });
  return reply;
}

/** The checks every compressed reply passes: its length declared, Accept-Encoding in its Vary. */
function expectWellFormed(reply: Reply, what: string): void {
  expect(reply.headers['content-length'], what).toBe(String(reply.body.length));
  expect(reply.headers.vary, what).toMatch(/Accept-Encoding/i);
}

describe.each(STACKS)('compress on %s', (_stack, build) => {
  it('stores one page, compressed once, and sends each request the coding its Accept-Encoding accepts best', async () => {
    const base = await serve(build([cacheMiddleware({ seconds: 600, compress: true })], view({ etag: '"v1"' })));
    const miss = await send(base, '/p', accepting(BROWSER));
    expect([miss.headers['x-cache'], miss.headers['content-encoding'], miss.text]).toEqual(['MISS', undefined, PAGE]);
    expectWellFormed(miss, 'the MISS');
    await hitIn(base, '/p', 'br');
    for (const [accepted, coding] of [
      [BROWSER, 'br'],
      ['gzip', 'gzip'],
      ['x-gzip', 'gzip'],
      ['br;q=0.5, gzip', 'gzip'],
      ['identity;q=0, gzip', 'gzip'],
      ['br;q=0, *', 'gzip'],
      ['*', 'br'],
      ['gzip;q=0.5, identity', undefined],
      ['*;q=0', undefined],
      ['', undefined],
      [undefined, undefined],
    ] as const) {
      const reply = await send(base, '/p', accepting(accepted));
      const what = `Accept-Encoding: ${String(accepted)}`;
      expect([reply.status, reply.headers['x-cache'], reply.headers['content-encoding']], what).toEqual([200, 'HIT', coding]);
      expect(decoded(reply), what).toBe(PAGE);
      expectWellFormed(reply, what);
      expect(reply.headers.etag, what).toBe(coding === undefined ? '"v1"' : `"v1-${coding}"`);
    }
    // Every Accept-Encoding found the one page stored.
    expect(renders).toBe(1);
  });

  it("answers 304 by weak comparison of its coding's own ETag, and HEAD as its GET", async () => {
    const base = await serve(build([cacheMiddleware({ seconds: 600, compress: true })], view({ etag: '"v1"' })));
    await send(base, '/c', accepting(BROWSER));
    const br = await hitIn(base, '/c', 'br');
    // As a cache that weakened it sends it back (nginx, Varnish after gunzip).
    const unchanged = await send(base, '/c', accepting(BROWSER, { 'If-None-Match': 'W/"v1-br"' }));
    expect([unchanged.status, unchanged.headers.etag, unchanged.body.length]).toEqual([304, '"v1-br"', 0]);
    expect((await send(base, '/c', accepting('gzip', { 'If-None-Match': '"v1-gzip"' }))).status).toBe(304);
    // Another coding's tag, or the identity's, is another representation.
    const other = await send(base, '/c', accepting(BROWSER, { 'If-None-Match': '"v1", "v1-gzip"' }));
    expect([other.status, other.headers['content-encoding'], decoded(other)]).toEqual([200, 'br', PAGE]);
    const head = await send(base, '/c', { method: 'HEAD', ...accepting(BROWSER) });
    expect([head.status, head.headers['content-encoding'], head.headers['content-length'], head.headers.etag, head.body.length]).toEqual([
      200,
      'br',
      String(br.body.length),
      '"v1-br"',
      0,
    ]);
    const plainHead = await send(base, '/c', { method: 'HEAD' });
    expect([plainHead.headers['content-encoding'], plainHead.headers['content-length']]).toEqual([undefined, String(Buffer.byteLength(PAGE))]);
  });

  it('sends a response marked no-transform, one its view encoded, or one that is no text, as it is', async () => {
    const routes: Record<string, View> = {
      '/no-transform': view({ head: (res) => res.setHeader('Cache-Control', 'max-age=600, no-transform') }),
      '/encoded': view({ head: (res) => res.setHeader('Content-Encoding', 'gzip'), body: (html) => gzipSync(html) }),
      '/image': view({ head: (res) => res.setHeader('Content-Type', 'image/x-portable-graymap') }),
      '/text': view(),
    };
    const base = await serve(build([cacheMiddleware({ seconds: 600, compress: true })], (req, res) => routes[req.url!]!(req, res)));
    for (const path of ['/no-transform', '/encoded', '/image', '/text']) await send(base, path, accepting(BROWSER));
    // The Brotli of the page stored last is made: a page stored before it would have had its own by now.
    await hitIn(base, '/text', 'br');
    const noTransform = await send(base, '/no-transform', accepting(BROWSER));
    expect([noTransform.headers['x-cache'], noTransform.headers['content-encoding'], noTransform.text]).toEqual(['HIT', undefined, PAGE]);
    const encoded = await send(base, '/encoded', accepting(BROWSER));
    expect([encoded.headers['x-cache'], encoded.headers['content-encoding'], gunzipSync(encoded.body).toString()]).toEqual(['HIT', 'gzip', PAGE]);
    const image = await send(base, '/image', accepting(BROWSER));
    expect([image.headers['x-cache'], image.headers['content-encoding'], image.text]).toEqual(['HIT', undefined, PAGE]);
  });

  it('makes compression() after the page cache compress nothing, and stores one page for every Accept-Encoding', async () => {
    const inner = compression({ threshold: 0 }) as unknown as Middleware;
    const base = await serve(build([cacheMiddleware({ seconds: 600, compress: true }), inner], view()));
    const miss = await send(base, '/i', accepting('gzip'));
    expect([miss.headers['x-cache'], miss.headers['content-encoding'], miss.text]).toEqual(['MISS', undefined, PAGE]);
    await hitIn(base, '/i', 'br');
    for (const [accepted, coding] of [
      ['gzip', 'gzip'],
      ['br', 'br'],
      ['deflate', undefined],
      [undefined, undefined],
    ] as const) {
      const reply = await send(base, '/i', accepting(accepted));
      expect([reply.headers['x-cache'], reply.headers['content-encoding'], decoded(reply)], String(accepted)).toEqual(['HIT', coding, PAGE]);
      expectWellFormed(reply, String(accepted));
    }
    expect(renders).toBe(1);
  });

  it('passes its compressed hits through compression() in front of it, which compresses its misses', async () => {
    const outer = compression({ threshold: 0 }) as unknown as Middleware;
    const base = await serve(build([outer, cacheMiddleware({ seconds: 600, compress: true })], view()));
    const miss = await send(base, '/o', accepting('gzip'));
    expect([miss.headers['x-cache'], miss.headers['content-encoding'], gunzipSync(miss.body).toString()]).toEqual(['MISS', 'gzip', PAGE]);
    const hit = await hitIn(base, '/o', 'br');
    // The page cache's own Brotli, at quality 11, not compression()'s: compressed once, when it was stored.
    const once = brotliCompressSync(PAGE, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: 11,
        [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
        [constants.BROTLI_PARAM_SIZE_HINT]: Buffer.byteLength(PAGE),
      },
    });
    expect(hit.body.equals(once)).toBe(true);
    expectWellFormed(hit, 'the HIT');
  });

  it("sends a page with holes as one gzip member, its holes joined to the shell's parts deflated once", async () => {
    const source = '{% hole "cart" %}<main>' + PAGE + '</main><aside>{% hole "wishlist" %}</aside>{% hole "cart" %}';
    const base = await serve(build([cacheMiddleware({ seconds: 600, compress: true })], view({ source, etag: '"v1"' })));
    const filled = (visitor: string) =>
      `<b>cart of ${visitor}</b><main>${PAGE}</main><aside><ol>${Array.from({ length: 80 }, (_, i) => `<li>${visitor} wishes for item ${i}</li>`).join('')}</ol></aside><b>cart of ${visitor}</b>`;
    const miss = await send(base, '/h', accepting(BROWSER, { Cookie: 'visitor=ann' }));
    expect([miss.headers['x-cache'], miss.headers['content-encoding'], miss.text]).toEqual(['MISS', undefined, filled('ann')]);
    const etags = new Set<string>();
    for (const visitor of ['ann', 'bob']) {
      const hit = await hitIn(base, '/h', 'gzip', { Cookie: `visitor=${visitor}` });
      expect(gunzipSync(hit.body).toString()).toBe(filled(visitor));
      expectWellFormed(hit, visitor);
      expect(hit.headers['cache-control']).toBe('max-age=600, private');
      expect(hit.headers.etag).toMatch(/^"[0-9a-f]{16}-gzip"$/);
      etags.add(hit.headers.etag!);
      const unchanged = await send(base, '/h', accepting('gzip', { Cookie: `visitor=${visitor}`, 'If-None-Match': hit.headers.etag! }));
      expect([unchanged.status, unchanged.body.length]).toEqual([304, 0]);
      const head = await send(base, '/h', { method: 'HEAD', ...accepting(BROWSER, { Cookie: `visitor=${visitor}` }) });
      expect([head.headers['content-encoding'], head.headers['content-length'], head.body.length]).toEqual(['gzip', String(hit.body.length), 0]);
      const identity = await send(base, '/h', { headers: { Cookie: `visitor=${visitor}` } });
      expect([identity.headers['content-encoding'], identity.text, identity.headers.etag]).toEqual([
        undefined,
        filled(visitor),
        hit.headers.etag!.replace('-gzip', ''),
      ]);
    }
    expect(etags.size).toBe(2);
    expect(renders).toBe(1);
  });
});

describe('the compress option', () => {
  it('is checked by the options check, each error naming the option', () => {
    expect(() => cacheMiddleware({ compress: 'br' as never })).toThrow(
      "cacheMiddleware: options.compress must be a boolean or { encodings, quality } (got 'br')",
    );
    expect(() => cacheMiddleware({ compress: { encodings: ['zstd' as never] } })).toThrow(
      `cacheMiddleware: options.compress.encodings must be a list of 'br' and 'gzip', at least one (got ["zstd"])`,
    );
    expect(() => cacheMiddleware({ compress: { encodings: [] } })).toThrow(
      "options.compress.encodings must be a list of 'br' and 'gzip', at least one (got [])",
    );
    expect(() => cacheMiddleware({ compress: { quality: 12 } })).toThrow('cacheMiddleware: options.compress.quality must be an integer from 1 to 11 (got 12)');
    expect(() => cacheMiddleware({ compress: { level: 9 } as never })).toThrow(
      "cacheMiddleware: unknown option 'options.compress.level'; the options are 'options.compress.encodings', 'options.compress.quality'",
    );
  });

  it('stores only the codings it names', async () => {
    const base = await serve(build0([cacheMiddleware({ seconds: 600, compress: { encodings: ['gzip'], quality: 6 } })], view()));
    await send(base, '/g', accepting(BROWSER));
    const hit = await hitIn(base, '/g', 'gzip');
    expect(gunzipSync(hit.body).toString()).toBe(PAGE);
    // No Brotli is made behind it: a page of the same layer stored after it is in gzip too.
    await send(base, '/g2', accepting(BROWSER));
    expect((await hitIn(base, '/g2', 'gzip')).headers['content-encoding']).toBe('gzip');
    expect((await send(base, '/g', accepting(BROWSER))).headers['content-encoding']).toBe('gzip');
  });
});

const build0 = STACKS[0]![1];
