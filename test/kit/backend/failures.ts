/** The conformance kit: a cache whose server is down, and a cache once closed. */
import { afterEach, describe, expect, it } from 'vitest';
import { type BaseCache, CacheServerError } from '../../../src/index.js';
import type { BackendUnderTest } from './kit.js';

export function describeServerDown(makeDown: NonNullable<BackendUnderTest['makeDown']>): void {
  describe('with its server down', () => {
    const downs: BaseCache[] = [];
    afterEach(async () => {
      for (const cache of downs.splice(0)) await cache.close();
    });
    async function down(options: Record<string, unknown>): Promise<BaseCache> {
      const cache = await makeDown(options);
      cache.on('error', () => undefined);
      downs.push(cache);
      return cache;
    }
    it('failOpen: reads miss, writes resolve, and counters reject with CacheServerError, never KeyNotFoundError', async () => {
      const cache = await down({ failOpen: true, timeoutMs: 300 });
      expect(await cache.get('n', 'fallback')).toBe('fallback');
      expect((await cache.getMany(['n', 'm'])).size).toBe(0);
      await cache.set('n', 1);
      for (const counter of [() => cache.incr('n'), () => cache.decr('n', 2), () => cache.incrVersion('n'), () => cache.decrVersion('n')]) {
        await expect(counter()).rejects.toThrow(CacheServerError);
      }
    });
    it('failOpen: tagged writes are no-ops as untagged ones are, never rejected', async () => {
      const cache = await down({ failOpen: true, timeoutMs: 300 });
      const tagged = { timeout: 60, tags: ['t'] };
      expect(await cache.set('a', 1, tagged)).toBeUndefined();
      expect(await cache.add('b', 1, tagged)).toBe(false);
      expect(await cache.setMany({ c: 1 }, tagged)).toEqual(['c']);
      expect(await cache.getOrSet('d', () => 'computed', tagged)).toBe('computed');
    });
    it('invalidateTags rejects rather than forgets, failOpen or not', async () => {
      for (const failOpen of [true, false]) {
        const cache = await down({ failOpen, timeoutMs: 300 });
        await expect(cache.invalidateTags(['t'])).rejects.toThrow(CacheServerError);
        await expect(cache.invalidateTags(['t'], { soft: true })).rejects.toThrow(CacheServerError);
      }
    });
    it('without failOpen: every call rejects with CacheServerError', async () => {
      const cache = await down({ timeoutMs: 300 });
      for (const call of [() => cache.get('n'), () => cache.set('n', 1), () => cache.incr('n'), () => cache.add('n', 1), () => cache.delete('n')]) {
        await expect(call()).rejects.toThrow(CacheServerError);
      }
    });
  });
}

/** A cache on a server, once closed: its calls are refused as calls to a closed cache, never taken for an outage. */
export function describeClosed(make: BackendUnderTest['make']): void {
  describe('once closed', () => {
    for (const failOpen of [false, true]) {
      it(`rejects every call naming the closed cache${failOpen ? ' (failOpen answers no miss for it)' : ''}, and reports no outage`, async () => {
        const cache = await make({ alias: 'closing', keyPrefix: 'closing', options: { failOpen } });
        const reported: Error[] = [];
        cache.on('error', (error: Error) => reported.push(error));
        await cache.set('k', 1);
        await cache.close();
        const calls = [
          () => cache.get('k'),
          () => cache.set('k', 2),
          () => cache.getMany(['k']),
          () => cache.incr('k'),
          () => cache.getOrSet('z', () => 1),
          () => cache.delete('k'),
        ];
        for (const call of calls) await expect(call()).rejects.toThrow("cache 'closing' is closed: close() or caches.closeAll() ended its connections");
        expect(reported.map((error) => error.message)).toEqual([]);
      });
    }
  });
}
