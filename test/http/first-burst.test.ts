/**
 * The page cache and its tags from where a site stands on a new page: the first burst of requests for a path
 * nobody asked for before (its `url:` tags never invalidated, its header list not learned yet), many
 * variants at once, stores every variant; the same burst again is answered from the cache, on one
 * process and spread over two processes sharing one Redis.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caches, configureCaches } from '../../src/index.js';
import { invalidatePage } from '../../src/http/index.js';
import { headerValuesHash, pageKeyFor } from '../../src/pages/page-keys.js';
import { integrationOf } from '../../src/cache/integration.js';
import { send } from './client.js';
import { type SiteProcess, startSiteProcess } from './fixtures/site-process.js';
import { STACK_NAMES, stackKey } from './stacks.js';
import { eventually } from '../setup/eventually.js';

const redisUrl = process.env.CACHEGRAIN_TEST_REDIS_URL;
/** Per stack: set as its tests begin. */
let KEY_PREFIX = '';
let stack = '';
// One host for both processes (as behind a load balancer), so they share every page key.
const HOST = 'shop.example';
const COOKIES = Array.from({ length: 6 }, (_, i) => `visitor=${i}`);
/** Each cookie twice, interleaved: 12 requests. */
const BURST = [...COOKIES, ...COOKIES];

const md5 = (text: string) => createHash('md5').update(text).digest('hex');

describe.each(STACK_NAMES)('on %s', (name) => {
  beforeAll(() => {
    stack = name;
    KEY_PREFIX = `burst${process.pid}${stackKey(name)}`;
  });
  describe('the first requests for a new page, varied on Cookie, on one Redis', () => {
    let sites: SiteProcess[] = [];
    beforeAll(async () => {
      if (redisUrl === undefined) throw new Error('CACHEGRAIN_TEST_REDIS_URL is not set: the test setup starts redis-server (Debian package redis-server)');
      await configureCaches({ default: { backend: 'redis', location: redisUrl, keyPrefix: KEY_PREFIX } });
      const startSite = () =>
        startSiteProcess(new URL('./fixtures/page-server.ts', import.meta.url), { CACHEGRAIN_TEST_STACK: stack, PAGE_KEY_PREFIX: KEY_PREFIX });
      sites = await Promise.all([startSite(), startSite()]);
    }, 30_000);
    afterAll(async () => {
      await Promise.all(sites.map((site) => site.close()));
      await caches.closeAll();
    });

    /** The 12 requests at once, the i-th to `siteFor(i)`; each answer must be its own visitor's page. */
    async function burst(path: string, siteFor: (i: number) => SiteProcess): Promise<string[]> {
      const replies = await Promise.all(BURST.map((cookie, i) => send(siteFor(i).url, path, { headers: { Host: HOST, Cookie: cookie } })));
      replies.forEach((reply, i) => expect(reply.text).toBe(`${path.split('/').pop()} for ${BURST[i]}`));
      return replies.map((reply) => String(reply.headers['x-cache']));
    }

    /** Waits until every variant of `path` is stored and reads as fresh (pages are stored behind their responses). */
    async function storedEverywhere(path: string): Promise<void> {
      const cache = caches.get('default');
      const urlHash = md5(`http://${HOST}${path}`);
      const keyOf = (cookie: string) => pageKeyFor('', 'GET', urlHash, headerValuesHash({ headers: { cookie } } as IncomingMessage, ['cookie']));
      await eventually(async () => {
        const states = await Promise.all(COOKIES.map(async (cookie) => (await integrationOf(cache).readSharedEntry(keyOf(cookie)))?.state ?? 'missing'));
        expect(Object.fromEntries(COOKIES.map((cookie, i) => [cookie, states[i]]))).toEqual(Object.fromEntries(COOKIES.map((cookie) => [cookie, 'fresh'])));
      }, 10_000);
    }

    it('on one process: after the first 12 requests (6 cookies, twice each) are stored, the same 12 again are all HITs', async () => {
      const [one] = sites as [SiteProcess];
      const path = '/visitor/alone';
      expect(await burst(path, () => one)).toContain('MISS');
      await storedEverywhere(path);
      expect(await burst(path, () => one)).toEqual(BURST.map(() => 'HIT'));
    });

    it('on two processes, for a path invalidated before: after the first 12 requests are stored, the same 12 again are HITs', async () => {
      const [one, two] = sites as [SiteProcess, SiteProcess];
      const path = '/visitor/invalidated';
      await invalidatePage(path);
      const spread = (i: number) => (i % 4 < 2 ? one : two);
      expect(await burst(path, spread)).toContain('MISS');
      await storedEverywhere(path);
      expect(await burst(path, spread)).toEqual(BURST.map(() => 'HIT'));
    });

    it('on two processes: after the first 12 requests spread over both are stored, the same 12 again spread over both are HITs (at least 90%; stored, so all of them)', async () => {
      const [one, two] = sites as [SiteProcess, SiteProcess];
      const path = '/visitor/shared';
      const spread = (i: number) => (i % 4 < 2 ? one : two);
      expect(await burst(path, spread)).toContain('MISS');
      await storedEverywhere(path);
      const second = await burst(path, spread);
      const hits = second.filter((status) => status === 'HIT').length;
      // Every variant is stored and fresh by now: nothing may legitimately miss, so 90% is a floor, not a goal.
      expect(hits / second.length, `second burst: ${second.join(' ')}`).toBeGreaterThanOrEqual(0.9);
      expect(second).toEqual(BURST.map(() => 'HIT'));
    });
  });
});
