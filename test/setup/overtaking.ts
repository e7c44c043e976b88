/**
 * For tests of work that an invalidation overtakes: where the invalidation is made (this process, or
 * a second one sharing the store), the backends such tests run on, and the signal that a caller has
 * decided whether to join a flight.
 */
import { expect } from 'vitest';
import { integrationOf } from '../../src/cache/integration.js';
import type { FlightLevel } from '../../src/flight/index.js';
import { type CacheConfig, caches, invalidateTags } from '../../src/index.js';
import { CachePeer } from '../backends/fixtures/peer.js';
import { eventually } from './eventually.js';

/** Where the invalidation is made, with the configuration of the default cache both sides use. */
export interface Invalidator {
  config: CacheConfig;
  open(): Promise<(tags: string[]) => Promise<void>>;
  close(): Promise<void>;
}

export function inThisProcess(config: CacheConfig): Invalidator {
  return { config, open: async () => (tags) => invalidateTags(tags), close: async () => undefined };
}

/**
 * In another process: this one hears of it over the L1's bus, within the bus's bound. The
 * invalidation counts as resolved here once this process reads the generation it raised (see
 * src/tags/generation.ts), as a request of this process then would.
 */
export function inAnotherProcess(config: CacheConfig): Invalidator {
  let peer: CachePeer | undefined;
  return {
    config,
    async open() {
      peer = new CachePeer(config);
      await peer.ready;
      return async (tags) => {
        const cache = caches.get('default');
        const before = (await cache.readTagSnapshot([])).generation ?? 0;
        await peer!.ask('invalidateTags', { tags });
        await eventually(async () => expect((await cache.readTagSnapshot([])).generation).toBeGreaterThan(before));
      };
    },
    close: async () => peer?.close(),
  };
}

/** locmem, Redis, and Redis with an L1 in each of two processes, each under a key prefix of `name`'s. */
export function overtakingBackends(name: string): Array<[string, Invalidator]> {
  const redisUrl = process.env.CACHEGRAIN_TEST_REDIS_URL;
  if (!redisUrl) throw new Error('CACHEGRAIN_TEST_REDIS_URL is not set: the vitest global setup starts it (Debian package redis-server)');
  const keyPrefix = `${name}-${process.pid}`;
  const redis: CacheConfig = { backend: 'redis', location: redisUrl, keyPrefix };
  return [
    ['locmem', inThisProcess({ backend: 'locmem', location: name })],
    ['redis', inThisProcess(redis)],
    ['redis with an L1 in each of two processes', inAnotherProcess({ ...redis, keyPrefix: `${keyPrefix}-l1`, options: { l1: {} } })],
  ];
}

/** Resolves when the next caller looks for a flight of `level` to join on the default cache: it has decided whether to join one. */
export function nextFlightLookup(level: FlightLevel): Promise<void> {
  const flights = integrationOf(caches.get('default')).flights;
  const find = flights.find;
  return new Promise((resolve) => {
    flights.find = function (this: typeof flights, at, key, generation) {
      if (at === level) {
        flights.find = find;
        resolve();
      }
      return find.call(this, at, key, generation);
    } as typeof find;
  });
}

/** A gate work waits at until the test opens it: `entered` once the work reached it. */
export class Gate {
  readonly entered: Promise<void>;
  private enter!: () => void;
  private open!: () => void;
  private readonly opened = new Promise<void>((resolve) => (this.open = resolve));
  constructor() {
    this.entered = new Promise((resolve) => (this.enter = resolve));
  }
  async pass(): Promise<void> {
    this.enter();
    await this.opened;
  }
  release(): void {
    this.open();
  }
}
