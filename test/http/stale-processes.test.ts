/**
 * Tags and stale windows for pages across real processes: two site processes (`fixtures/stale-site.ts`)
 * share one real Redis, as two servers behind a load balancer do. An expired page with a stale
 * window is answered stale to every visitor of both at once, while one refresh in all renders it
 * again; a cold page under `lock: true` is rendered once in all, the other visitors waiting for it; a
 * tag invalidated from a third process reaches both. View calls are counted in Redis, so the count
 * covers both processes. Pages are stored behind their responses: a test waits for the store in
 * Redis before it asks the other process, which would otherwise render the page itself.
 */
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caches, configureCaches, invalidateTags } from '../../src/index.js';
import { type Reply, send } from './client.js';
import { type SiteProcess, startSiteProcess } from './fixtures/site-process.js';
import { STACK_NAMES, stackKey } from './stacks.js';
import { eventually } from '../setup/eventually.js';

const redisUrl = process.env.CACHEGRAIN_TEST_REDIS_URL;
/** Per stack: set as its tests begin. */
let KEY_PREFIX = '';
let stack = '';
// One host for both processes (as behind a load balancer), so that they share every page key.
const HOST = 'shop.example';
const VIEW_MS = 500;
// Where answers are told apart by whether they waited for the view: long, so that one that waited
// (SLOW_VIEW_MS at least) stands apart from one that did not, even on a busy machine.
const SLOW_VIEW_MS = 2000;

