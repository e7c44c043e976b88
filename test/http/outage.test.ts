/**
 * Server failures and the page cache under a real outage: a site behind the page cache whose views use the same Redis
 * (with `failOpen`) keeps answering every request when that Redis is killed under load, and a
 * request pays at most one `timeoutMs` for the outage (lookup, the view's own calls, its fragment,
 * the store), whatever the number of caches it uses. The site runs in a process of its own, so the
 * load generator does not share its event loop. The assertions are on behaviour, not speed (that is
 * the bench's, as ratios): none fails, none waits for Redis to come back, the breaker opens and
 * closes again, and one budget is told from two by the breaker's failure count (a call that reached
 * the dead server failed; one that did not, left no trace).
 */
import { Agent } from 'node:http';
import { createServer, type Socket } from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../setup/eventually.js';
import { closedPort } from '../setup/closed-port.js';
import { silentServer } from '../setup/silent-server.js';
import { type RedisServer, startRedisServer } from '../setup/redis.js';
import { get, load } from './fixtures/load.js';
import { type SiteProcess, startSiteProcess } from './fixtures/site-process.js';
import { STACK_NAMES, stackKey } from './stacks.js';

const TIMEOUT_MS = 100;
/** A deadline long enough that one stands apart from two (at least 1.8 s) however busy the machine is. */
const LONG_TIMEOUT_MS = 1000;
const CONNECTIONS = 20;
/** The reads a page lookup sends together (header list, path's tag versions): on a dead server, two failures on one deadline. */
const LOOKUP_READS = 2;
/** Different pages, so that both hits and misses (views that call the cache) run before the outage. */
const PAGES = 40;

type Layer = 'cacheMiddleware' | 'cachePage' | 'split middleware';

/**
 * The site of `fixtures/outage-site.ts` in a process of its own, its pages cached in the Redis at
 * `location` (which its views use too), behind `layer`.
 */
/** The stack the sites run on: set as its tests begin. */
let stack = '';

async function startSite(location: string, layer: Layer = 'cacheMiddleware', timeoutMs = TIMEOUT_MS): Promise<SiteProcess> {
  return startSiteProcess(new URL('./fixtures/outage-site.ts', import.meta.url), {
    CACHEGRAIN_TEST_STACK: stack,
    OUTAGE_REDIS_URL: location,
    OUTAGE_TIMEOUT_MS: String(timeoutMs),
    OUTAGE_LAYER: layer,
  });
}

/** How many reads the site's page cache answered from the store. */
async function storeHits(site: SiteProcess): Promise<number> {
  return ((await fetch(`${site.url}/stats`).then((reply) => reply.json())) as { hits: number }).hits;
}

/** The page cache's breaker (or, with `path` `/fragment-health`, the fragment alias'), as the site reports it. */
async function breaker(site: SiteProcess, path = '/health'): Promise<{ state: string; consecutiveFailures: number } | undefined> {
  const health = (await fetch(`${site.url}${path}`).then((reply) => reply.json())) as Array<{ state: string; consecutiveFailures: number }>;
  return health[0];
}

/** The state of the page cache's breaker, as the site reports it. */
async function breakerState(site: SiteProcess): Promise<string | undefined> {
  return (await breaker(site))?.state;
}

/**
 * Keeps a dead server's port taken until it starts again, hanging up on every connection as a dead
 * server's host would refuse it: otherwise another test's server could start on the freed port, and
 * the site would find a server there.
 */
