/**
 * What the page cache keeps in memory is bounded by its store's capacity and stated constants, not
 * by the URLs requested: 20,000 distinct URLs over HTTP through `cacheMiddleware` on a locmem of
 * 1,000 entries, with tags and a subscriber on the operations' channels as a real site has, and
 * every memo that grows per URL, route or variant stays within its cap.
 */
import { integrationOf } from '../../src/cache/integration.js';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import http from 'node:http';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addCacheTags, cacheMiddleware } from '../../src/frameworks/express.js';
import { CACHE_OPERATIONS, channelName, LocMemCache } from '../../src/index.js';
import { pageStats, pageVariants, resetPageStats } from '../../src/http/index.js';
import { VARIANTS_COUNTED, variantsUncounted } from '../../src/pages/page-stats.js';
import { MADE_KEYS_PER_STORED_ENTRY, type KeyMaker } from '../../src/store/key-maker.js';
import type { BoundedMemo } from '../../src/memos/bounded-memo.js';
import { TAG_KEYS_REMEMBERED } from '../../src/tags/versions.js';
import { listen } from './client.js';

const MAX_ENTRIES = 1000;
const URLS = 20_000;
/** Paths the URLs are spread over: routes of their own (no Express route matches), each with many query strings. */
const PATHS = 100;
/** What the page cache counts routes up to (`CountsByName`'s limit), with the `(other)` row past it. */
const ROUTES_COUNTED = 1000;

/** The per-cache memos that grow with the keys asked for, read from the cache's parts. */
function memosOf(cache: LocMemCache): { madeKeys: KeyMaker<unknown>; known: BoundedMemo<{ entry: unknown }>; stamps: BoundedMemo<unknown> } {
  const parts = cache as unknown as { keys: KeyMaker<unknown>; batches: { stampsByKey: BoundedMemo<unknown> } };
  const known = (parts.keys as unknown as { known: BoundedMemo<{ entry: unknown }> }).known;
  return { madeKeys: parts.keys, known, stamps: parts.batches.stampsByKey };
}

/** The entries the made keys remember, live or culled: each is a page (or header list) held in memory. */
function entriesHeldByMadeKeys(known: BoundedMemo<{ entry: unknown }>): number {
  const entries = (known as unknown as { entries: Map<string, { entry: unknown }> }).entries;
  return [...entries.values()].filter((node) => node.entry !== undefined).length;
}

describe('a page cache asked for 20,000 distinct URLs over HTTP, on a locmem of 1,000 entries', () => {
  const cache = new LocMemCache({ location: `memory-bounds-${process.pid}`, options: { maxEntries: MAX_ENTRIES } });
  const heard = { messages: 0 };
  const listener = () => void heard.messages++;
  let site: Awaited<ReturnType<typeof listen>>;

  beforeAll(async () => {
    resetPageStats();
    for (const operation of CACHE_OPERATIONS) subscribe(channelName(operation), listener);
    const app = express();
    app.use(cacheMiddleware({ cache, keyPrefix: 'bounds' }));
    app.use(async (req, res) => {
      addCacheTags(res, 'items', `item:${req.query.q as string}`);
      // The view's own read, which the subscriber hears (the page cache's reads and stores publish nothing).
      const item = await cache.get(`item:${req.query.q as string}`, 'none');
      res.type('html').send(`<p>${req.url} ${item}</p>`);
    });
    site = await listen(app as unknown as http.RequestListener);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const get = (path: string) =>
      new Promise<number>((resolve, reject) =>
        http.get(`${site.url}${path}`, { agent }, (reply) => reply.resume().on('end', () => resolve(reply.statusCode!))).on('error', reject),
      );
    let next = 0;
    const statuses: number[] = [];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < URLS) {
          const n = next++;
          statuses.push(await get(`/page/${n % PATHS}?q=${n}`));
        }
      }),
    );
    agent.destroy();
    expect(statuses.filter((status) => status !== 200)).toEqual([]);
  }, 120_000);

  afterAll(async () => {
    for (const operation of CACHE_OPERATIONS) unsubscribe(channelName(operation), listener);
    resetPageStats();
    await site?.close();
  });

  it('stored the pages and told the subscriber', async () => {
    expect(await integrationOf(cache).countEntries()).toBeLessThanOrEqual(MAX_ENTRIES);
    expect(heard.messages).toBeGreaterThanOrEqual(URLS);
  });

  it('remembers made keys, and the entries they answered, as many as the store holds (MADE_KEYS_PER_STORED_ENTRY per entry), not one per URL', () => {
    const { madeKeys, known, stamps } = memosOf(cache);
    const cap = MADE_KEYS_PER_STORED_ENTRY * MAX_ENTRIES;
    expect(entriesHeldByMadeKeys(known)).toBeLessThanOrEqual(cap);
    expect(known.size).toBeLessThanOrEqual(cap);
    expect(stamps.size).toBeLessThanOrEqual(cap);
    expect(madeKeys.remembered).toBe(cap);
  });

  it("remembers at most TAG_KEYS_REMEMBERED tags' version keys, though every URL brought a tag of its own", () => {
    const tags = (cache as unknown as { tags: { keysByTag: BoundedMemo<string>; madeTagKeys: BoundedMemo<true> } }).tags;
    expect(tags.keysByTag.size).toBeGreaterThan(0);
    expect(tags.keysByTag.size).toBeLessThanOrEqual(TAG_KEYS_REMEMBERED);
    expect(tags.madeTagKeys.size).toBeLessThanOrEqual(TAG_KEYS_REMEMBERED);
  });

  it('tells at most VARIANTS_COUNTED variants apart, over every route, and counts at most its routes', () => {
    const variants = [...pageVariants().values()].reduce((sum, route) => sum + route.variants, 0);
    expect(variants).toBeGreaterThan(0);
    expect(variants).toBeLessThanOrEqual(VARIANTS_COUNTED);
    // The routes whose variants went uncounted say so (the dashboard shows their count with a +).
    expect([...pageVariants().keys()].some((route) => variantsUncounted(route))).toBe(true);
    expect(pageVariants().size).toBeLessThanOrEqual(ROUTES_COUNTED);
    expect(pageStats().size).toBeLessThanOrEqual(ROUTES_COUNTED + 1);
  });
});
