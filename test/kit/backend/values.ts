/** The conformance kit: which values are stored, and that what is read back is a copy. */
import { beforeEach, describe, expect, it } from 'vitest';
import type { BaseCache } from '../../../src/index.js';
import type { Kit } from './kit.js';

export function describeValues(kit: Kit): void {
  let cache: BaseCache;
  beforeEach(() => {
    cache = kit.cache;
  });
  describe('values', () => {
    it('round-trips every structured-clonable type', async () => {
      const values: Record<string, unknown> = {
        string: 'hello',
        empty: '',
        integer: 42,
        negative: -7,
        big: Number.MAX_SAFE_INTEGER,
        float: 3.25,
        nan: Number.NaN,
        boolean: true,
        false: false,
        null: null,
        array: [1, 'two', { three: 3 }],
        object: { nested: { list: [1, 2], date: new Date('2020-01-02T03:04:05Z') } },
        date: new Date('2021-06-07T08:09:10.123Z'),
        map: new Map<unknown, unknown>([
          ['a', 1],
          [2, 'b'],
        ]),
        set: new Set([1, 'x']),
        bigint: 12345678901234567890n,
        typed: new Uint16Array([1, 65535]),
      };
      for (const [key, value] of Object.entries(values)) await cache.set(key, value);
      for (const [key, value] of Object.entries(values)) expect(await cache.get(key), key).toEqual(value);
      expect(await cache.get('date')).toBeInstanceOf(Date);
      expect(await cache.get('map')).toBeInstanceOf(Map);
      expect(await cache.get('typed')).toBeInstanceOf(Uint16Array);
    });
    it('returns a Buffer as a Buffer, byte for byte', async () => {
      const bytes = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 10, 13]);
      await cache.set('binary', bytes);
      const back = await cache.get<Buffer>('binary');
      expect(Buffer.isBuffer(back)).toBe(true);
      expect(back!.equals(bytes)).toBe(true);
    });
    it('stores large values', async () => {
      const big = 'x'.repeat(500_000);
      await cache.set('big', big);
      expect(await cache.get('big')).toBe(big);
    });
    it('returns copies: mutating what get returned changes nothing stored', async () => {
      const original = { list: [1, 2, 3], inner: { a: 1 } };
      await cache.set('obj', original);
      original.list.push(4);
      const first = await cache.get<typeof original>('obj');
      expect(first).toEqual({ list: [1, 2, 3], inner: { a: 1 } });
      first!.inner.a = 99;
      first!.list.length = 0;
      expect(await cache.get('obj')).toEqual({ list: [1, 2, 3], inner: { a: 1 } });
      const many = await cache.getMany<typeof original>(['obj']);
      many.get('obj')!.list.push(5);
      expect(await cache.get('obj')).toEqual({ list: [1, 2, 3], inner: { a: 1 } });
    });
    it('returns copies of bytes: writing into a returned Buffer, typed array or DataView, alone or nested, changes nothing stored', async () => {
      const fresh = () => ({
        bytes: Buffer.from([1, 2, 3]),
        floats: new Float64Array([1.5, 2.5]),
        words: new Uint16Array([7, 8, 9]),
        view: new DataView(new Uint8Array([4, 5]).buffer),
      });
      await cache.set('bytes', Buffer.from([1, 2, 3]));
      await cache.set('nested', fresh());
      const scribble = (value: ReturnType<typeof fresh>) => {
        value.bytes[0] = 99;
        value.floats[0] = 99;
        value.words[0] = 99;
        value.view.setUint8(0, 99);
      };
      (await cache.get<Buffer>('bytes'))![0] = 99;
      scribble((await cache.get<ReturnType<typeof fresh>>('nested'))!);
      scribble((await cache.getMany<ReturnType<typeof fresh>>(['nested'])).get('nested')!);
      scribble((await cache.getOrSet<ReturnType<typeof fresh>>('nested', fresh))!);
      expect(await cache.get('bytes')).toEqual(Buffer.from([1, 2, 3]));
      expect(await cache.get('nested')).toEqual(fresh());
    });
    it('refuses undefined, naming the key, and keeps the old value', async () => {
      await cache.set('kept', 'old');
      await expect(cache.set('kept', undefined)).rejects.toThrow(TypeError);
      await expect(cache.set('kept', undefined)).rejects.toThrow(/undefined.*kept|kept.*undefined/);
      expect(await cache.get('kept')).toBe('old');
    });
    it('refuses values holding a function or a symbol, and stores nothing', async () => {
      await expect(cache.set('fn', { run() {} })).rejects.toThrow(TypeError);
      await expect(cache.add('fn', [Symbol('s')])).rejects.toThrow(TypeError);
      await expect(cache.setMany({ ok: 1, fn: () => 1 })).rejects.toThrow(TypeError);
      expect(await cache.hasKey('fn')).toBe(false);
      expect(await cache.hasKey('ok')).toBe(false);
    });
  });

  describe('values that cannot be read back', () => {
    // v8 writes a nesting deeper than it can read back: some of these depths serialize and fail to
    // deserialize, the deepest fails both. Each write either stores what reads back or stores nothing.
    const depths = [1_000, 2_000, 2_500, 3_000, 4_000, 100_000];

    it('getOrSet either stores and answers a deeply nested value, or rejects naming the key and leaves no entry', async () => {
      let rejected = 0;
      for (const depth of depths) {
        const key = `deep-${depth}`;
        const outcome = await settle(cache.getOrSet(key, nested(depth), null));
        if (outcome.status === 'fulfilled') {
          expect(depthOf(outcome.value), key).toBe(depth);
          expect(depthOf(await cache.get(key)), key).toBe(depth);
          continue;
        }
        rejected++;
        expect(outcome.reason, key).toBeInstanceOf(TypeError);
        expect(String(outcome.reason.message), key).toContain(`cache 'default': cannot store the value for key '${cache.makeKey(key)}': `);
        expect(await cache.hasKey(key), key).toBe(false);
        expect(await cache.get(key), key).toBeUndefined();
      }
      expect(rejected).toBeGreaterThan(0);
    });

    it('set, add and setMany refuse such a value before writing anything, keeping what was stored', async () => {
      let rejected = 0;
      for (const depth of depths) {
        const key = `deep-${depth}`;
        await cache.set(key, 'old', null);
        const writes = {
          set: () => cache.set(key, nested(depth), null),
          add: async () => {
            await cache.delete(key);
            return cache.add(key, nested(depth), null);
          },
          setMany: () => cache.setMany({ [key]: nested(depth) }, null),
        };
        for (const [name, write] of Object.entries(writes)) {
          const outcome = await settle(write());
          if (outcome.status === 'fulfilled') {
            expect(depthOf(await cache.get(key)), `${name} ${key}`).toBe(depth);
          } else {
            rejected++;
            expect(outcome.reason, `${name} ${key}`).toBeInstanceOf(TypeError);
            expect(String(outcome.reason.message), `${name} ${key}`).toContain(`cannot store the value for key '${cache.makeKey(key)}': `);
            // add deleted the old value first: nothing may stand in its place.
            expect(await cache.get(key), `${name} ${key}`).toBe(name === 'add' ? undefined : 'old');
          }
          await cache.set(key, 'old', null);
        }
      }
      expect(rejected).toBeGreaterThan(0);
    });
  });
}

/** An object nested `depth` levels deep: `{ inner: { inner: … 0 } }`. */
function nested(depth: number): unknown {
  let value: unknown = 0;
  for (let i = 0; i < depth; i++) value = { inner: value };
  return value;
}

/** How deep `nested` made the value, counted without recursion (a deep compare would overflow the stack). */
function depthOf(value: unknown): number {
  let depth = 0;
  while (value !== null && typeof value === 'object') {
    value = (value as { inner: unknown }).inner;
    depth++;
  }
  return value === 0 ? depth : -1;
}

/** How a promise settled, never rejecting. */
async function settle(promise: Promise<unknown>): Promise<{ status: 'fulfilled'; value: unknown } | { status: 'rejected'; reason: any }> {
  try {
    return { status: 'fulfilled', value: await promise };
  } catch (reason) {
    return { status: 'rejected', reason };
  }
}
