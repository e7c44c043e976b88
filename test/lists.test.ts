/**
 * A list parameter given a string: a string is iterable, so it would be taken character by character
 * (`invalidateTags('author:3')` invalidating 'a', 'u', 't'…). Every list parameter refuses one, naming
 * the method and the parameter; the types refuse one too, and still take any iterable.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type BaseCache, cache, caches, configureCaches, invalidateTags, type ServerHealth } from '../src/index.js';
import { errorOf } from './setup/error-of.js';

afterEach(async () => {
  await configureCaches({ default: { backend: 'locmem' } });
});

describe('a string where a list is expected', () => {
  it('invalidateTags(string) is refused, over every cache and on one, and invalidates nothing', async () => {
    await cache.set('art', 'A', { tags: ['author:3'] });
    await cache.set('one', '1', { tags: ['a'] });
    const everywhere = await errorOf(() => invalidateTags('author:3' as never));
    expect(everywhere).toBeInstanceOf(TypeError);
    expect(everywhere.message).toBe("invalidateTags: tags must be a list of strings, not the string 'author:3' (write ['author:3'])");
    const one = await errorOf(() => cache.invalidateTags('author:3' as never));
    expect(one.message).toBe("cache 'default': invalidateTags: tags must be a list of strings, not the string 'author:3' (write ['author:3'])");
    expect(await cache.get('one')).toBe('1');
    expect(await cache.get('art')).toBe('A');
  });

  it('deleteMany, getMany and getEntries refuse a string, and delete nothing', async () => {
    await cache.set('a', 1);
    await cache.set('abc', 2);
    for (const method of ['deleteMany', 'getMany', 'getEntries'] as const) {
      const error = await errorOf(() => cache[method]('abc' as never));
      expect(error).toBeInstanceOf(TypeError);
      expect(error.message).toBe(`cache 'default': ${method}: keys must be a list of keys, not the string 'abc' (write ['abc'])`);
    }
    expect(await cache.get('a')).toBe(1);
    expect(await cache.get('abc')).toBe(2);
  });

  it('refuses what is no list at all, naming it, instead of "is not iterable"', async () => {
    expect((await errorOf(() => cache.getMany(5 as never))).message).toBe("cache 'default': getMany: keys must be a list of keys (got 5)");
    expect((await errorOf(() => invalidateTags(undefined as never))).message).toBe('invalidateTags: tags must be a list of strings (got undefined)');
  });

  it('setMany refuses a string (it would store one key per character)', async () => {
    const error = await errorOf(() => cache.setMany('ab' as never));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe("cache 'default': setMany: entries must be a Map or an object of key → value, not a string");
    expect(await cache.getMany(['0', '1'])).toEqual(new Map());
  });

  it('still takes every kind of list: arrays, Sets, Map keys, generators', async () => {
    await cache.setMany({ x: 1, y: 2, z: 3 });
    expect(await cache.getMany(new Set(['x']))).toEqual(new Map([['x', 1]]));
    expect(await cache.getMany(new Map([['y', 0]]).keys())).toEqual(new Map([['y', 2]]));
    await cache.deleteMany(
      (function* () {
        yield 'z';
      })(),
    );
    expect(await cache.get('z')).toBeUndefined();
    await invalidateTags(new Set(['t']));
  });

  it('the types refuse a string and take iterables, as the calls do when run', async () => {
    const calls = (c: BaseCache) => ({
      refused: [
        // @ts-expect-error a string is no list of tags
        () => c.invalidateTags('author:3'),
        // @ts-expect-error a string is no list of keys
        () => c.deleteMany('abc'),
        // @ts-expect-error a string is no list of keys
        () => c.getMany('abc'),
        // @ts-expect-error a string is no list of tags
        () => invalidateTags('author:3'),
      ],
      taken: [() => c.getMany(new Set(['a', 1])), () => c.deleteMany(['a']), () => invalidateTags(new Set(['a']))],
    });
    const { refused, taken } = calls(cache);
    for (const call of refused) expect(await errorOf(call)).toBeInstanceOf(TypeError);
    for (const call of taken) await call();
  });
});

describe('the types of the API answer what the README says', () => {
  it('setMany answers the failed keys as strings, and health() is on every cache', async () => {
    const failed: string[] = await cache.setMany(new Map<string | number, unknown>([[1, 'one']]));
    expect(failed).toEqual([]);
    const health: ServerHealth[] = caches.get('default').health();
    expect(health).toEqual([]);
  });
});
