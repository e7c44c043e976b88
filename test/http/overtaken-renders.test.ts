/**
 * Work in flight that an invalidation overtook, over real HTTP on every stack: a render reads its
 * data and waits; the data changes and `invalidateTags` resolves; a request sent after that is
 * answered by a render of its own (`MISS`, the new data), never by the overtaken one, which still
 * answers the request that started it. On locmem, Redis, and Redis with an L1 in each of two
 * processes (invalidated from the other one). And the labels of requests that shared another's
 * render: `MISS` (the reason under `debug`), counted as misses; the page cache's own reads of its
 * store are not published as `get`s.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addCacheTags, pageStats, resetPageStats } from '../../src/http/index.js';
import { caches, configureCaches } from '../../src/index.js';
import { closedPort } from '../setup/closed-port.js';
import { nextFlightLookup, overtakingBackends } from '../setup/overtaking.js';
import { listen, type Reply, send, storedHit } from './client.js';
import { cacheMiddleware, STACKS } from './stacks.js';

const BACKENDS = overtakingBackends('overtaken-renders');

/**
 * A view that renders `data()` as it is when the request begins, tagged `p:1`, after waiting at a
 * gate: the first request of each test waits until the test opens it, the others go through.
 */
function gatedView(data: () => string) {
  let open!: () => void;
  let entered!: () => void;
  const state = {
    calls: 0,
    gate: Promise.resolve(),
    entered: Promise.resolve(),
    /** Holds the next request's render at the gate until `release()`. */
    holdNext() {
      state.gate = new Promise<void>((resolve) => (open = resolve));
      state.entered = new Promise<void>((resolve) => (entered = resolve));
      held = true;
    },
    release: () => open(),
  };
  let held = false;
  const view = async (_req: IncomingMessage, res: ServerResponse) => {
    const name = data();
    state.calls++;
    if (held) {
      held = false;
      entered();
      await state.gate;
    }
    addCacheTags(res, 'p:1');
    res.setHeader('Content-Type', 'text/plain');
    res.end(name);
  };
  return { view, state };
}

describe.each(BACKENDS)('work an invalidation overtook, on %s', (_backend, invalidator) => {
  let invalidate: (tags: string[]) => Promise<void>;
  let test = 0;
  beforeAll(async () => {
    await configureCaches({ default: invalidator.config });
    invalidate = await invalidator.open();
  }, 30_000);
  afterAll(async () => {
    await invalidator.close();
    await caches.get('default').clear();
    await caches.closeAll();
  });

  describe.each(STACKS)('on %s', (_stack, build) => {
    it.each(['a cold URL', 'a warm URL, invalidated'])(
      'on %s: a request sent after the invalidation resolved renders the new data itself; the overtaken render answers its own request',
      async (url) => {
        let product = 'before';
        const { view, state } = gatedView(() => product);
        const server = await listen(build([cacheMiddleware({ seconds: 300 })], view));
        try {
          const path = `/product-${++test}`;
          if (url !== 'a cold URL') {
            await send(server.url, path);
            await storedHit(server.url, path);
            await invalidate(['p:1']);
          }
          state.holdNext();
          const first = send(server.url, path);
          await state.entered;
          product = 'after';
          await invalidate(['p:1']);
          const looked = nextFlightLookup('page');
          const second = send(server.url, path);
          await looked;
          state.release();
          const [overtaken, after] = await Promise.all([first, second]);
          expect([overtaken.headers['x-cache'], overtaken.text]).toEqual(['MISS', 'before']);
          expect([after.headers['x-cache'], after.text]).toEqual(['MISS', 'after']);
          // Stored by the second render, not the first.
          expect((await storedHit(server.url, path)).text).toBe('after');
        } finally {
          await server.close();
        }
      },
    );
  });
});

describe('requests that shared another request’s render', () => {
  afterAll(() => caches.closeAll());

  describe.each(STACKS)('on %s', (_stack, build) => {
    it('are MISSes, with the shared render named under debug, and counted as misses', async () => {
      await configureCaches({ default: { backend: 'locmem', location: 'shared-renders' } });
      resetPageStats();
      const { view, state } = gatedView(() => 'the page');
      const server = await listen(build([cacheMiddleware({ seconds: 300, debug: true })], view));
      try {
        state.holdNext();
        const first = send(server.url, '/shared');
        await state.entered;
        const looked = nextFlightLookup('page');
        const second = send(server.url, '/shared');
        await looked;
        state.release();
        const replies = await Promise.all([first, second]);
        expect(replies.map((reply) => [reply.headers['x-cache'], reply.text])).toEqual([
          ['MISS', 'the page'],
          ['MISS', 'the page'],
        ]);
        expect(replies[1]!.headers['x-cache-reason']).toBe('the page of a concurrent render of this URL');
        expect(state.calls).toBe(1);
        expect([...pageStats().values()]).toEqual([{ hits: 0, misses: 2, staleHits: 0 }]);
        const hit = await storedHit(server.url, '/shared');
        expect(hit.headers['x-cache-reason']).toBeUndefined();
      } finally {
        await server.close();
      }
    });
  });

  it('with Redis on a dead port and failOpen, 8 concurrent requests of one URL are 8 MISSes, none a HIT', async () => {
    await configureCaches({
      default: { backend: 'redis', location: `redis://127.0.0.1:${await closedPort()}`, options: { failOpen: true, timeoutMs: 200 } },
    });
    caches.get('default').on('error', () => undefined);
    resetPageStats();
    const { view, state } = gatedView(() => 'rendered without a cache');
    const [, build] = STACKS[0]!;
    const server = await listen(build([cacheMiddleware({ seconds: 300 })], view));
    try {
      state.holdNext();
      const first = send(server.url, '/down');
      await state.entered;
      const others: Array<Promise<Reply>> = [];
      for (let i = 0; i < 7; i++) {
        const looked = nextFlightLookup('page');
        others.push(send(server.url, '/down'));
        await looked;
      }
      state.release();
      const replies = await Promise.all([first, ...others]);
      expect(replies.map((reply) => reply.text)).toEqual(replies.map(() => 'rendered without a cache'));
      expect(replies.map((reply) => reply.headers['x-cache'])).toEqual(replies.map(() => 'MISS'));
      expect([...pageStats().values()]).toEqual([{ hits: 0, misses: 8, staleHits: 0 }]);
    } finally {
      await server.close();
    }
  });
});

describe("the page cache's own reads of its store", () => {
  afterAll(() => caches.closeAll());

  it.each(STACKS)('are published as no `get` on %s: a MISS, its store and a HIT publish none', async (_stack, build) => {
    await configureCaches({ default: { backend: 'locmem', location: 'page-reads' } });
    const gets: unknown[] = [];
    const heard = (message: unknown) => gets.push(message);
    subscribe('cachegrain:get', heard);
    const server = await listen(build([cacheMiddleware({ seconds: 300 })], (_req, res) => res.end('page')));
    try {
      expect((await send(server.url, '/counted')).headers['x-cache']).toBe('MISS');
      await storedHit(server.url, '/counted');
      // A `get` the view makes is the application's own, and is heard.
      await caches.get('default').get('the view reads this');
      expect(gets).toEqual([expect.objectContaining({ key: 'the view reads this', outcome: 'miss' })]);
    } finally {
      unsubscribe('cachegrain:get', heard);
      await server.close();
    }
  });
});
