/**
 * A page is stored before its response is complete (Django stores, then returns), so a
 * request that starts after a response was fully received finds that page, in this process (locmem,
 * files, Redis) and in another one on the same Redis; and `invalidateTags` called right after it
 * arrived drops it. On every stack, for a plain page (conditional GET in front), a page whose holes
 * are filled in place and one whose holes go out as ESI includes. The Redis cache's page writes land
 * late (store-site.ts), as a busy server's do: only a response that waits for its store can be
 * answered from it at once. A server gone silent holds the end back by one deadline at most, and
 * while the end waits the response looks ended to the framework.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import Koa from 'koa';
import * as koaCache from '../../src/frameworks/koa.js';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { caches, configureCaches, invalidateTags } from '../../src/index.js';
import { type SilenceableProxy, silenceableProxy } from '../setup/silenceable-proxy.js';
import { listen, type Reply, send } from './client.js';
import { type SiteProcess, startSiteProcess } from './fixtures/site-process.js';
import { holePage, SlowPageStore, storeSite } from './fixtures/store-site.js';
import { STACKS, stackKey } from './stacks.js';

const redisUrl = process.env.CACHEGRAIN_TEST_REDIS_URL;
const needRedis = (): string => {
  if (redisUrl === undefined) throw new Error('CACHEGRAIN_TEST_REDIS_URL is not set: the test setup starts redis-server (Debian package redis-server)');
  return redisUrl;
};
// One host for every process, as behind a load balancer, so that they share every page key.
const HOST = 'shop.example';
// As an ESI proxy in front asks, so that the ESI pages go out with their includes.
const ann = { Host: HOST, Cookie: 'visitor=ann', 'Surrogate-Capability': 'cachegrain="ESI/1.0"' };

/** What each kind of page sends for `run` of its view, to the visitor ann. */
const PAGES: Array<[path: string, body: (name: string, run: number) => string]> = [
  ['/plain/', (name, run) => `${name} run ${run}`],
  ['/fill/', (name, run) => holePage(name, run, 'ann')],
  ['/esi/', (name, run) => `<p>${name} run ${run}</p><nav><esi:include/></nav>`],
];
/** A body with its ESI includes' URLs left out (they are signed, so long and opaque). */
const shown = (reply: Reply) => reply.text.replace(/<esi:include src="[^"]+"\/>/g, '<esi:include/>');
const summary = (reply: Reply) => [reply.status, reply.headers['x-cache'], shown(reply)];

/** A server's deadline. */
const DEADLINE_MS = 1000;

let page = 0;
/** A page name no test used before, in this run or an earlier one on the same Redis. */
const freshName = () => `p${process.pid}n${++page}`;

