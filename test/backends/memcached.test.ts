import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { type AddressInfo, createConnection, createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HashRing, parseServerAddress, ServerConnection } from '../../src/backends/memcached-client.js';
import { CacheServerError, type CacheParams, InvalidCacheKeyError, MemcachedCache, type MemcachedOptions } from '../../src/index.js';
import { describeBackend } from '../kit/backend.js';
import { closedPort } from '../setup/closed-port.js';
import { type MemcachedProcess, startMemcached } from '../setup/memcached.js';
import { freezeProcess } from '../setup/process.js';
import { type SilentServer, silentServer } from '../setup/silent-server.js';

function testServers(): string[] {
  const servers = process.env.CACHEGRAIN_TEST_MEMCACHED_SERVERS;
  if (!servers)
    throw new Error('CACHEGRAIN_TEST_MEMCACHED_SERVERS is not set: run with CACHEGRAIN_TEST_SERVERS=memcached (needs the Debian package memcached)');
  return servers.split(',');
}

describeBackend('memcached', {
  make: (overrides) => new MemcachedCache({ location: testServers(), ...overrides }),
  makeDown: async (options) => new MemcachedCache({ location: `127.0.0.1:${await closedPort()}`, options }),
  traits: { strictKeys: true, serverClock: 1 },
});

