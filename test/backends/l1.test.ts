import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseCache, MemcachedCache, RedisCache, type ServerCache } from '../../src/index.js';
import { describeBackend } from '../kit/backend.js';
import { closedPort } from '../setup/closed-port.js';
import { type MemcachedProcess, startMemcached } from '../setup/memcached.js';
import { eventually } from '../setup/eventually.js';
import { commandCalls, type RedisServer, startRedisServer } from '../setup/redis.js';

function required(name: string, debianPackage: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: the vitest global setup starts it (Debian package ${debianPackage})`);
  return value;
}

const REDIS = required('CACHEGRAIN_TEST_REDIS_URL', 'redis-server');
const MEMCACHED = required('CACHEGRAIN_TEST_MEMCACHED_SERVERS', 'memcached').split(',')[0]!;
const portOf = (url: string) => Number(new URL(url).port);
const l1 = { maxEntries: 1000, timeout: 30 };
const sqliteRoot = mkdtempSync(join(tmpdir(), 'cachegrain-l1-'));
afterAll(() => rmSync(sqliteRoot, { recursive: true, force: true }));

// The kit's keys carry no prefix, as in the kit runs of redis.test.ts and memcached.test.ts, which
// may run beside this file on the shared servers: its runs here get servers of their own, so that
// one file's clear() or writes never land in the middle of the other's tests.
let kitRedis: RedisServer | undefined;
let kitMemcached: MemcachedProcess | undefined;
beforeAll(async () => {
  [kitRedis, kitMemcached] = await Promise.all([startRedisServer(), startMemcached()]);
});
afterAll(() => Promise.all([kitRedis?.stop(), kitMemcached?.stop()]));

// The whole contract still holds with the L1 in front, on each kind of server. Variants of one
// kit run share a process, so they see each other's changes at once, as caches of one process do.
describeBackend('redis with l1', {
  make: (overrides = {}) =>
    new RedisCache({
      location: kitRedis!.url,
      ...overrides,
      options: { l1, ...(overrides.keyFunction === undefined ? {} : { clearPattern: 'CUSTOM-*' }), ...overrides.options },
    }),
  makeDown: async (options) => new RedisCache({ location: `redis://127.0.0.1:${await closedPort()}`, options: { l1, ...options } }),
  traits: { serverClock: 0, culling: false },
});
describeBackend('memcached with l1 and a bus', {
  make: (overrides = {}) =>
    new MemcachedCache({ location: kitMemcached!.location, ...overrides, options: { l1: { ...l1, bus: kitRedis!.url }, ...overrides.options } }),
  makeDown: async (options) => new MemcachedCache({ location: `127.0.0.1:${await closedPort()}`, options: { l1: { ...l1, bus: kitRedis!.url }, ...options } }),
  traits: { serverClock: 1, culling: false, strictKeys: true },
});
// Culling is left out: the L1 keeps a culled entry until its timeout (documented), which the kit cannot tell from a bug.
describeBackend('database-sqlite with l1 and no bus', {
  make: (overrides = {}) =>
    new DatabaseCache({ location: 'l1_table', ...overrides, options: { connection: `sqlite://${sqliteRoot}/l1.db`, l1, ...overrides.options } as never }),
});

/**
 * Reads the key in the peer until its L1 keeps it, and answers the value: a read is not kept when an
 * announcement for its key arrives while it is in flight (the peer may just have heard of our write).
 */
async function held(peer: Peer, key: string): Promise<unknown> {
  let read: { value: unknown; held: boolean } | undefined;
  await eventually(async () => expect((read = await peer.ask('get', { key })).held, `the peer keeping ${key}`).toBe(true), 2000);
  return read!.value;
}

