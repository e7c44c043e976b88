/**
 * The conformance kit: what the store expires by its own clock, as no entry's stamp can tell the
 * cache: an integer (a server adds to it in place, so it carries no expiry of its own), whether
 * `delete` removed a live entry, and a lock. On a server (`traits.serverClock`) this is the one test
 * that waits for the server's clock to pass.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { type BaseCache, KeyNotFoundError } from '../../../src/index.js';
import type { Kit } from './kit.js';

export function describeStoreExpiry(kit: Kit): void {
  let cache: BaseCache;
  beforeEach(() => {
    cache = kit.cache;
  });
  const { make, elapse } = kit;
  describe('what the store itself expires', () => {
    it("an integer, which every read then misses, incr keeps the remaining lifetime of and delete answers false for; a lock, whose expired holder's release leaves the next holder's alone", async () => {
      const other = await make();
      await cache.set('short', 1, 1);
      await cache.set('gone', 1, 1);
      await cache.set('counter', 1, 2);
      expect(await cache.incr('counter')).toBe(2);
      const expiring = await other.acquireLock('job', 2);
      expect(expiring).toBeTypeOf('function');
      await elapse(2);
      expect(await cache.hasKey('short')).toBe(false);
      expect(await cache.get('short')).toBeUndefined();
      expect((await cache.getMany(['short'])).size).toBe(0);
      expect(await cache.delete('gone')).toBe(false);
      expect(await cache.get('counter')).toBeUndefined();
      await expect(cache.incr('counter')).rejects.toThrow(KeyNotFoundError);
      const next = await cache.acquireLock('job', 5);
      expect(next).toBeTypeOf('function');
      await expiring!();
      expect(await other.acquireLock('job', 5)).toBeUndefined();
      await next!();
    });
  });
}
