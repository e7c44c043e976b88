/** The conformance kit: tags and their invalidation. */
import { beforeEach, describe, expect, it } from 'vitest';
import { type BaseCache, KeyNotFoundError } from '../../../src/index.js';
import { integrationOf } from '../../../src/cache/integration.js';
import type { Kit } from './kit.js';

export function describeTags(kit: Kit): void {
  let cache: BaseCache;
  beforeEach(() => {
    cache = kit.cache;
  });
  const { make, advance } = kit;
  describe('tags', () => {
    it('invalidateTags makes every entry written with a tag a miss, in every cache on the store, and nothing else', async () => {
      const other = await make();
      await cache.set('article', 'a', { tags: ['article:7', 'author:3'] });
      await cache.set('bio', 'b', { tags: ['author:3'] });
      await cache.set('plain', 'p');
      await cache.set('elsewhere', 'e', { tags: ['author:4'] });
      expect(await other.get('article')).toBe('a');
      await other.invalidateTags(['author:3']);
      for (const reader of [cache, other]) {
        expect(await reader.get('article', 'gone')).toBe('gone');
        expect(await reader.get('bio')).toBeUndefined();
        expect(await reader.hasKey('bio')).toBe(false);
        expect([...(await reader.getMany(['article', 'bio', 'plain', 'elsewhere']))]).toEqual([
          ['plain', 'p'],
          ['elsewhere', 'e'],
        ]);
      }
    });
    it('tags add no reading of the clock per entry to a getMany: its tagged entries are judged as of one reading', async () => {
      const keys = Array.from({ length: 20 }, (_, i) => `book-${i}`);
      await cache.setMany(Object.fromEntries(keys.map((key) => [`${key}-plain`, key])), { timeout: 10 });
      await cache.setMany(Object.fromEntries(keys.map((key) => [key, key])), { timeout: 10, tags: ['shelf'], staleWhileRevalidate: 600 });
      const written = cache.now();
      let readings = 0;
      cache.now = () => (readings++, written + 5);
      const readingsOf = async (asked: string[]) => {
        readings = 0;
        expect((await cache.getMany(asked)).size).toBe(asked.length);
        return readings;
      };
      /** The readings the tags of `count` entries add to a getMany of as many untagged ones (each batch read once first: a first read learns the tags' versions). */
      const addedByTags = async (count: number) => {
        const tagged = keys.slice(0, count);
        const plain = tagged.map((key) => `${key}-plain`);
        await readingsOf(plain);
        await readingsOf(tagged);
        return (await readingsOf(tagged)) - (await readingsOf(plain));
      };
      expect(await addedByTags(20)).toBeLessThanOrEqual(await addedByTags(2));
    });
    it('does not affect entries written after the invalidation', async () => {
      await cache.set('k', 'old', { tags: ['t'] });
      await cache.invalidateTags(['t']);
      await cache.set('k', 'new', { tags: ['t'] });
      expect(await cache.get('k')).toBe('new');
      await cache.setMany({ m1: 1, m2: 2 }, { tags: ['t', 'u'] });
      expect(Object.fromEntries(await cache.getMany(['m1', 'm2']))).toEqual({ m1: 1, m2: 2 });
      await cache.invalidateTags(['u']);
      expect((await cache.getMany(['m1', 'm2', 'k'])).size).toBe(1);
    });
    it('add and getOrSet treat an invalidated entry as missing; exactly one of many concurrent adds wins', async () => {
      await cache.set('k', 'old', { tags: ['t'] });
      expect(await cache.add('k', 'x', { tags: ['t'] })).toBe(false);
      await cache.invalidateTags(['t']);
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => cache.add('k', `v${i}`, { tags: ['t'] })));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await cache.get('k')).toBe(`v${results.indexOf(true)}`);
      await cache.invalidateTags(['t']);
      expect(await cache.getOrSet('k', () => 'computed', { tags: ['t'] })).toBe('computed');
      expect(await cache.get('k')).toBe('computed');
    });
    it('touch, incr and incrVersion keep the tags', async () => {
      await cache.set('n', 1, { tags: ['t'] });
      expect(await cache.touch('n', 600)).toBe(true);
      expect(await cache.incr('n')).toBe(2);
      expect(await cache.get('n')).toBe(2);
      await cache.set('v', 'x', { tags: ['t'] });
      expect(await cache.incrVersion('v')).toBe(2);
      await cache.invalidateTags(['t']);
      expect(await cache.get('n')).toBeUndefined();
      expect(await cache.get('v', undefined, { version: 2 })).toBeUndefined();
      await expect(cache.incr('n')).rejects.toThrow(KeyNotFoundError);
    });
    it('setEach writes entries with their own timeouts, tags and windows in one batch; readEntriesAndTags reads them back with the versions', async () => {
      const asOf = await cache.readTagSnapshot(['shared', 'own']);
      expect(
        await cache.setEach(
          [
            { key: 'short', value: 's', options: { timeout: 1, tags: ['shared'] } },
            { key: 'long', value: 'l', options: { timeout: 600, tags: ['shared', 'own'], staleWhileRevalidate: 60 } },
            { key: 'plain', value: 'p', options: 600 },
          ],
          asOf,
        ),
      ).toEqual([]);
      const { entries, versions } = await cache.readEntriesAndTags(['short', 'long', 'plain', 'missing'], ['own']);
      expect([...entries].map(([key, entry]) => [key, entry.value, [...entry.tags].sort(), entry.state])).toEqual([
        ['short', 's', ['shared'], 'fresh'],
        ['long', 'l', ['own', 'shared'], 'fresh'],
        ['plain', 'p', [], 'fresh'],
      ]);
      expect([...versions.keys()].sort()).toEqual(['own', 'shared']);
      await advance(2);
      expect(await cache.get('short')).toBeUndefined();
      await cache.invalidateTags(['own']);
      expect([...(await cache.getMany(['short', 'long', 'plain']))]).toEqual([['plain', 'p']]);
    });
    it('setEach does not store what a tag invalidated since its snapshot would make stale', async () => {
      await cache.set('seed', 1, { tags: ['t'] });
      const asOf = await cache.readTagSnapshot(['t']);
      await cache.invalidateTags(['t']);
      // Computed before the invalidation, stamped with the version from before it: dead at once.
      await cache.setEach([{ key: 'late', value: 'old', options: { timeout: 600, tags: ['t'] } }], asOf);
      expect(await cache.get('late')).toBeUndefined();
      // The tag's first invalidation between the snapshot and the write keeps the write out too.
      const fresh = await cache.readTagSnapshot(['new-tag']);
      await cache.invalidateTags(['new-tag']);
      await cache.setEach([{ key: 'raced', value: 'x', options: { tags: ['new-tag'] } }], fresh);
      expect(await cache.get('raced')).toBeUndefined();
      await cache.set('raced', 'y', { tags: ['new-tag'] });
      expect(await cache.get('raced')).toBe('y');
    });
    it("a tag's first use is no race: concurrent first writes with a new tag all store, and all read back as hits", async () => {
      const keys = Array.from({ length: 12 }, (_, i) => `first:${i}`);
      const asOf = await cache.readTagSnapshot(['url:/new']);
      const written = await Promise.all([
        ...keys.slice(0, 4).map((key) => cache.set(key, key, { timeout: 600, tags: ['url:/new'] }).then(() => [])),
        ...keys.slice(4, 8).map((key) => cache.setEach([{ key, value: key, options: { timeout: 600, tags: ['url:/new', 'other:new'] } }], asOf)),
        ...keys.slice(8).map((key) => cache.getOrSet(key, async () => key, { timeout: 600, tags: ['url:/new'] }).then(() => [])),
      ]);
      expect(written.flat()).toEqual([]);
      expect([...(await cache.getMany(keys)).keys()]).toEqual(keys);
      await cache.invalidateTags(['url:/new']);
      expect((await cache.getMany(keys)).size).toBe(0);
    });
    it('a tag never invalidated leaves no key in the store; an invalidation writes one', async () => {
      const before = await integrationOf(cache).countEntries();
      await cache.set('k', 'v', { timeout: 600, tags: ['never'] });
      await cache.setEach([{ key: 'e', value: 'v', options: { timeout: 600, tags: ['never', 'also-never'] } }], await cache.readTagSnapshot(['never']));
      expect(await cache.getOrSet('g', () => 'v', { timeout: 600, tags: ['never'] })).toBe('v');
      expect(await cache.get('k')).toBe('v');
      expect(await integrationOf(cache).storedEntry('cachegrain.tag.never', { version: 0 })).toBeUndefined();
      expect(await integrationOf(cache).storedEntry('cachegrain.tag.also-never', { version: 0 })).toBeUndefined();
      if (before !== undefined) expect(await integrationOf(cache).countEntries()).toBe(before + 3);
      await cache.invalidateTags(['never']);
      expect(await integrationOf(cache).storedEntry('cachegrain.tag.never', { version: 0 })).toBeDefined();
      expect(await cache.get('k')).toBeUndefined();
    });
    it('a soft invalidation of a tag never invalidated makes its entries stale, not gone', async () => {
      await cache.set('w', 'w', { timeout: 600, staleWhileRevalidate: 60, tags: ['soft-first'] });
      await cache.invalidateTags(['soft-first'], { soft: true });
      expect([...(await cache.getEntries(['w']))].map(([key, entry]) => [key, entry.state])).toEqual([['w', 'stale']]);
      await cache.invalidateTags(['soft-first']);
      expect((await cache.getEntries(['w'])).size).toBe(0);
    });
    it('refuses tags that are not an array of non-empty strings, naming them', async () => {
      await expect(cache.set('k', 1, { tags: 'article' as never })).rejects.toThrow(/tags must be an array of non-empty strings/);
      await expect(cache.invalidateTags([''])).rejects.toThrow(/invalidateTags: tags must be an array of non-empty strings/);
    });
  });
}