let counters: Redis;
describe.each(STACK_NAMES)('on %s', (name) => {
  beforeAll(() => {
    stack = name;
    KEY_PREFIX = `stale${process.pid}${stackKey(name)}`;
  });
  beforeAll(async () => {
    if (redisUrl === undefined) throw new Error('CACHEGRAIN_TEST_REDIS_URL is not set: the test setup starts redis-server (Debian package redis-server)');
    counters = new Redis(redisUrl);
    await configureCaches({ default: { backend: 'redis', location: redisUrl, keyPrefix: KEY_PREFIX } });
  });
  afterAll(async () => {
    counters?.disconnect();
    await caches.closeAll();
  });

  /** Two site processes on the shared Redis, each with the environment given; stopped after the tests of the block. */
  function sitePair(envOne: Record<string, string> = {}, envTwo: Record<string, string> = {}): SiteProcess[] {
    const sites: SiteProcess[] = [];
    beforeAll(async () => {
      const start = (env: Record<string, string>) =>
        startSiteProcess(new URL('./fixtures/stale-site.ts', import.meta.url), {
          CACHEGRAIN_TEST_STACK: stack,
          SITE_KEY_PREFIX: KEY_PREFIX,
          VIEW_MS: String(VIEW_MS),
          ...env,
        });
      sites.push(...(await Promise.all([start(envOne), start(envTwo)])));
    }, 30_000);
    afterAll(() => Promise.all(sites.map((site) => site.close())));
    return sites;
  }

  const get = (site: SiteProcess, path: string) => send(site.url, path, { headers: { Host: HOST } });
  const views = async (name: string) => Number(await counters.get(`${KEY_PREFIX}:views:${name}`));
  const summary = (reply: Reply) => [reply.status, reply.headers['x-cache'], reply.text];
  const md5 = (text: string) => createHash('md5').update(text).digest('hex');
  /** Waits until the page of `path` is in Redis. */
  const stored = (path: string) =>
    eventually(async () => expect(await counters.keys(`${KEY_PREFIX}:*.cache_page..GET.${md5(`http://${HOST}${path}`)}.*`)).toHaveLength(1));

  /** Both sites answer `path` with a fresh `page` at the same moment. */
  async function bothHit(one: SiteProcess, two: SiteProcess, path: string, page: string): Promise<void> {
    const replies = await Promise.all([get(one, path), get(two, path)]);
    expect(replies.map(summary)).toEqual([
      [200, 'HIT', page],
      [200, 'HIT', page],
    ]);
  }

  describe('stale pages, the render lock and page tags across two processes on one Redis', () => {
    const sites = sitePair({ VIEW_MS: String(SLOW_VIEW_MS) }, { VIEW_MS: String(SLOW_VIEW_MS) });

    it('50 concurrent requests on an expired page, on both processes: every one answered stale at once (while the refresh is held in its view), one view call in all', async () => {
      const [one, two] = sites as [SiteProcess, SiteProcess];
      const release = () => counters.lpush(`${KEY_PREFIX}:release:feed`, 'go');
      await release();
      expect(summary(await get(one, '/gated/feed'))).toEqual([200, 'MISS', 'feed run 1']);
      // Its timeout counts from the store, so the clocks move once it is stored.
      await stored('/gated/feed');
      for (const site of sites) await get(site, '/clock/90');

      const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => get(i % 2 === 0 ? one : two, '/gated/feed')));
      expect(new Set(replies.map((reply) => summary(reply).join(' ')))).toEqual(new Set(['200 STALE feed run 1']));
      // All 50 were answered while the refresh's view is still held: none waited for it. One refresh in all started.
      expect(await counters.llen(`${KEY_PREFIX}:release:feed`)).toBe(0);
      await eventually(async () => expect(await views('feed')).toBe(2));

      // Both keep asking while the refresh renders and stores the page: neither may start another.
      await release();
      await eventually(() => bothHit(one, two, '/gated/feed', 'feed run 2'));
      expect(await views('feed')).toBe(2);
    });

    it('lock: true: concurrent cold misses on both processes render the page once in all; the others wait for it', async () => {
      const [one, two] = sites as [SiteProcess, SiteProcess];
      const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => get(i % 2 === 0 ? one : two, '/locked/cold')));
      expect(new Set(replies.map((reply) => `${reply.status} ${reply.text}`))).toEqual(new Set(['200 cold run 1']));
      // The other process's requests waited on the lock and found the page stored (HITs); this process's shared its render (MISSes).
      const labels = replies.map((reply, i) => `${i % 2 === 0 ? 'one' : 'two'} ${String(reply.headers['x-cache'])}`);
      expect(new Set(labels.filter((label) => label.endsWith('MISS')).map((label) => label.split(' ')[0])), labels.join(', ')).toHaveProperty('size', 1);
      expect(await views('cold')).toBe(1);
      expect(summary(await get(two, '/locked/cold'))).toEqual([200, 'HIT', 'cold run 1']);
    });

    it('a tag invalidated in a third process: a soft one makes both sites answer the page stale while one of them renders it again; a hard one drops it on both at once', async () => {
      const [one, two] = sites as [SiteProcess, SiteProcess];
      expect(summary(await get(one, '/stale/item'))).toEqual([200, 'MISS', 'item run 1']);
      await stored('/stale/item');
      expect(summary(await get(two, '/stale/item'))).toEqual([200, 'HIT', 'item run 1']);

      await invalidateTags(['page:item'], { soft: true });
      const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => get(i % 2 === 0 ? one : two, '/stale/item')));
      expect(new Set(replies.map((reply) => summary(reply).join(' ')))).toEqual(new Set(['200 STALE item run 1']));
      await eventually(() => bothHit(one, two, '/stale/item', 'item run 2'));
      expect(await views('item')).toBe(2);

      await invalidateTags(['page:item']);
      const afterHard = await Promise.all([get(one, '/stale/item'), get(two, '/stale/item')]);
      expect(afterHard.map((reply) => reply.headers['x-cache'])).toEqual(['MISS', 'MISS']);
      expect(await views('item')).toBe(4);
    });
  });

  describe('a refresh whose page takes long to store', () => {
    // Page writes take 300 ms here: a visitor in that window is still sent the stale page.
    const pair = sitePair({ SLOW_PAGE_STORE_MS: '300' }, { SLOW_PAGE_STORE_MS: '300' });
    it("the refresh's lock is held until its page is stored, not let go when its response ends", async () => {
      const [one, two] = pair as [SiteProcess, SiteProcess];
      expect(summary(await get(one, '/stale/slowstore'))).toEqual([200, 'MISS', 'slowstore run 1']);
      await stored('/stale/slowstore');
      for (const site of pair) await get(site, '/clock/90');
      expect(summary(await get(one, '/stale/slowstore'))).toEqual([200, 'STALE', 'slowstore run 1']);
      await eventually(() => bothHit(one, two, '/stale/slowstore', 'slowstore run 2'));
      expect(await views('slowstore')).toBe(2);
    });
  });

  describe('a process whose lock takes arrive after the other process is done', () => {
    const pair = sitePair({}, { SLOW_LOCK_MS: String(VIEW_MS * 3) });
    it('does not refresh a stale page again', async () => {
      const [one, two] = pair as [SiteProcess, SiteProcess];
      expect(summary(await get(one, '/stale/slowlock'))).toEqual([200, 'MISS', 'slowlock run 1']);
      await stored('/stale/slowlock');
      for (const site of pair) await get(site, '/clock/90');
      const locksDone = await counters.llen(`${KEY_PREFIX}:locks:done`);
      // The second process read the page stale, and takes the lock only once the first has refreshed it and let go.
      const replies = await Promise.all([get(one, '/stale/slowlock'), get(two, '/stale/slowlock')]);
      expect(replies.map(summary)).toEqual([
        [200, 'STALE', 'slowlock run 1'],
        [200, 'STALE', 'slowlock run 1'],
      ]);
      // Each process's refresh is done with its lock once: the second's after it would have rendered again.
      await eventually(async () => expect(await counters.llen(`${KEY_PREFIX}:locks:done`)).toBe(locksDone + 2));
      expect(await views('slowlock')).toBe(2);
      await bothHit(one, two, '/stale/slowlock', 'slowlock run 2');
      expect(await views('slowlock')).toBe(2);
    });

    it('lock: true: a cold miss that takes the render lock after the page was rendered and stored serves that page', async () => {
      const [one, two] = pair as [SiteProcess, SiteProcess];
      const replies = await Promise.all([get(one, '/locked/late'), get(two, '/locked/late')]);
      expect(replies.map(summary)).toEqual([
        [200, 'MISS', 'late run 1'],
        [200, 'HIT', 'late run 1'],
      ]);
      expect(await views('late')).toBe(1);
    });
  });
});
