/**
 * What a test waits for and starts from: `settled()` waits for the writes a cache makes behind its
 * callers, `caches.clearAll()` empties every configured cache once they have landed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { cachePage } from '../src/frameworks/express.js';
import { type BaseCache, caches, configureCaches, LocMemCache, type WriteOptions } from '../src/index.js';
import { listen, send } from './http/client.js';

afterEach(async () => {
  await configureCaches({ default: { backend: 'locmem' } });
});

const STALE_FOR_A_MINUTE = { timeout: 1, staleWhileRevalidate: 60 };

/**
 * Makes `key` of `cache` stale and asks for it again: answers the stale value, with its refresh
 * behind it entered and held until `release()`.
 */
async function refreshHeld(cache: BaseCache, key: string): Promise<{ answered: unknown; release: () => void }> {
  let clock = cache.now();
  cache.now = () => clock;
  await cache.getOrSet(key, () => 'before', STALE_FOR_A_MINUTE);
  clock += 2;
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let entered!: () => void;
  const refreshing = new Promise<void>((resolve) => (entered = resolve));
  const answered = await cache.getOrSet(
    key,
    async () => {
      entered();
      await held;
      return 'after';
    },
    STALE_FOR_A_MINUTE,
  );
  await refreshing;
  return { answered, release };
}

describe('settled()', () => {
  it('settles once a stale entry refreshed behind its caller is stored', async () => {
    await configureCaches({ default: { backend: 'locmem', location: 'settled-refresh' } });
    const cache = caches.get('default');
    const { answered, release } = await refreshHeld(cache, 'k');
    expect(answered).toBe('before');
    const settled = cache.settled();
    release();
    await settled;
    expect(await cache.get('k')).toBe('after');
  });

  it('settles once a page stored after its response went out is stored', async () => {
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    /** A store in this process (its response does not wait for its writes) whose writes wait for the gate, and land a turn after it opens. */
    class HeldLocMem extends LocMemCache {
      override async set(key: string, value: unknown, options?: number | null | WriteOptions): Promise<void> {
        await gate;
        await new Promise(setImmediate);
        return super.set(key, value, options);
      }
    }
    await configureCaches({ default: { backend: HeldLocMem, location: 'settled-page' } });
    const cache = caches.get('default');
    const page = cachePage(60);
    const server = await listen((req, res) => page(req, res, () => res.end('the page')));
    try {
      expect((await send(server.url, '/')).headers['x-cache']).toBe('MISS');
      const settled = cache.settled();
      openGate();
      await settled;
      expect(cache.stats().sets, 'the page is stored').toBeGreaterThan(0);
      expect((await send(server.url, '/')).headers['x-cache']).toBe('HIT');
    } finally {
      await server.close();
    }
  });

  it('caches.settled() settles once every cache built so far has', async () => {
    await configureCaches({ default: { backend: 'locmem', location: 'settled-all' }, other: { backend: 'locmem', location: 'settled-other' } });
    const other = caches.get('other');
    const { release } = await refreshHeld(other, 'k');
    const settled = caches.settled();
    release();
    await settled;
    expect(await other.get('k')).toBe('after');
  });

  it('settles at once when nothing runs behind', async () => {
    await configureCaches({ default: { backend: 'locmem', location: 'settled-idle' } });
    await expect(caches.settled()).resolves.toBeUndefined();
    await expect(caches.get('default').settled()).resolves.toBeUndefined();
  });
});

describe('caches.clearAll()', () => {
  it('empties every configured cache, those not used yet too', async () => {
    await configureCaches({ default: { backend: 'locmem', location: 'clear-all' }, pages: { backend: 'locmem', location: 'clear-all-pages' } });
    await caches.get('default').set('a', 1);
    // Written where `pages` keeps its entries, before `pages` is built.
    await new LocMemCache({ location: 'clear-all-pages' }).set('b', 2);
    await caches.clearAll();
    expect([await caches.get('default').get('a'), await caches.get('pages').get('b')]).toEqual([undefined, undefined]);
  });

  it('clears once what was being written behind the callers has landed, so that none of it lands after', async () => {
    await configureCaches({ default: { backend: 'locmem', location: 'clear-after-refresh' } });
    const cache = caches.get('default');
    const { release } = await refreshHeld(cache, 'k');
    const clearing = caches.clearAll();
    release();
    await clearing;
    await cache.settled();
    expect(await cache.get('k')).toBeUndefined();
  });
});