describe.each(STACKS)('on %s', (stack, build) => {
  describe.each(['locmem', 'filebased', 'redis'] as const)('with the pages in %s, in one process', (backend) => {
    const runs = new Map<string, number>();
    let base = '';
    let close: () => Promise<void> = async () => undefined;
    let folder: string | undefined;
    beforeEach(async () => {
      const keyPrefix = `store${process.pid}${stackKey(stack)}`;
      const configs = {
        locmem: { backend: 'locmem', location: `store-${keyPrefix}` },
        filebased: { backend: 'filebased', location: (folder = mkdtempSync(join(tmpdir(), 'cachegrain-store-'))) },
        redis: { backend: SlowPageStore, location: needRedis(), keyPrefix },
      } as const;
      await configureCaches({ default: configs[backend] });
      const server = await listen(storeSite(build, (name) => (runs.set(name, (runs.get(name) ?? 0) + 1), runs.get(name)!)));
      ({ url: base, close } = server);
    });
    afterEach(async () => {
      await close();
      await caches.closeAll();
      if (folder !== undefined) rmSync(folder, { recursive: true, force: true });
      folder = undefined;
    });
    const get = (path: string, headers: Record<string, string> = {}) => send(base, path, { headers: { ...ann, ...headers } });

    it.each(PAGES)('answers the request sent right after a MISS of %s from the stored page', async (path, body) => {
      const name = freshName();
      expect(summary(await get(`${path}${name}`))).toEqual([200, 'MISS', body(name, 1)]);
      expect(summary(await get(`${path}${name}`))).toEqual([200, 'HIT', body(name, 1)]);
    });

    it.each(PAGES)('drops the page of %s when its tag is invalidated right after the MISS arrived: the next request renders it anew', async (path, body) => {
      const name = freshName();
      expect(summary(await get(`${path}${name}`))).toEqual([200, 'MISS', body(name, 1)]);
      await invalidateTags([`page:${name}`]);
      expect(summary(await get(`${path}${name}`))).toEqual([200, 'MISS', body(name, 2)]);
      expect(summary(await get(`${path}${name}`))).toEqual([200, 'HIT', body(name, 2)]);
    });

    it.each(PAGES.slice(0, 2))('answers a HEAD and a conditional GET sent right after a MISS of %s from the stored page', async (path) => {
      const name = freshName();
      const miss = await get(`${path}${name}`);
      expect(miss.headers['x-cache']).toBe('MISS');
      const head = await send(base, `${path}${name}`, { method: 'HEAD', headers: ann });
      expect([head.status, head.headers['x-cache'], head.headers['content-length'], head.body.length]).toEqual([200, 'HIT', String(miss.body.length), 0]);
      const unchanged = await get(`${path}${name}`, { 'If-None-Match': miss.headers.etag! });
      expect([unchanged.status, unchanged.headers['x-cache'], unchanged.body.length]).toEqual([304, 'HIT', 0]);
    });
  });

  describe('with the pages in a Redis that goes silent while the view renders', () => {
    let proxy: SilenceableProxy;
    let base = '';
    let close: () => Promise<void> = async () => undefined;
    const errors: Error[] = [];
    beforeEach(async () => {
      proxy = await silenceableProxy(new URL(needRedis()));
      const options = { failOpen: true, timeoutMs: DEADLINE_MS };
      await configureCaches({ default: { backend: 'redis', location: proxy.url, keyPrefix: `silent${process.pid}${stackKey(stack)}`, options } });
      errors.length = 0;
      caches.get('default').on('error', (error: Error) => errors.push(error));
      // The lookup is answered; the server goes silent as the view runs, before the page is stored.
      const server = await listen(storeSite(build, () => (proxy.silence(), 1)));
      ({ url: base, close } = server);
    });
    afterEach(async () => {
      await close();
      await caches.closeAll();
      await proxy.close();
    });

    it.each(PAGES)('delivers the page of %s whole, its end held back by one deadline at most, and reports the store that failed', async (path, body) => {
      const name = freshName();
      const reply = await send(base, `${path}${name}`, { headers: ann });
      expect(summary(reply)).toEqual([200, 'MISS', body(name, 1)]);
      // One deadline in all for the store's calls: the first waits it out and the request's budget
      // answers the rest at once (each call waiting its own would count one failure apiece).
      expect(caches.get('default').health()).toMatchObject([{ state: 'closed', consecutiveFailures: 1 }]);
      expect(errors.map((error) => error.message).join('\n')).toContain(`did not answer within ${DEADLINE_MS} ms`);
    });
  });

  describe('with the pages in Redis, across two processes', () => {
    const keyPrefix = `storeprocs${process.pid}${stackKey(stack)}`;
    const sites: SiteProcess[] = [];
    beforeAll(async () => {
      await configureCaches({ default: { backend: 'redis', location: needRedis(), keyPrefix } });
      const start = () =>
        startSiteProcess(new URL('./fixtures/store-site-process.ts', import.meta.url), { CACHEGRAIN_TEST_STACK: stack, SITE_KEY_PREFIX: keyPrefix });
      sites.push(...(await Promise.all([start(), start()])));
    }, 30_000);
    afterAll(async () => {
      await Promise.all(sites.splice(0).map((site) => site.close()));
      await caches.closeAll();
    });
    const get = (site: SiteProcess | undefined, path: string) => send(site!.url, path, { headers: ann });

    it.each(PAGES)('answers from the other process the request sent right after a MISS of %s', async (path, body) => {
      const name = freshName();
      expect(summary(await get(sites[0], `${path}${name}`))).toEqual([200, 'MISS', body(name, 1)]);
      expect(summary(await get(sites[1], `${path}${name}`))).toEqual([200, 'HIT', body(name, 1)]);
    });

    it.each(PAGES)('drops the page of %s in both when its tag is invalidated right after the MISS arrived', async (path, body) => {
      const name = freshName();
      expect(summary(await get(sites[0], `${path}${name}`))).toEqual([200, 'MISS', body(name, 1)]);
      await invalidateTags([`page:${name}`]);
      expect(summary(await get(sites[1], `${path}${name}`))).toEqual([200, 'MISS', body(name, 2)]);
      expect(summary(await get(sites[0], `${path}${name}`))).toEqual([200, 'HIT', body(name, 2)]);
    });
  });
});

describe('while the end of a MISS waits for its store', () => {
  afterEach(() => caches.closeAll());

  it("looks ended to the framework: Koa, whose view ended Node's response itself, sends nothing over it", async () => {
    await configureCaches({ default: { backend: SlowPageStore, location: needRedis(), keyPrefix: `storekoa${process.pid}` } });
    const app = new Koa();
    app.silent = true;
    app.use(koaCache.cacheMiddleware({ seconds: 600 }) as Koa.Middleware);
    // Without `ctx.respond = false`: Koa then answers whatever response its middleware left unended.
    app.use(async (ctx) => {
      ctx.res.statusCode = 200;
      ctx.res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      ctx.res.end('the page');
    });
    const server = await listen(app.callback());
    try {
      const miss = await send(server.url, '/koa');
      expect([miss.status, miss.headers['x-cache'], miss.headers['content-length'], miss.text]).toEqual([200, 'MISS', '8', 'the page']);
      expect(summary(await send(server.url, '/koa'))).toEqual([200, 'HIT', 'the page']);
    } finally {
      await server.close();
    }
  });
});

afterAll(async () => {
  // Counters of the processes' page runs, left in the shared Redis.
  if (redisUrl === undefined) return;
  const redis = new Redis(redisUrl);
  const keys = await redis.keys(`storeprocs${process.pid}*:runs:*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});
