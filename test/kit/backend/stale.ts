/** The conformance kit: entries served stale while one refresh runs, or when it fails. */
import { beforeEach, describe, expect, it } from 'vitest';
import type { BaseCache } from '../../../src/index.js';
import { eventually } from '../../setup/eventually.js';
import type { Kit } from './kit.js';

export function describeStale(kit: Kit): void {
  let cache: BaseCache;
  beforeEach(() => {
    cache = kit.cache;
  });
  const { make, advance } = kit;
  describe('stale entries', () => {
    /** A factory whose calls are counted and whose answers the test releases. */
    function heldFactory(value: string) {
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      const factory = Object.assign(
        async () => {
          factory.calls++;
          await released;
          return value;
        },
        { calls: 0, release },
      );
      return factory;
    }

    it('getOrSet answers a stale entry at once and refreshes it once behind the callers', async () => {
      const options = { timeout: 1, staleWhileRevalidate: 600 };
      expect(await cache.getOrSet('feed', () => 'v1', options)).toBe('v1');
      await advance(2);
      expect(await cache.get('feed')).toBeUndefined();
      const refresh = heldFactory('v2');
      const answers = await Promise.all(Array.from({ length: 5 }, () => cache.getOrSet('feed', refresh, options)));
      expect(answers).toEqual(['v1', 'v1', 'v1', 'v1', 'v1']);
      refresh.release();
      await eventually(async () => expect(await cache.get('feed')).toBe('v2'));
      expect(refresh.calls).toBe(1);
    });
    it('one refresh for every cache on the store (one lock across processes)', async () => {
      const other = await make();
      const options = { timeout: 1, staleWhileRevalidate: 600 };
      await cache.getOrSet('feed', () => 'v1', options);
      await advance(2);
      const refresh = heldFactory('v2');
      const answers = await Promise.all([cache, other, cache, other].map((each) => each.getOrSet('feed', refresh, options)));
      expect(answers).toEqual(['v1', 'v1', 'v1', 'v1']);
      refresh.release();
      await eventually(async () => expect(await other.get('feed')).toBe('v2'));
      expect(refresh.calls).toBe(1);
    });
    it('staleIfError: a failing factory is answered with the stale value and reported; without one it rejects', async () => {
      const errors: Error[] = [];
      cache.on('error', (error: Error) => errors.push(error));
      const options = { timeout: 1, staleIfError: 600 };
      await cache.getOrSet('feed', () => 'v1', options);
      await advance(2);
      const failing = () => Promise.reject(new Error('database down'));
      expect(await cache.getOrSet('feed', failing, options)).toBe('v1');
      expect(errors.map((error) => error.message)).toEqual(['database down']);
      await expect(cache.getOrSet('other', failing, options)).rejects.toThrow('database down');
      expect(await cache.getOrSet('feed', () => 'v2', options)).toBe('v2');
    });
    it('a refresh that fails keeps the stale entry and is reported', async () => {
      const errors: Error[] = [];
      cache.on('error', (error: Error) => errors.push(error));
      const options = { timeout: 1, staleWhileRevalidate: 600 };
      await cache.getOrSet('feed', () => 'v1', options);
      await advance(2);
      expect(await cache.getOrSet('feed', () => Promise.reject(new Error('feed down')), options)).toBe('v1');
      await eventually(() => expect(errors.map((error) => error.message)).toEqual(['feed down']));
      expect(await cache.getOrSet('feed', () => 'v2', options)).toBe('v1');
    });
    it('getEntries answers each entry with its tags and how it stands', async () => {
      await cache.set('fresh', 'f', { timeout: 600, tags: ['a', 'b'] });
      await cache.set('stale', 's', { timeout: 1, staleWhileRevalidate: 600 });
      await cache.set('error', 'e', { timeout: 1, staleIfError: 600 });
      await cache.set('gone', 'g', { timeout: 1 });
      await advance(2);
      const found = await cache.getEntries(['gone', 'error', 'stale', 'fresh', 'missing']);
      expect([...found]).toEqual([
        ['error', { value: 'e', tags: [], state: 'error' }],
        ['stale', { value: 's', tags: [], state: 'stale' }],
        ['fresh', { value: 'f', tags: ['a', 'b'], state: 'fresh' }],
      ]);
      expect(await cache.hasKey('stale')).toBe(false);
      expect([...(await cache.getMany(['stale', 'fresh']))]).toEqual([['fresh', 'f']]);
    });
    it('a soft invalidation makes entries with a stale window stale, and those without one gone', async () => {
      await cache.set('windowed', 'w', { timeout: 600, staleWhileRevalidate: 60, tags: ['item:3'] });
      await cache.set('plain', 'p', { timeout: 600, tags: ['item:3'] });
      await cache.set('other', 'o', { timeout: 600, staleWhileRevalidate: 60, tags: ['item:4'] });
      await cache.invalidateTags(['item:3'], { soft: true });
      const found = await cache.getEntries(['windowed', 'plain', 'other']);
      expect([...found].map(([key, entry]) => [key, entry.state])).toEqual([
        ['windowed', 'stale'],
        ['other', 'fresh'],
      ]);
      const refresh = heldFactory('w2');
      expect(await cache.getOrSet('windowed', refresh, { timeout: 600, staleWhileRevalidate: 60, tags: ['item:3'] })).toBe('w');
      refresh.release();
      await eventually(async () => expect(await cache.get('windowed')).toBe('w2'));
      await cache.set('windowed', 'w3', { timeout: 600, staleWhileRevalidate: 60, tags: ['item:3'] });
      await cache.invalidateTags(['item:3']);
      expect((await cache.getEntries(['windowed'])).size).toBe(0);
    });
    it('touch moves the end of freshness; the stale window follows it', async () => {
      await cache.set('k', 'v', { timeout: 1, staleWhileRevalidate: 600 });
      expect(await cache.touch('k', 600)).toBe(true);
      await advance(2);
      expect(await cache.get('k')).toBe('v');
    });
    it('refuses a stale window that is not a non-negative number, naming it', async () => {
      await expect(cache.set('k', 1, { staleWhileRevalidate: -1 })).rejects.toThrow(/staleWhileRevalidate must be a non-negative number of seconds \(got -1\)/);
      await expect(cache.getOrSet('k', 1, { staleIfError: 'long' as never })).rejects.toThrow(/staleIfError must be a non-negative number/);
      await expect(cache.invalidateTags(['t'], { soft: 'yes' as never })).rejects.toThrow(/options.soft must be a boolean/);
    });
  });
}
