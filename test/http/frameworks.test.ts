/**
 * Fastify, Koa and Hono as their users write them: the page cache installed as each
 * adapter documents it, in front of the framework's own handlers sending text, JSON and streams,
 * routes named by the framework's patterns, tags added by a handler, options refused naming the
 * function, and pages rendered by the framework's usual view rendering with cached fragments in them.
 * The conformance suite runs the page cache's rules over every stack; this is what lies beside it.
 */
import { once } from 'node:events';
import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import fastifyView from '@fastify/view';
import { serve } from '@hono/node-server';
import Router from '@koa/router';
import views from '@ladjs/koa-views';
import ejs from 'ejs';
import { Eta } from 'eta';
import Fastify from 'fastify';
import { Hono } from 'hono';
import Koa from 'koa';
import { Liquid } from 'liquidjs';
import nunjucks from 'nunjucks';
import pug from 'pug';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import * as ejsTag from '../../src/engines/ejs.js';
import * as etaTag from '../../src/engines/eta.js';
import * as fastifyCache from '../../src/frameworks/fastify.js';
import * as honoCache from '../../src/frameworks/hono.js';
import * as koaCache from '../../src/frameworks/koa.js';
import * as liquidTag from '../../src/engines/liquid.js';
import * as nunjucksTag from '../../src/engines/nunjucks.js';
import * as pugTag from '../../src/engines/pug.js';
import { caches, configureCaches, invalidateTags, LocMemCache, makeTemplateFragmentKey } from '../../src/index.js';
import { pageStats, resetPageStats } from '../../src/http/index.js';
import { FIXTURES } from '../fragments/engines.js';
import { silenceableProxy } from '../setup/silenceable-proxy.js';
import { startSiteProcess } from './fixtures/site-process.js';

const ITEMS = [
  { id: 1, title: 'One & only' },
  { id: 2, title: '<Two>' },
  { id: 3, title: 'Three' },
];
const PAGE = '<html><body><aside>1<p>Hello ann</p></aside><ul><li>21. One &amp; only</li><li>32. &lt;Two&gt;</li><li>43. Three</li></ul></body></html>';
const normalize = (html: string) => html.replace(/>\s+</g, '><').trim();

/** What a site's handlers count and render with. */
interface Site {
  url: string;
  /** Handler calls, by route. */
  calls: Record<string, number>;
  /** Bodies of fragments rendered. */
  counted: number;
  close(): Promise<void>;
}

type Engine = 'nunjucks' | 'eta' | 'ejs' | 'pug' | 'liquid';

interface Framework {
  name: string;
  /** The engines whose pages the framework's usual view rendering renders here. */
  engines: Engine[];
  /** A site: the page cache on every route (`perRoute` false) or on `/cached` alone; `/page` renders with `engine`. */
  site(perRoute: boolean, engine: Engine): Promise<Site>;
  /** Installs the page cache with options it must refuse; the error is the framework's, thrown or rejected. */
  refuse(options: Record<string, unknown>): Promise<unknown>;
  /** The name the refused options' error names. */
  refusedBy: string;
}

