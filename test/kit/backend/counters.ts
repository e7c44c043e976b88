/** The conformance kit: incr and decr, and versions. */
import { beforeEach, describe, expect, it } from 'vitest';
import { type BaseCache, KeyNotFoundError } from '../../../src/index.js';
import type { Kit } from './kit.js';

export function describeCounters(kit: Kit): void {
  let cache: BaseCache;
  beforeEach(() => {
    cache = kit.cache;
  });
  const { make, advance } = kit;
  describe('incr / decr', () => {
    it('adds and subtracts, by 1 or by a delta', async () => {
      await cache.set('answer', 41);
      expect(await cache.incr('answer')).toBe(42);
      expect(await cache.get('answer')).toBe(42);
      expect(await cache.incr('answer', 10)).toBe(52);
      expect(await cache.decr('answer')).toBe(51);
      expect(await cache.decr('answer', 10)).toBe(41);
      expect(await cache.incr('answer', -1)).toBe(40);
      expect(await cache.get('answer')).toBe(40);
    });
    it('rejects a missing key with KeyNotFoundError naming it', async () => {
      await expect(cache.incr('does_not_exist')).rejects.toThrow(KeyNotFoundError);
      await expect(cache.decr('does_not_exist')).rejects.toThrow(/does_not_exist/);
    });
    it('rejects a delta that is not an integer', async () => {
      await cache.set('n', 1);
      await expect(cache.incr('n', 1.5)).rejects.toThrow(TypeError);
      await expect(cache.decr('n', '2' as unknown as number)).rejects.toThrow(TypeError);
      expect(await cache.get('n')).toBe(1);
    });
    it('rejects a stored value that is not an integer with a TypeError', async () => {
      await cache.set('text', 'abc');
      await expect(cache.incr('text')).rejects.toThrow(TypeError);
      expect(await cache.get('text')).toBe('abc');
    });
    it('keeps a forever entry forever', async () => {
      await cache.set('forever', 1, null);
      await cache.incr('forever');
      await advance(10 * 365 * 86400);
      expect(await cache.get('forever')).toBe(2);
    });
    it('is atomic under concurrent callers in one process', async () => {
      await cache.set('hits', 0);
      await Promise.all(Array.from({ length: 20 }, () => cache.incr('hits')));
      expect(await cache.get('hits')).toBe(20);
    });
  });

  describe('versions', () => {
    let v2: BaseCache;
    beforeEach(async () => {
      v2 = await make({ version: 2 });
    });
    it('keeps versions apart for get/set', async () => {
      await cache.set('answer1', 42);
      expect(await cache.get('answer1')).toBe(42);
      expect(await cache.get('answer1', undefined, { version: 1 })).toBe(42);
      expect(await cache.get('answer1', undefined, { version: 2 })).toBeUndefined();
      expect(await v2.get('answer1')).toBeUndefined();
      expect(await v2.get('answer1', undefined, { version: 1 })).toBe(42);
      await cache.set('answer2', 42, { version: 2 });
      expect(await cache.get('answer2')).toBeUndefined();
      expect(await v2.get('answer2')).toBe(42);
      await v2.set('answer3', 42);
      expect(await cache.get('answer3', undefined, { version: 2 })).toBe(42);
      await v2.set('answer4', 37, { version: 1 });
      expect(await cache.get('answer4')).toBe(37);
    });
    it('keeps versions apart for add, delete, hasKey, touch, incr', async () => {
      expect(await cache.add('k', 'v1')).toBe(true);
      expect(await cache.add('k', 'v2', { version: 2 })).toBe(true);
      expect(await v2.get('k')).toBe('v2');
      expect(await cache.hasKey('k', { version: 2 })).toBe(true);
      expect(await cache.delete('k', { version: 2 })).toBe(true);
      expect(await cache.get('k')).toBe('v1');
      expect(await v2.hasKey('k')).toBe(false);
      expect(await cache.touch('k', { timeout: 60, version: 2 })).toBe(false);
      expect(await cache.touch('k', { timeout: 60, version: 1 })).toBe(true);
      await v2.set('n', 1);
      expect(await cache.incr('n', 5, { version: 2 })).toBe(6);
      await expect(cache.incr('n')).rejects.toThrow(KeyNotFoundError);
    });
    it('keeps versions apart for getMany, setMany, deleteMany', async () => {
      await cache.setMany({ a: 1, b: 2 });
      await cache.setMany({ a: 3, b: 4 }, { version: 2 });
      expect(Object.fromEntries(await cache.getMany(['a', 'b']))).toEqual({ a: 1, b: 2 });
      expect(Object.fromEntries(await v2.getMany(['a', 'b']))).toEqual({ a: 3, b: 4 });
      expect(Object.fromEntries(await v2.getMany(['a', 'b'], { version: 1 }))).toEqual({ a: 1, b: 2 });
      await v2.deleteMany(['a']);
      expect(await cache.get('a')).toBe(1);
      await cache.deleteMany(['b'], { version: 2 });
      expect(await v2.get('b')).toBeUndefined();
      expect(await cache.get('b')).toBe(2);
    });
    it('incrVersion moves the value up and deletes the old one', async () => {
      await cache.set('answer', 42);
      expect(await cache.incrVersion('answer')).toBe(2);
      expect(await cache.get('answer')).toBeUndefined();
      expect(await cache.get('answer', undefined, { version: 2 })).toBe(42);
      expect(await v2.get('answer')).toBe(42);
      expect(await v2.incrVersion('answer')).toBe(3);
      expect(await cache.get('answer', undefined, { version: 3 })).toBe(42);
      expect(await cache.incrVersion('answer', 2, { version: 3 })).toBe(5);
      expect(await cache.get('answer', undefined, { version: 5 })).toBe(42);
      await expect(cache.incrVersion('does_not_exist')).rejects.toThrow(KeyNotFoundError);
    });
    it('decrVersion moves the value down', async () => {
      await cache.set('answer', 42, { version: 2 });
      expect(await cache.decrVersion('answer', 1, { version: 2 })).toBe(1);
      expect(await cache.get('answer')).toBe(42);
      expect(await v2.get('answer')).toBeUndefined();
      await v2.set('other', 'x');
      expect(await v2.decrVersion('other')).toBe(1);
      expect(await cache.get('other')).toBe('x');
      await expect(cache.decrVersion('does_not_exist', 1, { version: 2 })).rejects.toThrow(KeyNotFoundError);
    });
    it('incrVersion works for a stored null and keeps the remaining lifetime', async () => {
      await cache.set('null', null, 1);
      expect(await cache.incrVersion('null')).toBe(2);
      expect(await cache.get('null', 'default', { version: 2 })).toBeNull();
      await advance(2);
      expect(await cache.hasKey('null', { version: 2 })).toBe(false);
    });
  });
}
