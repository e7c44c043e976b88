/** The conformance kit for a backend that stores nothing (dummy). */
import { describe, expect, it } from 'vitest';
import { type BaseCache, KeyNotFoundError } from '../../../src/index.js';

export function describeStoresNothing(getCache: () => BaseCache): void {
  describe('stores nothing', () => {
    it('answers misses for everything it was given', async () => {
      const cache = getCache();
      await cache.set('key', 'value');
      expect(await cache.get('key')).toBeUndefined();
      expect(await cache.get('key', 'default')).toBe('default');
      expect(await cache.hasKey('key')).toBe(false);
      expect((await cache.getMany(['key'])).size).toBe(0);
    });
    it('answers true to add and stores nothing', async () => {
      const cache = getCache();
      expect(await cache.add('key', 'value')).toBe(true);
      expect(await cache.add('key', 'value')).toBe(true);
      expect(await cache.get('key')).toBeUndefined();
    });
    it('answers false to delete and touch, [] to setMany', async () => {
      const cache = getCache();
      expect(await cache.delete('key')).toBe(false);
      expect(await cache.touch('key', 10)).toBe(false);
      expect(await cache.setMany({ a: 1, b: 2 })).toEqual([]);
      await cache.deleteMany(['a']);
      await cache.clear();
    });
    it('fails incr, decr and version moves with KeyNotFoundError', async () => {
      const cache = getCache();
      await cache.set('n', 1);
      await expect(cache.incr('n')).rejects.toThrow(KeyNotFoundError);
      await expect(cache.decr('n')).rejects.toThrow(KeyNotFoundError);
      await expect(cache.incrVersion('n')).rejects.toThrow(KeyNotFoundError);
      await expect(cache.decrVersion('n')).rejects.toThrow(KeyNotFoundError);
    });
    it('returns the computed value from getOrSet', async () => {
      const cache = getCache();
      expect(await cache.getOrSet('k', () => 'computed')).toBe('computed');
      expect(await cache.getOrSet('k', null)).toBeNull();
    });
    it('takes tags, stale windows and invalidations as any cache does, and stores nothing', async () => {
      const cache = getCache();
      await expect(cache.set('tagged', 'value', { timeout: 60, tags: ['item:1'], staleWhileRevalidate: 30 })).resolves.toBeUndefined();
      expect(await cache.setMany({ a: 1, b: 2 }, { tags: ['item:1'], staleIfError: 60 })).toEqual([]);
      expect(await cache.getOrSet('computed', () => 'fresh', { tags: ['item:2'], staleWhileRevalidate: 30 })).toBe('fresh');
      await cache.invalidateTags(['item:1']);
      expect(await cache.get('tagged')).toBeUndefined();
      expect((await cache.getMany(['a', 'b', 'computed'])).size).toBe(0);
    });
    it('accepts any value, as it never stores one', async () => {
      const cache = getCache();
      await expect(cache.set('fn', () => 1)).resolves.toBeUndefined();
      await expect(cache.set('undef', undefined)).resolves.toBeUndefined();
    });
  });
}