/** A cache with an L1 in another process, driven over IPC (test/kit/l1-peer.ts). */
class Peer {
  private readonly child: ChildProcess;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (value: any) => void; reject: (error: Error) => void }>();
  readonly ready: Promise<unknown>;

  constructor(backend: 'redis' | 'memcached', params: object) {
    const script = new URL('../kit/l1-peer.ts', import.meta.url).pathname;
    this.child = fork(script, [JSON.stringify({ backend, params })], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.ready = new Promise((resolve) => this.waiting.set(0, { resolve, reject: resolve }));
    this.child.on('message', (reply: { id: number; result?: unknown; error?: string }) => {
      const waiter = this.waiting.get(reply.id)!;
      this.waiting.delete(reply.id);
      if (reply.error !== undefined) waiter.reject(new Error(reply.error));
      else waiter.resolve(reply.result);
    });
  }

  ask(op: string, fields: object = {}): Promise<any> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.child.send({ id, op, ...fields });
    });
  }

  async close(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    await this.ask('close');
    await exited;
  }
}

/** A Redis cache that stores one entry with a command of its own (the optional `writeOne` primitive), as a subclass may. */
class OwnSetRedisCache extends RedisCache {
  protected override async writeOne(key: string, payload: Buffer | string, expiresAt: number | null): Promise<void> {
    const failed = await super.write([[key, payload]], expiresAt);
    if (failed.length > 0) throw new Error(`not stored: ${failed.join()}`);
  }
}

