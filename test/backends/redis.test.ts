import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { type CacheParams, caches, configureCaches, KeyNotFoundError, RedisCache, type RedisOptions } from '../../src/index.js';
import { describeBackend } from '../kit/backend.js';
import { closedPort } from '../setup/closed-port.js';
import { sleep } from '../setup/sleep.js';
import { cli, commandCalls, info, startRedisServer, waitForReplica } from '../setup/redis.js';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: the vitest global setup starts redis-server (Debian package redis-server)`);
  return value;
}

const SINGLE = required('CACHEGRAIN_TEST_REDIS_URL');
const [LEADER, REPLICA] = required('CACHEGRAIN_TEST_REDIS_REPLICATION_URLS').split(',') as [string, string];
const CLUSTER = required('CACHEGRAIN_TEST_REDIS_CLUSTER_URLS').split(',');
const portOf = (url: string) => Number(new URL(url).port);

/**
 * A cache whose writes return only once the replica has them (WAIT), so that the kit's
 * read-right-after-write holds while every read still goes to the replica. Test harness only:
 * the backend itself never waits for replication.
 */
class ReplicaSyncedCache extends RedisCache {
  private async synced<T>(result: Promise<T>): Promise<T> {
    const value = await result;
    await (this as unknown as { leader: Redis }).leader.wait(1, 2000);
    return value;
  }
  protected override write(entries: Array<[string, Buffer]>, expiresAt: number | null) {
    return this.synced(super.write(entries, expiresAt));
  }
  protected override insert(key: string, payload: Buffer, expiresAt: number | null) {
    return this.synced(super.insert(key, payload, expiresAt));
  }
  protected override remove(keys: string[]) {
    return this.synced(super.remove(keys));
  }
  protected override retime(key: string, expiresAt: number | null) {
    return this.synced(super.retime(key, expiresAt));
  }
  protected override incrBy(key: string, delta: number) {
    return this.synced(super.incrBy(key, delta));
  }
}

/** The kit's custom key function makes `CUSTOM-<prefix>-<version>-<key>`; clear needs to be told so. */
function params(location: string | string[], overrides: Partial<CacheParams<RedisOptions>> = {}, options: RedisOptions = {}): CacheParams<RedisOptions> {
  const clearPattern = overrides.keyFunction === undefined ? {} : { clearPattern: 'CUSTOM-*' };
  return { location, ...overrides, options: { ...clearPattern, ...options, ...overrides.options } };
}

// What Redis alone expires (integers, locks), it expires by its own clock, to the millisecond.
const traits = { serverClock: 0, culling: false } as const;

describeBackend('redis (single server)', {
  make: (overrides) => new RedisCache(params(SINGLE, overrides)),
  makeDown: async (options) => new RedisCache({ location: `redis://127.0.0.1:${await closedPort()}`, options }),
  traits,
});
describeBackend('redis (leader + replica)', {
  make: (overrides) => new ReplicaSyncedCache(params([LEADER, REPLICA], overrides)),
  makeDown: async (options) => new RedisCache({ location: [`redis://127.0.0.1:${await closedPort()}`, `redis://127.0.0.1:${await closedPort()}`], options }),
  traits,
});
describeBackend('redis (cluster)', { make: (overrides) => new RedisCache(params(CLUSTER, overrides, { cluster: true })), traits: { ...traits, closes: true } });

