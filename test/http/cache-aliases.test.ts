/**
 * An alias the page cache, a dashboard or `caches.get` is given names a configured cache:
 * a slip (`'pgaes'`) is refused where it is given once the caches are configured, naming the closest
 * configured alias; before then the alias may yet come, and its first use says the same.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import * as expressCache from '../../src/frameworks/express.js';
import * as fastifyCache from '../../src/frameworks/fastify.js';
import * as honoCache from '../../src/frameworks/hono.js';
import * as koaCache from '../../src/frameworks/koa.js';
import { caches, configureCaches, InvalidCacheBackendError } from '../../src/index.js';

const SLIP = "The cache alias 'pgaes' is not configured (did you mean 'pages'?) (configured: default, pages)";

let server: Server | undefined;

afterEach(async () => {
  await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
  server = undefined;
  await caches.closeAll();
});

const configure = () =>
  configureCaches({
    default: { backend: 'locmem', location: 'cache-aliases-default' },
    pages: { backend: 'locmem', location: 'cache-aliases-pages' },
  });

describe('an alias that is not configured, once the caches are', () => {
  it('is refused by caches.get naming the closest alias', async () => {
    await configure();
    expect(() => caches.get('pgaes')).toThrow(InvalidCacheBackendError);
    expect(() => caches.get('pgaes')).toThrow(SLIP);
    expect(() => caches.get('sessions')).toThrow("The cache alias 'sessions' is not configured (configured: default, pages)");
  });

  it('is refused where the page cache of every framework is made, naming the option and the closest alias', async () => {
    await configure();
    const makers: Array<[string, () => unknown]> = [
      ['cacheMiddleware', () => expressCache.cacheMiddleware({ cache: 'pgaes' })],
      ['cachePage', () => expressCache.cachePage(60, { cache: 'pgaes' })],
      ['updateCacheMiddleware', () => expressCache.updateCacheMiddleware({ cache: 'pgaes' })],
      ['cacheMiddleware', () => koaCache.cacheMiddleware({ cache: 'pgaes' })],
      ['cachePage', () => koaCache.cachePage(60, { cache: 'pgaes' })],
      ['cacheMiddleware', () => honoCache.cacheMiddleware({ cache: 'pgaes' })],
      ['cachePage', () => honoCache.cachePage(60, { cache: 'pgaes' })],
      ['cacheMiddleware', () => fastifyCache.cacheMiddleware({ cache: 'pgaes' })],
    ];
    for (const [what, make] of makers) expect(make, what).toThrow(`${what}: options.cache names 'pgaes': ${SLIP}`);
    const app = Fastify();
    void app.register(fastifyCache.cachegrain, { cache: 'pgaes' });
    await expect(app.ready()).rejects.toThrow(`cachegrain: options.cache names 'pgaes': ${SLIP}`);
    await app.close();
    const routes = Fastify();
    await routes.register(fastifyCache.cachegrain, { site: false });
    expect(() => routes.get('/news', { config: { cachePage: { seconds: 60, cache: 'pgaes' } } }, async () => 'news')).toThrow(
      `cachePage: options.cache names 'pgaes': ${SLIP}`,
    );
    await routes.close();
  });

  it('is refused by cacheDashboard naming the closest alias', async () => {
    await configure();
    expect(() => expressCache.cacheDashboard({ caches: ['pgaes'] })).toThrow(`cacheDashboard: options.caches names 'pgaes': ${SLIP}`);
  });
});

describe('an alias given before the caches are configured', () => {
  it('is refused at its first use with the same words, naming the closest alias', async () => {
    // A process that has just started: no configureCaches yet, so 'pgaes' may yet come.
    vi.resetModules();
    const fresh = await import('../../src/frameworks/express.js');
    const index = await import('../../src/index.js');
    const app = express();
    app.use(fresh.cacheMiddleware({ cache: 'pgaes' }));
    app.get('/', (_req, res) => void res.send('page'));
    app.use((error: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(500).type('text/plain').send(`${error.name}: ${error.message}`);
    });
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server!.once('listening', resolve));
    await index.configureCaches({
      default: { backend: 'locmem', location: 'cache-aliases-default' },
      pages: { backend: 'locmem', location: 'cache-aliases-pages' },
    });
    const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    expect([response.status, await response.text()]).toEqual([500, `InvalidCacheBackendError: ${SLIP}`]);
    await index.caches.closeAll();
  });
});
