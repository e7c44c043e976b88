/**
 * `invalidatePage` drops every variant of a page, however many processes learned the
 * variants and however concurrently. Two real processes share one real Redis; in each round both
 * render different variants of the page at the same moment, the content changes, the page is
 * invalidated, and no variant may be served stale afterwards.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { invalidatePage } from '../../src/frameworks/express.js';
import { caches, configureCaches } from '../../src/index.js';
import { send } from './client.js';
import { type SiteProcess, startSiteProcess } from './fixtures/site-process.js';
import { STACK_NAMES, stackKey } from './stacks.js';

const ROUNDS = 200;
// One host for both processes (as behind a load balancer), so they share every page key.
const HOST = 'shop.example';
/** Per stack: set as its tests begin. */
let KEY_PREFIX = '';
let stack = '';
const redisUrl = process.env.CACHEGRAIN_TEST_REDIS_URL!;

describe.each(STACK_NAMES)('on %s', (name) => {
  beforeAll(() => {
    stack = name;
    KEY_PREFIX = `race${process.pid}${stackKey(name)}`;
  });
  describe('invalidatePage across two processes on one Redis', () => {
    let sites: SiteProcess[] = [];
    let content: Redis;
    beforeAll(async () => {
      if (redisUrl === undefined) throw new Error('CACHEGRAIN_TEST_REDIS_URL is not set: the test setup starts redis-server (Debian package redis-server)');
      await configureCaches({ default: { backend: 'redis', location: redisUrl, keyPrefix: KEY_PREFIX } });
      content = new Redis(redisUrl);
      const startSite = () =>
        startSiteProcess(new URL('./fixtures/page-server.ts', import.meta.url), { CACHEGRAIN_TEST_STACK: stack, PAGE_KEY_PREFIX: KEY_PREFIX });
      sites = await Promise.all([startSite(), startSite()]);
    }, 30_000);
    afterAll(async () => {
      await Promise.all(sites.map((site) => site.close()));
      content?.disconnect();
      await caches.closeAll();
    });

    it(`serves no stale variant after an invalidation, in ${ROUNDS} rounds`, async () => {
      const [one, two] = sites as [(typeof sites)[0], (typeof sites)[0]];
      let stale = 0;
      let hits = 0;
      for (let round = 0; round < ROUNDS; round++) {
        await content.set(`${KEY_PREFIX}:content:rev`, String(round));
        // Both processes render and store two different variants at the same moment.
        await Promise.all([
          send(one.url, '/page', { headers: { Host: HOST, 'X-Variant': `a${round % 3}` } }),
          send(two.url, '/page', { headers: { Host: HOST, 'X-Variant': `b${round % 3}` } }),
          send(one.url, '/page', { headers: { Host: HOST, 'X-Variant': `b${round % 3}` } }),
          send(two.url, '/page', { headers: { Host: HOST, 'X-Variant': `a${round % 3}` } }),
        ]);
        await content.set(`${KEY_PREFIX}:content:rev`, String(round + 1));
        await invalidatePage('/page');
        const ask = (site: typeof one, variant: string) => send(site.url, '/page', { headers: { Host: HOST, 'X-Variant': `${variant}${round % 3}` } });
        const after = await Promise.all([ask(one, 'a'), ask(two, 'b')]);
        // Then each process asks for the variant the other one just rendered after the invalidation: a page
        // is stored before its response is complete, so the replies received are the signal that it is there.
        const across = await Promise.all([ask(one, 'b'), ask(two, 'a')]);
        for (const reply of [...after, ...across]) if (reply.text !== `revision ${round + 1}`) stale++;
        for (const reply of across) if (reply.headers['x-cache'] === 'HIT') hits++;
      }
      expect(stale).toBe(0);
      // The page cache did cache: every variant asked across comes from the other process's store.
      expect(hits).toBe(2 * ROUNDS);
    }, 120_000);
  });
});
