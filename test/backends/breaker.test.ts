/**
 * The breaker and the per-request budget of every server backend, on real servers that
 * die (SIGKILL by PID) or stop answering (a loopback listener that accepts and never replies).
 * The surprise: a dead server that refuses connections fails fast anyway; the expensive outage is
 * the one that accepts and goes silent, so most cases here use that one.
 */
import { createServer as createHttpServer } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { type BaseCache, CacheServerError, MemcachedCache, RedisCache, type ServerOptions } from '../../src/index.js';
import { inRequestScope } from '../../src/cacheability/request-scope.js';
import { cacheScope } from '../../src/http/index.js';
import { BREAKER_FAILURES } from '../../src/backends/server.js';
import { eventually } from '../setup/eventually.js';
import { silentServer } from '../setup/silent-server.js';
import { sleep } from '../setup/sleep.js';
import { cli, type RedisServer, startRedisServer, startReplication, waitForReplica } from '../setup/redis.js';

const TIMEOUT_MS = 1000;

/** Runs `fn` as the handler of one real HTTP request over loopback, inside that request's scope. */
async function inRequest<T>(fn: () => Promise<T>): Promise<T> {
  let outcome: { value: T } | { error: unknown } | undefined;
  const server = createHttpServer((_req, res) =>
    inRequestScope(res, async () => {
      try {
        outcome = { value: await fn() };
      } catch (error) {
        outcome = { error };
      }
      res.end();
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await (await fetch(`http://127.0.0.1:${(server.address() as { port: number }).port}/`)).text();
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  if (outcome === undefined || 'error' in outcome) throw (outcome as { error: unknown } | undefined)?.error ?? new Error('the handler did not run');
  return outcome.value;
}

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

type Silent = { name: string; make(port: number, options: ServerOptions & Record<string, unknown>): BaseCache & { health(): Array<{ state: string }> } };
const silentBackends: Silent[] = [
  { name: 'redis', make: (port, options) => new RedisCache({ alias: 'silent', location: `redis://127.0.0.1:${port}`, options }) },
  { name: 'memcached', make: (port, options) => new MemcachedCache({ alias: 'silent', location: `127.0.0.1:${port}`, options }) },
];

/** A cache of `make`'s backend on a server that accepts connections and never answers, both closed after the test. */
async function onSilentServer(make: Silent['make'], options: ServerOptions & Record<string, unknown>): Promise<ReturnType<Silent['make']>> {
  const silent = await silentServer();
  cleanups.push(() => silent.close());
  const cache = make(silent.port, options);
  cleanups.push(() => cache.close());
  return cache;
}

describe.each(silentBackends)('$name: a server that stops answering', ({ make }) => {
  it('costs a request at most timeoutMs in all, however many cache calls it makes', async () => {
    const cache = await onSilentServer(make, { failOpen: true, timeoutMs: TIMEOUT_MS });
    cache.on('error', () => undefined);
    const page = await inRequest(async () => {
      const answers: unknown[] = [];
      answers.push(await cache.get('a', 'default'));
      answers.push(await cache.set('b', 1));
      answers.push(await cache.getMany(['c', 'd']));
      answers.push(await cache.get('e'));
      answers.push(await cache.add('f', 1));
      return answers;
    });
    expect(page).toEqual(['default', undefined, new Map(), undefined, false]);
    // One deadline in all: the first call waited it out and failed; the four after it answered
    // without the server (each that reached it would have failed too).
    expect(cache.health()).toMatchObject([{ state: 'closed', consecutiveFailures: 1 }]);
    // Another request pays for its own first call again (the breaker is not open yet: one failure).
    expect(await inRequest(() => cache.get('a'))).toBeUndefined();
    expect(cache.health()).toMatchObject([{ state: 'closed', consecutiveFailures: 2 }]);
  });

  it('gives a view behind cacheScope() one budget: once a getOrSet read failed, no later call of the view waits on that server', async () => {
    const cache = await onSilentServer(make, { failOpen: true, timeoutMs: TIMEOUT_MS });
    cache.on('error', () => undefined);
    const scope = cacheScope();
    const site = createHttpServer((req, res) =>
      scope(req, res, async () => {
        // Its read fails; its write (the tag check, the add) must not wait for the same server again.
        const values = [
          await cache.getOrSet('plain', () => 'computed', 60),
          await cache.getOrSet('tagged', () => 'computed too', { timeout: 60, tags: ['t'] }),
        ];
        res.end(JSON.stringify(values));
      }),
    );
    await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
    cleanups.push(async () => {
      site.closeAllConnections();
      await new Promise((resolve) => site.close(resolve));
    });
    const page = await (await fetch(`http://127.0.0.1:${(site.address() as { port: number }).port}/`)).json();
    expect(page).toEqual(['computed', 'computed too']);
    // One command waited out its deadline; the rest answered without the server. Outside a scope,
    // the write after the failed read waits again, and the third failure opens the breaker.
    expect(cache.health()).toMatchObject([{ state: 'closed', consecutiveFailures: 1 }]);
  });

  it('opens the breaker after repeated failures: calls answer at once, one error event per cause', async () => {
    const cache = await onSilentServer(make, { failOpen: true, timeoutMs: TIMEOUT_MS });
    const errors: Error[] = [];
    cache.on('error', (error: Error) => errors.push(error));
    expect(cache.health()).toEqual([]);
    await Promise.all([cache.get('a'), cache.get('b'), cache.get('c')]);
    expect(cache.health()).toMatchObject([{ state: 'open', consecutiveFailures: 3 }]);
    const calls = 50;
    for (let i = 0; i < calls; i++) {
      expect(await cache.get(`k${i}`, 'fallback')).toBe('fallback');
      await cache.set(`k${i}`, i);
    }
    // Once open, no call reaches the server: one that did (awaited in turn) would have failed, one more failure.
    expect(cache.health()).toMatchObject([{ state: 'open', consecutiveFailures: BREAKER_FAILURES }]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(CacheServerError);
    expect(errors[0]!.message).toContain(`did not answer within ${TIMEOUT_MS} ms`);
  });

  it('without failOpen, an open breaker rejects at once with the CacheServerError that opened it', async () => {
    const cache = await onSilentServer(make, { timeoutMs: TIMEOUT_MS });
    cache.on('error', () => undefined);
    await Promise.allSettled([cache.get('a'), cache.get('b'), cache.get('c')]);
    expect(cache.health()).toMatchObject([{ state: 'open', consecutiveFailures: BREAKER_FAILURES }]);
    const rejected = await cache.get('k').then(
      () => 'answered',
      (error: unknown) => error,
    );
    expect(rejected).toBeInstanceOf(CacheServerError);
    expect((rejected as Error).message).toContain(`did not answer within ${TIMEOUT_MS} ms`);
    // It did not reach the server: a call that did would have failed once more.
    expect(cache.health()).toMatchObject([{ state: 'open', consecutiveFailures: BREAKER_FAILURES }]);
  });
});

describe('redis: the breaker closes when the server returns', () => {
  it('recovers by itself once the server answers again', async () => {
    let server: RedisServer = await startRedisServer();
    cleanups.push(() => server.stop());
    const cache = new RedisCache({ alias: 'breaker', location: server.url, options: { failOpen: true, timeoutMs: TIMEOUT_MS } });
    cleanups.push(() => cache.close());
    const errors: Error[] = [];
    cache.on('error', (error: Error) => errors.push(error));
    await cache.set('k', 'before');
    await server.kill!();
    for (let i = 0; i < 10 && cache.health()[0]?.state !== 'open'; i++) await cache.get('k');
    expect(cache.health()).toMatchObject([{ server: server.url, state: 'open' }]);
    const opened = cache.health()[0]!.consecutiveFailures;
    expect(await cache.get('k', 'fallback')).toBe('fallback');
    // Answered without the server: a call that reached it would have failed once more.
    expect(cache.health()[0]!.consecutiveFailures).toBe(opened);
    // Kept down a while: probes fail, the breaker stays open, and listeners are not flooded. Each
    // failed probe counts one failure more; the pause stands for the breaker's probe interval passing.
    while (cache.health()[0]!.consecutiveFailures < opened + 2) {
      await cache.get('k');
      expect(cache.health()[0]!.state).not.toBe('closed');
      await sleep(10);
    }
    // Heard, and each cause once.
    expect(errors.length).toBeGreaterThan(0);
    expect(new Set(errors.map((error) => error.message)).size).toBe(errors.length);

    server = await startRedisServer({ port: server.port });
    await eventually(async () => {
      await cache.set('k', 'after');
      expect(await cache.get('k'), 'the cache never answered from the server again').toBe('after');
    }, 30_000);
    expect(cache.health()).toMatchObject([{ state: 'closed', consecutiveFailures: 0 }]);
  }, 60_000);
});

describe('redis replicas', () => {
  for (const failOpen of [true, false]) {
    it(`a SIGKILLed replica is skipped: reads keep hitting from the leader, none rejects (failOpen ${failOpen})`, async () => {
      const { leader, replica } = await startReplication();
      cleanups.push(
        () => leader.stop(),
        () => replica.stop(),
      );
      const cache = new RedisCache({ alias: 'replicated', location: [leader.url, replica.url], options: { failOpen, timeoutMs: TIMEOUT_MS } });
      cleanups.push(() => cache.close());
      const errors: Error[] = [];
      cache.on('error', (error: Error) => errors.push(error));
      const keys = Array.from({ length: 20 }, (_, i) => `r${i}`);
      for (const key of keys) await cache.set(key, `value of ${key}`);
      await waitForReplica(leader.port);
      // The first read also connects to the replica, which a busy machine can take longer for than timeoutMs.
      await eventually(async () => expect(await cache.get('r0')).toBe('value of r0'));

      await replica.kill!();
      let misses = 0;
      let rejections = 0;
      const replicaFailures = () => cache.health().find((health) => health.server === replica.url)?.consecutiveFailures ?? 0;
      // Until the breaker opened and a probe failed too: reads while the replica is tried, skipped, and probed.
      while (replicaFailures() <= BREAKER_FAILURES) {
        for (const key of keys) {
          await Promise.all([
            cache.get(key).then(
              (value) => value === `value of ${key}` || misses++,
              () => rejections++,
            ),
            cache.hasKey(key).then(
              (found) => found || misses++,
              () => rejections++,
            ),
            cache.getMany([key]).then(
              (found) => found.get(key) === `value of ${key}` || misses++,
              () => rejections++,
            ),
          ]);
        }
      }
      expect({ misses, rejections }).toEqual({ misses: 0, rejections: 0 });
      // At most one deadline per read: the failed replica's, then the leader answers without failing once.
      expect(cache.health().find((health) => health.server === leader.url)?.consecutiveFailures ?? 0).toBe(0);
      expect(cache.health().find((health) => health.server === replica.url)?.state).not.toBe('closed');
      expect(errors.length).toBeGreaterThan(0);
      expect(errors.every((error) => error.message.includes(replica.url))).toBe(true);
    });
  }

  it('a replica comes back into the rotation once it answers again', async () => {
    const { leader, replica } = await startReplication();
    let revived: RedisServer | undefined;
    cleanups.push(
      () => leader.stop(),
      () => replica.stop(),
      () => revived?.stop() ?? Promise.resolve(),
    );
    const cache = new RedisCache({ location: [leader.url, replica.url], options: { failOpen: true, timeoutMs: TIMEOUT_MS } });
    cleanups.push(() => cache.close());
    cache.on('error', () => undefined);
    await replica.kill!();
    for (let i = 0; i < 10; i++) await cache.get('k');
    expect(cache.health().find((health) => health.server === replica.url)?.state).not.toBe('closed');
    // The revived replica holds a key the leader does not: reads that hit it prove it is back.
    revived = await startRedisServer({ port: replica.port });
    await cli(revived.port, 'SET', ':1:only-on-replica', '42');
    await expect.poll(() => cache.get('only-on-replica'), { timeout: 30_000, interval: 20 }).toBe(42);
    expect(cache.health().find((health) => health.server === replica.url)?.state).toBe('closed');
  }, 60_000);
});
