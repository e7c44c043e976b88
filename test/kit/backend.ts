/**
 * The conformance kit: the low-level API's contract, run the same way against every backend.
 * Modelled on Django's tests/cache/tests.py. A backend file calls `describeBackend` with a `make`
 * that builds caches over one shared store, and `traits` for the few ways backends may differ (culling, storing nothing, refusing keys).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { type BaseCache, type CacheEvent, type CacheParams, CacheServerError, channelName, InvalidCacheKeyError, KeyNotFoundError } from '../../src/index.js';
import { integrationOf } from '../../src/cache/integration.js';
import { eventually } from '../setup/eventually.js';
import { sleep } from '../setup/sleep.js';

export interface BackendTraits {
  /** Stores nothing (the dummy backend): reads miss, add answers true, incr fails. */
  storesNothing?: boolean;
  /** Expected entry counts after setting keys 1..49 with maxEntries 30, by cullFrequency; false when it does not cull. */
  culling?: false | { 3: number; 0: number };
  /** Throws InvalidCacheKeyError for keys memcached refuses, instead of warning (memcached). */
  strictKeys?: boolean;
  /**
   * Expiry is decided by a server's clock, not by the `now` hook: expiry tests sleep for real.
   * The number is the clock's granularity in seconds (memcached: 1).
   */
  serverClock?: number;
  /** `close()` ends the cache's connections, after which it refuses every call. @default true for a backend with `makeDown` */
  closes?: boolean;
}

export interface BackendUnderTest {
  /** Builds a cache over the backend's shared test store; overrides add prefix, version, key function, options. */
  make(overrides?: Partial<CacheParams<any>>): BaseCache | Promise<BaseCache>;
  /** For a backend on a server: a cache of it whose server is down, with the options given. */
  makeDown?(options: Record<string, unknown>): BaseCache | Promise<BaseCache>;
  traits?: BackendTraits;
  /**
   * Writes bytes under a made key straight into the store, past the codec, as another process (or
   * another version of this package) might have. @default the backend's protected `write` primitive
   */
  storeRaw?(cache: BaseCache, made: string, bytes: Buffer): Promise<void>;
}

/** The backend contract as the cache calls it (an L1 in front, where there is one), which the kit uses to reach the store past the codec. */
interface Primitives {
  write(entries: Array<[string, unknown]>, expiresAt: number | null): unknown;
  read(keys: string[], withExpiry: boolean): Map<string, unknown> | Promise<Map<string, unknown>>;
}
const primitives = (cache: BaseCache) => (cache as unknown as { seam: Primitives }).seam;

/** Stored payloads that no codec of this package reads: each must read as a miss, be removed, and be reported once. */
const UNDECODABLE: Record<string, Buffer> = {
  'a newer v8 serialization version': Buffer.from([0xff, 0x7f, 0x6f, 0x7b, 0x00]),
  'an unknown payload format': Buffer.from([0x1e, 0x01, 0x02, 0x03]),
  'an expiry stamp that is not digits': Buffer.from([0x02, 0x02, 0x31, 0x78, 0x00, 0x61]),
  'a stamp that is not JSON': Buffer.from([0x01, 0, 0, 0, 3, 0x7b, 0x7b, 0x7b, 0xff, 0x0f, 0x54]),
  'v8 bytes cut short': Buffer.from([0xff, 0x0f, 0x6f, 0x22, 0x01, 0x61, 0x22, 0x14, 0x78, 0x78]),
};

const customKeyFunction = (key: string, prefix: string, version: number) => `CUSTOM-${[prefix, String(version), key].join('-')}`;

