import { createHook } from 'node:async_hooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CacheServerError, RedisCache } from '../../src/index.js';
import { closedPort } from '../setup/closed-port.js';
import { eventually } from '../setup/eventually.js';
import { freezeProcess } from '../setup/process.js';
import { type RedisServer, startRedisServer } from '../setup/redis.js';

const TIMEOUT_MS = 150;

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
beforeAll(() => {
  process.on('unhandledRejection', onUnhandled);
});
afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
});

describe('redis when the server goes away', () => {
  let server: RedisServer;
  const opened: RedisCache[] = [];
  afterEach(async () => {
    for (const cache of opened.splice(0)) await cache.close();
    await server?.stop();
  });

  it('with failOpen: misses and no-ops within timeoutMs, error events, then recovers by itself', async () => {
    server = await startRedisServer();
    const cache = new RedisCache({ alias: 'shaky', location: server.url, options: { failOpen: true, timeoutMs: TIMEOUT_MS } });
    opened.push(cache);
    const errors: Error[] = [];
    cache.on('error', (error: Error) => errors.push(error));
    await cache.set('k', 'before');
    expect(await cache.get('k')).toBe('before');

    // Traffic that keeps going while the server dies: no call may reject, and every one is answered
    // while the server is still down (one that waited for the client to reconnect never would be).
    let rejected = 0;
    let answered = 0;
    let answeredAfterStop = 0;
    let stopped = false;
    let running = true;
    const traffic = Array.from({ length: 10 }, async (_, worker) => {
      for (let i = 0; running; i++) {
        await (i % 2 === 0 ? cache.get(`t${worker}`) : cache.set(`t${worker}`, i)).catch(() => rejected++);
        answered++;
        if (stopped) answeredAfterStop++;
        // Once the breaker is open calls answer without I/O: let timers run, as a server's request loop would.
        await new Promise((resolve) => setImmediate(resolve));
      }
    });
    // Traffic is flowing before the server goes, and keeps being answered until the breaker opened.
    await eventually(() => expect(answered).toBeGreaterThan(100));
    await server.stop();
    stopped = true;
    await eventually(() => expect(cache.health()).toMatchObject([{ state: 'open' }]));
    await eventually(() => expect(answeredAfterStop).toBeGreaterThan(100));
    running = false;
    await Promise.all(traffic);
    expect(rejected).toBe(0);

    // Reads, commands queued while reconnecting and ones sent just as the socket died all answer
    // while the server is down (it starts again only after them).
    for (let round = 0; round < 5; round++) {
      expect(await cache.get('k', 'fallback')).toBe('fallback');
      expect(await cache.set('k', 'during')).toBeUndefined();
      expect(await Promise.all([cache.getMany(['a', 'b']), cache.add('new', 1), cache.hasKey('k'), cache.delete('k'), cache.touch('k', 10)])).toEqual([
        new Map(),
        false,
        false,
        false,
        false,
      ]);
    }
    expect(errors.length).toBeGreaterThan(0);
    for (const error of errors) {
      expect(error).toBeInstanceOf(CacheServerError);
      expect(error.message).toContain(`cache 'shaky': server ${server.url}`);
    }

    server = await startRedisServer({ port: server.port });
    await eventually(async () => {
      await cache.set('k', 'after');
      expect(await cache.get('k')).toBe('after');
    }, 30_000);
    expect(unhandled).toEqual([]);
  }, 60_000);

  it('without failOpen: rejects promptly with a CacheServerError naming the server, then recovers', async () => {
    server = await startRedisServer();
    const cache = new RedisCache({ alias: 'strict', location: server.url, options: { timeoutMs: TIMEOUT_MS } });
    opened.push(cache);
    cache.on('error', () => undefined);
    await cache.set('k', 'v');
    await server.stop();
    // Each round settles while the server is down: it starts again only after them.
    for (let round = 0; round < 3; round++) {
      const outcome = await Promise.allSettled([cache.get('k'), cache.set('k', 'x'), cache.incr('n')]);
      for (const result of outcome) {
        expect(result.status).toBe('rejected');
        const reason = (result as PromiseRejectedResult).reason as CacheServerError;
        expect(reason).toBeInstanceOf(CacheServerError);
        expect(reason.server).toBe(server.url);
        expect(reason.message).toContain(`cache 'strict': server ${server.url}`);
      }
    }
    server = await startRedisServer({ port: server.port });
    await eventually(async () => expect(await cache.get('k').catch(() => 'failed')).toBeUndefined(), 30_000);
    expect(unhandled).toEqual([]);
  }, 60_000);

  it('close() waits for a server that stopped answering no longer than timeoutMs, idle or with a call in flight', async () => {
    server = await startRedisServer();
    for (const inFlight of [false, true]) {
      const cache = new RedisCache({ location: server.url, keyPrefix: String(inFlight), options: { failOpen: true, timeoutMs: TIMEOUT_MS } });
      cache.on('error', () => undefined);
      await cache.set('k', 'v');
      await freezeProcess(server.pid!);
      const call = inFlight ? cache.get('k').catch(() => undefined) : undefined;
      // What settled close(): the timer whose callback ran last before it did (its settling takes no I/O).
      const timers = new Map<number, number>();
      let lastFired: number | undefined;
      const watch = createHook({
        init: (id, type, _trigger, resource) => void (type === 'Timeout' && timers.set(id, (resource as { _idleTimeout: number })._idleTimeout)),
        before: (id) => void (timers.has(id) && (lastFired = timers.get(id))),
      }).enable();
      let settledBy: number | undefined;
      try {
        await cache.close().then(() => (settledBy = lastFired));
      } finally {
        watch.disable();
      }
      // It settles while the server is still frozen (waiting for it would hang the test), ended by a deadline of timeoutMs.
      expect(settledBy, inFlight ? 'with a call in flight' : 'idle').toBe(TIMEOUT_MS);
      process.kill(server.pid!, 'SIGCONT');
      await call;
    }
  }, 30_000);

  it('close() after the server died leaves no timer of its connection behind to hold the process open', async () => {
    server = await startRedisServer();
    const cache = new RedisCache({ location: server.url, options: { failOpen: true, timeoutMs: TIMEOUT_MS } });
    cache.on('error', () => undefined);
    await cache.set('k', 'v');
    await server.kill!();
    expect(await cache.get('k')).toBeUndefined();
    // The timers close() starts that would keep the process alive for a second or more.
    const lasting = new Set<number>();
    const timers = createHook({
      init: (id, type, _trigger, resource) => void (type === 'Timeout' && (resource as { _idleTimeout: number })._idleTimeout >= 1000 && lasting.add(id)),
      destroy: (id) => void lasting.delete(id),
    }).enable();
    try {
      await cache.close();
    } finally {
      timers.disable();
    }
    expect(lasting.size).toBe(0);
  });

  it('without failOpen: a server that never answered rejects promptly too, and close() does not hang', async () => {
    const port = await closedPort();
    server = { port, url: `redis://127.0.0.1:${port}`, stop: async () => {} };
    const cache = new RedisCache({ location: server.url, options: { timeoutMs: TIMEOUT_MS } });
    cache.on('error', () => undefined);
    const read = await cache.get('k').then(
      () => 'answered',
      (error: Error) => error.message,
    );
    expect(read).toContain(`server redis://127.0.0.1:${port}`);
    await cache.close();
    expect(unhandled).toEqual([]);
  });
});