describe('redis', () => {
  const opened: RedisCache[] = [];
  function open(location: string | string[], extra: Partial<CacheParams<RedisOptions>> = {}): RedisCache {
    const cache = new RedisCache({ location, ...extra });
    opened.push(cache);
    return cache;
  }
  let cache: RedisCache;
  beforeEach(async () => {
    cache = open(SINGLE, { keyPrefix: 'own' });
    await cache.clear();
  });
  afterEach(async () => {
    for (const made of opened.splice(0)) await made.close();
  });

  describe('incr(key)', () => {
    it('stores integers as decimal text and adds with INCRBY', async () => {
      await cache.set('n', 41);
      expect(await cli(portOf(SINGLE), 'GET', 'own:1:n')).toBe('41');
      const before = await commandCalls(portOf(SINGLE), 'incrby');
      expect(await cache.incr('n')).toBe(42);
      expect(await commandCalls(portOf(SINGLE), 'incrby')).toBe(before + 1);
      expect(await cli(portOf(SINGLE), 'GET', 'own:1:n')).toBe('42');
    });
    it('is atomic across connections', async () => {
      const other = open(SINGLE, { keyPrefix: 'own' });
      await cache.set('hits', 0);
      await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? cache : other).incr('hits')));
      expect(await cache.get('hits')).toBe(100);
    });
    it('keeps the TTL', async () => {
      await cache.set('ttl', 1, 100);
      await cache.incr('ttl', 5);
      const ttlMs = Number(await cli(portOf(SINGLE), 'PTTL', 'own:1:ttl'));
      expect(ttlMs).toBeGreaterThan(90_000);
      expect(ttlMs).toBeLessThanOrEqual(100_000);
    });
    it('does not create a missing key', async () => {
      await expect(cache.incr('absent')).rejects.toThrow(KeyNotFoundError);
      expect(await cli(portOf(SINGLE), 'EXISTS', 'own:1:absent')).toBe('0');
    });
    it('rejects a stored non-integer with a TypeError naming the key', async () => {
      // Kept forever it carries no stamp: INCRBY refuses it.
      await cache.set('word', 'abc', null);
      await expect(cache.incr('word')).rejects.toThrow(/own:1:word.*not an integer/);
      // Stamped with its expiry, it is read and refused as every backend refuses it.
      await cache.set('expiring', 'abc', 60);
      await expect(cache.incr('expiring')).rejects.toThrow(/'expiring'.*not an integer/);
      await cache.set('float', 1.5);
      await expect(cache.decr('float')).rejects.toThrow(TypeError);
    });
  });

  describe('commands in flight together', () => {
    it('leave in one write: the server reads the commands of one tick at once', async () => {
      const server = await startRedisServer();
      try {
        const own = open(server.url);
        await own.setMany({ a: 1, b: 2 });
        const readsDuring = async (work: () => Promise<unknown>) => {
          const before = Number((await info(server.port, 'stats')).get('total_reads_processed'));
          await work();
          // The INFO call itself is a connection of its own: a read or two of the server's.
          return Number((await info(server.port, 'stats')).get('total_reads_processed')) - before;
        };
        const apart = await readsDuring(async () => {
          for (let i = 0; i < 50; i++) await own.get(i % 2 === 0 ? 'a' : 'b');
        });
        const together = await readsDuring(() => Promise.all(Array.from({ length: 50 }, (_, i) => own.get(i % 2 === 0 ? 'a' : 'b'))));
        expect(apart).toBeGreaterThanOrEqual(50);
        expect(together).toBeLessThan(10);
        expect(await Promise.all([own.get('a'), own.set('c', 3), own.get('c'), own.getMany(['a', 'b', 'c'])])).toEqual([
          1,
          undefined,
          3,
          new Map([
            ['a', 1],
            ['b', 2],
            ['c', 3],
          ]),
        ]);
      } finally {
        await server.stop();
      }
    });
  });

  describe('getMany(keys)', () => {
    it('is one MGET on a single server', async () => {
      const keys = Array.from({ length: 50 }, (_, i) => `k${i}`);
      await cache.setMany(Object.fromEntries(keys.map((key) => [key, key])));
      await cli(portOf(SINGLE), 'CONFIG', 'RESETSTAT');
      const found = await cache.getMany([...keys, 'missing']);
      expect(found.size).toBe(50);
      expect(await commandCalls(portOf(SINGLE), 'mget')).toBe(1);
      expect(await commandCalls(portOf(SINGLE), 'get')).toBe(0);
    });
    it("reads a tagged batch with its tags' versions in one MGET, and an entry's new tags with it once it has seen them", async () => {
      const keys = Array.from({ length: 10 }, (_, i) => `book-${i}`);
      await cache.setMany(Object.fromEntries(keys.map((key) => [key, key])), { tags: ['shelf'] });
      const other = open(SINGLE, { keyPrefix: 'own' });
      const mgetsOf = async (expected: Record<string, string>) => {
        await cli(portOf(SINGLE), 'CONFIG', 'RESETSTAT');
        expect(Object.fromEntries(await cache.getMany(keys))).toEqual(expected);
        return commandCalls(portOf(SINGLE), 'mget');
      };
      const all = Object.fromEntries(keys.map((key) => [key, key]));
      await mgetsOf(all);
      expect(await mgetsOf(all)).toBe(1);
      // Moved to another shelf by another process: its new tag is read after the batch, once.
      await other.set('book-3', 'moved', { tags: ['other-shelf'] });
      const moved = { ...all, 'book-3': 'moved' };
      expect(await mgetsOf(moved)).toBe(2);
      expect(await mgetsOf(moved)).toBe(1);
      await other.invalidateTags(['other-shelf']);
      const { 'book-3': _gone, ...left } = moved;
      expect(await mgetsOf(left)).toBe(1);
      await other.invalidateTags(['shelf']);
      expect(await mgetsOf({})).toBe(1);
    });
    it('works across the slots and nodes of a cluster, one MGET per slot', async () => {
      const clustered = open(CLUSTER, { keyPrefix: 'spread', options: { cluster: true } });
      const keys = Array.from({ length: 30 }, (_, i) => `key-${i}`);
      await clustered.setMany(Object.fromEntries(keys.map((key, i) => [key, i])));
      const slots = new Set(await Promise.all([...keys, 'missing'].map((key) => cli(portOf(CLUSTER[0]!), 'CLUSTER', 'KEYSLOT', clustered.makeKey(key)))));
      const nodesHolding = await Promise.all(CLUSTER.map(async (url) => Number(await cli(portOf(url), 'DBSIZE'))));
      expect(nodesHolding.filter((count) => count > 0).length).toBe(3);
      await Promise.all(CLUSTER.map((url) => cli(portOf(url), 'CONFIG', 'RESETSTAT')));
      const found = await clustered.getMany([...keys, 'missing']);
      expect([...found]).toEqual(keys.map((key, i) => [key, i]));
      const mgets = await Promise.all(CLUSTER.map((url) => commandCalls(portOf(url), 'mget')));
      expect(mgets.reduce((sum, calls) => sum + calls, 0)).toBe(slots.size);
      await clustered.clear();
    });
  });

  describe('clear()', () => {
    it('removes only this prefix, leaving longer prefixes and foreign keys alone', async () => {
      const nested = open(SINGLE, { keyPrefix: 'own:sub' });
      await cli(portOf(SINGLE), 'SET', 'foreign', 'x');
      await cli(portOf(SINGLE), 'SET', 'own-not-a-cache', 'x');
      await cache.setMany({ a: 1, b: 2 });
      await cache.set('a', 1, { version: 7 });
      await nested.set('a', 'nested');
      await cache.clear();
      expect((await cache.getMany(['a', 'b'])).size).toBe(0);
      expect(await cache.get('a', undefined, { version: 7 })).toBeUndefined();
      expect(await nested.get('a')).toBe('nested');
      expect(await cli(portOf(SINGLE), 'GET', 'foreign')).toBe('x');
      expect(await cli(portOf(SINGLE), 'GET', 'own-not-a-cache')).toBe('x');
      await nested.clear();
    });
    it('removes many keys, in batches, on every node of a cluster', async () => {
      const clustered = open(CLUSTER, { keyPrefix: 'bulk', options: { cluster: true } });
      const other = open(CLUSTER, { keyPrefix: 'other', options: { cluster: true } });
      await clustered.setMany(Object.fromEntries(Array.from({ length: 2500 }, (_, i) => [`k${i}`, i])));
      await other.set('kept', 'yes');
      await clustered.clear();
      const left = await Promise.all(CLUSTER.map((url) => cli(portOf(url), '--scan', '--pattern', 'bulk:*')));
      expect(left.join('')).toBe('');
      expect(await other.get('kept')).toBe('yes');
      await other.clear();
    });
    it('with a custom keyFunction, rejects unless options.clearPattern says which keys are its own', async () => {
      const keyFunction = (key: string, prefix: string, version: number) => `app/${prefix}/${version}/${key}`;
      const unsure = open(SINGLE, { keyFunction, keyPrefix: 'p' });
      await unsure.set('k', 1);
      await expect(unsure.clear()).rejects.toThrow(/options\.clearPattern/);
      expect(await unsure.get('k')).toBe(1);
      const told = open(SINGLE, { keyFunction, keyPrefix: 'p', options: { clearPattern: 'app/p/*' } });
      await cli(portOf(SINGLE), 'SET', 'app/q/1/k', 'other');
      await told.clear();
      expect(await unsure.get('k')).toBeUndefined();
      expect(await cli(portOf(SINGLE), 'GET', 'app/q/1/k')).toBe('other');
      await cli(portOf(SINGLE), 'DEL', 'app/q/1/k');
    });
  });

  describe('leader and replicas', () => {
    it('sends reads to the replica and writes to the leader', async () => {
      const replicated = open([LEADER, REPLICA], { keyPrefix: 'routing' });
      await replicated.set('k', 'v');
      await waitForReplica(portOf(LEADER));
      await Promise.all([LEADER, REPLICA].map((url) => cli(portOf(url), 'CONFIG', 'RESETSTAT')));
      expect(await replicated.get('k')).toBe('v');
      expect((await replicated.getMany(['k'])).size).toBe(1);
      expect(await replicated.hasKey('k')).toBe(true);
      await replicated.set('k2', 'v2');
      // hasKey reads the entry too: an entry whose tags were invalidated is not there.
      expect(await commandCalls(portOf(REPLICA), 'get')).toBe(2);
      expect(await commandCalls(portOf(REPLICA), 'mget')).toBe(1);
      expect(await commandCalls(portOf(LEADER), 'set')).toBe(1);
      for (const read of ['get', 'mget', 'exists']) expect(await commandCalls(portOf(LEADER), read)).toBe(0);
      await replicated.clear();
    });
  });

  describe('tag versions', () => {
    const pttl = async (tag: string) => Number(await cli(portOf(SINGLE), 'PTTL', `own:0:cachegrain.tag.${tag}`));

    it('a tag never invalidated has no key; an invalidation writes one that expires, past the longest tagged entry before it', async () => {
      await cache.set('long', 'l', { timeout: 600, tags: ['x'] });
      await cache.set('short', 's', { timeout: 2, tags: ['x'] });
      expect(await pttl('x')).toBe(-2);
      await cache.invalidateTags(['x']);
      expect(await pttl('x')).toBeGreaterThanOrEqual(600_000);
      await cache.set('forever', 'f', { timeout: null, tags: ['y'] });
      await cache.invalidateTags(['x']);
      expect(await pttl('x')).toBe(-1);
    });

    it('an entry written before an invalidation never reads as a hit again, before or after its version key expired', async () => {
      await cache.set('old', 'old', { timeout: 2, tags: ['t'] });
      const other = open(SINGLE, { keyPrefix: 'own', options: { l1: { timeout: 30 } } });
      expect(await other.get('old')).toBe('old');
      await other.invalidateTags(['t']);
      expect(await pttl('t')).toBeGreaterThan(0);
      let looks = 0;
      while ((await pttl('t')) !== -2) {
        looks++;
        expect(await cache.get('old')).toBeUndefined();
        expect(await other.get('old')).toBeUndefined();
        await sleep(100);
      }
      expect(looks).toBeGreaterThan(0);
      expect(await cache.get('old')).toBeUndefined();
      expect(await other.get('old')).toBeUndefined();
      // With its key gone the tag reads as never invalidated: new entries are hits.
      await cache.set('after', 'a', { timeout: 60, tags: ['t'] });
      expect(await other.get('after')).toBe('a');
    });

    it('an entry written after an invalidation with a longer life than the version key stays a hit', async () => {
      await cache.set('old', 'old', { timeout: 1, tags: ['t'] });
      await cache.invalidateTags(['t']);
      const keyLife = await pttl('t');
      expect(keyLife).toBeGreaterThan(0);
      await cache.set('new', 'new', { timeout: keyLife / 1000 + 3, tags: ['t'] });
      expect(await pttl('t')).toBeGreaterThan(keyLife + 2000);
      await sleep(keyLife + 500);
      expect(await cache.get('new')).toBe('new');
      await cache.invalidateTags(['t']);
      expect(await cache.get('new')).toBeUndefined();
    });

    it('concurrent first writes of a new tag all store while another connection invalidates other tags', async () => {
      const other = open(SINGLE, { keyPrefix: 'own' });
      const keys = Array.from({ length: 20 }, (_, i) => `page:${i}`);
      await Promise.all([
        ...keys.map((key, i) => (i % 2 === 0 ? cache : other).set(key, key, { timeout: 60 + i, tags: ['url:/fresh'] })),
        other.invalidateTags(['url:/elsewhere']),
      ]);
      expect([...(await other.getMany(keys)).keys()]).toEqual(keys);
      expect(await pttl('url:/fresh')).toBe(-2);
    });
  });

  describe('touch(key, null)', () => {
    it('persists a live key, answers true when it already was, false when missing', async () => {
      await cache.set('p', 'v', 100);
      expect(await cache.touch('p', null)).toBe(true);
      expect(await cli(portOf(SINGLE), 'PTTL', 'own:1:p')).toBe('-1');
      expect(await cache.touch('p', null)).toBe(true);
      expect(await cache.touch('missing', null)).toBe(false);
      expect(await cli(portOf(SINGLE), 'EXISTS', 'own:1:missing')).toBe('0');
    });
    it('sets a PX expiry from a timeout', async () => {
      await cache.set('t', 'v', null);
      expect(await cache.touch('t', 50)).toBe(true);
      const ttlMs = Number(await cli(portOf(SINGLE), 'PTTL', 'own:1:t'));
      expect(ttlMs).toBeGreaterThan(49_000);
      expect(ttlMs).toBeLessThanOrEqual(50_000);
    });
  });

  describe('configuration', () => {
    it('is the `redis` backend of configureCaches', async () => {
      await configureCaches({ default: { backend: 'redis', location: SINGLE, keyPrefix: 'configured' } });
      try {
        expect(caches.get('default')).toBeInstanceOf(RedisCache);
        await caches.get('default').set('k', 'v');
        expect(await cli(portOf(SINGLE), 'EXISTS', 'configured:1:k')).toBe('1');
        await caches.get('default').clear();
      } finally {
        await configureCaches({ default: { backend: 'locmem' } });
      }
    });
    it('refuses a missing or malformed location, naming the alias', () => {
      expect(() => new RedisCache({ alias: 'r' })).toThrow("cache 'r': the redis backend needs a location");
      expect(() => new RedisCache({ alias: 'r', location: 'localhost:6379' })).toThrow(
        "cache 'r': location must be redis:// or rediss:// URLs, as redis://127.0.0.1:6379/0 (got 'localhost:6379')",
      );
      expect(() => new RedisCache({ location: 'redis://u:secret@h:1', options: { cluster: 'yes' } as never })).toThrow(/options\.cluster must be a boolean/);
      expect(() => new RedisCache({ location: 'redis://h:1/2', options: { cluster: true } })).toThrow(/only database 0/);
      expect(() => new RedisCache({ location: 'ftp://u:secret@h:1' })).toThrow("(got 'ftp://u:***@h:1')");
    });
    it('refuses the ioredis keyPrefix option, which clear could not see', () => {
      expect(() => new RedisCache({ location: SINGLE, options: { client: { keyPrefix: 'x:' } } })).toThrow(/options\.client\.keyPrefix is not supported/);
    });
    it('refuses ioredis options outside options.client, listing where they go', () => {
      expect(() => new RedisCache({ alias: 'r', location: SINGLE, options: { connectTimeout: 10 } as never })).toThrow(
        "cache 'r': unknown option 'options.connectTimeout'; the options are 'options.timeoutMs', 'options.failOpen', 'options.l1', 'options.cluster', 'options.clearPattern', 'options.client'",
      );
    });
  });
});

afterAll(async () => {
  await caches.closeAll();
});