export function describeBackend(name: string, backend: BackendUnderTest): void {
  const traits = backend.traits ?? {};
  describe(`${name} backend (conformance)`, () => {
    const opened: BaseCache[] = [];
    let cache: BaseCache;
    let clock = 0;

    /** A cache over the shared store, cleared now and closed after the test. */
    async function make(overrides: Partial<CacheParams<any>> = {}): Promise<BaseCache> {
      const made = await backend.make(overrides);
      if (traits.serverClock === undefined) made.now = () => clock;
      opened.push(made);
      await made.clear();
      return made;
    }

    /** Moves time on: the hook clock jumps; a server clock is waited for. */
    async function advance(seconds: number): Promise<void> {
      if (traits.serverClock === undefined) clock += seconds;
      else await sleep((seconds + traits.serverClock) * 1000 + 100);
    }

    beforeEach(async () => {
      clock = 1_800_000_000;
      cache = await make();
    });

    afterEach(async () => {
      for (const made of opened.splice(0)) {
        await made.clear();
        await made.close();
      }
    });

    if (traits.storesNothing) {
      describeStoresNothing(() => cache);
      describeKeyValidation(() => cache, traits);
      return;
    }

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
      it('delete answers false for an expired entry', async () => {
        await cache.set('gone', 1, 1);
        await advance(2);
        expect(await cache.delete('gone')).toBe(false);
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
        await cache.set('short', 1, 1);
        expect(await cache.hasKey('hello')).toBe(true);
        expect(await cache.hasKey('null')).toBe(true);
        expect(await cache.hasKey('goodbye')).toBe(false);
        await advance(2);
        expect(await cache.hasKey('short')).toBe(false);
      });
    });

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
      it("keeps the entry's remaining lifetime", async () => {
        await cache.set('counter', 1, 2);
        await cache.incr('counter');
        await advance(2);
        expect(await cache.get('counter')).toBeUndefined();
      });
      it('keeps a forever entry forever', async () => {
        await cache.set('forever', 1, null);
        await cache.incr('forever');
        await advance(traits.serverClock === undefined ? 10 * 365 * 86400 : 1);
        expect(await cache.get('forever')).toBe(2);
      });
      it('is atomic under concurrent callers in one process', async () => {
        await cache.set('hits', 0);
        await Promise.all(Array.from({ length: 20 }, () => cache.incr('hits')));
        expect(await cache.get('hits')).toBe(20);
      });
    });

    describe('timeouts', () => {
      it('expires an entry after its timeout', async () => {
        await cache.set('expire1', 'very quickly', 1);
        await cache.set('expire2', 'very quickly', 1);
        await cache.set('stays', 'here', 60);
        await advance(2);
        expect(await cache.get('expire1')).toBeUndefined();
        expect(await cache.hasKey('expire2')).toBe(false);
        expect(await cache.get('stays')).toBe('here');
      });
      it('uses the cache default when omitted', async () => {
        const short = await make({ timeout: 1 });
        await short.set('k', 'v');
        expect(await short.get('k')).toBe('v');
        await advance(2);
        expect(await short.get('k')).toBeUndefined();
      });
      it('keeps an entry forever with null, including the default', async () => {
        const forever = await make({ timeout: null });
        await cache.set('forever', 'x', null);
        await forever.set('default-forever', 'y');
        await advance(traits.serverClock === undefined ? 100 * 365 * 86400 : 1);
        expect(await cache.get('forever')).toBe('x');
        expect(await forever.get('default-forever')).toBe('y');
      });
      it('accepts timeouts longer than 30 days', async () => {
        const longTimeout = 30 * 86400 + 1;
        await cache.set('long', 'value', longTimeout);
        expect(await cache.get('long')).toBe('value');
        expect(await cache.add('long-add', 'value', longTimeout)).toBe(true);
        expect(await cache.get('long-add')).toBe('value');
        expect(await cache.touch('long', longTimeout)).toBe(true);
        expect(await cache.get('long')).toBe('value');
        await cache.setMany({ 'long-many': 1 }, longTimeout);
        expect(await cache.get('long-many')).toBe(1);
        if (traits.serverClock === undefined) {
          await advance(longTimeout - 10);
          expect(await cache.get('long')).toBe('value');
          await advance(20);
          expect(await cache.get('long')).toBeUndefined();
        }
      });
      it('honours timeouts of 100 years, 1e10 s and 1e12 s on every write', async () => {
        for (const timeout of [100 * 365 * 86400, 1e10, 1e12]) {
          await cache.set(`far-${timeout}`, 'set');
          await cache.set(`far-${timeout}`, 'set', timeout);
          expect(await cache.get(`far-${timeout}`)).toBe('set');
          expect(await cache.add(`far-add-${timeout}`, 'first', timeout)).toBe(true);
          expect(await cache.add(`far-add-${timeout}`, 'second', timeout)).toBe(false);
          expect(await cache.get(`far-add-${timeout}`)).toBe('first');
          await cache.set(`far-touch-${timeout}`, 'touched', 60);
          expect(await cache.touch(`far-touch-${timeout}`, timeout)).toBe(true);
          expect(await cache.get(`far-touch-${timeout}`)).toBe('touched');
          expect(await cache.setMany({ [`far-many-${timeout}`]: 1 }, timeout)).toEqual([]);
          expect(await cache.incr(`far-many-${timeout}`)).toBe(2);
          expect(await cache.get(`far-many-${timeout}`)).toBe(2);
        }
        if (traits.serverClock === undefined) {
          await advance(50 * 365 * 86400);
          expect(await cache.get(`far-${100 * 365 * 86400}`)).toBe('set');
          expect(await cache.get(`far-add-${1e12}`)).toBe('first');
        }
      });
      it('keeps nothing with a zero timeout: set stores nothing, add answers true', async () => {
        await cache.set('zero', 'value', 0);
        expect(await cache.get('zero')).toBeUndefined();
        await cache.set('was-here', 'value');
        await cache.set('was-here', 'value', 0);
        expect(await cache.get('was-here')).toBeUndefined();
        expect(await cache.add('zero-add', 'value', 0)).toBe(true);
        expect(await cache.get('zero-add')).toBeUndefined();
        expect(await cache.setMany({ zm: 1 }, 0)).toEqual([]);
        expect(await cache.get('zm')).toBeUndefined();
      });
      it('treats a negative timeout as already expired', async () => {
        await cache.set('neg', 'value', -1);
        expect(await cache.get('neg')).toBeUndefined();
        expect(await cache.add('neg-add', 'value', -5)).toBe(true);
        expect(await cache.hasKey('neg-add')).toBe(false);
      });
      it('accepts float timeouts', async () => {
        await cache.set('float', 'value', 100.2);
        expect(await cache.get('float')).toBe('value');
      });
      it('rejects a timeout that is not a finite number or null, naming it', async () => {
        for (const bad of [Number.NaN, Infinity, '10', true]) {
          await expect(cache.set('t', 1, bad as never)).rejects.toThrow(TypeError);
        }
        await expect(cache.set('t', 1, 'soon' as never)).rejects.toThrow(/timeout.*'soon'/);
        expect(await cache.hasKey('t')).toBe(false);
      });
    });

    describe('touch', () => {
      it('gives a live entry a new timeout and answers true', async () => {
        await cache.set('touched', 'value', 1);
        expect(await cache.touch('touched', 60)).toBe(true);
        await advance(2);
        expect(await cache.get('touched')).toBe('value');
      });
      it('answers false for a missing key', async () => {
        expect(await cache.touch('nope', 10)).toBe(false);
      });
      it('makes an entry permanent with null', async () => {
        await cache.set('persist', 'value', 1);
        expect(await cache.touch('persist', null)).toBe(true);
        await advance(2);
        expect(await cache.get('persist')).toBe('value');
      });
      it('expires an entry with 0', async () => {
        await cache.set('kill', 'value');
        expect(await cache.touch('kill', 0)).toBe(true);
        expect(await cache.get('kill')).toBeUndefined();
      });
      it('uses the default timeout when omitted', async () => {
        const short = await make({ timeout: 1 });
        await short.set('k', 'v', null);
        expect(await short.touch('k')).toBe(true);
        await advance(2);
        expect(await short.get('k')).toBeUndefined();
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
        await expect(cache.set('k', 1, { staleWhileRevalidate: -1 })).rejects.toThrow(
          /staleWhileRevalidate must be a non-negative number of seconds \(got -1\)/,
        );
        await expect(cache.getOrSet('k', 1, { staleIfError: 'long' as never })).rejects.toThrow(/staleIfError must be a non-negative number/);
        await expect(cache.invalidateTags(['t'], { soft: 'yes' as never })).rejects.toThrow(/options.soft must be a boolean/);
      });
    });

    describe('acquireLock(name, seconds)', () => {
      it('is held by one caller on the store at a time, until released or expired', async () => {
        const other = await make();
        const release = await cache.acquireLock('job', 5);
        expect(release).toBeTypeOf('function');
        expect(await other.acquireLock('job', 5)).toBeUndefined();
        await release!();
        const again = await other.acquireLock('job', 2);
        expect(again).toBeTypeOf('function');
        await advance(3);
        const afterExpiry = await cache.acquireLock('job', 5);
        expect(afterExpiry).toBeTypeOf('function');
        await again!(); // the expired holder's release leaves the new holder's lock alone
        expect(await other.acquireLock('job', 5)).toBeUndefined();
      });
    });

    describe('stats and diagnostics channels', () => {
      it('stats() counts hits, misses, stale hits, sets and deletes as each operation ends; resetStats() starts again', async () => {
        await cache.set('a', 1);
        await cache.setMany({ b: 2, c: 3 });
        expect(await cache.add('a', 9)).toBe(false);
        await cache.get('a');
        await cache.get('absent');
        await cache.getMany(['a', 'b', 'absent']);
        await cache.delete('c');
        await cache.deleteMany(['b', 'nothing']);
        expect(cache.stats()).toEqual({ hits: 3, misses: 2, staleHits: 0, sets: 3, deletes: 3, errors: 0, purgesSent: 0, purgesFailed: 0 });
        // Where the backend can tell (locmem, files, a table), how many entries it holds; a shared server cannot.
        expect(await integrationOf(cache).countEntries()).toBe(
          ['LocMemCache', 'FileBasedCache', 'DatabaseCache'].includes(cache.constructor.name) ? 1 : undefined,
        );
        await cache.set('stale', 'old', { timeout: 1, staleWhileRevalidate: 600 });
        await advance(2);
        expect((await cache.getEntries(['stale'])).get('stale')?.state).toBe('stale');
        expect(cache.stats()).toMatchObject({ hits: 3, staleHits: 1, sets: 4 });
        cache.resetStats();
        expect(cache.stats()).toEqual({ hits: 0, misses: 0, staleHits: 0, sets: 0, deletes: 0, errors: 0, purgesSent: 0, purgesFailed: 0 });
      });

      it('publishes each operation on cachegrain:<operation> while someone listens, and nothing after', async () => {
        const events: CacheEvent[] = [];
        const listen = (message: unknown) => events.push(message as CacheEvent);
        const operations = ['get', 'getMany', 'getOrSet', 'set', 'invalidateTags'] as const;
        for (const operation of operations) subscribe(channelName(operation), listen);
        try {
          await cache.set('a', 0);
          // A stored value equal to the caller's default is still a hit.
          expect(await cache.get('a', 0)).toBe(0);
          expect(await cache.get('absent', 'fallback')).toBe('fallback');
          await cache.getMany(
            (function* () {
              yield 'a';
              yield 'absent';
            })(),
          );
          // getOrSet tells whether it found the key or computed it.
          expect(await cache.getOrSet('computed', 1)).toBe(1);
          expect(await cache.getOrSet('computed', 2)).toBe(1);
          await cache.invalidateTags(['news'], { soft: true });
          await expect(cache.get(['not', 'a', 'key'] as never)).rejects.toThrow();
        } finally {
          for (const operation of operations) unsubscribe(channelName(operation), listen);
        }
        await cache.get('a');
        const alias = cache.alias;
        expect(
          events.map(({ duration, error, ...rest }) => ({ ...rest, timed: typeof duration === 'number' && duration >= 0, failed: error !== undefined })),
        ).toEqual([
          { operation: 'set', alias, key: 'a', outcome: 'ok', timed: true, failed: false },
          { operation: 'get', alias, key: 'a', outcome: 'hit', timed: true, failed: false },
          { operation: 'get', alias, key: 'absent', outcome: 'miss', timed: true, failed: false },
          { operation: 'getMany', alias, keys: ['a', 'absent'], outcome: 'miss', hits: 1, misses: 1, timed: true, failed: false },
          { operation: 'getOrSet', alias, key: 'computed', outcome: 'miss', timed: true, failed: false },
          { operation: 'getOrSet', alias, key: 'computed', outcome: 'hit', timed: true, failed: false },
          { operation: 'invalidateTags', alias, tags: ['news'], soft: true, outcome: 'ok', timed: true, failed: false },
          { operation: 'get', alias, key: 'not,a,key', outcome: 'error', timed: true, failed: true },
        ]);
      });
    });

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

    describeKeyValidation(() => cache, traits);

    if (backend.makeDown !== undefined) describeServerDown(backend.makeDown);
    if (traits.closes ?? backend.makeDown !== undefined) describeClosed(backend.make);

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

    if (traits.culling) {
      const expected = traits.culling;
      describe('culling with maxEntries 30', () => {
        for (const cullFrequency of [3, 0] as const) {
          it(`keeps ${expected[cullFrequency]} of 49 entries with cullFrequency ${cullFrequency}`, async () => {
            const small = await make({ options: { maxEntries: 30, cullFrequency }, keyPrefix: `cull${cullFrequency}` });
            for (let i = 1; i < 50; i++) await small.set(`cull${i}`, 'value', 1000);
            const found = await small.getMany(Array.from({ length: 49 }, (_, i) => `cull${i + 1}`));
            expect(found.size).toBe(expected[cullFrequency]);
          });
          it(`never culls a tag's version, with cullFrequency ${cullFrequency}: an entry computed before its tag's invalidation stays a miss through many culls; clear removes the version`, async () => {
            const small = await make({ options: { maxEntries: 10, cullFrequency }, keyPrefix: `tagcull${cullFrequency}` });
            const beforeInvalidation = await small.readTagSnapshot(['t']);
            await small.invalidateTags(['t']);
            const revived: number[] = [];
            for (let i = 0; i < 60; i++) {
              // Stored again each round (stamped as of before the invalidation), so that it is in the store whenever the version is culled.
              await small.setEach([{ key: 'old', value: 'old', options: { timeout: null, tags: ['t'] } }], beforeInvalidation);
              expect(await integrationOf(small).storedEntry('old')).toBeDefined();
              await small.set(`filler${i}`, i, null);
              if ((await small.get('old')) !== undefined) revived.push(i);
            }
            expect(revived).toEqual([]);
            expect(await integrationOf(small).storedEntry('cachegrain.tag.t', { version: 0 })).toBeDefined();
            await small.clear();
            expect(await integrationOf(small).storedEntry('cachegrain.tag.t', { version: 0 })).toBeUndefined();
          });
        }
      });
    }
  });
}

