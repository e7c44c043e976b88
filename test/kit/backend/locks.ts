/** The conformance kit: locks across every cache on the store. */
import { beforeEach, describe, expect, it } from 'vitest';
import type { BaseCache } from '../../../src/index.js';
import type { Kit } from './kit.js';

export function describeLocks(kit: Kit): void {
  let cache: BaseCache;
  beforeEach(() => {
    cache = kit.cache;
  });
  const { make } = kit;
  describe('acquireLock(name, seconds)', () => {
    it('is held by one caller on the store at a time, until released (or expired: see store-expiry.ts)', async () => {
      const other = await make();
      const release = await cache.acquireLock('job', 5);
      expect(release).toBeTypeOf('function');
      expect(await other.acquireLock('job', 5)).toBeUndefined();
      await release!();
      const again = await other.acquireLock('job', 5);
      expect(again).toBeTypeOf('function');
      expect(await cache.acquireLock('job', 5)).toBeUndefined();
    });
  });
}
