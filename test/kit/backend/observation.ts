/** The conformance kit: stats, and the diagnostics channels. */
import { beforeEach, describe, expect, it } from 'vitest';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { type BaseCache, type CacheEvent, channelName } from '../../../src/index.js';
import { integrationOf } from '../../../src/cache/integration.js';
import type { Kit } from './kit.js';

export function describeObservation(kit: Kit): void {
  let cache: BaseCache;
  beforeEach(() => {
    cache = kit.cache;
  });
  const { advance } = kit;
  describe('stats and diagnostics channels', () => {
    it('stats() counts hits, misses, stale hits, sets and deletes as each operation ends; resetStats() starts again', async () => {
      await cache.set('a', 1);
      await cache.setMany({ b: 2, c: 3 });
      expect(await cache.add('a', 9)).toBe(false);
      await cache.get('a');
      await cache.get('absent');
      await cache.getMany(['a', 'b', 'absent']);
      await cache.delete('c');
      await cache.deleteMany(['b', 'nothing']);
      expect(cache.stats()).toEqual({ hits: 3, misses: 2, staleHits: 0, sets: 3, deletes: 3, errors: 0, purgesSent: 0, purgesFailed: 0 });
      // Where the backend can tell (locmem, files, a table), how many entries it holds; a shared server cannot.
      expect(await integrationOf(cache).countEntries()).toBe(
        ['LocMemCache', 'FileBasedCache', 'DatabaseCache'].includes(cache.constructor.name) ? 1 : undefined,
      );
      await cache.set('stale', 'old', { timeout: 1, staleWhileRevalidate: 600 });
      await advance(2);
      expect((await cache.getEntries(['stale'])).get('stale')?.state).toBe('stale');
      expect(cache.stats()).toMatchObject({ hits: 3, staleHits: 1, sets: 4 });
      cache.resetStats();
      expect(cache.stats()).toEqual({ hits: 0, misses: 0, staleHits: 0, sets: 0, deletes: 0, errors: 0, purgesSent: 0, purgesFailed: 0 });
    });

    it('publishes each operation on cachegrain:<operation> while someone listens, and nothing after', async () => {
      const events: CacheEvent[] = [];
      const listen = (message: unknown) => events.push(message as CacheEvent);
      const operations = ['get', 'getMany', 'getOrSet', 'set', 'invalidateTags'] as const;
      for (const operation of operations) subscribe(channelName(operation), listen);
      try {
        await cache.set('a', 0);
        // A stored value equal to the caller's default is still a hit.
        expect(await cache.get('a', 0)).toBe(0);
        expect(await cache.get('absent', 'fallback')).toBe('fallback');
        await cache.getMany(
          (function* () {
            yield 'a';
            yield 'absent';
          })(),
        );
        // getOrSet tells whether it found the key or computed it.
        expect(await cache.getOrSet('computed', 1)).toBe(1);
        expect(await cache.getOrSet('computed', 2)).toBe(1);
        await cache.invalidateTags(['news'], { soft: true });
        await expect(cache.get(['not', 'a', 'key'] as never)).rejects.toThrow();
      } finally {
        for (const operation of operations) unsubscribe(channelName(operation), listen);
      }
      await cache.get('a');
      const alias = cache.alias;
      expect(
        events.map(({ duration, error, ...rest }) => ({ ...rest, timed: typeof duration === 'number' && duration >= 0, failed: error !== undefined })),
      ).toEqual([
        { operation: 'set', alias, key: 'a', outcome: 'ok', timed: true, failed: false },
        { operation: 'get', alias, key: 'a', outcome: 'hit', timed: true, failed: false },
        { operation: 'get', alias, key: 'absent', outcome: 'miss', timed: true, failed: false },
        { operation: 'getMany', alias, keys: ['a', 'absent'], outcome: 'miss', hits: 1, misses: 1, timed: true, failed: false },
        { operation: 'getOrSet', alias, key: 'computed', outcome: 'miss', timed: true, failed: false },
        { operation: 'getOrSet', alias, key: 'computed', outcome: 'hit', timed: true, failed: false },
        { operation: 'invalidateTags', alias, tags: ['news'], soft: true, outcome: 'ok', timed: true, failed: false },
        { operation: 'get', alias, key: 'not,a,key', outcome: 'error', timed: true, failed: true },
      ]);
    });
  });
}