function describeServerDown(makeDown: NonNullable<BackendUnderTest['makeDown']>): void {
  describe('with its server down', () => {
    const downs: BaseCache[] = [];
    afterEach(async () => {
      for (const cache of downs.splice(0)) await cache.close();
    });
    async function down(options: Record<string, unknown>): Promise<BaseCache> {
      const cache = await makeDown(options);
      cache.on('error', () => undefined);
      downs.push(cache);
      return cache;
    }
    it('failOpen: reads miss, writes resolve, and counters reject with CacheServerError, never KeyNotFoundError', async () => {
      const cache = await down({ failOpen: true, timeoutMs: 300 });
      expect(await cache.get('n', 'fallback')).toBe('fallback');
      expect((await cache.getMany(['n', 'm'])).size).toBe(0);
      await cache.set('n', 1);
      for (const counter of [() => cache.incr('n'), () => cache.decr('n', 2), () => cache.incrVersion('n'), () => cache.decrVersion('n')]) {
        await expect(counter()).rejects.toThrow(CacheServerError);
      }
    });
    it('failOpen: tagged writes are no-ops as untagged ones are, never rejected', async () => {
      const cache = await down({ failOpen: true, timeoutMs: 300 });
      const tagged = { timeout: 60, tags: ['t'] };
      expect(await cache.set('a', 1, tagged)).toBeUndefined();
      expect(await cache.add('b', 1, tagged)).toBe(false);
      expect(await cache.setMany({ c: 1 }, tagged)).toEqual(['c']);
      expect(await cache.getOrSet('d', () => 'computed', tagged)).toBe('computed');
    });
    it('invalidateTags rejects rather than forgets, failOpen or not', async () => {
      for (const failOpen of [true, false]) {
        const cache = await down({ failOpen, timeoutMs: 300 });
        await expect(cache.invalidateTags(['t'])).rejects.toThrow(CacheServerError);
        await expect(cache.invalidateTags(['t'], { soft: true })).rejects.toThrow(CacheServerError);
      }
    });
    it('without failOpen: every call rejects with CacheServerError', async () => {
      const cache = await down({ timeoutMs: 300 });
      for (const call of [() => cache.get('n'), () => cache.set('n', 1), () => cache.incr('n'), () => cache.add('n', 1), () => cache.delete('n')]) {
        await expect(call()).rejects.toThrow(CacheServerError);
      }
    });
  });
}

