/**
 * A server cache whose server comes back after an outage says so once, by the path its
 * failure was reported on: a `recovered` event where the failure was an `error` event, the logger
 * where the failure was logged. On a real Redis, SIGKILLed by its PID and started again on its port.
 */
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { RedisCache, type ServerRecovery } from '../../src/index.js';
import { type RedisServer, startRedisServer } from '../setup/redis.js';
import { eventually } from '../setup/eventually.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A logger that keeps its lines and resolves `next(test)` when a line passes it. */
function recordingLogger() {
  const lines: string[] = [];
  const waiting: Array<{ test: (line: string) => boolean; resolve: () => void }> = [];
  return {
    lines,
    warn(line: string) {
      lines.push(line);
      for (const waiter of waiting.splice(0)) {
        if (waiter.test(line)) waiter.resolve();
        else waiting.push(waiter);
      }
    },
    next(test: (line: string) => boolean): Promise<void> {
      return new Promise((resolve) => waiting.push({ test, resolve }));
    },
  };
}

/**
 * Calls the cache until `signal` settles: the server is back, but the client reconnects on its own
 * schedule and an open breaker lets one probe through now and then, so the first calls may still fail.
 */
async function callUntil(cache: RedisCache, signal: Promise<unknown>): Promise<void> {
  let settled = false;
  void signal.then(() => (settled = true));
  await eventually(async () => {
    await cache.get('k').catch(() => undefined);
    if (!settled) throw new Error('the cache never reported the recovery');
  }, 30_000);
}

async function redisCache(logger?: ReturnType<typeof recordingLogger>): Promise<{ cache: RedisCache; server: () => RedisServer; restart(): Promise<void> }> {
  let server = await startRedisServer();
  cleanups.push(() => server.stop());
  const cache = new RedisCache({ alias: 'comeback', location: server.url, logger, options: { timeoutMs: 1000 } });
  cleanups.push(() => cache.close());
  await cache.set('k', 'before');
  return {
    cache,
    server: () => server,
    restart: async () => {
      server = await startRedisServer({ port: server.port });
    },
  };
}

describe('a server that answers again after an outage', () => {
  it("is reported once as a 'recovered' event to a cache whose failure was an 'error' event", async () => {
    const { cache, server, restart } = await redisCache();
    const errors: Error[] = [];
    const recoveries: ServerRecovery[] = [];
    cache.on('error', (error: Error) => errors.push(error));
    cache.on('recovered', (recovery: ServerRecovery) => recoveries.push(recovery));
    const failed = once(cache, 'error');
    await server().kill!();
    await failed;
    const recovered = once(cache, 'recovered');
    await restart();
    await callUntil(cache, recovered);
    // Answers from then on add no second report.
    for (let i = 0; i < 5; i++) await cache.set('k', `after ${i}`);
    expect(await cache.get('k')).toBe('after 4');
    expect(recoveries).toEqual([{ alias: 'comeback', server: server().url, message: `cache 'comeback': server ${server().url} recovered: it answers again` }]);
    expect(errors.length).toBeGreaterThan(0);
    expect(cache.health()).toMatchObject([{ state: 'closed', consecutiveFailures: 0 }]);
  }, 60_000);

  it('is logged once where its failure was logged, and the next outage is logged again', async () => {
    const logger = recordingLogger();
    const { cache, server, restart } = await redisCache(logger);
    const isFailure = (line: string) => line.startsWith(`cachegrain: cache 'comeback': server ${server().url}:`);
    const isRecovery = (line: string) => line === `cachegrain: cache 'comeback': server ${server().url} recovered: it answers again`;
    // No listener for 'recovered' either: the logger is the path, whatever else a cache emits.
    for (let outage = 1; outage <= 2; outage++) {
      const failed = logger.next(isFailure);
      await server().kill!();
      await failed;
      const recovered = logger.next(isRecovery);
      await restart();
      await callUntil(cache, recovered);
      for (let i = 0; i < 5; i++) await cache.set('k', `after ${i}`);
      expect(logger.lines.filter(isRecovery), `outage ${outage}`).toHaveLength(outage);
    }
    expect(logger.lines.filter(isFailure).length).toBeGreaterThanOrEqual(2);
  }, 60_000);
});
