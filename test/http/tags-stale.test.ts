/**
 * Tags and stale windows for pages, over real HTTP on every stack of stacks.ts: a page carries the
 * tags of what was rendered into it and `url:<path>`, and goes when any of them is invalidated; a
 * page past its timeout is served stale (`X-Cache: STALE`) while one refresh renders it behind, and
 * stands in for a view that fails. The cache's clock is moved by hand; the refresh is a real request.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addCacheTags, invalidatePage } from '../../src/frameworks/express.js';
import { caches, configureCaches, invalidateTags } from '../../src/index.js';
import { listen, type Reply, send } from './client.js';
import { eventually } from '../setup/eventually.js';
import { cacheMiddleware, cachePage, STACKS } from './stacks.js';

let location = 0;
let clock = 1_800_000_000;
let server: Awaited<ReturnType<typeof listen>> | undefined;
beforeEach(async () => {
  await configureCaches({ default: { backend: 'locmem', location: `tags-stale-${++location}` } });
  clock = 1_800_000_000;
  caches.get('default').now = () => clock;
});
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  server = await listen(handler);
  return server.url;
}

/** A view that counts its runs, says which run made the page, and runs `extra` first (which may wait). */
function countingView(extra: (req: IncomingMessage, res: ServerResponse, run: number) => unknown = () => undefined) {
  const view = Object.assign(
    async (req: IncomingMessage, res: ServerResponse) => {
      const run = ++view.calls;
      await extra(req, res, run);
      if (res.writableEnded) return;
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.end(`${req.url} run ${run}`);
    },
    { calls: 0 },
  );
  return view;
}

const summary = (reply: Reply) => [reply.headers['x-cache'], reply.text];

describe.each(STACKS)('page tags on %s', (_flavour, build) => {
  it('a page goes when a tag the view added is invalidated, and only that page', async () => {
    const view = countingView((req, res) => addCacheTags(res, req.url === '/three' ? 'item:3' : 'item:4'));
    const base = await serve(build([cacheMiddleware()], view));
    await send(base, '/three');
    await send(base, '/four');
    expect(summary(await send(base, '/three'))).toEqual(['HIT', '/three run 1']);
    await invalidateTags(['item:3']);
    expect(summary(await send(base, '/three'))).toEqual(['MISS', '/three run 3']);
    expect(summary(await send(base, '/four'))).toEqual(['HIT', '/four run 2']);
  });

  it('every page carries url:<path>: invalidating it drops the path for every query, and invalidatePage is that', async () => {
    const view = countingView();
    const base = await serve(build([cacheMiddleware()], view));
    for (const path of ['/news', '/news?page=2', '/sport']) await send(base, path);
    await invalidateTags(['url:/news']);
    expect((await send(base, '/news')).headers['x-cache']).toBe('MISS');
    expect((await send(base, '/news?page=2')).headers['x-cache']).toBe('MISS');
    expect((await send(base, '/sport')).headers['x-cache']).toBe('HIT');
    await invalidatePage('/sport');
    expect((await send(base, '/sport')).headers['x-cache']).toBe('MISS');
  });

  it('tagHeader sends the page tags for a CDN, on the miss and on hits', async () => {
    const view = countingView((_req, res) => addCacheTags(res, 'item:3', 'section:1'));
    const base = await serve(build([cachePage(60, { tagHeader: 'Cache-Tag' })], view));
    const [first, second] = [await send(base, '/page'), await send(base, '/page')];
    const host = new URL(base).host;
    // Comma-separated, as Cloudflare and Akamai read Cache-Tag.
    expect(first.headers['cache-tag']).toBe(`item:3,section:1,url:/page,url://${host}/page`);
    expect(second.headers['cache-tag']).toBe(`item:3,section:1,url:/page,url://${host}/page`);
    expect(second.headers['x-cache']).toBe('HIT');
    const plain = await serve(build([cachePage(60)], countingView()));
    expect((await send(plain, '/page')).headers['cache-tag']).toBeUndefined();
  });

  it('refuses bad tags and a bad tagHeader, naming them', () => {
    expect(() => cachePage(60, { tagHeader: 'Cache Tag' })).toThrow(/cachePage: options.tagHeader must be a header name, false or .* \(got 'Cache Tag'\)/);
    expect(() => addCacheTags({} as ServerResponse, '')).toThrow(/addCacheTags: tags must be non-empty strings \(got ''\)/);
  });
});