/** A cache on a server, once closed: its calls are refused as calls to a closed cache, never taken for an outage. */
function describeClosed(make: BackendUnderTest['make']): void {
  describe('once closed', () => {
    for (const failOpen of [false, true]) {
      it(`rejects every call naming the closed cache${failOpen ? ' (failOpen answers no miss for it)' : ''}, and reports no outage`, async () => {
        const cache = await make({ alias: 'closing', keyPrefix: 'closing', options: { failOpen } });
        const reported: Error[] = [];
        cache.on('error', (error: Error) => reported.push(error));
        await cache.set('k', 1);
        await cache.close();
        const calls = [
          () => cache.get('k'),
          () => cache.set('k', 2),
          () => cache.getMany(['k']),
          () => cache.incr('k'),
          () => cache.getOrSet('z', () => 1),
          () => cache.delete('k'),
        ];
        for (const call of calls) await expect(call()).rejects.toThrow("cache 'closing' is closed: close() or caches.closeAll() ended its connections");
        expect(reported.map((error) => error.message)).toEqual([]);
      });
    }
  });
}

function describeKeyValidation(getCache: () => BaseCache, traits: BackendTraits): void {
  describe('keys memcached would refuse', () => {
    const longKey = 'a'.repeat(251);
    const cases = [
      {
        key: longKey,
        message: `Cache key will cause errors if used with memcached: ':1:${longKey}' (longer than 250)`,
        warning: `Cache key will cause errors if used with memcached: ':1:${longKey.slice(0, 97)}…[254 characters]' (longer than 250)`,
      },
      { key: 'key with spaces', message: "Cache key contains characters that will cause errors if used with memcached: ':1:key with spaces'" },
      { key: 'tab\there', message: "Cache key contains characters that will cause errors if used with memcached: ':1:tab\there'" },
    ];
    if (traits.strictKeys) {
      for (const { key, message } of cases) {
        it(`throws InvalidCacheKeyError for ${JSON.stringify(key.slice(0, 20))}`, async () => {
          const cache = getCache();
          for (const operation of keyOperations(key)) {
            const call = operation(cache);
            await expect(call).rejects.toThrow(InvalidCacheKeyError);
            await expect(call).rejects.toThrow(message);
          }
        });
      }
      return;
    }
    for (const { key, message, warning } of cases) {
      it(`warns with CacheKeyWarning for ${JSON.stringify(key.slice(0, 20))} from every operation, once per shape of key`, async () => {
        for (const operation of keyOperations(key)) {
          const cache = await remake(getCache());
          try {
            const warnings = await collectWarnings(async () => {
              await operation(cache).catch(() => undefined);
              await operation(cache).catch(() => undefined);
            });
            expect(warnings).toEqual([{ name: 'CacheKeyWarning', message: warning ?? message }]);
          } finally {
            await cache.close();
          }
        }
      });
    }
    it('shows at most 100 characters of a key, and warns once for keys that differ only in their digits', async () => {
      const cache = await remake(getCache());
      const huge = 'x'.repeat(10 * 1024 * 1024);
      const warnings = await collectWarnings(async () => {
        for (let id = 0; id < 50; id++) await cache.set(`page ${id}`, 1).catch(() => undefined);
        await cache.set(huge, 1).catch(() => undefined);
        await cache.set(huge, 1).catch(() => undefined);
      }).finally(() => cache.close());
      expect(warnings.map((each) => each.message)).toEqual([
        "Cache key contains characters that will cause errors if used with memcached: ':1:page 0'",
        `Cache key will cause errors if used with memcached: ':1:${'x'.repeat(97)}…[10485763 characters]' (longer than 250)`,
      ]);
    });
    it('counts code points, not UTF-16 units, against the 250 limit', async () => {
      const cache = getCache();
      const key = '😀'.repeat(247); // ':1:' + 247 code points = 250 code points, 497 UTF-16 units
      const warnings = await collectWarnings(() => cache.set(key, 1).catch(() => undefined));
      expect(warnings).toEqual([]);
    });
    it('emits no warning for ordinary keys', async () => {
      const cache = getCache();
      expect(await collectWarnings(() => cache.set('ordinary-key_1.2', 1))).toEqual([]);
    });
  });
}

