/**
 * Work in flight that an invalidation overtook, below the page cache: a `getOrSet` computation and a
 * fragment render (in each of the six engines, with no page cache around it) read their data; the
 * data changes and `invalidateTags` resolves; a caller that begins after that computes or renders
 * the new data itself rather than wait for the overtaken work, which still answers the caller that
 * started it and is not stored. On locmem, Redis, and Redis with an L1 in each of two processes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caches, configureCaches } from '../src/index.js';
import { ENGINES } from './fragments/engines.js';
import { Gate, nextFlightLookup, overtakingBackends } from './setup/overtaking.js';

describe.each(overtakingBackends('overtaken-work'))('work an invalidation overtook, on %s', (_backend, invalidator) => {
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

  it('getOrSet: a caller that begins after the invalidation resolved computes the new value itself', async () => {
    const cache = caches.get('default');
    const key = `product-${++test}`;
    let product = 'before';
    const gate = new Gate();
    const first = cache.getOrSet(
      key,
      async () => {
        const read = product;
        await gate.pass();
        return read;
      },
      { timeout: 60, tags: ['p:1'] },
    );
    await gate.entered;
    product = 'after';
    await invalidate(['p:1']);
    const looked = nextFlightLookup('getOrSet');
    const second = cache.getOrSet(key, async () => product, { timeout: 60, tags: ['p:1'] });
    await looked;
    gate.release();
    // The first caller gets its own value or, where the second one's was added first, what the cache then holds.
    expect(['before', 'after']).toContain(await first);
    expect(await second).toBe('after');
    expect(await cache.get(key)).toBe('after');
  });

  it('getOrSet: a caller that begins while nothing was invalidated shares the computation', async () => {
    const cache = caches.get('default');
    const key = `product-${++test}`;
    let computed = 0;
    const gate = new Gate();
    const factory = async () => {
      computed++;
      await gate.pass();
      return 'shared';
    };
    const first = cache.getOrSet(key, factory, { timeout: 60, tags: ['p:1'] });
    await gate.entered;
    const looked = nextFlightLookup('getOrSet');
    const second = cache.getOrSet(key, factory, { timeout: 60, tags: ['p:1'] });
    await looked;
    gate.release();
    expect([await first, await second, computed]).toEqual(['shared', 'shared', 1]);
  });

  describe.each(ENGINES.map((make) => [make().name, make] as const))('a fragment in %s', (_name, makeEngine) => {
    it('a render that begins after the invalidation resolved renders the new data itself; the overtaken render is not stored', async () => {
      const engine = makeEngine();
      const cache = caches.get('default');
      const source = engine.cache('60', `product${++test}`, [], engine.out('name'), { tags: 'p:1' });
      // The first render's write is held: its flight is there to join while the invalidation lands.
      const gate = new Gate();
      const setEach = cache.setEach;
      cache.setEach = async (...args) => {
        cache.setEach = setEach;
        await gate.pass();
        return setEach.apply(cache, args);
      };
      const first = engine.renderSource(source, { name: 'before' });
      await gate.entered;
      await invalidate(['p:1']);
      const looked = nextFlightLookup('fragment');
      const second = engine.renderSource(source, { name: 'after' });
      await looked;
      gate.release();
      expect([(await first).trim(), (await second).trim()]).toEqual(['before', 'after']);
      // Stored by the second render; the first one's write was kept out.
      expect((await engine.renderSource(source, { name: 'not rendered' })).trim()).toBe('after');
    });
  });
});