describe('options.l1', () => {
  const opened: ServerCache<any>[] = [];
  afterEach(async () => {
    for (const cache of opened.splice(0)) await cache.close();
  });
  function redis(options: object = {}, keyPrefix = 'l1'): RedisCache {
    const cache = new RedisCache({ location: REDIS, keyPrefix, options: { l1, ...options } });
    opened.push(cache as ServerCache<any>);
    return cache;
  }

  it('rejects bad settings, naming the option', () => {
    expect(() => new RedisCache({ alias: 'a', location: REDIS, options: { l1: { maxEntries: 0 } } })).toThrow(
      "cache 'a': options.l1.maxEntries must be a positive integer (got 0)",
    );
    expect(() => new MemcachedCache({ alias: 'm', location: MEMCACHED, options: { l1: { timeout: -1 } } })).toThrow(
      "cache 'm': options.l1.timeout must be a positive number of seconds (got -1)",
    );
    expect(() => new MemcachedCache({ alias: 'm', location: MEMCACHED, options: { l1: { bus: 'http://x' } } })).toThrow(
      "cache 'm': options.l1.bus must be a redis:// or rediss:// URL (got 'http://x')",
    );
    expect(() => new RedisCache({ alias: 'a', location: REDIS, options: { l1: { maxEntry: 5 } as never } })).toThrow(
      "cache 'a': unknown option 'options.l1.maxEntry' (did you mean 'options.l1.maxEntries'?); the options are 'options.l1.maxEntries', 'options.l1.timeout', 'options.l1.bus'",
    );
  });

  const subscribe = Redis.prototype.subscribe;
  // A patch left in place by a test that failed half way would break the tests after it.
  afterEach(() => {
    Redis.prototype.subscribe = subscribe;
  });

  it('closed while its bus is still subscribing, reports nothing: the subscription failed because of the close', async () => {
    const cache = new RedisCache({ location: REDIS, keyPrefix: 'l1-closing', options: { l1 } });
    const errors: Error[] = [];
    cache.on('error', (error: Error) => errors.push(error));
    // The bus's SUBSCRIBE goes out only once the cache is closed, which fails it.
    let closeCache: () => void = () => undefined;
    const closed = new Promise<void>((resolve) => (closeCache = resolve));
    let subscribing: Promise<unknown> | undefined;
    Redis.prototype.subscribe = function (this: Redis, ...args: unknown[]) {
      subscribing = closed.then(() => (subscribe as (...args: unknown[]) => Promise<unknown>).apply(this, args));
      return subscribing;
    } as typeof subscribe;
    await cache.set('k', 1);
    await eventually(() => expect(subscribing !== undefined, 'the bus subscribing').toBe(true), 5000);
    await cache.close();
    closeCache();
    // The bus heard the outcome first: it asked for it before this test did.
    const outcome = await subscribing!.then(
      () => 'subscribed',
      (error: Error) => error.message,
    );
    expect(outcome).toBe('Connection is closed.');
    expect(cache.l1!.busUp).toBe(false);
    expect(errors.map((error) => error.message)).toEqual([]);
  });

  it('a write to a closed cache rejects as a call to a closed cache, and the cache reports nothing of its bus', async () => {
    const cache = new RedisCache({ location: REDIS, keyPrefix: 'l1-closing-write', options: { l1 } });
    const errors: Error[] = [];
    cache.on('error', (error: Error) => errors.push(error));
    let subscriber: Redis | undefined;
    Redis.prototype.subscribe = function (this: Redis, ...args: unknown[]) {
      subscriber = this;
      return (subscribe as (...args: unknown[]) => Promise<unknown>).apply(this, args);
    } as typeof subscribe;
    await cache.set('warm', 1);
    await eventually(() => expect(cache.l1!.busUp, 'the bus to come up').toBe(true), 5000);
    const subscriberEnded = new Promise((resolve) => subscriber!.once('end', resolve));
    await cache.close();
    await expect(cache.set('k', 1)).rejects.toThrow("cache 'default' is closed");
    // The bus's connection has ended: it has nothing more to report.
    await subscriberEnded;
    expect(errors.map((error) => error.message)).toEqual([]);
  });

  it('a write overlapped by another change of its key drops what the L1 held: after many adds racing over an invalidated entry, the next read is the winner', async () => {
    const cache = redis({}, 'l1-overlap');
    // Each round's race is short; the losing interleaving (a write not kept because an add changed
    // its key meanwhile) comes up in a few rounds in a hundred.
    const misread: string[] = [];
    for (let round = 0; round < 300; round++) {
      await cache.set('k', 'old', { tags: ['t'] });
      expect(await cache.get('k')).toBe('old');
      await cache.invalidateTags(['t']);
      const added = await Promise.all(Array.from({ length: 10 }, (_, i) => cache.add('k', `v${i}`, { tags: ['t'] })));
      const winner = `v${added.indexOf(true)}`;
      const read = await cache.get('k');
      if (added.filter(Boolean).length !== 1 || read !== winner) misread.push(`round ${round}: ${added.join()} then ${String(read)}`);
    }
    expect(misread).toEqual([]);
  });

  it("is a layer the cache is composed with: the contract its operations call is the L1, and the primitives stay the class's own", async () => {
    const cache = redis({}, 'l1-layer');
    expect((cache as unknown as { primitives: unknown }).primitives).toBe(cache.l1);
    const primitives = ['read', 'readPayloads', 'readOne', 'contains', 'write', 'insert', 'remove', 'retime', 'removeAll', 'incrBy', 'disconnect'];
    expect(primitives.filter((name) => Object.hasOwn(cache, name))).toEqual([]);
    await cache.set('k', 'v');
    expect(await cache.get('k')).toBe('v');
    expect(cache.l1!.holds(cache.makeKey('k'))).toBe(true);
  });

  it('stays in front of a subclass that overrides a primitive: its own one-entry write still updates what the process holds', async () => {
    const cache = new OwnSetRedisCache({ location: REDIS, keyPrefix: 'l1-subclass', options: { l1 } });
    opened.push(cache as ServerCache<any>);
    await cache.set('k', 'first');
    expect(await cache.get('k')).toBe('first');
    expect(cache.l1!.holds(cache.makeKey('k'))).toBe(true);
    await cache.set('k', 'second');
    expect(await cache.get('k')).toBe('second');
    expect(cache.l1!.holds(cache.makeKey('k'))).toBe(true);
  });

  it('answers repeated reads in process, synchronously in effect, with fresh copies', async () => {
    const cache = redis({}, 'l1-local');
    await cache.set('k', { list: [1, 2] });
    await eventually(() => expect(cache.l1!.busUp, 'the bus to come up').toBe(true), 5000);
    await cache.set('k', { list: [1, 2] });
    const gets = await commandCalls(portOf(REDIS), 'get');
    const mgets = await commandCalls(portOf(REDIS), 'mget');
    const first = (await cache.get('k')) as { list: number[] };
    first.list.push(3);
    expect(await cache.get('k')).toEqual({ list: [1, 2] });
    expect(await cache.getMany(['k'])).toEqual(new Map([['k', { list: [1, 2] }]]));
    expect(await commandCalls(portOf(REDIS), 'get')).toBe(gets);
    expect(await commandCalls(portOf(REDIS), 'mget')).toBe(mgets);
  });
});