/** A cache like `cache` that has warned about nothing yet. */
async function remake(cache: BaseCache): Promise<BaseCache> {
  const Backend = cache.constructor as new (params: object) => BaseCache;
  return new Backend({ alias: cache.alias, location: cache.location, keyPrefix: cache.keyPrefix, options: cache.options });
}

function keyOperations(key: string): Array<(cache: BaseCache) => Promise<unknown>> {
  return [
    (c) => c.get(key),
    (c) => c.set(key, 1),
    (c) => c.add(key, 1),
    (c) => c.getOrSet(key, 1),
    (c) => c.getMany([key]),
    (c) => c.setMany({ [key]: 1 }),
    (c) => c.delete(key),
    (c) => c.deleteMany([key]),
    (c) => c.touch(key),
    (c) => c.hasKey(key),
    (c) => c.incr(key),
    (c) => c.incrVersion(key),
  ];
}

async function collectWarnings(action: () => Promise<unknown>): Promise<Array<{ name: string; message: string }>> {
  const seen: Array<{ name: string; message: string }> = [];
  const listener = (warning: Error) => seen.push({ name: warning.name, message: warning.message });
  process.on('warning', listener);
  try {
    await action();
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('warning', listener);
  }
  return seen;
}

function describeStoresNothing(getCache: () => BaseCache): void {
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

export { sleep };
