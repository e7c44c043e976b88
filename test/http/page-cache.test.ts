import { mkdtempSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import compression from 'compression';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { invalidatePage, type Middleware } from '../../src/frameworks/express.js';
import { caches, configureCaches, LocMemCache } from '../../src/index.js';
import { httpDate } from '../../src/headers/headers.js';
import { listen, type Reply, requestsArrived, send } from './client.js';
import {
  bare,
  type Build,
  cacheControl,
  cacheMiddleware,
  cachePage,
  conditionalGet,
  express4,
  express5,
  fetchFromCacheMiddleware,
  neverCache,
  STACKS,
  updateCacheMiddleware,
  varyOnCookie,
  varyOnHeaders,
  type View,
} from './stacks.js';

const FLAVOURS = STACKS;

/** A locmem that does not vouch that its reads answer at once: its page cache looks pages up by the reference lookup. */
class LocMemAnsweringLater extends LocMemCache {
  protected override get answersAtOnce(): boolean {
    return false;
  }
}
/** Every case runs on both lookups of a page, which must give the same answers: at once (locmem), and the reference. */
const LOOKUPS = [
  ['at once', 'locmem'],
  ['by the reference lookup', LocMemAnsweringLater],
] as const;

let location = 0;
let server: Awaited<ReturnType<typeof listen>> | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  server = await listen(handler);
  return server.url;
}

/** Resolves once the page cache's lookups have missed `count` times (each reads its URL's header list first, and misses it). */
async function lookupsMissed(count: number): Promise<void> {
  while (caches.get('default').stats().misses < count) await new Promise((resolve) => setImmediate(resolve));
}

/** A view that counts its runs and says which run produced the page. */
function countingView(extra: (req: IncomingMessage, res: ServerResponse) => void = () => undefined) {
  const view = Object.assign(
    (req: IncomingMessage, res: ServerResponse) => {
      view.calls++;
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      extra(req, res);
      res.end(`${req.method} ${req.url} run ${view.calls}`);
    },
    { calls: 0 },
  );
  return view;
}

async function twice(base: string, path: string, options: Parameters<typeof send>[2] = {}): Promise<[Reply, Reply]> {
  return [await send(base, path, options), await send(base, path, options)];
}

