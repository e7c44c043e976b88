/** The conformance kit: stored entries that no codec of this package reads. */
import { beforeEach, describe, expect, it } from 'vitest';
import { type BaseCache, KeyNotFoundError } from '../../../src/index.js';
import { integrationOf } from '../../../src/cache/integration.js';
import type { Kit } from './kit.js';

/** The backend contract as the cache calls it (an L1 in front, where there is one), which the kit uses to reach the store past the codec. */
interface Primitives {
  write(entries: Array<[string, unknown]>, expiresAt: number | null): unknown;
  read(keys: string[], withExpiry: boolean): Map<string, unknown> | Promise<Map<string, unknown>>;
}
const primitives = (cache: BaseCache) => (cache as unknown as { primitives: Primitives }).primitives;

/** Stored payloads that no codec of this package reads: each must read as a miss, be removed, and be reported once. */
const UNDECODABLE: Record<string, Buffer> = {
  'a newer v8 serialization version': Buffer.from([0xff, 0x7f, 0x6f, 0x7b, 0x00]),
  'an unknown payload format': Buffer.from([0x1e, 0x01, 0x02, 0x03]),
  'an expiry stamp with a digit past base 128': Buffer.from([0x03, 0, 0, 0, 0, 0, 0x80, 0x01, 0x00, 0x61]),
  'an expiry stamp cut short': Buffer.from([0x03, 0x01, 0x02]),
  'a decimal expiry stamp that is not digits': Buffer.from([0x02, 0x02, 0x31, 0x78, 0x00, 0x61]),
  'a stamp that is not JSON': Buffer.from([0x01, 0, 0, 0, 3, 0x7b, 0x7b, 0x7b, 0xff, 0x0f, 0x54]),
  'v8 bytes cut short': Buffer.from([0xff, 0x0f, 0x6f, 0x22, 0x01, 0x61, 0x22, 0x14, 0x78, 0x78]),
};

export function describeUndecodable(kit: Kit): void {
  let cache: BaseCache;
  beforeEach(() => {
    cache = kit.cache;
  });
  const { backend } = kit;
  describe('entries that cannot be decoded', () => {
    const storeRaw = async (key: string, bytes: Buffer) => {
      const made = cache.makeKey(key);
      if (backend.storeRaw !== undefined) await backend.storeRaw(cache, made, bytes);
      else await primitives(cache).write([[made, bytes]], null);
    };
    const storedRaw = async (key: string) => (await primitives(cache).read([cache.makeKey(key)], false)).has(cache.makeKey(key));
    /** Each read path, answering whether it found the key. */
    const reads: Record<string, (key: string) => Promise<boolean>> = {
      get: async (key) => (await cache.get(key, 'missing')) !== 'missing',
      getMany: async (key) => {
        await cache.set('readable', 'still here');
        const found = await cache.getMany([key, 'readable']);
        expect(found.get('readable')).toBe('still here');
        return found.has(key);
      },
      getOrSet: async (key) => {
        expect(await cache.getOrSet(key, 'computed')).toBe('computed');
        expect(await cache.get(key)).toBe('computed');
        await cache.delete(key);
        return false;
      },
      hasKey: (key) => cache.hasKey(key),
      getEntries: async (key) => (await cache.getEntries([key])).has(key),
      readShared: async (key) => (await integrationOf(cache).readShared(key)) !== undefined,
      readSharedEntry: async (key) => (await integrationOf(cache).readSharedEntry(key)) !== undefined,
      readEntriesAndTags: async (key) => (await cache.readEntriesAndTags([key], ['a-tag'])).entries.has(key),
      peekFresh: async (key) => cache.peekFresh(key) !== undefined || (await cache.get(key)) !== undefined,
    };

    for (const [what, bytes] of Object.entries(UNDECODABLE)) {
      it(`an entry holding ${what} reads as a miss on every read path, is removed, and is reported once`, async () => {
        const errors: Error[] = [];
        cache.on('error', (error: Error) => errors.push(error));
        for (const [read, found] of Object.entries(reads)) {
          const key = `undecodable-${read}`;
          await storeRaw(key, bytes);
          cache.resetStats();
          expect(await found(key), read).toBe(false);
          expect(errors, read).toHaveLength(1);
          expect(errors[0]!.message, read).toContain(`cache 'default': `);
          expect(errors[0]!.message, read).toContain(`'${cache.makeKey(key)}'`);
          expect(cache.stats().errors, read).toBe(1);
          expect(await storedRaw(key), read).toBe(false);
          expect(await cache.get(key), read).toBeUndefined();
          expect(errors, `${read}: reported again`).toHaveLength(1);
          errors.length = 0;
        }
      });
    }

    it('incr and decr treat such an entry as missing: KeyNotFoundError, and it is removed', async () => {
      const errors: Error[] = [];
      cache.on('error', (error: Error) => errors.push(error));
      for (const [what, bytes] of Object.entries(UNDECODABLE)) {
        await storeRaw('counter', bytes);
        await expect(cache.incr('counter'), what).rejects.toThrow(KeyNotFoundError);
        expect(await storedRaw('counter'), what).toBe(false);
      }
      expect(errors).toHaveLength(Object.keys(UNDECODABLE).length);
    });

    it('a tag version that cannot be decoded makes its entries misses, is replaced by a new version (removed, it would revive them), and is reported once', async () => {
      const errors: Error[] = [];
      cache.on('error', (error: Error) => errors.push(error));
      await cache.set('tagged', 'value', { timeout: null, tags: ['t'] });
      const versionKey = cache.makeKey('cachegrain.tag.t', 0);
      await primitives(cache).write([[versionKey, UNDECODABLE['an unknown payload format']!]], null);
      expect(await cache.get('tagged')).toBeUndefined();
      expect(errors).toHaveLength(1);
      expect(errors[0]!.message).toContain(`'${versionKey}'`);
      expect(await cache.get('tagged')).toBeUndefined();
      const replaced = (await primitives(cache).read([versionKey], false)).get(versionKey);
      expect(replaced).toBeDefined();
      await cache.set('tagged', 'again', { timeout: null, tags: ['t'] });
      expect(await cache.get('tagged')).toBe('again');
      expect(errors).toHaveLength(1);
    });
  });
}