describe('L1 between processes', () => {
  const peers: Peer[] = [];
  const opened: ServerCache<any>[] = [];
  let bus: RedisServer | undefined;
  afterEach(async () => {
    for (const peer of peers.splice(0)) await peer.close();
    for (const cache of opened.splice(0)) await cache.close();
    await bus?.stop();
    bus = undefined;
  });
  async function peer(backend: 'redis' | 'memcached', params: object): Promise<Peer> {
    const made = new Peer(backend, params);
    peers.push(made);
    await made.ready;
    return made;
  }
  function local<C extends ServerCache<any>>(cache: C): C {
    cache.on('error', () => undefined);
    opened.push(cache);
    return cache;
  }

  it('drops what another process changes: set, delete, incr, incrVersion, clear', async () => {
    const params = { location: REDIS, keyPrefix: 'l1-two', options: { l1 } };
    const a = local(new RedisCache(params));
    const b = await peer('redis', params);
    await b.ask('get', { key: 'warm-up' });
    await eventually(async () => expect((await b.ask('busUp')) as boolean, "the peer's bus to come up").toBe(true), 5000);

    await a.set('k', 'one');
    expect(await held(b, 'k')).toBe('one');
    await a.set('k', 'two');
    await eventually(async () => expect(!(await b.ask('holds', { key: 'k' })), 'b dropping k after a set').toBe(true), 1000);
    expect((await b.ask('get', { key: 'k' })).value).toBe('two');

    await a.delete('k');
    await eventually(async () => expect(!(await b.ask('holds', { key: 'k' })), 'b dropping k after a delete').toBe(true), 1000);
    expect((await b.ask('get', { key: 'k' })).value).toBeUndefined();

    await a.set('n', 1);
    expect(await held(b, 'n')).toBe(1);
    await a.incr('n', 5);
    await eventually(async () => expect(!(await b.ask('holds', { key: 'n' })), 'b dropping n after incr').toBe(true), 1000);
    expect((await b.ask('get', { key: 'n' })).value).toBe(6);

    await a.set('v', 'versioned');
    expect(await held(b, 'v')).toBe('versioned');
    await a.incrVersion('v');
    await eventually(async () => expect(!(await b.ask('holds', { key: 'v' })), 'b dropping v after incrVersion').toBe(true), 1000);
    expect((await b.ask('get', { key: 'v' })).value).toBeUndefined();

    await a.set('c', 'x');
    expect(await held(b, 'c')).toBe('x');
    await a.clear();
    await eventually(async () => expect((await b.ask('size')) === 0, 'b emptying after clear').toBe(true), 1000);
    expect((await b.ask('get', { key: 'c' })).value).toBeUndefined();
  });

  it("a tag invalidation in process A reaches process B's L1: tagged entries it holds read as misses, and later writes are kept", async () => {
    const params = { location: REDIS, keyPrefix: 'l1-tags', options: { l1 } };
    const a = local(new RedisCache(params));
    const b = await peer('redis', params);
    await b.ask('get', { key: 'warm-up' });
    await eventually(async () => expect((await b.ask('busUp')) as boolean, "the peer's bus to come up").toBe(true), 5000);

    await a.set('tagged', 'one', { timeout: 60, tags: ['article:7'] });
    await a.set('other', 'two', { timeout: 60, tags: ['article:8'] });
    expect(await held(b, 'tagged')).toBe('one');
    expect(await held(b, 'other')).toBe('two');
    await a.invalidateTags(['article:7']);
    await eventually(async () => expect((await b.ask('get', { key: 'tagged' })).value === undefined, 'b missing the invalidated entry').toBe(true), 100);
    expect((await b.ask('get', { key: 'other' })).value).toBe('two');
    // Written after the invalidation: unaffected.
    await a.set('tagged', 'three', { timeout: 60, tags: ['article:7'] });
    await eventually(async () => expect((await b.ask('get', { key: 'tagged' })).value === 'three', 'b reading the new entry').toBe(true), 1000);
  });

  it('without a bus, trusts an entry for l1.timeout seconds at most', async () => {
    const params = { location: MEMCACHED, keyPrefix: 'l1-nobus', options: { l1: { timeout: 5 } } };
    const a = local(new MemcachedCache(params));
    const b = await peer('memcached', params);
    await a.set('k', 'old', 600);
    expect(await held(b, 'k')).toBe('old');
    await a.set('k', 'new', 600);
    // Nothing tells b: it may serve the old value, but only until its L1 timeout runs out.
    expect(await held(b, 'k')).toBe('old');
    await b.ask('advance', { seconds: 5 });
    expect(await b.ask('holds', { key: 'k' })).toBe(false);
    expect(await held(b, 'k')).toBe('new');
  });

  it('the bus dying and coming back: entries last l1.timeout at most meanwhile, the L1 empties on reconnect, invalidations flow again', async () => {
    bus = await startRedisServer();
    const port = bus.port;
    const params = { location: MEMCACHED, keyPrefix: 'l1-bus', options: { l1: { timeout: 10, bus: bus.url } } };
    const a = local(new MemcachedCache(params));
    const b = await peer('memcached', params);
    await a.set('k', 'one', 600);
    expect(await held(b, 'k')).toBe('one');
    await eventually(async () => expect(a.l1!.busUp && (await b.ask('busUp')), 'both buses to come up').toBe(true), 5000);
    expect(await held(b, 'k')).toBe('one');

    await bus.stop();
    await eventually(async () => expect(!(await b.ask('busUp')), 'b to see the bus down').toBe(true), 5000);
    await a.set('k', 'two', 600); // its invalidation cannot travel
    expect(await held(b, 'k')).toBe('one');
    await b.ask('advance', { seconds: 10 });
    expect(await b.ask('holds', { key: 'k' })).toBe(false);
    expect(await held(b, 'k')).toBe('two');

    bus = await startRedisServer({ port });
    await eventually(async () => expect(a.l1!.busUp && (await b.ask('busUp')), 'both buses to reconnect').toBe(true), 10_000);
    expect(await b.ask('size')).toBe(0);
    expect(await held(b, 'k')).toBe('two');
    await a.set('k', 'three', 600);
    await eventually(async () => expect(!(await b.ask('holds', { key: 'k' })), 'b dropping k once the bus is back').toBe(true), 1000);
    expect((await b.ask('get', { key: 'k' })).value).toBe('three');
  });

  it("every one of 1,000 writes in process A is gone from process B's L1 before B reads it again", async () => {
    const params = { location: REDIS, keyPrefix: 'l1-proc', options: { l1 } };
    const a = local(new RedisCache(params));
    await a.set('k', -1);
    const b = await peer('redis', params);
    await b.ask('get', { key: 'k' });
    await eventually(async () => expect((await b.ask('busUp')) as boolean, "the peer's bus to come up").toBe(true), 5000);
    const latencies: number[] = [];
    for (let round = 0; round < 1000; round++) {
      expect(await held(b, 'k')).toBe(round - 1);
      const gone = b.ask('watch', { key: 'k' });
      const writtenAt = performance.timeOrigin + performance.now();
      await a.set('k', round);
      latencies.push((await gone) - writtenAt);
    }
    // How fast is the bench's to say; here each write reached B (its watch ended) and B then held the new value, the last one too.
    expect(await held(b, 'k')).toBe(999);
    if (process.env.CACHEGRAIN_PRINT_L1_LATENCY) {
      latencies.sort((x, y) => x - y);
      console.log(`L1 invalidation across processes: p50 ${latencies[500]!.toFixed(2)} ms, p99 ${latencies[990]!.toFixed(2)} ms`);
    }
  }, 120_000);
});
