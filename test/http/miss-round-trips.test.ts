/**
 * What a MISS on Redis waits for beyond its render: one round trip, whatever the page's URL has seen
 * (never cached, a variant of it cached, invalidated). The header list and the page go to the server
 * together, the header list as the lookup read it is not read again, and what the store owes the
 * path's tag versions is done while the view renders. So is what it owes a tag the view adds, read as
 * it is added: a tag added as the view sends its page costs one round trip more (its version read,
 * its first use checked). Counted by a proxy between the
 * application and a real redis-server, which holds each answer until the application has sent all it
 * sends without one (see round-trip-proxy.ts): commands sent together are one round however their
 * packets fall.
 */
import { once } from 'node:events';
import type { AddressInfo, Server } from 'node:net';
import express from 'express';
import { Liquid } from 'liquidjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installCacheTag } from '../../src/engines/liquid.js';
import { cacheMiddleware } from '../../src/frameworks/express.js';
import { addCacheTags, invalidatePage } from '../../src/http/index.js';
import { caches, configureCaches, RedisCache } from '../../src/index.js';
import { type RoundTripProxy, roundTripProxy } from '../setup/round-trip-proxy.js';

const redisUrl = process.env.CACHEGRAIN_TEST_REDIS_URL;
if (redisUrl === undefined) throw new Error('CACHEGRAIN_TEST_REDIS_URL is not set: the test setup starts redis-server (Debian package redis-server)');

let proxy: RoundTripProxy;
let cache: RedisCache;
let server: Server;
let origin: string;
/** The proxy's count of rounds when the view of each path last sent its page. */
const roundsAtRender = new Map<string, number>();
/** What runs while the view of a path renders, once it has added its tag (an invalidation landing mid-render). */
const midRender = new Map<string, () => Promise<unknown>>();

/**
 * A view's reads of its data, over two turns of the event loop and for as long as the page cache's
 * calls begun as the view began are in flight: the rounds counted after the render are what the MISS
 * waits for beyond it, however slow the machine makes a round trip against a turn of the loop.
 */
const readData = async () => {
  for (let turn = 0; turn < 2; turn++) await new Promise((resolve) => setImmediate(resolve));
  await cache.settled();
};

beforeAll(async () => {
  proxy = await roundTripProxy(new URL(redisUrl));
  cache = new RedisCache({ location: proxy.url, keyPrefix: `miss-round-trips-${process.pid}` });
  const app = express();
  app.use(cacheMiddleware({ cache, seconds: 600 }));
  app.get('/languages/:page', async (req, res) => {
    await readData();
    roundsAtRender.set(req.path, proxy.rounds);
    res
      .vary('Accept-Language')
      .type('html')
      .send(`<p>${req.params.page} in ${req.get('accept-language') ?? 'any language'}</p>`);
  });
  app.get('/tagged/:page', async (req, res) => {
    await readData();
    // Its reads of its data outlast what the store does ahead for its path's tags.
    await cache.settled();
    addCacheTags(res, `article:${req.params.page}`);
    roundsAtRender.set(req.path, proxy.rounds);
    res.type('html').send(`<p>${req.params.page}, tagged</p>`);
  });
  app.get('/tagged-early/:page', async (req, res) => {
    addCacheTags(res, `article:${req.params.page}`);
    // Its reads of its data outlast the read of its tag's version, begun as the tag was added.
    await cache.settled();
    await midRender.get(req.path)?.();
    await readData();
    roundsAtRender.set(req.path, proxy.rounds);
    res.type('html').send(`<p>${req.params.page}, tagged early</p>`);
  });
  app.get('/:page', async (req, res) => {
    await readData();
    roundsAtRender.set(req.path, proxy.rounds);
    res.type('html').send(`<p>${req.params.page}</p>`);
  });
  server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // The cache's first tagged write creates its tag horizon (raised again once in a quarter of a page's
  // lifetime): round trips of their own, made while that one view renders.
  await visit('/horizon');
});
afterAll(async () => {
  server.close();
  await cache.close();
  await proxy.close();
});

/** The response to a GET of `path`, and the round trips to Redis begun after its view sent the page (none on a hit). */
async function visit(path: string, headers: Record<string, string> = {}): Promise<{ label: string | null; body: string; roundsAfterRender: number }> {
  roundsAtRender.delete(path);
  const response = await fetch(origin + path, { headers });
  const body = await response.text();
  const atRender = roundsAtRender.get(path);
  return { label: response.headers.get('x-cache'), body, roundsAfterRender: atRender === undefined ? 0 : proxy.rounds - atRender };
}