const text = (site: Site, route: string) => `${route} ${++site.calls[route]!}`;
const newSite = (): Omit<Site, 'url' | 'close'> => ({ calls: { text: 0, json: 0, stream: 0, item: 0, cached: 0, fresh: 0, page: 0 }, counted: 0 });
const locals = (site: Omit<Site, 'url' | 'close'>) => ({ user: 'ann', items: ITEMS, count: () => ++site.counted });
const streamOf = (site: Site) => Readable.from(['chunk a, ', `chunk ${++site.calls.stream!}`]);
const address = (server: Server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
const closing = (server: Server) => () => new Promise<void>((resolve) => server.close(() => resolve()));

const nunjucksEnv = () => nunjucksTag.installCacheTag(new nunjucks.Environment(new nunjucks.FileSystemLoader(`${FIXTURES}nunjucks`), { autoescape: true }));
const liquidOf = () => liquidTag.installCacheTag(new Liquid({ root: `${FIXTURES}liquid`, extname: '.liquid', outputEscape: 'escape' }));
ejsTag.installCacheTag(ejs);
pugTag.installCacheTag(pug);

const fastify: Framework = {
  name: 'Fastify',
  engines: ['nunjucks', 'eta', 'ejs', 'pug', 'liquid'],
  async site(perRoute, engine) {
    const app = Fastify();
    const site = newSite() as Site;
    await app.register(fastifyCache.cachegrain, perRoute ? { site: false } : { seconds: 600 });
    const engines: Record<Engine, { engine: object; templates: string; options?: object }> = {
      nunjucks: {
        engine: { nunjucks },
        templates: `${FIXTURES}nunjucks`,
        options: { onConfigure: (env: nunjucks.Environment) => nunjucksTag.installCacheTag(env) },
      },
      eta: { engine: { eta: new Eta({ plugins: [etaTag.cachePlugin()] }) }, templates: `${FIXTURES}eta`, options: { async: true } },
      ejs: { engine: { ejs }, templates: `${FIXTURES}ejs`, options: { async: true } },
      pug: { engine: { pug }, templates: `${FIXTURES}pug` },
      liquid: { engine: { liquid: liquidOf() }, templates: `${FIXTURES}liquid` },
    };
    const { engine: viewEngine, templates, options } = engines[engine];
    await app.register(fastifyView, { engine: viewEngine, root: templates, options, production: false } as never);
    app.get('/text', async (_request, reply) => reply.type('text/plain').send(text(site, 'text')));
    app.get('/json', async () => ({ route: 'json', n: ++site.calls.json! }));
    app.get('/stream', async (_request, reply) => reply.type('text/plain').send(streamOf(site)));
    app.get<{ Params: { id: string } }>('/items/:id', async (request, reply) => {
      fastifyCache.addCacheTags(reply, `item:${request.params.id}`);
      return `item ${request.params.id} ${++site.calls.item!}`;
    });
    app.get('/cached', { config: { cachePage: 60 } }, async () => text(site, 'cached'));
    app.get('/fresh', async () => text(site, 'fresh'));
    app.get('/page', async (_request, reply) => {
      site.calls.page!++;
      return reply.view(engine === 'liquid' || engine === 'pug' || engine === 'ejs' ? `page.${engine}` : 'page', locals(site));
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    return Object.assign(site, { url: address(app.server), close: () => app.close() });
  },
  async refuse(options) {
    const app = Fastify();
    try {
      await app.register(fastifyCache.cachegrain, options);
      await app.ready();
    } finally {
      await app.close();
    }
  },
  refusedBy: 'cachegrain',
};

const koa: Framework = {
  name: 'Koa',
  engines: ['nunjucks', 'pug'],
  async site(perRoute, engine) {
    const app = new Koa();
    app.silent = true;
    const site = newSite() as Site;
    const router = new Router();
    if (!perRoute) app.use(koaCache.cacheMiddleware({ seconds: 600 }));
    // koa-views renders through consolidate, which takes a configured Nunjucks environment and requires Pug.
    app.use(views(FIXTURES, { map: { njk: 'nunjucks', pug: 'pug' }, options: { nunjucksEnv: nunjucksEnv() } }));
    router.get('/text', (ctx) => {
      ctx.type = 'text/plain';
      ctx.body = text(site, 'text');
    });
    router.get('/json', (ctx) => {
      ctx.body = { route: 'json', n: ++site.calls.json! };
    });
    router.get('/stream', (ctx) => {
      ctx.type = 'text/plain';
      ctx.body = streamOf(site);
    });
    router.get('/items/:id', (ctx) => {
      koaCache.addCacheTags(ctx, `item:${ctx.params.id}`);
      ctx.body = `item ${ctx.params.id} ${++site.calls.item!}`;
    });
    router.get('/cached', koaCache.cachePage(60) as never, (ctx) => {
      ctx.body = text(site, 'cached');
    });
    router.get('/fresh', (ctx) => {
      ctx.body = text(site, 'fresh');
    });
    router.get('/page', async (ctx) => {
      site.calls.page!++;
      await (ctx as unknown as { render(view: string, locals: object): Promise<void> }).render(
        engine === 'pug' ? 'pug/page.pug' : 'nunjucks/page.njk',
        locals(site),
      );
    });
    app.use(router.routes());
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return Object.assign(site, { url: address(server), close: closing(server) });
  },
  async refuse(options) {
    new Koa().use(koaCache.cacheMiddleware(options as never) as Koa.Middleware);
  },
  refusedBy: 'cacheMiddleware',
};

const hono: Framework = {
  name: 'Hono',
  engines: ['liquid', 'nunjucks'],
  async site(perRoute, engine) {
    const app = new Hono();
    const site = newSite() as Site;
    if (!perRoute) app.use(honoCache.cacheMiddleware({ seconds: 600 }));
    const liquid = liquidOf();
    const env = nunjucksEnv();
    app.get('/text', (c) => c.text(text(site, 'text')));
    app.get('/json', (c) => c.json({ route: 'json', n: ++site.calls.json! }));
    app.get('/stream', (c) => c.body(Readable.toWeb(streamOf(site)) as ReadableStream, 200, { 'Content-Type': 'text/plain' }));
    app.get('/items/:id', (c) => {
      honoCache.addCacheTags(c, `item:${c.req.param('id')}`);
      return c.text(`item ${c.req.param('id')} ${++site.calls.item!}`);
    });
    app.get('/cached', honoCache.cachePage(60), (c) => c.text(text(site, 'cached')));
    app.get('/fresh', (c) => c.text(text(site, 'fresh')));
    // Hono renders HTML with a render call of the user's: the page's promise goes to c.html.
    app.get('/page', (c) => {
      site.calls.page!++;
      return c.html(engine === 'liquid' ? liquid.renderFile('page', locals(site)) : nunjucksTag.render(env, 'page.njk', locals(site)));
    });
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
    await once(server, 'listening');
    return Object.assign(site, { url: address(server), close: closing(server) });
  },
  async refuse(options) {
    new Hono().use(honoCache.cacheMiddleware(options as never));
  },
  refusedBy: 'cacheMiddleware',
};

async function get(site: Site, path: string) {
  const response = await fetch(`${site.url}${path}`);
  return { status: response.status, cache: response.headers.get('x-cache'), type: response.headers.get('content-type'), body: await response.text() };
}

/** The response to a request sent once the MISS of `path` arrived: answered from the page stored before that response ended. */
async function storedHit(site: Site, path: string) {
  const hit = await get(site, path);
  expect(hit.cache, path).toBe('HIT');
  return hit;
}

let serial = 0;
/** A server's deadline. */
const DEADLINE_MS = 1000;

describe.each([fastify, koa, hono])('$name', (framework) => {
  let site: Site | undefined;
  beforeEach(async () => {
    resetPageStats();
    await configureCaches({ default: { backend: 'locmem', location: `frameworks-${framework.name}-${++serial}` } });
  });
  afterEach(async () => {
    await site?.close();
    site = undefined;
  });
  afterAll(() => caches.closeAll());

  it("caches the framework's own text, JSON and streamed responses: a MISS, then a HIT with the same bytes and type, the handler run once", async () => {
    site = await framework.site(false, framework.engines[0]!);
    for (const path of ['/text', '/json', '/stream']) {
      const miss = await get(site, path);
      expect([miss.status, miss.cache], path).toEqual([200, 'MISS']);
      const hit = await storedHit(site, path);
      expect([hit.body, hit.type], path).toEqual([miss.body, miss.type]);
    }
    expect(JSON.parse((await get(site, '/json')).body)).toEqual({ route: 'json', n: 1 });
    expect((await get(site, '/stream')).body).toBe('chunk a, chunk 1');
    expect([site.calls.text, site.calls.json, site.calls.stream]).toEqual([1, 1, 1]);
  });

  it('caches one route by its own config or middleware, and leaves the others alone', async () => {
    site = await framework.site(true, framework.engines[0]!);
    expect((await get(site, '/cached')).cache).toBe('MISS');
    expect((await storedHit(site, '/cached')).body).toBe('cached 1');
    for (let i = 0; i < 2; i++) expect(await get(site, '/fresh')).toMatchObject({ cache: null, body: `fresh ${i + 1}` });
    expect(site.calls.cached).toBe(1);
  });

  it("counts pages by the framework's route pattern, and drops a page when a tag its handler added is invalidated", async () => {
    site = await framework.site(false, framework.engines[0]!);
    expect((await get(site, '/items/1')).body).toBe('item 1 1');
    expect((await get(site, '/items/2')).body).toBe('item 2 2');
    expect((await storedHit(site, '/items/1')).body).toBe('item 1 1');
    expect(pageStats().get('/items/:id')).toMatchObject({ misses: 2 });
    await invalidateTags(['item:1']);
    expect(await get(site, '/items/1')).toMatchObject({ cache: 'MISS', body: 'item 1 3' });
    expect((await storedHit(site, '/items/2')).body).toBe('item 2 2');
  });

  it("holds the end of its own response back by one deadline at most when the page's Redis goes silent after the lookup: the page arrives whole, its failed store reported", async () => {
    const redisUrl = process.env.CACHEGRAIN_TEST_REDIS_URL;
    if (redisUrl === undefined) throw new Error('CACHEGRAIN_TEST_REDIS_URL is not set: the test setup starts redis-server (Debian package redis-server)');
    const proxy = await silenceableProxy(new URL(redisUrl));
    const options = { failOpen: true, timeoutMs: DEADLINE_MS };
    await configureCaches({ default: { backend: 'redis', location: proxy.url, keyPrefix: `silent${process.pid}${framework.name}${++serial}`, options } });
    const errors: string[] = [];
    caches.get('default').on('error', (error: Error) => errors.push(error.message));
    try {
      site = await framework.site(false, framework.engines[0]!);
      // The handler counting its call is the moment the server goes silent: the page is stored after it.
      site.calls = new Proxy(site.calls, { set: (calls, route, n) => (proxy.silence(), Reflect.set(calls, route, n)) });
      const miss = await get(site, '/text');
      expect(miss).toMatchObject({ status: 200, cache: 'MISS', body: 'text 1' });
      // The store's calls share the request's one budget, whoever ends the response: one failure in all.
      expect(caches.get('default').health()).toMatchObject([{ state: 'closed', consecutiveFailures: 1 }]);
      // Its store was tried, and failed, before the response was complete.
      expect(errors.join('\n')).toContain(`did not answer within ${DEADLINE_MS} ms`);
    } finally {
      await site?.close();
      site = undefined;
      await caches.closeAll();
      await proxy.close();
    }
  });

  it('refuses options it cannot use, naming the function', async () => {
    await expect(framework.refuse({ seconds: 'soon' })).rejects.toThrow(framework.refusedBy);
    await expect(framework.refuse({ secnds: 60 })).rejects.toThrow(/secnds/);
  });

  describe.each(framework.engines)("renders pages with %s fragments by the framework's usual view rendering", (engine) => {
    it('a MISS renders the fragments, a HIT sends the page, and an invalidated item renders that item alone again', async () => {
      site = await framework.site(false, engine);
      const miss = await get(site, '/page');
      expect([miss.status, miss.cache]).toEqual([200, 'MISS']);
      expect(normalize(miss.body)).toBe(PAGE);
      expect(await caches.get('default').get(makeTemplateFragmentKey('item', [2]))).toBe('<li>32. &lt;Two&gt;</li>');
      expect(normalize((await storedHit(site, '/page')).body)).toBe(PAGE);
      expect([site.calls.page, site.counted]).toEqual([1, 4]);
      await invalidateTags(['item:2']);
      const again = await get(site, '/page');
      expect(again.cache).toBe('MISS');
      expect(normalize(again.body)).toBe(PAGE.replace('32. &lt;Two&gt;', '52. &lt;Two&gt;'));
      expect([site.calls.page, site.counted]).toEqual([2, 5]);
    });
  });
});

describe("Fastify's own injection (light-my-request)", () => {
  it('stores the body once: a HIT through app.inject sends the bytes of the MISS that stored it', async () => {
    configureCaches({ default: { backend: 'locmem' } });
    const app = Fastify();
    await app.register(fastifyCache.cachegrain, { seconds: 60 });
    let renders = 0;
    app.get('/injected', async () => `rendered ${++renders}`);
    try {
      const miss = await app.inject({ method: 'GET', url: '/injected' });
      const hit = await app.inject({ method: 'GET', url: '/injected' });
      expect([miss.headers['x-cache'], miss.body]).toEqual(['MISS', 'rendered 1']);
      // Its response's end writes through the response's own write, which the page cache also watches.
      expect([hit.headers['x-cache'], hit.body, hit.headers['content-length']]).toEqual(['HIT', 'rendered 1', '10']);
    } finally {
      await app.close();
      await caches.closeAll();
    }
  });
});

describe('Fastify route config', () => {
  it("refuses a route's cachePage config it cannot use, naming the route", async () => {
    const app = Fastify();
    await app.register(fastifyCache.cachegrain, { site: false });
    for (const cachePage of ['soon', { seconds: 'soon' }]) {
      expect(() => app.get('/bad', { config: { cachePage: cachePage as never } }, async () => 'never')).toThrow(/^cachePage of GET \/bad: .*'soon'/);
    }
    await app.close();
  });

  it('names misspelt or missing seconds as every options check does, with the closest name and the valid ones', async () => {
    const app = Fastify();
    await app.register(fastifyCache.cachegrain, { site: false });
    expect(() => app.get('/typo', { config: { cachePage: { secnods: 5 } as never } }, async () => 'never')).toThrow(
      /^cachePage of GET \/typo: unknown option 'secnods' \(did you mean 'seconds'\?\); the options are 'seconds', 'cache', /,
    );
    expect(() => app.get('/prefix', { config: { cachePage: { seconds: 5, keyPrefx: 'a' } as never } }, async () => 'never')).toThrow(
      "cachePage of GET /prefix: unknown option 'keyPrefx' (did you mean 'keyPrefix'?)",
    );
    expect(() => app.get('/none', { config: { cachePage: { keyPrefix: 'a' } as never } }, async () => 'never')).toThrow(
      'cachePage of GET /none: seconds are missing',
    );
    await app.close();
  });

  it("takes a route's seconds by the name the plugin gives them, and refuses timeout naming seconds", async () => {
    const app = Fastify();
    await app.register(fastifyCache.cachegrain, { site: false });
    expect(() => app.get('/old', { config: { cachePage: { timeout: 5 } as never } }, async () => 'never')).toThrow(
      "cachePage of GET /old: unknown option 'timeout' (did you mean 'seconds'?)",
    );
    let runs = 0;
    app.get('/kept', { config: { cachePage: { seconds: 60, keyPrefix: 'route' } } }, async () => `ran ${++runs}`);
    await app.listen({ port: 0, host: '127.0.0.1' });
    const get = async () => {
      const response = await fetch(`${address(app.server)}/kept`);
      return [response.headers.get('x-cache'), await response.text(), response.headers.get('cache-control')];
    };
    expect(await get()).toEqual(['MISS', 'ran 1', 'max-age=60']);
    expect(await get()).toEqual(['HIT', 'ran 1', 'max-age=60']);
    await app.close();
  });
});

describe("the adapters' addCacheTags, addCacheContexts and markUncacheable", () => {
  it('refuse a first argument that is no reply, context or response, naming the function', () => {
    for (const adapter of [fastifyCache, koaCache, honoCache]) {
      expect(() => adapter.addCacheTags(['item:1'] as never, 'news')).toThrow(
        'addCacheTags: the first argument is the response of the page being rendered (got ["item:1"])',
      );
      expect(() => adapter.addCacheContexts(undefined as never, 'cookie:theme')).toThrow('addCacheContexts: the first argument is the response');
      expect(() => adapter.markUncacheable({} as never, 'per visitor')).toThrow('markUncacheable: the first argument is the response');
    }
  });
});

describe('cachegrain/hono loaded after @hono/node-server started', () => {
  it('answers its hits whole on a connection kept alive, with nothing written after them', async () => {
    const site = await startSiteProcess(new URL('./fixtures/hono-late-site.ts', import.meta.url));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const get = () =>
        new Promise<{ cache: unknown; body: string; reusedSocket: boolean }>((resolve, reject) => {
          const request = http.get(`${site.url}/page`, { agent }, (response) => {
            let body = '';
            response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
            response.on('end', () => resolve({ cache: response.headers['x-cache'], body, reusedSocket: request.reusedSocket }));
          });
          request.on('error', reject);
        });
      expect(await get()).toMatchObject({ cache: 'MISS', body: '<p>the page</p>' });
      for (let i = 0; i < 3; i++) expect(await get()).toEqual({ cache: 'HIT', body: '<p>the page</p>', reusedSocket: true });
      expect(site.output()).not.toMatch(/error/i);
    } finally {
      agent.destroy();
      await site.close();
    }
  });
});

describe('cachegrain/hono under middleware that sets headers once the cache answered', () => {
  afterEach(() => vi.restoreAllMocks());

  it('answers GET and HEAD hits with nothing written after them, first of the handlers or not', async () => {
    const errors = vi.spyOn(console, 'error');
    const outer = new Hono();
    outer.use(async (c, next) => {
      await next();
      c.header('X-Outer', 'yes');
    });
    const first = new Hono();
    for (const [app, name] of [
      [outer, 'outer'],
      [first, 'first'],
    ] as const) {
      app.use(honoCache.cacheMiddleware({ cache: new LocMemCache({ location: `hono-outer-${name}` }), seconds: 600 }));
      app.get('/page', (c) => c.html(`<p>${name}</p>`));
    }
    for (const [app, name] of [
      [outer, 'outer'],
      [first, 'first'],
    ] as const) {
      const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
      await once(server, 'listening');
      try {
        const url = `${address(server)}/page`;
        const answers = [];
        for (const method of ['GET', 'GET', 'HEAD', 'GET']) {
          const response = await fetch(url, { method });
          answers.push([method, response.headers.get('x-cache'), await response.text()]);
        }
        expect(answers, name).toEqual([
          ['GET', 'MISS', `<p>${name}</p>`],
          ['GET', 'HIT', `<p>${name}</p>`],
          ['HEAD', 'HIT', ''],
          ['GET', 'HIT', `<p>${name}</p>`],
        ]);
      } finally {
        await closing(server)();
      }
    }
    expect(errors.mock.calls.map((call) => String(call[0]))).toEqual([]);
  });
});