describe.each(LOOKUPS)('pages looked up %s', (_lookup, backend) => {
  beforeEach(async () => {
    await configureCaches({
      default: { backend, location: `page-cache-${++location}` },
      other: { backend, location: `page-other-${location}` },
    });
  });

  describe.each(FLAVOURS)('the page cache on %s', (_flavour, build) => {
    it('answers the second GET from the cache without running the view', async () => {
      const view = countingView();
      const base = await serve(build([cacheMiddleware()], view));
      const [first, second] = await twice(base, '/page');
      expect(first.headers['x-cache']).toBe('MISS');
      expect(second.headers['x-cache']).toBe('HIT');
      expect(second.text).toBe('GET /page run 1');
      expect(second.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(view.calls).toBe(1);
    });

    it('keeps query strings apart', async () => {
      const view = countingView();
      const base = await serve(build([cacheMiddleware()], view));
      await twice(base, '/page?a=1');
      const other = await send(base, '/page?a=2');
      expect(other.text).toBe('GET /page?a=2 run 2');
      expect((await send(base, '/page?a=1')).headers['x-cache']).toBe('HIT');
    });

    it('never caches POST nor answers it from a GET entry', async () => {
      const view = countingView();
      const base = await serve(build([cacheMiddleware()], view));
      await send(base, '/page');
      const [first, second] = await twice(base, '/page', { method: 'POST', body: 'x' });
      expect([first.text, second.text]).toEqual(['POST /page run 2', 'POST /page run 3']);
      expect(second.headers['x-cache']).toBe('BYPASS');
      expect(second.headers['x-cache-reason']).toBeUndefined();
    });

    it('answers HEAD from the GET entry, without a body', async () => {
      const view = countingView();
      const base = await serve(build([cacheMiddleware()], view));
      const get = await send(base, '/page');
      const head = await send(base, '/page', { method: 'HEAD' });
      expect(head.headers['x-cache']).toBe('HIT');
      expect(head.headers['content-length']).toBe(String(get.body.length));
      expect(head.body.length).toBe(0);
      expect(view.calls).toBe(1);
    });

    it('gives a HEAD that misses the headers its GET would get, and stores nothing', async () => {
      const view = countingView((req, res) => {
        if (req.url === '/private') res.setHeader('Set-Cookie', 'session=abc');
      });
      const clock = Math.floor(Date.now() / 1000);
      caches.get('default').now = () => clock;
      const base = await serve(build([cacheMiddleware({ seconds: 60, debug: true })], view));
      for (const method of ['HEAD', 'GET']) {
        const reply = await send(base, '/private', { method });
        expect([reply.headers['x-cache'], reply.headers['x-cache-reason']]).toEqual(['BYPASS', 'Set-Cookie']);
      }
      const head = await send(base, '/page', { method: 'HEAD' });
      expect(head.headers['x-cache']).toBe('MISS');
      expect(head.headers['cache-control']).toBe('max-age=60');
      expect(head.headers['expires']).toBe(httpDate(clock + 60));
      expect((await send(base, '/page', { method: 'HEAD' })).headers['x-cache']).toBe('MISS');
      const get = await send(base, '/page');
      expect([get.headers['x-cache'], get.headers['cache-control']]).toEqual(['MISS', 'max-age=60']);
      expect(view.calls).toBe(5);
    });

    it.each([
      ['Set-Cookie', { 'Set-Cookie': 'session=abc' }, 'Set-Cookie'],
      ['Set-Cookie with Vary: Cookie', { 'Set-Cookie': 'session=abc', Vary: 'Cookie' }, 'Set-Cookie'],
      ['Cache-Control: private', { 'Cache-Control': 'private' }, 'Cache-Control: private'],
      ['Cache-Control: Private', { 'Cache-Control': 'max-age=60, Private' }, 'Cache-Control: private'],
      ['Cache-Control: private="Set-Cookie"', { 'Cache-Control': 'private="Set-Cookie"' }, 'Cache-Control: private'],
      ['Cache-Control: NO-STORE', { 'Cache-Control': 'NO-STORE' }, 'Cache-Control: no-store'],
      ['Cache-Control: No-Cache', { 'Cache-Control': 'No-Cache' }, 'Cache-Control: no-cache'],
      ['Vary: *', { Vary: '*' }, 'Vary: *'],
      ['Vary: Cookie,  *  ', { Vary: 'Cookie,  *  ' }, 'Vary: *'],
      ['max-age=0', { 'Cache-Control': 'max-age=0' }, 'max-age=0'],
    ])('never stores a response with %s, and says so (X-Cache: BYPASS, the rule in X-Cache-Reason with debug)', async (_name, headers, reason) => {
      const view = countingView((_req, res) => {
        for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
      });
      const base = await serve(build([cacheMiddleware({ debug: true })], view));
      const [, second] = await twice(base, '/page', { headers: { Cookie: 'other=1' } });
      expect(second.headers['x-cache']).toBe('BYPASS');
      expect(second.headers['x-cache-reason']).toBe(reason);
      expect(second.text).toBe('GET /page run 2');
    });

    it('names the reason for a request it cannot cache, and for a status it does not store, with debug only', async () => {
      const view = countingView((req, res) => void (res.statusCode = req.url === '/missing' ? 404 : 200));
      const debug = await serve(build([cacheMiddleware({ debug: true })], view));
      expect((await send(debug, '/page', { method: 'POST', body: 'x' })).headers).toMatchObject({ 'x-cache': 'BYPASS', 'x-cache-reason': 'method POST' });
      expect((await send(debug, '/missing')).headers).toMatchObject({ 'x-cache': 'BYPASS', 'x-cache-reason': 'status 404' });
      const first = await send(debug, '/page');
      expect(first.headers['x-cache']).toBe('MISS');
      expect(first.headers['x-cache-reason']).toBeUndefined();
      expect((await send(debug, '/page')).headers['x-cache']).toBe('HIT');
      const quiet = await serve(build([cacheMiddleware({ keyPrefix: 'quiet' })], view));
      const bypass = await send(quiet, '/missing');
      expect(bypass.headers['x-cache']).toBe('BYPASS');
      expect(bypass.headers['x-cache-reason']).toBeUndefined();
      expect(() => cacheMiddleware({ debug: 'yes' as never })).toThrow("options.debug must be a boolean (got 'yes')");
    });

    it('never stores an error status', async () => {
      const view = countingView((_req, res) => void (res.statusCode = 404));
      const base = await serve(build([cacheMiddleware()], view));
      const [, second] = await twice(base, '/missing');
      expect(second.text).toBe('GET /missing run 2');
    });

    it('counts headers given to writeHead', async () => {
      let calls = 0;
      const base = await serve(
        build([cacheMiddleware()], (_req, res) => {
          calls++;
          res.writeHead(200, { 'Content-Type': 'text/plain', 'Set-Cookie': ['a=1', 'b=2'] });
          res.end('hello');
        }),
      );
      const [first, second] = await twice(base, '/page');
      expect(first.headers['set-cookie']).toEqual(['a=1', 'b=2']);
      expect(second.headers['x-cache']).toBe('BYPASS');
      expect(calls).toBe(2);
    });

    it("lets cachePage's timeout win over max-age=0, and keeps the smaller max-age in the header", async () => {
      const view = countingView((_req, res) => res.setHeader('Cache-Control', 'max-age=0'));
      const base = await serve(build([cachePage(60)], view));
      const [first, second] = await twice(base, '/page');
      expect(second.headers['x-cache']).toBe('HIT');
      expect(first.headers['cache-control']).toBe('max-age=0');
      expect(view.calls).toBe(1);
    });

    it("keeps a page for cachePage's timeout even when max-age says less", async () => {
      const view = countingView((_req, res) => res.setHeader('Cache-Control', 'max-age=1'));
      const base = await serve(build([cachePage(3)], view));
      await send(base, '/page');
      const cache = caches.get('default');
      cache.now = () => Date.now() / 1000 + 2;
      expect((await send(base, '/page')).headers['x-cache']).toBe('HIT');
      cache.now = () => Date.now() / 1000 + 4;
      expect((await send(base, '/page')).headers['x-cache']).toBe('MISS');
    });

    it("keeps a page for the response's max-age under cacheMiddleware", async () => {
      const view = countingView((_req, res) => res.setHeader('Cache-Control', 'max-age=5'));
      const base = await serve(build([cacheMiddleware({ seconds: 600 })], view));
      await send(base, '/page');
      const cache = caches.get('default');
      cache.now = () => Date.now() / 1000 + 6;
      expect((await send(base, '/page')).headers['x-cache']).toBe('MISS');
    });

    it('sends Expires, max-age and, on hits, Age', async () => {
      let clock = Math.floor(Date.now() / 1000);
      caches.get('default').now = () => clock;
      const base = await serve(build([cacheMiddleware({ seconds: 120 })], countingView()));
      const first = await send(base, '/page');
      expect(first.headers['cache-control']).toBe('max-age=120');
      expect(first.headers['expires']).toBe(httpDate(clock + 120));
      expect(first.headers['age']).toBeUndefined();
      clock += 1;
      const second = await send(base, '/page');
      expect(second.headers['expires']).toBe(first.headers['expires']);
      expect(second.headers['age']).toBe('1');
    });

    it('varies on Authorization unless the response is public', async () => {
      const view = countingView((req, res) => req.url === '/public' && res.setHeader('Cache-Control', 'public'));
      const base = await serve(build([cacheMiddleware()], view));
      const alice = await send(base, '/private', { headers: { Authorization: 'Basic YWxpY2U6eA==' } });
      expect(alice.headers['vary']).toBe('Authorization');
      const bob = await send(base, '/private', { headers: { Authorization: 'Basic Ym9iOng=' } });
      expect(bob.headers['x-cache']).toBe('MISS');
      expect(bob.text).toBe('GET /private run 2');
      expect((await send(base, '/private', { headers: { Authorization: 'Basic YWxpY2U6eA==' } })).text).toBe('GET /private run 1');
      await send(base, '/public', { headers: { Authorization: 'Basic YWxpY2U6eA==' } });
      const shared = await send(base, '/public', { headers: { Authorization: 'Basic Ym9iOng=' } });
      expect(shared.headers['x-cache']).toBe('HIT');
      expect(shared.headers['vary']).toBeUndefined();
    });

    it('keeps the variants of a Vary header apart, and an absent header apart from an empty one', async () => {
      const view = countingView((req, res) => {
        res.setHeader('Vary', 'Accept-Language');
        res.setHeader('Content-Language', String(req.headers['accept-language'] ?? 'none'));
      });
      const base = await serve(build([cacheMiddleware()], view));
      const fr = await twice(base, '/page', { headers: { 'Accept-Language': 'fr' } });
      const de = await twice(base, '/page', { headers: { 'Accept-Language': 'de' } });
      const none = await twice(base, '/page');
      const empty = await twice(base, '/page', { headers: { 'Accept-Language': '' } });
      expect([fr[1], de[1], none[1], empty[1]].map((reply) => reply.headers['content-language'])).toEqual(['fr', 'de', 'none', '']);
      expect([fr[1], de[1], none[1], empty[1]].every((reply) => reply.headers['x-cache'] === 'HIT')).toBe(true);
      expect(view.calls).toBe(4);
    });

    it("keeps a URL's header list as long as the latest variant stored under it, so that variant stays a HIT", async () => {
      const view = countingView((req, res) => {
        res.setHeader('Vary', 'Accept-Language');
        res.setHeader('Content-Language', String(req.headers['accept-language']));
      });
      const base = await serve(build([cachePage(10)], view));
      const cache = caches.get('default');
      await send(base, '/page', { headers: { 'Accept-Language': 'fr' } });
      cache.now = () => Date.now() / 1000 + 6;
      expect((await send(base, '/page', { headers: { 'Accept-Language': 'de' } })).headers['x-cache']).toBe('MISS');
      // Past the first variant's life, inside the second's.
      cache.now = () => Date.now() / 1000 + 12;
      const de = await send(base, '/page', { headers: { 'Accept-Language': 'de' } });
      expect([de.headers['x-cache'], de.headers['content-language']]).toEqual(['HIT', 'de']);
      expect((await send(base, '/page', { headers: { 'Accept-Language': 'fr' } })).headers['x-cache']).toBe('MISS');
      expect(view.calls).toBe(3);
    });

    it('drops every variant of a URL with invalidatePage', async () => {
      const view = countingView((_req, res) => res.setHeader('Vary', 'Accept-Language'));
      const base = await serve(build([cacheMiddleware()], view));
      await send(base, '/page?x=1', { headers: { 'Accept-Language': 'fr' } });
      await send(base, '/page?x=1', { headers: { 'Accept-Language': 'de' } });
      await send(base, '/page?x=2');
      await send(base, '/other');
      await invalidatePage(`${base}/page?x=1`);
      expect((await send(base, '/page?x=1', { headers: { 'Accept-Language': 'fr' } })).headers['x-cache']).toBe('MISS');
      expect((await send(base, '/page?x=1', { headers: { 'Accept-Language': 'de' } })).headers['x-cache']).toBe('MISS');
      // The path's every query goes; other paths stay.
      expect((await send(base, '/page?x=2')).headers['x-cache']).toBe('MISS');
      expect((await send(base, '/other')).headers['x-cache']).toBe('HIT');
      expect((await send(base, '/page?x=1', { headers: { 'Accept-Language': 'fr' } })).headers['x-cache']).toBe('HIT');
      await invalidatePage('/page');
      expect((await send(base, '/page?x=1', { headers: { 'Accept-Language': 'fr' } })).headers['x-cache']).toBe('MISS');
      expect(view.calls).toBe(8);
      await expect(invalidatePage('page')).rejects.toThrow(
        "invalidatePage: url must be a path such as '/news' or an absolute URL such as 'https://example.com/news' (got 'page')",
      );
    });

    it("drops only that host's page for an absolute URL, and every host's for a path", async () => {
      const view = countingView();
      const base = await serve(build([cacheMiddleware()], view));
      const cacheOf = async (host: string, path = '/page') => (await send(base, path, { headers: { Host: host } })).headers['x-cache'];
      for (const host of ['shop.example', 'blog.example']) {
        await cacheOf(host);
        await cacheOf(host, '/page?q=1');
      }
      await invalidatePage('http://SHOP.example:80/page?q=1');
      expect(await cacheOf('shop.example')).toBe('MISS');
      expect(await cacheOf('shop.example', '/page?q=1')).toBe('MISS');
      expect(await cacheOf('blog.example')).toBe('HIT');
      expect(await cacheOf('blog.example', '/page?q=1')).toBe('HIT');
      await invalidatePage('/page');
      expect(await cacheOf('shop.example')).toBe('MISS');
      expect(await cacheOf('blog.example')).toBe('MISS');
      expect(view.calls).toBe(8);
    });

    it('captures res.write + res.end, writeHead and piped streams', async () => {
      let calls = 0;
      const base = await serve(
        build([cacheMiddleware()], (req, res) => {
          calls++;
          if (req.url === '/chunks') {
            res.writeHead(200, 'Fine', ['Content-Type', 'text/plain', 'X-Part', 'one']);
            res.write('one,');
            res.write(Buffer.from('two,'));
            res.end('three', 'utf8');
          } else {
            res.setHeader('Content-Type', 'text/plain');
            Readable.from(['a', 'b', 'c'].map((part) => Buffer.from(part.repeat(1000)))).pipe(res);
          }
        }),
      );
      const chunks = await twice(base, '/chunks');
      expect(chunks[1].text).toBe('one,two,three');
      expect(chunks[1].headers['x-part']).toBe('one');
      expect(chunks[1].headers['x-cache']).toBe('HIT');
      const piped = await twice(base, '/piped');
      expect(piped[1].text).toBe(piped[0].text);
      expect(piped[1].body.length).toBe(3000);
      expect(piped[1].headers['x-cache']).toBe('HIT');
      expect(calls).toBe(2);
    });

    it('passes bodies over maxBodyBytes through uncached', async () => {
      const view = countingView((req, res) => void res.write('x'.repeat(req.url === '/big' ? 200 : 50)));
      const base = await serve(build([cacheMiddleware({ maxBodyBytes: 100 })], view));
      const big = await twice(base, '/big');
      expect(big[1].headers['x-cache']).toBe('MISS');
      expect(big[1].text.startsWith('x'.repeat(200))).toBe(true);
      expect((await twice(base, '/small'))[1].headers['x-cache']).toBe('HIT');
    });

    it('runs the view once for concurrent misses of one page', async () => {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let calls = 0;
      const base = await serve(
        build([cacheMiddleware()], (_req, res) => {
          calls++;
          void gate.then(() => res.end(`run ${calls}`));
        }),
      );
      const replies = Array.from({ length: 5 }, () => send(base, '/slow'));
      // Released once each request has looked the URL up and missed: each then waits for the one render.
      await lookupsMissed(5);
      release();
      const texts = (await Promise.all(replies)).map((reply) => reply.text);
      expect(texts).toEqual(Array(5).fill('run 1'));
      expect(calls).toBe(1);
    });

    it("never hands a waiting request the first one's cookie", async () => {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let calls = 0;
      const base = await serve(
        build([cacheMiddleware()], (_req, res) => {
          const run = ++calls;
          res.setHeader('Set-Cookie', `visitor=${run}`);
          void gate.then(() => res.end(`run ${run}`));
        }),
      );
      const arrived = requestsArrived(server!.server, 3);
      const replies = Array.from({ length: 3 }, () => send(base, '/cookie'));
      await arrived;
      release();
      const cookies = (await Promise.all(replies)).map((reply) => reply.headers['set-cookie']![0]);
      expect(new Set(cookies).size).toBe(3);
      expect(calls).toBe(3);
    });

    it('works split in two, update first and fetch last', async () => {
      const view = countingView();
      const base = await serve(build([updateCacheMiddleware(), varyOnHeaders('Accept-Language'), fetchFromCacheMiddleware()], view));
      const [first, second] = await twice(base, '/page');
      expect(first.headers['x-cache']).toBe('MISS');
      expect(second.headers['x-cache']).toBe('HIT');
      expect(second.headers['vary']).toBe('Accept-Language');
      expect(view.calls).toBe(1);
    });

    it('does not store anything with updateCacheMiddleware alone', async () => {
      const view = countingView();
      const base = await serve(build([updateCacheMiddleware()], view));
      const [, second] = await twice(base, '/page');
      expect(second.text).toBe('GET /page run 2');
    });

    it('uses the cache alias and key prefix it is given, and statusHeader: false', async () => {
      const view = countingView();
      const base = await serve(build([cachePage(60, { cache: 'other', keyPrefix: 'site', statusHeader: false })], view));
      const [, second] = await twice(base, '/page');
      expect(second.headers['x-cache']).toBeUndefined();
      expect(second.text).toBe('GET /page run 1');
      // A page is dropped through the cache that holds it; its tag `url:/page` is the same whatever the key prefix.
      await invalidatePage(`${base}/page`, { cache: 'default' });
      expect((await send(base, '/page')).text).toBe('GET /page run 1');
      await invalidatePage(`${base}/page`, { cache: 'other' });
      expect((await send(base, '/page')).text).toBe('GET /page run 2');
    });

    it('answers conditional requests on hits from the stored ETag, and 412 to a failing If-Match', async () => {
      const view = countingView();
      const base = await serve(build([cacheMiddleware(), conditionalGet()], view));
      const first = await send(base, '/page');
      const etag = first.headers['etag']!;
      expect(etag).toMatch(/^"[0-9a-f]{32}"$/);
      const notModified = await send(base, '/page', { headers: { 'If-None-Match': etag } });
      expect(notModified.status).toBe(304);
      expect(notModified.headers['x-cache']).toBe('HIT');
      expect(notModified.headers['etag']).toBe(etag);
      expect(notModified.body.length).toBe(0);
      expect((await send(base, '/page', { headers: { 'If-Match': '"other"' } })).status).toBe(412);
      expect((await send(base, '/page', { headers: { 'If-None-Match': '"other"' } })).status).toBe(200);
      expect(view.calls).toBe(1);
    });
  });

  /** A reply's headers but those that describe one sending (Date, Age and X-Cache aside: a HIT carries the MISS's other headers). */
  function pageHeaders(reply: Reply): Record<string, unknown> {
    const { date: _date, age: _age, 'x-cache': _xCache, expires: _expires, ...rest } = reply.headers;
    return rest;
  }

  /**
   * A hit's Expires: the MISS's while the MISS's browser lifetime lasts; a copy with none left (max-age
   * 0) has it counted from its sending, never before its Date.
   */
  function expectExpiresOfMiss(reply: Reply, miss: Reply, cacheControlSent: string): void {
    if (!/max-age=0\b/.test(cacheControlSent)) expect(reply.headers.expires).toBe(miss.headers.expires);
    else expect(Date.parse(reply.headers.expires!)).toBeGreaterThanOrEqual(Date.parse(reply.headers.date!));
  }

  describe.each(FLAVOURS)('what a hit sends downstream, on %s', (_flavour, build) => {
    // Each a list of middleware in the order they are used, and what the MISS says to browsers.
    const orders: Array<[string, () => Middleware[], string]> = [
      ['cachePage(300)', () => [cachePage(300)], 'max-age=300'],
      ['cachePage(300), cacheControl({ maxAge: 0 })', () => [cachePage(300), cacheControl({ maxAge: 0 })], 'max-age=0'],
      ['cacheControl({ maxAge: 0 }), cachePage(300)', () => [cacheControl({ maxAge: 0 }), cachePage(300)], 'max-age=0'],
      [
        'cacheControl({ public: true }), cacheMiddleware({ seconds: 120 })',
        () => [cacheControl({ public: true }), cacheMiddleware({ seconds: 120 })],
        'max-age=120, public',
      ],
      ['cacheMiddleware(), cacheControl({ maxAge: 30 })', () => [cacheMiddleware(), cacheControl({ maxAge: 30 })], 'max-age=30'],
      [
        'cacheControl({ maxAge: 600 }), cachePage(300, { browserMaxAge: 60 })',
        () => [cacheControl({ maxAge: 600 }), cachePage(300, { browserMaxAge: 60 })],
        'max-age=60',
      ],
      [
        'varyOnHeaders(Accept-Language), cachePage(300, { browserMaxAge: 0 }), cacheControl({ mustRevalidate: true })',
        () => [varyOnHeaders('Accept-Language'), cachePage(300, { browserMaxAge: 0 }), cacheControl({ mustRevalidate: true })],
        'must-revalidate, max-age=0',
      ],
      ['cacheMiddleware({ seconds: 300, browserMaxAge: 5 })', () => [cacheMiddleware({ seconds: 300, browserMaxAge: 5 })], 'max-age=5'],
    ];

    it.each(orders)('%s: the HIT carries the headers of the MISS that stored it', async (_name, middleware, cacheControlSent) => {
      const view = countingView((_req, res) => res.setHeader('ETag', '"v1"'));
      const base = await serve(build(middleware(), view));
      const [miss, hit] = await twice(base, '/page');
      expect([miss.headers['x-cache'], hit.headers['x-cache'], view.calls]).toEqual(['MISS', 'HIT', 1]);
      expect(miss.headers['cache-control']).toBe(cacheControlSent);
      expect(pageHeaders(hit)).toEqual(pageHeaders(miss));
      expectExpiresOfMiss(hit, miss, cacheControlSent);
      // A 304 from the stored page says the same to browsers.
      const notModified = await send(base, '/page', { headers: { 'If-None-Match': '"v1"' } });
      expect([notModified.status, notModified.headers['cache-control']]).toEqual([304, cacheControlSent]);
      expectExpiresOfMiss(notModified, miss, cacheControlSent);
    });

    it("sends a hit's Age and Expires by the cache's clock, and a copy older than browserMaxAge with that lifetime anew, within what the server's copy has left", async () => {
      const cache = caches.get('default');
      let clock = Math.floor(Date.now() / 1000);
      cache.now = () => clock;
      const base = await serve(build([cachePage(300, { browserMaxAge: 60 })], countingView()));
      const stored = clock;
      const lifetime = (reply: Reply) => [reply.headers['x-cache'], reply.headers['cache-control'], reply.headers.age, reply.headers.expires];
      expect(lifetime(await send(base, '/page'))).toEqual(['MISS', 'max-age=60', undefined, httpDate(stored + 60)]);
      clock = stored + 10;
      expect(lifetime(await send(base, '/page'))).toEqual(['HIT', 'max-age=60', '10', httpDate(stored + 60)]);
      clock = stored + 100;
      expect(lifetime(await send(base, '/page'))).toEqual(['HIT', 'max-age=60', '0', httpDate(stored + 160)]);
      clock = stored + 280;
      expect(lifetime(await send(base, '/page'))).toEqual(['HIT', 'max-age=20', '0', httpDate(stored + 300)]);
    });

    it("sends the Expires of a response it does not store (a 304 passing through) by the cache's clock", async () => {
      const cache = caches.get('default');
      // An hour ahead of the system's: a header read off the other clock would be an hour early.
      const clock = Math.floor(Date.now() / 1000) + 3600;
      cache.now = () => clock;
      const view = countingView((req, res) => {
        if (req.headers['if-none-match'] === '"v1"') res.statusCode = 304;
      });
      const base = await serve(build([cachePage(300, { browserMaxAge: 60 })], view));
      const passing = await send(base, '/page', { headers: { 'If-None-Match': '"v1"' } });
      expect([passing.status, passing.headers['x-cache'], passing.headers.expires]).toEqual([304, 'BYPASS', httpDate(clock + 60)]);
    });

    it('browserMaxAge sets the max-age and Expires sent on a MISS, a HIT and a 304, while the page is kept for its timeout', async () => {
      const view = countingView((req, res) => {
        if (req.headers['if-none-match'] === '"v1"') res.statusCode = 304;
      });
      const base = await serve(build([cachePage(300, { browserMaxAge: 60 })], view));
      const [miss, hit] = await twice(base, '/page');
      for (const reply of [miss, hit]) expect(reply.headers['cache-control']).toBe('max-age=60');
      // Expires is read off the cache's clock, Date off Node's, which renews its string once a second:
      // the two may stand a second apart across a second's turn.
      const lifetime = (Date.parse(String(miss.headers['expires'])) - Date.parse(String(miss.headers['date']))) / 1000;
      expect([59, 60, 61]).toContain(lifetime);
      // The HIT, younger than its browser lifetime, goes out aged: the same Expires.
      expect(hit.headers['expires']).toBe(miss.headers['expires']);
      // A 304 the view answers itself passes through with the same lifetime (Django patches 200 and 304).
      const passing = await send(base, '/other', { headers: { 'If-None-Match': '"v1"' } });
      expect([passing.status, passing.headers['cache-control']]).toEqual([304, 'max-age=60']);
      expect(() => cachePage(300, { browserMaxAge: -1 })).toThrow('cachePage: options.browserMaxAge must be a non-negative number of seconds (got -1)');
      expect(() => cacheMiddleware({ browserMaxAge: '60' as never })).toThrow(
        "cacheMiddleware: options.browserMaxAge must be a non-negative number of seconds (got '60')",
      );
    });
  });

  describe('the view decorators', () => {
    it.each(FLAVOURS)('cacheControl, neverCache, varyOnHeaders and varyOnCookie change the headers on %s', async (_flavour, build) => {
      const base = await serve(
        build([cacheControl({ maxAge: 30, public: true }), varyOnHeaders('Accept-Language'), varyOnCookie], (req, res) => {
          if (req.url === '/never') return neverCache(req, res, () => res.end('never'));
          res.setHeader('Cache-Control', 'private, max-age=60');
          res.setHeader('Vary', 'Accept-Encoding');
          res.end('ok');
        }),
      );
      const reply = await send(base, '/page');
      expect(reply.headers['cache-control']).toBe('max-age=30, public');
      expect(reply.headers['vary']).toBe('Accept-Encoding, Cookie, Accept-Language');
      const never = await send(base, '/never');
      // neverCache ran inside cacheControl, so cacheControl's merge came last: the smaller max-age, public over private.
      expect(never.headers['cache-control']).toBe('max-age=0, no-cache, no-store, must-revalidate, public');
    });

    it("neverCache alone gives Django's headers", async () => {
      const base = await serve(bare([neverCache], (_req, res) => res.end('x')));
      const reply = await send(base, '/');
      expect(reply.headers['cache-control']).toBe('max-age=0, no-cache, no-store, must-revalidate, private');
      expect(Math.abs(Date.parse(reply.headers['expires']!) - Date.now())).toBeLessThan(2000);
    });

    it('conditionalGet answers 304 and 412, and leaves no-store, HEAD and big bodies alone', async () => {
      const base = await serve(
        bare([conditionalGet({ maxBodyBytes: 100 })], (req, res) => {
          if (req.url === '/no-store') res.setHeader('Cache-Control', 'No-Store');
          res.setHeader('Last-Modified', 'Mon, 01 Jan 2007 01:54:21 GMT');
          res.end(req.url === '/big' ? 'y'.repeat(500) : 'hello');
        }),
      );
      const first = await send(base, '/');
      expect(first.headers['etag']).toBe('"5d41402abc4b2a76b9719d911017c592"');
      expect((await send(base, '/', { headers: { 'If-None-Match': first.headers['etag']! } })).status).toBe(304);
      expect((await send(base, '/', { headers: { 'If-Modified-Since': 'Tue, 02 Jan 2007 00:00:00 GMT' } })).status).toBe(304);
      expect((await send(base, '/', { headers: { 'If-Match': '"nope"' } })).status).toBe(412);
      expect((await send(base, '/', { headers: { 'If-Unmodified-Since': 'Mon, 01 Jan 2007 00:00:00 GMT' } })).status).toBe(412);
      expect((await send(base, '/no-store')).headers['etag']).toBeUndefined();
      expect((await send(base, '/', { method: 'HEAD' })).headers['etag']).toBeUndefined();
      const big = await send(base, '/big');
      expect(big.headers['etag']).toBeUndefined();
      expect(big.text).toBe('y'.repeat(500));
    });

    it('reads preconditions as RFC 9110 and Django do, over HTTP', async () => {
      const base = await serve(
        bare([conditionalGet()], (req, res) => {
          res.setHeader('Last-Modified', 'Mon, 01 Jan 2007 01:54:21 GMT');
          if (req.url === '/unquoted') res.setHeader('ETag', 'abc');
          res.end('hello');
        }),
      );
      const etag = '"5d41402abc4b2a76b9719d911017c592"';
      const status = async (path: string, headers: Record<string, string>) => (await send(base, path, { headers })).status;
      expect(await status('/', { 'If-Unmodified-Since': '0' })).toBe(200);
      expect(await status('/', { 'If-Modified-Since': '2030-01-01T00:00:00Z' })).toBe(200);
      expect(await status('/', { 'If-Modified-Since': 'Tue, 02 Jan 2007 00:00:00' })).toBe(200);
      expect(await status('/', { 'If-Modified-Since': 'Tuesday, 02-Jan-07 00:00:00 GMT' })).toBe(304);
      expect(await status('/', { 'If-None-Match': `"x",\t${etag}` })).toBe(304);
      expect(await status('/', { 'If-None-Match': etag, 'Cache-Control': 'no-cache' })).toBe(304);
      expect(await status('/unquoted', { 'If-None-Match': 'abc' })).toBe(200);
    });

    it('refuses bad options with a TypeError naming them', () => {
      expect(() => cacheMiddleware({ seconds: Number.NaN })).toThrow('cacheMiddleware: options.seconds must be a finite number of seconds (got NaN)');
      expect(() => cacheMiddleware({ maxBodyBytes: -1 })).toThrow('cacheMiddleware: options.maxBodyBytes must be a non-negative integer (got -1)');
      expect(() => cacheMiddleware({ statusHeader: 'X Cache' })).toThrow(
        "cacheMiddleware: options.statusHeader must be a header name or false (got 'X Cache')",
      );
      expect(() => cachePage('60' as never)).toThrow("cachePage: timeout must be a finite number of seconds (got '60')");
      expect(() => updateCacheMiddleware({ keyPrefix: 3 as never })).toThrow('updateCacheMiddleware: options.keyPrefix must be a string (got 3)');
      expect(() => cacheControl({ maxAge: -1 })).toThrow('cacheControl: directive maxAge must be a non-negative number of seconds (got -1)');
      expect(() => varyOnHeaders('Accept Language')).toThrow('varyOnHeaders: "Accept Language" is not a header name');
      expect(() => conditionalGet({ maxBodyBytes: 1.5 })).toThrow('conditionalGet: options.maxBodyBytes must be a non-negative integer (got 1.5)');
      expect(cacheMiddleware().name).toBe('cacheMiddleware');
    });
  });

  describe('the page cache with Express features', () => {
    it.each([
      ['Express 5', express5],
      ['Express 4', express4],
    ])('never stores a response that sets a cookie with res.cookie, and caches res.render and res.json on %s', async (_name, express) => {
      const app = express();
      let renders = 0;
      app.engine('tpl', (_path: string, options: object, callback: (error: unknown, html?: string) => void) => {
        renders++;
        callback(null, `<p>${(options as { name: string }).name}</p>`);
      });
      const views = mkdtempSync(join(tmpdir(), 'cachegrain-views-'));
      writeFileSync(join(views, 'page.tpl'), 'unused: the engine renders from its options');
      app.set('views', views);
      app.set('view engine', 'tpl');
      app.use(cacheMiddleware());
      app.get('/cookie', (_req, res) => void res.cookie('session', 'abc').send('cookie'));
      app.get('/render', (_req, res) => res.render('page', { name: 'Ada' }));
      app.get('/json', (_req, res) => void res.json({ ok: true }));
      const base = await serve(app as never);
      const cookie = await twice(base, '/cookie');
      expect(cookie[1].headers['x-cache']).toBe('BYPASS');
      expect(cookie[1].headers['set-cookie']).toEqual(['session=abc; Path=/']);
      const render = await twice(base, '/render');
      expect(render[1].text).toBe('<p>Ada</p>');
      expect(render[1].headers['x-cache']).toBe('HIT');
      expect(renders).toBe(1);
      const json = await twice(base, '/json');
      expect(json[1].headers['x-cache']).toBe('HIT');
      expect(json[1].headers['content-type']).toBe('application/json; charset=utf-8');
      // Express's own weak ETag is stored with the page and answers conditional hits.
      expect((await send(base, '/json', { headers: { 'If-None-Match': json[0].headers['etag']! } })).status).toBe(304);
    });

    it('honours trust proxy for the scheme and host in the key', async () => {
      const app = express5();
      app.set('trust proxy', true);
      const view = countingView();
      app.use(cacheMiddleware(), view as never);
      const base = await serve(app as never);
      await send(base, '/page', { headers: { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'shop.example' } });
      expect((await send(base, '/page')).headers['x-cache']).toBe('MISS');
      expect((await send(base, '/page', { headers: { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'shop.example' } })).headers['x-cache']).toBe('HIT');
      await invalidatePage('https://shop.example/page');
      expect((await send(base, '/page', { headers: { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'shop.example' } })).headers['x-cache']).toBe('MISS');
    });

    it('keys a page by its absolute URL, whether its host comes from Host or from a trusted proxy', async () => {
      const app = express5();
      app.set('trust proxy', true);
      const view = countingView();
      app.use(cacheMiddleware(), view as never);
      const base = await serve(app as never);
      const cacheOf = async (path: string, headers: Record<string, string>) => (await send(base, path, { headers })).headers['x-cache'];
      expect(await cacheOf('/page', { Host: 'shop.example' })).toBe('MISS');
      expect(await cacheOf('/page', { Host: 'shop.example' })).toBe('HIT');
      expect(await cacheOf('/page', { 'X-Forwarded-Host': 'shop.example' })).toBe('HIT');
      expect(await cacheOf('/page', { Host: 'other.example' })).toBe('MISS');
      expect(await cacheOf('/page?q=1', { Host: 'shop.example' })).toBe('MISS');
      expect(await cacheOf('/page', { Host: 'shop.example', 'X-Forwarded-Proto': 'https' })).toBe('MISS');
      expect(await cacheOf('/page', { Host: 'other.example' })).toBe('HIT');
      expect(view.calls).toBe(4);
    });

    it.each([
      ['before', true],
      ['after', false],
    ])('keeps Accept-Encoding variants apart with compression() %s the cache', async (_where, compressionFirst) => {
      const app = express5();
      const view = countingView((_req, res) => void res.write('z'.repeat(5000)));
      const squeeze = compression({ threshold: 0 });
      if (compressionFirst) app.use(squeeze, cacheMiddleware());
      else app.use(cacheMiddleware(), squeeze);
      app.use(view as never);
      const base = await serve(app as never);
      const gzip = await twice(base, '/page', { headers: { 'Accept-Encoding': 'gzip' } });
      const plain = await twice(base, '/page', { headers: { 'Accept-Encoding': 'identity' } });
      for (const reply of [gzip[0], gzip[1]]) {
        expect(reply.headers['content-encoding']).toBe('gzip');
        expect(gunzipSync(reply.body).toString()).toMatch(/^z{5000}GET \/page run 1$/);
      }
      for (const reply of [plain[0], plain[1]]) {
        expect(reply.headers['content-encoding']).toBeUndefined();
        expect(reply.text).toMatch(/^z{5000}GET \/page run \d$/);
      }
      expect(gzip[1].headers['x-cache']).toBe('HIT');
      expect(plain[1].headers['x-cache']).toBe('HIT');
      // Before the cache, compression re-encodes one stored identity body; after it, each encoding is its own variant.
      expect(view.calls).toBe(compressionFirst ? 1 : 2);
    });
  });
});