describe('a MISS on Redis', () => {
  it('of a URL never cached waits for one round trip beyond its render, which stores the page and its header list', async () => {
    expect(await visit('/first')).toEqual({ label: 'MISS', body: '<p>first</p>', roundsAfterRender: 1 });
    expect(await visit('/first')).toEqual({ label: 'HIT', body: '<p>first</p>', roundsAfterRender: 0 });
  });

  it('of a variant of a cached URL waits for one round trip beyond its render', async () => {
    expect(await visit('/languages/about', { 'accept-language': 'en' })).toMatchObject({ label: 'MISS', roundsAfterRender: 1 });
    expect(await visit('/languages/about', { 'accept-language': 'cy' })).toEqual({ label: 'MISS', body: '<p>about in cy</p>', roundsAfterRender: 1 });
    expect(await visit('/languages/about', { 'accept-language': 'cy' })).toMatchObject({ label: 'HIT', body: '<p>about in cy</p>' });
    expect(await visit('/languages/about', { 'accept-language': 'en' })).toMatchObject({ label: 'HIT', body: '<p>about in en</p>' });
  });

  it('of an invalidated URL waits for one round trip beyond its render, and the page it stores is current', async () => {
    expect(await visit('/news')).toMatchObject({ label: 'MISS', roundsAfterRender: 1 });
    await invalidatePage('/news', { cache });
    expect(await visit('/news')).toEqual({ label: 'MISS', body: '<p>news</p>', roundsAfterRender: 1 });
    expect(await visit('/news')).toMatchObject({ label: 'HIT' });
    await invalidatePage('/news', { cache });
    expect(await visit('/news')).toMatchObject({ label: 'MISS', roundsAfterRender: 1 });
  });

  it("of a page whose view adds a tag reads that tag's version and checks its first use together before it stores", async () => {
    expect(await visit('/tagged/one')).toEqual({ label: 'MISS', body: '<p>one, tagged</p>', roundsAfterRender: 2 });
    expect(await visit('/tagged/one')).toMatchObject({ label: 'HIT' });
  });

  it('of a page whose view adds a tag before it reads its data waits for one round trip beyond its render, the tag read as it was added', async () => {
    expect(await visit('/tagged-early/two')).toEqual({ label: 'MISS', body: '<p>two, tagged early</p>', roundsAfterRender: 1 });
    expect(await visit('/tagged-early/two')).toMatchObject({ label: 'HIT' });
    // Invalidated, the tag has a version, which the read ahead extends for the page.
    await cache.invalidateTags(['article:two']);
    expect(await visit('/tagged-early/two')).toMatchObject({ label: 'MISS', roundsAfterRender: 1 });
    expect(await visit('/tagged-early/two')).toMatchObject({ label: 'HIT' });
  });

  it('of a page whose tag is invalidated after its version was read ahead, while the view renders, stores no page that hides the invalidation', async () => {
    midRender.set('/tagged-early/three', () => cache.invalidateTags(['article:three']));
    expect(await visit('/tagged-early/three')).toMatchObject({ label: 'MISS' });
    midRender.delete('/tagged-early/three');
    await cache.settled();
    expect(await visit('/tagged-early/three')).toMatchObject({ label: 'MISS' });
    expect(await visit('/tagged-early/three')).toMatchObject({ label: 'HIT' });
  });
});

describe('a MISS on Redis of a page rendered with digests on, in a cache that purges an edge', () => {
  let templatedServer: Server;
  let templatedOrigin = '';
  beforeAll(async () => {
    // The edge is never called: nothing here invalidates. Its pages carry a tag for each template.
    await configureCaches({
      default: {
        backend: 'redis',
        location: proxy.url,
        keyPrefix: `miss-round-trips-templates-${process.pid}`,
        purge: [{ edge: 'varnish', url: 'http://127.0.0.1:9', tags: 'ban' }],
      },
    });
    const liquid = installCacheTag(new Liquid({ root: new URL('./fixtures/deploy-views', import.meta.url).pathname, extname: '.liquid' }), { digests: true });
    const app = express();
    app.use(cacheMiddleware({ seconds: 600 }));
    app.get('/templated/:page', async (req, res) => {
      const html = (await liquid.renderFile('index')) as string;
      // The rest of its work outlasts the read of its templates' tags, begun as they rendered.
      await caches.settled();
      await readData();
      roundsAtRender.set(req.path, proxy.rounds);
      res.type('html').send(html);
    });
    templatedServer = app.listen(0, '127.0.0.1');
    await once(templatedServer, 'listening');
    templatedOrigin = `http://127.0.0.1:${(templatedServer.address() as AddressInfo).port}`;
    // The first render of each template in this process records it for later deploys, behind.
    await fetch(`${templatedOrigin}/templated/first`).then((response) => response.text());
    await caches.settled();
  });
  afterAll(async () => {
    templatedServer.close();
    await caches.closeAll();
  });

  it("has its templates' tags read as they render, and waits for one round trip beyond its render", async () => {
    roundsAtRender.delete('/templated/shop');
    const response = await fetch(`${templatedOrigin}/templated/shop`);
    expect(await response.text()).toContain('<h1>Shop</h1>');
    expect(response.headers.get('x-cache')).toBe('MISS');
    expect(proxy.rounds - roundsAtRender.get('/templated/shop')!).toBe(1);
    expect((await fetch(`${templatedOrigin}/templated/shop`)).headers.get('x-cache')).toBe('HIT');
  });
});