async function holdPort(port: number): Promise<{ close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => socket.destroy());
  server.on('connection', (socket) => sockets.add(socket));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe.each(STACK_NAMES)('on %s', (name) => {
  beforeAll(() => {
    stack = name;
  });
  describe('the page cache when its Redis dies', () => {
    it(`answers every request under ${CONNECTIONS} connections, none hung; the breaker opens, then closes when Redis is back`, async () => {
      let redis: RedisServer = await startRedisServer();
      cleanups.push(() => redis.stop());
      const site = await startSite(redis.url);
      cleanups.push(() => site.close());

      const traffic = load(site.url, CONNECTIONS, PAGES);
      await eventually(() => expect(traffic.samples.some((sample) => sample.xCache === 'HIT')).toBe(true), 20_000);
      await redis.stop();
      const held = await holdPort(redis.port);
      cleanups.push(() => held.close());
      const killedAt = traffic.now();
      await eventually(async () => expect(await breakerState(site)).toBe('open'), 20_000);
      const openedAt = traffic.now();
      const hitsOnceOpen = await storeHits(site);
      // Kept down while two probes fail (each counts one failure more): the breaker does not close.
      const failuresOnceOpen = (await breaker(site))!.consecutiveFailures;
      await eventually(async () => expect((await breaker(site))!.consecutiveFailures).toBeGreaterThanOrEqual(failuresOnceOpen + 2), 20_000);
      expect(await breakerState(site)).not.toBe('closed');
      // Back again on the same port: the cache recovers by itself and pages are stored and hit again.
      // Pages may be stored and hit as soon as the server answers, before its start has returned.
      const restartingAt = traffic.now();
      const hitsBeforeRestart = await storeHits(site);
      await held.close();
      redis = await startRedisServer({ port: redis.port });
      const restartedAt = traffic.now();
      await eventually(async () => expect(await breakerState(site)).toBe('closed'), 20_000);
      await eventually(() => expect(traffic.samples.some((sample) => sample.sentAt >= restartedAt && sample.xCache === 'HIT')).toBe(true), 20_000);
      await traffic.stop();

      const { samples } = traffic;
      const before = samples.filter((sample) => sample.sentAt < killedAt);
      const outage = samples.filter((sample) => sample.sentAt >= killedAt && sample.sentAt < restartingAt);
      const breakerOpen = samples.filter((sample) => sample.sentAt >= openedAt && sample.sentAt < restartingAt);

      // A request that hung (no answer within HUNG_MS) is recorded with status 0.
      expect(samples.filter((sample) => sample.status !== 200)).toEqual([]);
      expect(before.some((sample) => sample.xCache === 'HIT')).toBe(true);
      // No page comes from the dead store, and none says it did: a request that joined a concurrent
      // miss's render got nothing from the cache, and says MISS.
      expect(hitsBeforeRestart).toBe(hitsOnceOpen);
      expect(breakerOpen.filter((sample) => sample.xCache === 'HIT')).toEqual([]);
      expect(outage.some((sample) => sample.xCache === 'MISS')).toBe(true);
      // Each connection kept being answered while the breaker was open.
      expect(breakerOpen.length).toBeGreaterThan(CONNECTIONS);
      // None waited for Redis to come back: every request sent while it was down was answered before it was up again.
      expect(outage.filter((sample) => sample.sentAt + sample.ms >= restartedAt)).toEqual([]);
      const reported = await fetch(`${site.url}/errors`).then((reply) => reply.json() as Promise<{ errors: number }>);
      expect(reported.errors).toBeGreaterThan(0);
    }, 90_000);

    const downServers = {
      'refuses connections': async () => ({ port: await closedPort(), close: async () => undefined }),
      'accepts connections and never answers': silentServer,
    };
    const cases = (['cacheMiddleware', 'cachePage', 'split middleware'] as const).flatMap((layer) =>
      (Object.keys(downServers) as Array<keyof typeof downServers>).map((downServer) => [layer, downServer] as const),
    );
    it.each(cases)('costs a request one timeout in all before the breaker opens: %s, a server that %s', async (layer, downServer) => {
      const down = await downServers[downServer]();
      cleanups.push(() => down.close());
      const site = await startSite(`redis://127.0.0.1:${down.port}`, layer, LONG_TIMEOUT_MS);
      cleanups.push(() => site.close());
      const agent = new Agent({ keepAlive: true });
      cleanups.push(async () => agent.destroy());

      const reply = await get(agent, `${site.url}/item/1`);
      expect(reply).toEqual({ status: 200, xCache: 'MISS' });
      // The lookup reads the header list and the path's tag versions together, and both fail on its one
      // deadline; every later call (the view's get and set, its fragment, the store) answers without the
      // server: one that reached it would have failed once more.
      expect(await breaker(site)).toMatchObject({ state: 'closed', consecutiveFailures: LOOKUP_READS });
    });
  });

  describe('the budget of a request whose caches share one dead Redis', () => {
    /** The site after the first request for a page, its page cache and its fragment on `fragmentAlias`, on a server that accepts and never answers. */
    async function firstRequest(fragmentAlias: 'default' | 'fragments'): Promise<SiteProcess> {
      const silent = await silentServer();
      cleanups.push(() => silent.close());
      const site = await startSiteProcess(new URL('./fixtures/outage-site.ts', import.meta.url), {
        CACHEGRAIN_TEST_STACK: stack,
        OUTAGE_REDIS_URL: `redis://127.0.0.1:${silent.port}`,
        OUTAGE_TIMEOUT_MS: String(LONG_TIMEOUT_MS),
        OUTAGE_FRAGMENT_ALIAS: fragmentAlias,
      });
      cleanups.push(() => site.close());
      const agent = new Agent({ keepAlive: true });
      cleanups.push(async () => agent.destroy());
      const reply = await get(agent, `${site.url}/item/1`);
      expect(reply).toEqual({ status: 200, xCache: 'MISS' });
      return site;
    }

    it('is one timeoutMs in all, not one per alias: a page cache and a fragment cache on two aliases wait about as long as on one', async () => {
      // The page lookup waits out the deadline (its two reads fail); the view's fragment, on the other
      // alias, does not call the server again: a call that did would have failed on that alias' breaker.
      const oneAlias = await firstRequest('default');
      expect(await breaker(oneAlias)).toMatchObject({ consecutiveFailures: LOOKUP_READS });
      const twoAliases = await firstRequest('fragments');
      expect(await breaker(twoAliases)).toMatchObject({ consecutiveFailures: LOOKUP_READS });
      expect((await breaker(twoAliases, '/fragment-health'))?.consecutiveFailures ?? 0).toBe(0);
    });
  });
});