describe.each(STACKS)('stale pages on %s', (_flavour, build) => {
  it('an expired page is answered stale to every visitor at once while one refresh renders it behind', async () => {
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    // The refresh (run 2) waits until every visitor has had an answer: a visitor who waited for it would never get one.
    const view = countingView((_req, _res, run) => (run === 2 ? gate : undefined));
    const base = await serve(build([cachePage(1, { staleWhileRevalidate: 60 })], view));
    expect(summary(await send(base, '/feed'))).toEqual(['MISS', '/feed run 1']);
    clock += 2;
    const replies = await Promise.all(Array.from({ length: 50 }, () => send(base, '/feed')));
    expect(new Set(replies.map((reply) => summary(reply).join(' ')))).toEqual(new Set(['STALE /feed run 1']));
    openGate();
    await eventually(async () => expect(summary(await send(base, '/feed'))).toEqual(['HIT', '/feed run 2']));
    expect(view.calls).toBe(2);
  });

  it('caches.settled() waits for the refresh behind a stale page, until its page is stored', async () => {
    let entered!: () => void;
    const refreshing = new Promise<void>((resolve) => (entered = resolve));
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    // The refresh (run 2) renders on past the turn its gate opens in, as a view that reads a database does.
    const view = countingView((_req, _res, run) => {
      if (run !== 2) return undefined;
      entered();
      return gate.then(() => new Promise(setImmediate));
    });
    const base = await serve(build([cachePage(1, { staleWhileRevalidate: 60 })], view));
    await send(base, '/feed');
    clock += 2;
    expect(summary(await send(base, '/feed'))).toEqual(['STALE', '/feed run 1']);
    await refreshing;
    const cache = caches.get('default');
    const setsBefore = cache.stats().sets;
    const settled = caches.settled();
    openGate();
    await settled;
    expect(cache.stats().sets, 'the refreshed page is stored').toBeGreaterThan(setsBefore);
    expect(summary(await send(base, '/feed'))).toEqual(['HIT', '/feed run 2']);
  });

  it("advertises its stale windows downstream on the MISS and the HIT, the longer of the layer's and the view's", async () => {
    const layered = await serve(build([cacheMiddleware({ seconds: 60, staleWhileRevalidate: 30, staleIfError: 600 })], countingView()));
    const miss = await send(layered, '/s');
    expect([miss.headers['x-cache'], miss.headers['cache-control']]).toEqual(['MISS', 'max-age=60, stale-while-revalidate=30, stale-if-error=600']);
    const hit = await send(layered, '/s');
    expect([hit.headers['x-cache'], hit.headers['cache-control']]).toEqual(['HIT', 'max-age=60, stale-while-revalidate=30, stale-if-error=600']);
    await server!.close();
    const viewSays = countingView((_req, res) => res.setHeader('Cache-Control', 'max-age=60, stale-while-revalidate=90'));
    const own = await serve(build([cachePage(60, { staleWhileRevalidate: 30 })], viewSays));
    expect((await send(own, '/v')).headers['cache-control']).toBe('max-age=60, stale-while-revalidate=90');
    expect((await send(own, '/v')).headers['cache-control']).toBe('max-age=60, stale-while-revalidate=90');
    await server!.close();
    const plain = await serve(build([cachePage(60)], countingView()));
    expect((await send(plain, '/p')).headers['cache-control']).toBe('max-age=60');
  });

  it("honours the view's Cache-Control: stale-while-revalidate", async () => {
    const view = countingView((_req, res) => res.setHeader('Cache-Control', 'max-age=1, stale-while-revalidate=30'));
    const base = await serve(build([cacheMiddleware()], view));
    await send(base, '/feed');
    clock += 2;
    expect(summary(await send(base, '/feed'))).toEqual(['STALE', '/feed run 1']);
    await eventually(async () => expect(summary(await send(base, '/feed'))).toEqual(['HIT', '/feed run 2']));
    clock += 40; // past max-age and the stale window: a miss again
    expect(summary(await send(base, '/feed'))).toEqual(['MISS', '/feed run 3']);
  });

  it('staleIfError: a view that throws or answers 5xx is replaced by the stale page, and reported', async () => {
    const errors: Error[] = [];
    caches.get('default').on('error', (error: Error) => errors.push(error));
    const view = countingView((_req, res, run) => {
      if (run === 2) throw new Error('database down');
      if (run === 3) {
        res.statusCode = 503;
        res.end('busy');
      }
    });
    const base = await serve(build([cachePage(1, { staleIfError: 600 })], view));
    await send(base, '/feed');
    clock += 2;
    for (let i = 0; i < 2; i++) {
      const reply = await send(base, '/feed');
      expect([reply.status, ...summary(reply)]).toEqual([200, 'STALE', '/feed run 1']);
    }
    expect(errors.map((error) => error.message)).toEqual([
      expect.stringMatching(/the view for http:\/\/127\.0\.0\.1:\d+\/feed answered 500; the stale page was sent instead/),
      expect.stringMatching(/answered 503/),
    ]);
    expect(summary(await send(base, '/feed'))).toEqual(['MISS', '/feed run 4']);
    expect(summary(await send(base, '/feed'))).toEqual(['HIT', '/feed run 4']);
  });

  it('a soft invalidation serves the page stale once while it is rendered again', async () => {
    const view = countingView((_req, res) => addCacheTags(res, 'item:3'));
    const base = await serve(build([cacheMiddleware({ staleWhileRevalidate: 60 })], view));
    await send(base, '/item');
    await invalidateTags(['item:3'], { soft: true });
    expect(summary(await send(base, '/item'))).toEqual(['STALE', '/item run 1']);
    await eventually(async () => expect(summary(await send(base, '/item'))).toEqual(['HIT', '/item run 2']));
    await invalidateTags(['item:3']);
    expect(summary(await send(base, '/item'))).toEqual(['MISS', '/item run 3']);
  });

  it('a page without a stale window is a miss after a soft invalidation', async () => {
    const view = countingView((_req, res) => addCacheTags(res, 'item:3'));
    const base = await serve(build([cacheMiddleware()], view));
    await send(base, '/item');
    await invalidateTags(['item:3'], { soft: true });
    expect(summary(await send(base, '/item'))).toEqual(['MISS', '/item run 2']);
  });
});

describe('stale-page options', () => {
  it('refuses bad values, naming them', () => {
    expect(() => cachePage(60, { staleWhileRevalidate: -1 })).toThrow(/cachePage: options.staleWhileRevalidate must be a non-negative number \(got -1\)/);
    expect(() => cacheMiddleware({ staleIfError: Number.NaN })).toThrow(/cacheMiddleware: options.staleIfError must be a non-negative number/);
    expect(() => cacheMiddleware({ lock: 'yes' as never })).toThrow(/cacheMiddleware: options.lock must be a boolean \(got 'yes'\)/);
  });
});