describe('memcached', () => {
  /** What each test opened (caches, raw connections, scripted servers), closed after it. */
  const opened: { close(): Promise<unknown> }[] = [];
  const started: MemcachedProcess[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((cache) => cache.close()));
    for (const server of started.splice(0)) {
      try {
        process.kill(server.pid, 'SIGCONT');
      } catch {
        // already gone
      }
      await server.stop();
    }
  });

  function open(params: CacheParams<MemcachedOptions>): MemcachedCache {
    const cache = new MemcachedCache(params);
    opened.push(cache);
    return cache;
  }

  async function ownServer(options: Parameters<typeof startMemcached>[0] = {}): Promise<MemcachedProcess> {
    const server = await startMemcached(options);
    started.push(server);
    return server;
  }

  /** A silent server (accepts connections and never answers: a half-open connection's other end), closed with the test; its location as a cache names it. */
  async function silentServerAt(): Promise<SilentServer & { location: string }> {
    const server = await silentServer();
    opened.push({ close: () => server.close() } as MemcachedCache);
    return Object.assign(server, { location: `127.0.0.1:${server.port}` });
  }

  /** One counter of memcached's `stats`, asked on a connection of its own. */
  async function serverStat(location: string, name: string): Promise<number> {
    const { host, port } = parseServerAddress(location);
    const socket = createConnection(port!, host);
    let text = '';
    socket.on('data', (chunk) => (text += chunk));
    socket.write('stats\r\n');
    await expect.poll(() => text.endsWith('END\r\n'), { timeout: 20_000, interval: 10 }).toBe(true);
    socket.destroy();
    const match = new RegExp(`^STAT ${name} (\\d+)\r$`, 'm').exec(text);
    if (match === null) throw new Error(`memcached stats has no ${name}: ${text}`);
    return Number(match[1]);
  }

  /** A raw connection, to see what the server itself holds. */
  function raw(location: string): ServerConnection {
    const connection = new ServerConnection(parseServerAddress(location), 2000, 0);
    opened.push(connection);
    return connection;
  }

  describe('consistent hashing', () => {
    const keys = Array.from({ length: 3000 }, (_, i) => `user:${i}:profile`);

    it('spreads keys over every server, each holding its share', async () => {
      const servers = testServers();
      const all = open({ location: servers, keyPrefix: 'spread' });
      await all.clear();
      expect(await all.setMany(Object.fromEntries(keys.map((key) => [key, key])))).toEqual([]);
      const counts = await Promise.all(servers.map(async (server) => (await open({ location: server, keyPrefix: 'spread' }).getMany(keys)).size));
      expect(counts.reduce((a, b) => a + b, 0)).toBe(keys.length);
      for (const count of counts) {
        expect(count).toBeGreaterThan(keys.length * 0.2);
        expect(count).toBeLessThan(keys.length * 0.5);
      }
    });

    it('moves about 1/n of the keys when a server is added, all of them to the new server', async () => {
      const servers = testServers();
      const before = open({ location: servers.slice(0, 2), keyPrefix: 'grow' });
      await before.clear();
      await open({ location: servers[2]!, keyPrefix: 'grow' }).clear();
      await before.setMany(Object.fromEntries(keys.map((key) => [key, key])));
      const after = open({ location: servers, keyPrefix: 'grow' });
      const stillFound = (await after.getMany(keys)).size;
      const moved = keys.length - stillFound;
      expect(moved / keys.length).toBeGreaterThan(0.2);
      expect(moved / keys.length).toBeLessThan(0.47);
      // Every key the 3-server cache misses is one the ring now gives to the new server.
      const newServer = open({ location: servers[2]!, keyPrefix: 'grow' });
      await after.setMany(Object.fromEntries(keys.map((key) => [key, 'again'])));
      expect((await newServer.getMany(keys)).size).toBe(moved);
    });

    it('maps keys the same way on every instance, in any process', () => {
      const ring = new HashRing(['10.0.0.1:11211', '10.0.0.2:11211', '10.0.0.3:11211']);
      const again = new HashRing(['10.0.0.1:11211', '10.0.0.2:11211', '10.0.0.3:11211']);
      const owners = keys.map((key) => ring.ownerOf(key));
      expect(keys.map((key) => again.ownerOf(key))).toEqual(owners);
      expect(new Set(owners)).toEqual(new Set([0, 1, 2]));
    });
  });

  it('sends getMany as one multi-get per server', async () => {
    const servers = [await ownServer({ verbose: true }), await ownServer({ verbose: true })];
    const cache = open({ location: servers.map((server) => server.location) });
    const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
    await cache.setMany(Object.fromEntries(keys.map((key) => [key, key])));
    const before = servers.map((server) => server.output().length);
    const found = await cache.getMany(keys);
    expect(found.size).toBe(200);
    const gets = () =>
      servers.map((server, i) =>
        server
          .output()
          .slice(before[i])
          .split('\n')
          .filter((line) => /^<\d+ get /.test(line)),
      );
    // The servers print each command they read a moment after answering it.
    await expect.poll(() => gets().flat().length, { timeout: 20_000, interval: 20 }).toBe(2);
    expect(gets().map((lines) => lines.length)).toEqual([1, 1]);
    expect(
      gets()
        .map((lines) => lines[0]!.split(' ').length - 2)
        .reduce((a, b) => a + b),
    ).toBe(200);
  });

  it('getMany reads back keys in UTF-8, and values that arrive over many reads of the socket', async () => {
    const cache = open({ location: testServers()[0]!, keyPrefix: 'utf8' });
    const entries = Object.fromEntries([
      ['café', 'short'],
      ['日本語の鍵', 'x'.repeat(300_000)],
      ['naïve-2', 'after a long one'],
    ]);
    await cache.setMany(entries);
    expect(Object.fromEntries(await cache.getMany([...Object.keys(entries), 'absent']))).toEqual(entries);
  });

  describe("a multi-get's reply, from a server that sends it a byte at a time", () => {
    /** A server that answers any command with `reply`, one byte per write. */
    async function tricklingServer(reply: Buffer): Promise<string> {
      const server = createServer((socket) =>
        socket.once('data', async () => {
          for (const byte of reply) {
            socket.write(Buffer.of(byte));
            await new Promise((resolve) => setImmediate(resolve));
          }
        }),
      );
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      opened.push({ close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
      return `127.0.0.1:${(server.address() as AddressInfo).port}`;
    }

    it('is read value by value, keys in UTF-8', async () => {
      const location = await tricklingServer(Buffer.from('VALUE café 0 3\r\nabc\r\nVALUE k2 7 0\r\n\r\nEND\r\n'));
      const found = await raw(location).get(['café', 'k2', 'k3']);
      expect(Object.fromEntries([...found].map(([key, value]) => [key, value.toString()]))).toEqual({ café: 'abc', k2: '' });
    });

    it('rejects a value header that is not one, naming the line', async () => {
      const location = await tricklingServer(Buffer.from('VALUE k 0 three\r\nabc\r\nEND\r\n'));
      await expect(raw(location).get(['k'])).rejects.toThrow('memcached replied VALUE k 0 three');
    });
  });

  it('stores timeouts longer than 30 days as absolute times, and keeps them', async () => {
    const [server] = testServers();
    const cache = open({ location: server! });
    const connection = raw(server!);
    const ttlOf = async (made: string) => Number((await connection.metaGet(made, 't'))?.flags.t);
    // memcached reports an absolute expiry's TTL by its own clock, which ticks once a second and
    // falls behind while the machine is busy: each key is compared with one the test gives the same
    // absolute expiry itself, at the same moment, read by the same clock.
    const expectAbsolute = async (key: string, timeout: number) => {
      const reference = `${cache.makeKey(key)}:reference`;
      await connection.store('set', reference, Buffer.from('1'), Math.ceil(Date.now() / 1000 + timeout));
      const [kept, expected] = [await ttlOf(cache.makeKey(key)), await ttlOf(reference)];
      expect(Math.abs(expected - timeout)).toBeLessThan(60);
      expect(Math.abs(kept - expected)).toBeLessThanOrEqual(1);
    };
    await cache.set('month', 1, 31 * 86400);
    await expectAbsolute('month', 31 * 86400);
    await cache.set('exactly-30-days', 1, 30 * 86400);
    expect(Math.abs((await ttlOf(cache.makeKey('exactly-30-days'))) - 30 * 86400)).toBeLessThanOrEqual(2);
    expect(await cache.add('year', 1, 365 * 86400)).toBe(true);
    await expectAbsolute('year', 365 * 86400);
    await cache.set('touched', 1, 10);
    expect(await cache.touch('touched', 90 * 86400)).toBe(true);
    await expectAbsolute('touched', 90 * 86400);
    await cache.set('forever', 1, null);
    expect(await ttlOf(cache.makeKey('forever'))).toBe(-1);
  });

  it("rounds a fractional timeout up to whole seconds, told with the second memcached's clock may take from it", async () => {
    const [server] = testServers();
    const cache = open({ location: server! });
    await cache.set('brief', 1, 0.2);
    // One second, and one more: unless the server's clock ticked between the write and the read.
    const left = Number((await raw(server!).metaGet(cache.makeKey('brief'), 't'))?.flags.t);
    expect(left).toBeGreaterThanOrEqual(1);
    expect(left).toBeLessThanOrEqual(2);
  });

  describe('timeouts later than memcached can represent (January 2038)', () => {
    const longTimeouts: Array<[string, number]> = [
      ['100 years', 100 * 365 * 86400],
      ['1e10 s', 1e10],
      ['1e12 s', 1e12],
    ];

    it.each(longTimeouts)('%s: set, add, touch and setMany keep the entry; a second add answers false', async (_, timeout) => {
      const [server] = testServers();
      const cache = open({ location: server!, keyPrefix: `long${timeout}` });
      await cache.set('set', 'kept', timeout);
      expect(await cache.get('set')).toBe('kept');
      expect(await cache.add('set', 'not kept', timeout)).toBe(false);

      expect(await cache.add('added', 'first', timeout)).toBe(true);
      expect(await cache.get('added')).toBe('first');
      expect(await cache.add('added', 'second', timeout)).toBe(false);
      expect(await cache.get('added')).toBe('first');

      await cache.set('touched', 'kept', 10);
      expect(await cache.touch('touched', timeout)).toBe(true);
      expect(await cache.get('touched')).toBe('kept');
      expect(await cache.add('touched', 'not kept')).toBe(false);

      expect(await cache.setMany({ many1: 1, many2: 2 }, timeout)).toEqual([]);
      expect(await cache.getMany(['many1', 'many2'])).toEqual(
        new Map([
          ['many1', 1],
          ['many2', 2],
        ]),
      );
      expect(await cache.add('many1', 'not kept', timeout)).toBe(false);

      // Below zero: the gets/cas path, which rewrites the entry with the lifetime it read back.
      await cache.set('counter', 1, timeout);
      expect(await cache.decr('counter', 3)).toBe(-2);
      expect(await cache.incr('counter')).toBe(-1);
      expect(await cache.get('counter')).toBe(-1);

      await cache.set('versioned', 'moved', timeout);
      expect(await cache.incrVersion('versioned')).toBe(2);
      expect(await cache.get('versioned', undefined, { version: 2 })).toBe('moved');

      // Kept as long as memcached keeps anything: exptime 0, which the server reports as never (-1).
      const connection = raw(server!);
      expect((await connection.metaGet(cache.makeKey('set'), 't'))?.flags.t).toBe('-1');
    });

    it("keeps an entry of a second through its second: memcached's clock ticks a second at a time, and the first tick after a write may come at once", async () => {
      const [server] = testServers();
      const cache = open({ location: server! });
      const connection = raw(server!);
      await cache.set('probe', 1, 600);
      const left = async () => (await connection.metaGet(cache.makeKey('probe'), 't'))?.flags.t;
      /** Resolves at the next tick of the server's clock: the probe's lifetime left drops by a second. */
      const nextTick = async () => {
        const before = await left();
        while ((await left()) === before) await new Promise((resolve) => setTimeout(resolve, 10));
      };
      // Late in one of the server's seconds: its next tick comes a moment after the write, and the
      // read after that tick is still well inside the entry's second by the cache's own clock. A
      // machine that stalls may let the server tick twice between the write and the read, and then
      // the attempt says nothing about the entry's second; it is made again.
      for (let attempt = 1; ; attempt++) {
        await nextTick();
        await new Promise((resolve) => setTimeout(resolve, 800));
        const leftBeforeWrite = Number(await left());
        await cache.set('second', 'kept', 1);
        await nextTick();
        const read = await cache.get('second');
        const leftAfterRead = Number(await left());
        if (leftBeforeWrite - leftAfterRead === 1) {
          expect(read).toBe('kept');
          return;
        }
        expect(attempt, 'the server ticked more than once between a write and its read in every attempt').toBeLessThan(5);
      }
    }, 30_000);

    it('the latest time memcached holds is sent as that time; a second later is sent as never', async () => {
      const [server] = testServers();
      const cache = open({ location: server! });
      const connection = raw(server!);
      const ttl = async (key: string) => Number((await connection.metaGet(cache.makeKey(key), 't'))?.flags.t);
      const latest = 2 ** 31 - 1;
      await cache.set('latest', 1, latest - cache.now() - 5);
      expect(Math.abs((await ttl('latest')) - (latest - 5 - Math.floor(Date.now() / 1000)))).toBeLessThanOrEqual(2);
      await cache.set('later', 1, latest - cache.now() + 1);
      expect(await ttl('later')).toBe(-1);
      expect(await cache.get('later')).toBe(1);
    });
  });

  describe('a value larger than the server accepts (2 MB)', () => {
    const big = Buffer.alloc(2 * 1024 * 1024, 7);

    it('set rejects naming the key and server, and leaves no stale value', async () => {
      const [server] = testServers();
      const cache = open({ location: server!, alias: 'mc' });
      await cache.set('page', 'old value');
      const failure = cache.set('page', big);
      await expect(failure).rejects.toThrow(CacheServerError);
      await expect(failure).rejects.toThrow(`cache 'mc': server ${server} refused the value for key ':1:page'`);
      await expect(failure).rejects.toThrow(/object too large/);
      expect(await cache.get('page')).toBeUndefined();
    });

    it.each([2, 10])('%i concurrent sets of one key each reject; a set of another key beside them resolves', async (writers) => {
      const [server] = testServers();
      const cache = open({ location: server!, alias: 'mc' });
      const outcomes = await Promise.allSettled([...Array.from({ length: writers }, () => cache.set('page', big)), cache.set('other', 'fits')]);
      const refused = outcomes.slice(0, writers);
      for (const outcome of refused) {
        expect(outcome.status).toBe('rejected');
        const reason = (outcome as PromiseRejectedResult).reason as CacheServerError;
        expect(reason).toBeInstanceOf(CacheServerError);
        expect(reason.message).toContain(`cache 'mc': server ${server} refused the value for key ':1:page' (`);
        expect(reason.message).toMatch(/ bytes\): SERVER_ERROR object too large for cache; the key was deleted$/);
      }
      expect(outcomes[writers]).toEqual({ status: 'fulfilled', value: undefined });
      expect(await cache.get('other')).toBe('fits');
      expect(await cache.get('page')).toBeUndefined();
    });

    it('with failOpen, each of several concurrent refused sets is reported', async () => {
      const cache = open({ location: testServers(), options: { failOpen: true } });
      const errors: Error[] = [];
      cache.on('error', (error) => errors.push(error));
      await Promise.all([cache.set('page', big), cache.set('page', big), cache.set('page', big)]);
      expect(errors.map((error) => error.message)).toEqual(Array.from({ length: 3 }, () => expect.stringMatching(/refused the value for key ':1:page'/)));
    });

    it('with an L1 in front, a refused set leaves neither the new nor the old value in it', async () => {
      const cache = open({ location: testServers(), options: { l1: { maxEntries: 100, timeout: 30 } } });
      await cache.set('page', 'old value');
      expect(await cache.get('page')).toBe('old value');
      await expect(cache.set('page', big)).rejects.toThrow(/refused the value/);
      expect(await cache.get('page')).toBeUndefined();
      expect(cache.l1!.size).toBe(0);
    });

    it('setMany lists the key among the failed ones and stores the others', async () => {
      const cache = open({ location: testServers() });
      await cache.set('huge', 'old value');
      expect(await cache.setMany({ huge: big, small: 'fits' })).toEqual(['huge']);
      expect(await cache.get('huge')).toBeUndefined();
      expect(await cache.get('small')).toBe('fits');
    });

    it('with failOpen, set reports it as an error event instead of rejecting', async () => {
      const [server] = testServers();
      const cache = open({ location: server!, options: { failOpen: true } });
      const errors: Error[] = [];
      cache.on('error', (error) => errors.push(error));
      await cache.set('page', 'old');
      await expect(cache.set('page', big)).resolves.toBeUndefined();
      expect(errors).toHaveLength(1);
      expect(errors[0]!.message).toMatch(/refused the value for key ':1:page'/);
      expect(await cache.get('page')).toBeUndefined();
    });

    it('add rejects and stores nothing', async () => {
      const cache = open({ location: testServers() });
      await expect(cache.add('huge-add', big)).rejects.toThrow(/too large/);
      expect(await cache.hasKey('huge-add')).toBe(false);
    });
  });

  describe('incr / decr', () => {
    it('is atomic across connections', async () => {
      const servers = testServers();
      const [a, b] = [open({ location: servers }), open({ location: servers })];
      await a.set('hits', 0);
      await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? a : b).incr('hits')));
      expect(await a.get('hits')).toBe(60);
      await Promise.all(Array.from({ length: 80 }, (_, i) => (i % 2 ? a : b).decr('hits')));
      expect(await b.get('hits')).toBe(-20);
      await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).incr('hits', 2)));
      expect(await a.get('hits')).toBe(40);
    });

    it('goes below zero and counts from stored negative numbers', async () => {
      const cache = open({ location: testServers() });
      await cache.set('n', 3);
      expect(await cache.decr('n', 5)).toBe(-2);
      expect(await cache.get('n')).toBe(-2);
      expect(await cache.incr('n')).toBe(-1);
      expect(await cache.incr('n', 4)).toBe(3);
      await cache.set('m', -7);
      expect(await cache.incr('m', -3)).toBe(-10);
    });

    it('keeps the remaining lifetime on the cas path too', async () => {
      const [server] = testServers();
      const cache = open({ location: server! });
      await cache.set('n', 5, 100);
      await cache.decr('n', 10);
      await cache.incr('n', 1);
      const ttl = Number((await raw(server!).metaGet(cache.makeKey('n'), 't'))?.flags.t);
      // 100 seconds and the second memcached's clock may take, less the ticks since: never a second more for each rewrite.
      expect(ttl).toBeGreaterThanOrEqual(99);
      expect(ttl).toBeLessThanOrEqual(101);
    });

    it('rejects a stored float or string with a TypeError', async () => {
      const cache = open({ location: testServers() });
      await cache.set('float', 1.5);
      await cache.set('numeric-text', '12');
      await expect(cache.incr('float')).rejects.toThrow(TypeError);
      await expect(cache.decr('numeric-text')).rejects.toThrow(/not an integer/);
      expect(await cache.get('numeric-text')).toBe('12');
    });
  });

  it('talks to a server on a unix socket', async () => {
    const socket = testServers().find((server) => server.startsWith('unix:'))!;
    const cache = open({ location: socket });
    await cache.set('over-a-socket', { ok: true });
    expect(await cache.get('over-a-socket')).toEqual({ ok: true });
    expect([...(await cache.getMany(['over-a-socket', 'nope']))]).toEqual([['over-a-socket', { ok: true }]]);
  });

  it('refuses a key longer than 250 bytes in UTF-8 even when it is 250 characters', async () => {
    const cache = open({ location: testServers() });
    const key = 'é'.repeat(247);
    await expect(cache.set(key, 1)).rejects.toThrow(InvalidCacheKeyError);
    await expect(cache.get(key)).rejects.toThrow(`Cache key will cause errors if used with memcached: ':1:${key}' (longer than 250 bytes in UTF-8)`);
  });

  it('clear() flushes every server of the cache, whatever prefix stored the keys', async () => {
    const servers = testServers();
    const mine = open({ location: servers, keyPrefix: 'mine' });
    const theirs = open({ location: servers, keyPrefix: 'theirs' });
    await theirs.set('k', 1);
    await mine.clear();
    expect(await theirs.get('k')).toBeUndefined();
  });

  it('rejects a bad location or option, naming the cache and the value', () => {
    expect(() => new MemcachedCache({ alias: 'mc', location: 'localhost' })).toThrow("cache 'mc': location 'localhost' is not host:port or unix:/path");
    expect(() => new MemcachedCache({ alias: 'mc', location: ['127.0.0.1:11211', 'host:99999'] })).toThrow(/'host:99999'/);
    expect(() => new MemcachedCache({ alias: 'mc', location: '127.0.0.1:1', options: { retryDelayMs: -1 } })).toThrow(
      "cache 'mc': options.retryDelayMs must be a non-negative number of milliseconds (got -1)",
    );
    expect(new MemcachedCache({ location: '[::1]:11211; unix:/run/mc.sock' }).location).toEqual(['[::1]:11211', 'unix:/run/mc.sock']);
  });

  describe('when a server fails', () => {
    it('failOpen: answers misses while it is down without waiting for timeoutMs, and recovers when it returns', async () => {
      const server = await ownServer();
      // Longer than the test may last: a call that waited for it would fail the test by its own timeout.
      const timeoutMs = 3_600_000;
      const cache = open({ location: server.location, options: { failOpen: true, timeoutMs } });
      const errors: CacheServerError[] = [];
      cache.on('error', (error) => errors.push(error));
      await cache.set('k', 'v');
      await server.stop();
      const calls: Array<[string, () => Promise<unknown>, unknown]> = [
        ['get', () => cache.get('k'), undefined],
        ['getMany', async () => (await cache.getMany(['k', 'j'])).size, 0],
        ['set', () => cache.set('k', 'w'), undefined],
        ['setMany', () => cache.setMany({ a: 1 }), ['a']],
        ['add', () => cache.add('k', 'w'), false],
        ['delete', () => cache.delete('k'), false],
      ];
      // A stopped server refuses the connection: each call is answered by that, not by the deadline.
      for (const [name, call, expected] of calls) expect(await call(), name).toEqual(expected);
      expect(errors.length).toBeGreaterThan(0);
      for (const error of errors) {
        expect(error).toBeInstanceOf(CacheServerError);
        expect(error.server).toBe(server.location);
      }
      started.push(await startMemcached({ port: server.port }));
      await expect.poll(async () => (await cache.set('back', 'again'), cache.get('back')), { timeout: 20_000, interval: 50 }).toBe('again');
    });

    it('without failOpen: rejects promptly naming the server', async () => {
      const server = await ownServer();
      const cache = open({ location: server.location, alias: 'strict', options: { timeoutMs: 500 } });
      await cache.set('k', 'v');
      await server.stop();
      await expect(cache.get('k')).rejects.toThrow(CacheServerError);
      await expect(cache.get('k')).rejects.toThrow(`cache 'strict': server ${server.location}`);
      await expect(cache.incr('k')).rejects.toThrow(server.location);
      started.push(await startMemcached({ port: server.port }));
      await expect
        .poll(
          async () =>
            await cache.set('back', 1).then(
              () => cache.get('back'),
              () => 'down',
            ),
          { timeout: 20_000, interval: 50 },
        )
        .toBe(1);
    });

    it('a server that stops answering costs timeoutMs; its connection is dropped and a new one answers when it resumes', async () => {
      const server = await ownServer();
      // The connections the two caches open, and how each ends.
      const sockets: Socket[] = [];
      const onSocket = (message: unknown) => void sockets.push((message as { socket: Socket }).socket);
      subscribe('net.client.socket', onSocket);
      const cache = open({ location: server.location, options: { timeoutMs: 200 } });
      const fallback = open({ location: server.location, options: { timeoutMs: 200, failOpen: true } });
      fallback.on('error', () => undefined);
      try {
        await cache.setMany({ a: 'A', b: 'B' });
        await fallback.setMany({ a: 'A', b: 'B' });
      } finally {
        unsubscribe('net.client.socket', onSocket);
      }
      expect(sockets).toHaveLength(2);
      const dropped = sockets.map((socket) => new Promise<string>((resolve) => socket.once('error', (error) => resolve(error.message))));
      const connectionsBefore = await serverStat(server.location, 'total_connections');
      await freezeProcess(server.pid);
      await expect(cache.get('a')).rejects.toThrow(`did not answer within 200 ms`);
      expect(await fallback.get('a')).toBeUndefined();
      // Still silent, both connections are dropped once they answered nothing for twice timeoutMs.
      expect(await Promise.all(dropped)).toEqual(Array(2).fill('no reply within 400 ms with 1 command waiting; connection dropped'));
      process.kill(server.pid, 'SIGCONT');
      const answers = async () => [await cache.get('b').catch(() => 'down'), await cache.get('a').catch(() => 'down')];
      await expect.poll(answers, { timeout: 20_000, interval: 50 }).toEqual(['B', 'A']);
      await expect
        .poll(() => fallback.getMany(['a', 'b']), { timeout: 20_000, interval: 50 })
        .toEqual(
          new Map([
            ['a', 'A'],
            ['b', 'B'],
          ]),
        );
      // Both caches answer on new connections: the silent ones were dropped, not waited on.
      expect((await serverStat(server.location, 'total_connections')) - connectionsBefore).toBeGreaterThanOrEqual(3);
    });

    it('a connection that receives nothing for twice timeoutMs while commands wait is destroyed, they reject, and the next command reconnects', async () => {
      const silent = await silentServerAt();
      const connection = new ServerConnection(parseServerAddress(silent.location), 200, 0);
      opened.push({ close: () => connection.close() } as MemcachedCache);
      const waiting = [connection.get(['a']), connection.store('set', 'b', Buffer.from('x'), 0), connection.delete('c')];
      const outcomes = await Promise.allSettled(waiting);
      for (const outcome of outcomes) {
        expect(outcome.status).toBe('rejected');
        expect(((outcome as PromiseRejectedResult).reason as Error).message).toBe('no reply within 400 ms with 3 commands waiting; connection dropped');
      }
      await expect.poll(() => silent.closed, { timeout: 20_000, interval: 10 }).toBe(1);
      const next = connection.get(['d']);
      await expect.poll(() => silent.connections, { timeout: 20_000, interval: 10 }).toBe(2);
      await expect(next).rejects.toThrow('no reply within 400 ms with 1 command waiting; connection dropped');
      await expect.poll(() => silent.closed, { timeout: 20_000, interval: 10 }).toBe(2);
    });

    it('a cache on a half-open connection rejects within timeoutMs, drops the connection, and tries a new one later', async () => {
      const silent = await silentServerAt();
      const cache = open({ location: silent.location, alias: 'half-open', options: { timeoutMs: 200 } });
      await expect(cache.get('k')).rejects.toThrow(`cache 'half-open': server ${silent.location} did not answer within 200 ms`);
      await expect.poll(() => silent.closed, { timeout: 20_000, interval: 10 }).toBe(1);
      await expect(cache.set('k', 'v')).rejects.toThrow(CacheServerError);
      expect(silent.connections).toBe(2);
      await expect.poll(() => silent.closed, { timeout: 20_000, interval: 10 }).toBe(2);
    });

    it('close() ends the connections; commands after it fail naming the server', async () => {
      const [server] = testServers();
      const cache = new MemcachedCache({ location: server! });
      await cache.set('k', 1);
      await cache.close();
      await expect(cache.get('k')).rejects.toThrow(/closed/);
    });
  });
});
