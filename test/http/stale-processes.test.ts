/**
 * SPEC §9 for pages across real processes: two site processes (`fixtures/stale-site.ts`) share one
 * real Redis, as two servers behind a load balancer do. An expired page with a stale window is
 * answered stale to every visitor of both at once, while one refresh in all renders it again; a cold
 * page under `lock: true` is rendered once in all, the other visitors waiting for it. View calls are
 * counted in Redis, so the count covers both processes.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caches, configureCaches, invalidateTags } from '../../src/index.js';
import { type Reply, send } from './client.js';
import { type SiteProcess, startSiteProcess } from './fixtures/site-process.js';

const redisUrl = process.env.CACHEGRAIN_TEST_REDIS_URL;
const KEY_PREFIX = `stale${process.pid}`;
// One host for both processes (as behind a load balancer), so that they share every page key.
const HOST = 'shop.example';
const VIEW_MS = 500;
// A visitor who waited for the view would wait VIEW_MS at least.
const STALE_ANSWER_MS = 350;

/** Retries `check` until it passes: for a refresh that finishes behind the replies. */
async function eventually(check: () => Promise<void>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

describe('stale pages and the render lock across two processes on one Redis', () => {
  let sites: SiteProcess[] = [];
  let counters: Redis;
  beforeAll(async () => {
    if (redisUrl === undefined) throw new Error('CACHEGRAIN_TEST_REDIS_URL is not set: the test setup starts redis-server (Debian package redis-server)');
    counters = new Redis(redisUrl);
    await configureCaches({ default: { backend: 'redis', location: redisUrl, keyPrefix: KEY_PREFIX } });
    const startSite = () => startSiteProcess(new URL('./fixtures/stale-site.ts', import.meta.url), { SITE_KEY_PREFIX: KEY_PREFIX, VIEW_MS: String(VIEW_MS) });
    sites = await Promise.all([startSite(), startSite()]);
  }, 30_000);
  afterAll(async () => {
    await Promise.all(sites.map((site) => site.close()));
    counters?.disconnect();
    await caches.closeAll();
  });

  const get = (site: SiteProcess, path: string) => send(site.url, path, { headers: { Host: HOST } });
  const views = async (name: string) => Number(await counters.get(`${KEY_PREFIX}:views:${name}`));
  const summary = (reply: Reply) => [reply.status, reply.headers['x-cache'], reply.text];

  it(`50 concurrent requests on an expired page, on both processes: every one answered stale at once (well under the view's ${VIEW_MS} ms), one view call in all`, async () => {
    const [one, two] = sites as [SiteProcess, SiteProcess];
    expect(summary(await get(one, '/stale/feed'))).toEqual([200, 'MISS', 'feed run 1']);
    // The page is stored behind the response; its timeout counts from then, so the clocks move after.
    await eventually(async () => expect(await counters.keys(`${KEY_PREFIX}:*.cache_page.*`)).toHaveLength(1));
    // Past the page's 60 s timeout on both processes, inside its stale window.
    for (const site of sites) await get(site, '/clock/90');

    const timed = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const started = performance.now();
        const reply = await get(i % 2 === 0 ? one : two, '/stale/feed');
        return { reply, ms: performance.now() - started };
      }),
    );
    expect(new Set(timed.map(({ reply }) => summary(reply).join(' ')))).toEqual(new Set(['200 STALE feed run 1']));
    const slowest = Math.max(...timed.map(({ ms }) => ms));
    expect(slowest, `the slowest of 50 stale answers took ${slowest.toFixed(0)} ms`).toBeLessThan(STALE_ANSWER_MS);

    await eventually(async () => {
      expect(summary(await get(one, '/stale/feed'))).toEqual([200, 'HIT', 'feed run 2']);
      expect(summary(await get(two, '/stale/feed'))).toEqual([200, 'HIT', 'feed run 2']);
    });
    expect(await views('feed')).toBe(2);
  });

  it('lock: true: concurrent cold misses on both processes render the page once in all; the others wait for it', async () => {
    const [one, two] = sites as [SiteProcess, SiteProcess];
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => get(i % 2 === 0 ? one : two, '/locked/cold')));
    expect(new Set(replies.map((reply) => `${reply.status} ${reply.text}`))).toEqual(new Set(['200 cold run 1']));
    expect(replies.filter((reply) => reply.headers['x-cache'] === 'MISS')).toHaveLength(1);
    expect(await views('cold')).toBe(1);
    expect(summary(await get(two, '/locked/cold'))).toEqual([200, 'HIT', 'cold run 1']);
  });

  it('a tag invalidated in a third process: a soft one makes both sites answer the page stale while one of them renders it again; a hard one drops it on both at once', async () => {
    const [one, two] = sites as [SiteProcess, SiteProcess];
    expect(summary(await get(one, '/tagged/item'))).toEqual([200, 'MISS', 'item run 1']);
    await eventually(async () => expect(summary(await get(two, '/tagged/item'))).toEqual([200, 'HIT', 'item run 1']));

    await invalidateTags(['page:item'], { soft: true });
    const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => get(i % 2 === 0 ? one : two, '/tagged/item')));
    expect(new Set(replies.map((reply) => summary(reply).join(' ')))).toEqual(new Set(['200 STALE item run 1']));
    // Both keep asking while the refresh renders and stores the page: neither may start another.
    await eventually(async () => {
      const [fromOne, fromTwo] = await Promise.all([get(one, '/tagged/item'), get(two, '/tagged/item')]);
      expect([summary(fromOne), summary(fromTwo)]).toEqual([
        [200, 'HIT', 'item run 2'],
        [200, 'HIT', 'item run 2'],
      ]);
    });
    expect(await views('item')).toBe(2);

    await invalidateTags(['page:item']);
    const [fromOne, fromTwo] = await Promise.all([get(one, '/tagged/item'), get(two, '/tagged/item')]);
    expect(new Set([summary(fromOne), summary(fromTwo)].map(([status, xCache]) => `${status} ${xCache}`))).toEqual(new Set(['200 MISS']));
    expect(await views('item')).toBe(4);
  });
});
