/**
 * The page cache reports its failures through its cache's own reporting (an `error`
 * event when someone listens, else the cache's logger once per cause) and counts them in that
 * cache's `stats().errors`; it never writes to the console itself. The failing server is a real
 * Redis that answers reads but refuses every write (no memory left for them). A page cache turned
 * off (the dummy backend implements everything and stores nothing) has nothing to report.
 */
import nunjucks from 'nunjucks';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { installCacheTag, renderString } from '../../src/engines/nunjucks.js';
import { caches, configureCaches } from '../../src/index.js';
import { eventually } from '../setup/eventually.js';
import { type RedisServer, startRedisServer } from '../setup/redis.js';
import { listen, send } from './client.js';
import { cacheMiddleware, STACKS } from './stacks.js';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedisServer({ args: ['--maxmemory', '1', '--maxmemory-policy', 'noeviction'] });
});
afterAll(async () => {
  await caches.closeAll();
  await redis?.stop();
});
afterEach(() => vi.restoreAllMocks());

describe.each(STACKS)('a page cache whose server refuses to store, on %s', (_stack, build) => {
  it("reports the failed store to the cache's logger, counts it, and writes nothing to the console", async () => {
    const heard: string[] = [];
    await configureCaches({
      default: { backend: 'locmem' },
      pages: { backend: 'redis', location: redis.url, logger: { warn: (message) => heard.push(message) } },
    });
    const consoleErrors = vi.spyOn(console, 'error');
    const app = await listen(build([cacheMiddleware({ cache: 'pages' })], (_req, res) => res.end('the page')));
    try {
      const reply = await send(app.url, '/page');
      expect([reply.status, reply.text, reply.headers['x-cache']]).toEqual([200, 'the page', 'MISS']);
      await eventually(() => expect(heard).toHaveLength(1));
      expect(heard[0]).toMatch(
        new RegExp(
          `^cachegrain: cache 'pages': page cache: storing the page ${app.url}/page failed: .*OOM command not allowed.* \\(reported once; listen for 'error' events on the cache to see every one\\)$`,
        ),
      );
      // Each command the server refused is counted: the raise of the tag horizon made as the view
      // began (tried again by the store), the header list's write.
      await caches.get('pages').settled();
      const perStore = caches.get('pages').stats().errors;
      expect(perStore).toBe(3);

      // The same failure again is counted, and not logged again.
      const again = await send(app.url, '/page');
      expect([again.status, again.text, again.headers['x-cache']]).toEqual([200, 'the page', 'MISS']);
      await caches.get('pages').settled();
      expect(caches.get('pages').stats().errors).toBe(2 * perStore);
      // Another page's failure, sent only once the second was counted, is logged: a second warning of the first would come before it.
      await send(app.url, '/other');
      await eventually(() => expect(heard).toHaveLength(2));
      expect(heard[1]).toContain(`storing the page ${app.url}/other failed`);
      await caches.get('pages').settled();
      expect(caches.get('pages').stats().errors).toBe(3 * perStore);
      expect(consoleErrors).not.toHaveBeenCalled();
    } finally {
      await app.close();
    }
  });
});

describe.each(STACKS)('a page cache turned off with the dummy backend, on %s', (_stack, build) => {
  it("answers each page as a miss, its stale window and its fragments' tags taken, and reports nothing", async () => {
    const heard: string[] = [];
    const logger = { warn: (message: string) => heard.push(message) };
    await configureCaches({ default: { backend: 'locmem' }, off: { backend: 'dummy', logger } });
    const templates = installCacheTag(new nunjucks.Environment());
    const template = "<p>{% cache 600 'price' n using='off' tags='item:' ~ n stale=30 %}{{ n }} costs {{ price }}{% endcache %}</p>";
    let renders = 0;
    const app = await listen(
      build([cacheMiddleware({ cache: 'off', staleWhileRevalidate: 30 })], async (_req, res) => {
        res.end(await renderString(templates, template, { n: 7, price: ++renders }));
      }),
    );
    try {
      for (const price of [1, 2]) {
        const reply = await send(app.url, '/item/7');
        expect([reply.status, reply.text, reply.headers['x-cache']]).toEqual([200, `<p>7 costs ${price}</p>`, 'MISS']);
      }
      expect(heard).toEqual([]);
      expect(caches.get('off').stats().errors).toBe(0);
    } finally {
      await app.close();
    }
  });
});
