/** The conformance kit: reading, writing, adding and removing entries, batches, getOrSet, keys. */
import { beforeEach, describe, expect, it } from 'vitest';
import { type BaseCache, InvalidCacheKeyError } from '../../../src/index.js';
import { sleep } from '../../setup/sleep.js';
import type { Kit } from './kit.js';

const customKeyFunction = (key: string, prefix: string, version: number) => `CUSTOM-${[prefix, String(version), key].join('-')}`;

export function describeBasics(kit: Kit): void {
  let cache: BaseCache;
  beforeEach(() => {
    cache = kit.cache;
  });
  const { make, advance } = kit;
  describe('get/set', () => {
    it('returns what was set', async () => {
      await cache.set('key', 'value');
      expect(await cache.get('key')).toBe('value');
    });
    it('returns undefined, or the default, for a missing key', async () => {
      expect(await cache.get('missing')).toBeUndefined();
      expect(await cache.get('missing', 'fallback')).toBe('fallback');
    });
    it('returns a stored null, not the default', async () => {
      await cache.set('null', null);
      expect(await cache.get('null', 'fallback')).toBeNull();
    });
    it('overwrites', async () => {
      await cache.set('key', 'one');
      await cache.set('key', 'two');
      expect(await cache.get('key')).toBe('two');
    });
    it('converts number keys to strings', async () => {
      await cache.set(3, 'three');
      expect(await cache.get('3')).toBe('three');
      expect(cache.makeKey(3)).toBe(cache.makeKey('3'));
    });
    it('keeps unicode keys and values apart', async () => {
      const stuff: Record<string, unknown> = {
        ascii: 'ascii_value',
        unicode_ascii: 'Iñtërnâtiônàlizætiøn1',
        Iñtërnâtiônàlizætiøn: 'Iñtërnâtiônàlizætiøn2',
        ascii2: { x: 1 },
        清: '😀 emoji',
      };
      for (const [key, value] of Object.entries(stuff)) await cache.set(key, value);
      for (const [key, value] of Object.entries(stuff)) expect(await cache.get(key)).toEqual(value);
      const many = await cache.getMany(Object.keys(stuff));
      expect(Object.fromEntries(many)).toEqual(stuff);
      for (const key of Object.keys(stuff)) expect(await cache.delete(key)).toBe(true);
      expect((await cache.getMany(Object.keys(stuff))).size).toBe(0);
    });
  });

  describe('add', () => {
    it('stores a new key and answers true', async () => {
      expect(await cache.add('addkey', 'value')).toBe(true);
      expect(await cache.get('addkey')).toBe('value');
    });
    it('answers false over a live entry and leaves it, whatever the timeout', async () => {
      await cache.set('addkey', 'value');
      expect(await cache.add('addkey', 'newvalue')).toBe(false);
      expect(await cache.add('addkey', 'newvalue', null)).toBe(false);
      expect(await cache.add('addkey', 'newvalue', 0)).toBe(false);
      expect(await cache.get('addkey')).toBe('value');
    });
    it('stores over an expired entry', async () => {
      await cache.set('expiring', 'old', 1);
      await advance(2);
      expect(await cache.add('expiring', 'new')).toBe(true);
      expect(await cache.get('expiring')).toBe('new');
    });
    it('lets exactly one of many concurrent adds win', async () => {
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => cache.add('race', i)));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await cache.get('race')).toBe(results.indexOf(true));
    });
  });

  describe('getMany(keys)', () => {
    it('returns only found keys, with the keys as given', async () => {
      await cache.set('a', 'a');
      await cache.set('b', 'b');
      await cache.set('c', 'c');
      await cache.set(7, 'seven');
      const found = await cache.getMany(['a', 'c', 'd', 7]);
      expect([...found.entries()]).toEqual([
        ['a', 'a'],
        ['c', 'c'],
        [7, 'seven'],
      ]);
    });
    it('includes stored nulls', async () => {
      await cache.set('null', null);
      expect([...(await cache.getMany(['null', 'nothing']))]).toEqual([['null', null]]);
    });
    it('answers an empty map for no keys', async () => {
      expect((await cache.getMany([])).size).toBe(0);
    });
    it('accepts any iterable', async () => {
      await cache.set('x', 1);
      expect((await cache.getMany(new Set(['x']))).get('x')).toBe(1);
    });
    it('answers the keys the same list holds at each call, changed since the last one or during it', async () => {
      // As many keys as a page asks for at once: a list the cache may remember.
      const stored = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`k${i}`, i]));
      await cache.setMany(stored);
      const keys = Object.keys(stored).slice(0, 10);
      const answered = async (pending: Promise<Map<unknown, unknown>>) => Object.keys(Object.fromEntries(await pending));
      expect(await answered(cache.getMany(keys))).toEqual(keys);
      keys[9] = 'k11';
      const pending = cache.getMany(keys);
      keys[0] = 'k10';
      expect(await answered(pending)).toEqual(['k0', ...keys.slice(1)]);
      expect(await answered(cache.getMany(keys))).toEqual(keys);
      expect((await cache.getMany(keys)).get('k11')).toBe(11);
    });
  });

  describe('delete / deleteMany / clear', () => {
    it('delete answers true only when something live was removed', async () => {
      await cache.set('key1', 'spam');
      await cache.set('key2', 'eggs');
      expect(await cache.delete('key1')).toBe(true);
      expect(await cache.get('key1')).toBeUndefined();
      expect(await cache.delete('key1')).toBe(false);
      expect(await cache.get('key2')).toBe('eggs');
    });
    it('deleteMany removes the keys given and no others, and accepts an empty list', async () => {
      await cache.setMany({ a: 1, b: 2, c: 3 });
      await cache.deleteMany(['a', 'b', 'missing']);
      await cache.deleteMany([]);
      expect([...(await cache.getMany(['a', 'b', 'c']))]).toEqual([['c', 3]]);
    });
    it('clear removes everything of this cache', async () => {
      await cache.setMany({ a: 1, b: 2 });
      await cache.clear();
      expect((await cache.getMany(['a', 'b'])).size).toBe(0);
    });
  });

  describe('hasKey', () => {
    it('answers for live keys, stored nulls, missing and expired ones', async () => {
      await cache.set('hello', 'goodbye');
      await cache.set('null', null);
      await cache.set('short', 'soon gone', 1);
      expect(await cache.hasKey('hello')).toBe(true);
      expect(await cache.hasKey('null')).toBe(true);
      expect(await cache.hasKey('goodbye')).toBe(false);
      await advance(2);
      expect(await cache.hasKey('short')).toBe(false);
    });
  });

  describe('setMany(entries)', () => {
    it('stores a plain object or a Map and answers no failed keys', async () => {
      expect(await cache.setMany({ key1: 'spam', key2: 'eggs' })).toEqual([]);
      expect(
        await cache.setMany(
          new Map<string | number, unknown>([
            ['key3', 'ham'],
            [4, 'four'],
          ]),
        ),
      ).toEqual([]);
      expect(Object.fromEntries(await cache.getMany(['key1', 'key2', 'key3', 4]))).toEqual({ key1: 'spam', key2: 'eggs', key3: 'ham', 4: 'four' });
    });
    it('honours the timeout', async () => {
      await cache.setMany({ key1: 'spam', key2: 'eggs' }, 1);
      await advance(2);
      expect((await cache.getMany(['key1', 'key2'])).size).toBe(0);
    });
    it('answers [] for no entries', async () => {
      expect(await cache.setMany({})).toEqual([]);
    });
  });

  describe('getOrSet', () => {
    it('stores and returns a value, then returns the cached one', async () => {
      expect(await cache.getOrSet('projector', 42)).toBe(42);
      expect(await cache.getOrSet('projector', 43)).toBe(42);
      expect(await cache.get('projector')).toBe(42);
    });
    it('calls a factory only on a miss', async () => {
      let calls = 0;
      const factory = () => ++calls;
      expect(await cache.getOrSet('f', factory)).toBe(1);
      expect(await cache.getOrSet('f', factory)).toBe(1);
      expect(calls).toBe(1);
    });
    it('awaits an async factory and a promise value', async () => {
      expect(await cache.getOrSet('async', async () => ({ ok: true }))).toEqual({ ok: true });
      expect(await cache.getOrSet('promise', Promise.resolve('resolved'))).toBe('resolved');
      expect(await cache.get('async')).toEqual({ ok: true });
      expect(await cache.get('promise')).toBe('resolved');
    });
    it('stores null as a value', async () => {
      expect(await cache.getOrSet('null', null)).toBeNull();
      expect(await cache.get('null', 'default')).toBeNull();
      expect(await cache.getOrSet('null', 'other')).toBeNull();
    });
    it('honours the timeout and version', async () => {
      await cache.getOrSet('brief', 'x', 1);
      await cache.getOrSet('versioned', 'v2', { version: 2 });
      expect(await cache.get('versioned')).toBeUndefined();
      expect(await cache.get('versioned', undefined, { version: 2 })).toBe('v2');
      await advance(2);
      expect(await cache.get('brief')).toBeUndefined();
    });
    it('computes once for 20 concurrent callers', async () => {
      let calls = 0;
      const factory = async () => {
        calls++;
        await sleep(30);
        return { computed: calls };
      };
      const results = await Promise.all(Array.from({ length: 20 }, () => cache.getOrSet('once', factory)));
      expect(calls).toBe(1);
      for (const result of results) expect(result).toEqual({ computed: 1 });
      results[0]!.computed = 99;
      expect(results[1]).toEqual({ computed: 1 });
    });
    it('lets a factory error reach every waiter and stores nothing', async () => {
      const failing = async () => {
        await sleep(10);
        throw new Error('boom');
      };
      const outcomes = await Promise.allSettled([cache.getOrSet('err', failing), cache.getOrSet('err', failing)]);
      expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected']);
      expect(await cache.hasKey('err')).toBe(false);
      expect(await cache.getOrSet('err', 'recovered')).toBe('recovered');
    });
  });

  describe('key prefix and key function', () => {
    it('keeps caches with another prefix apart on the same store', async () => {
      const prefixed = await make({ keyPrefix: 'cacheprefix' });
      await cache.set('somekey', 'value');
      expect(await prefixed.hasKey('somekey')).toBe(false);
      await prefixed.set('somekey', 'other');
      expect(await cache.get('somekey')).toBe('value');
      expect(await prefixed.get('somekey')).toBe('other');
      expect(prefixed.makeKey('somekey')).toBe('cacheprefix:1:somekey');
      expect(cache.makeKey('somekey', 7)).toBe(':1:somekey'.replace(':1:', ':7:'));
    });
    it('uses a custom key function everywhere', async () => {
      const custom = await make({ keyFunction: customKeyFunction, keyPrefix: 'p' });
      expect(custom.makeKey('answer', 3)).toBe('CUSTOM-p-3-answer');
      await custom.set('answer1', 42);
      expect(await custom.get('answer1')).toBe(42);
      expect(await cache.get('answer1')).toBeUndefined();
      await custom.setMany({ a: 1 });
      expect([...(await custom.getMany(['a']))]).toEqual([['a', 1]]);
      expect(await custom.incrVersion('a')).toBe(2);
      expect(await custom.get('a', undefined, { version: 2 })).toBe(1);
    });
  });

  describe('bad input', () => {
    it('rejects keys that are neither strings nor numbers, with a TypeError', async () => {
      for (const bad of [undefined, null, {}, ['a'], true]) {
        await expect(cache.get(bad as never)).rejects.toThrow(TypeError);
        await expect(cache.set(bad as never, 1)).rejects.toThrow(/key must be a string or a number/);
      }
    });
    it('rejects a key with a lone surrogate with InvalidCacheKeyError', async () => {
      await expect(cache.set('bad\ud800', 1)).rejects.toThrow(InvalidCacheKeyError);
      await expect(cache.getMany(['fine', '\udfff'])).rejects.toThrow(InvalidCacheKeyError);
    });
  });
}
