import nunjucks from 'nunjucks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pageStats, resetPageStats } from '../src/frameworks/express.js';
import { installCacheTag, renderString } from '../src/engines/nunjucks.js';
import { caches, configureCaches, fragmentStats, LocMemCache, RedisCache } from '../src/index.js';
import { resetFragmentStats } from '../src/fragments/index.js';
import { closedPort } from './setup/closed-port.js';
import { CountsByName } from '../src/observation/observation.js';
import { RemoteLikeStore } from './fragments/remote-like-store.js';

describe('fragmentStats()', () => {
  afterAll(() => caches.closeAll());

  // locmem's hits are answered while the engine renders; a store holding nothing in process has every hit read after the pass.
  it.each([
    [true, 'locmem' as const],
    [false, RemoteLikeStore],
  ])('counts each fragment name: misses, then hits, with inline hits %s', async (_inline, backend) => {
    await configureCaches({ default: { backend, location: 'fragment-stats' } });
    await caches.get('default').clear();
    resetFragmentStats();
    const env = installCacheTag(new nunjucks.Environment());
    const page = '{% for id in [1, 2, 3] %}{% cache 60 card id %}<li>{{ id }}</li>{% endcache %}{% endfor %}{% cache 60 footer %}f{% endcache %}';
    await renderString(env, page);
    await renderString(env, page);
    expect(fragmentStats()).toEqual(
      new Map([
        ['card', { hits: 3, misses: 3, staleHits: 0 }],
        ['footer', { hits: 1, misses: 1, staleHits: 0 }],
      ]),
    );
  });
});

describe('fragmentStats() of a render that fails', () => {
  beforeAll(() => configureCaches({ default: { backend: 'locmem', location: 'fragment-stats-failing' } }));
  afterAll(() => caches.closeAll());

  it('still counts the hits answered before the failure', async () => {
    const env = installCacheTag(new nunjucks.Environment());
    const cards = '{% for id in [1, 2, 3] %}{% cache 60 card id %}<li>{{ id }}</li>{% endcache %}{% endfor %}';
    await renderString(env, cards);
    resetFragmentStats();
    await expect(renderString(env, `${cards}{{ nothing.here() }}`)).rejects.toThrow();
    expect(fragmentStats().get('card')).toEqual({ hits: 3, misses: 0, staleHits: 0 });
    resetFragmentStats();
    await renderString(env, cards);
    expect(fragmentStats().get('card')).toEqual({ hits: 3, misses: 0, staleHits: 0 });
  });
});

describe('counts by name', () => {
  it('stay bounded: past the limit, new names count under (other)', () => {
    const counts = new CountsByName(3);
    for (let id = 0; id < 10; id++) counts.of(`/items/${id}`).hits++;
    expect([...counts.snapshot()]).toEqual([
      ['/items/0', { hits: 1, misses: 0, staleHits: 0 }],
      ['/items/1', { hits: 1, misses: 0, staleHits: 0 }],
      ['/items/2', { hits: 1, misses: 0, staleHits: 0 }],
      ['(other)', { hits: 7, misses: 0, staleHits: 0 }],
    ]);
  });

  it('pageStats() answers a copy: changing it changes nothing counted', () => {
    resetPageStats();
    const copy = pageStats();
    copy.set('/x', { hits: 1, misses: 0, staleHits: 0 });
    expect(pageStats().size).toBe(0);
  });
});

describe('the logger', () => {
  it('hears each cause once, naming the cache once, and the failures count as errors, not misses alone', async () => {
    const heard: string[] = [];
    const cache = new RedisCache({
      alias: 'sessions',
      location: `redis://127.0.0.1:${await closedPort()}`,
      logger: { warn: (message) => heard.push(message) },
      options: { failOpen: true, timeoutMs: 300 },
    });
    try {
      expect(await cache.get('k')).toBeUndefined();
      const first = heard.length;
      expect(first, 'the failure to be heard').toBeGreaterThan(0);
      for (let i = 0; i < 2; i++) expect(await cache.get('k')).toBeUndefined();
      expect(heard.length).toBe(first);
      expect(new Set(heard).size).toBe(heard.length);
      for (const message of heard) {
        expect(message).toMatch(/^cachegrain: cache 'sessions': server redis:\/\/127\.0\.0\.1:\d+/);
        expect(message).not.toContain("cache 'sessions': cache 'sessions'");
      }
      expect(cache.stats()).toMatchObject({ errors: 3, misses: 3, hits: 0 });
    } finally {
      await cache.close();
    }
  });

  it('must be able to warn', () => {
    expect(() => new LocMemCache({ alias: 'x', logger: {} as never })).toThrow("cache 'x': logger must have a warn(message) method, as console does (got {})");
  });
});

describe('a server cache whose servers are all down', () => {
  it('is unreachable once its breaker opens: getOrSet answers what it computed without preparing a write', async () => {
    const cache = new RedisCache({
      alias: 'down',
      location: `redis://127.0.0.1:${await closedPort()}`,
      logger: { warn: () => undefined },
      options: { failOpen: true, timeoutMs: 300 },
    });
    try {
      expect(cache.unreachable).toBe(false);
      for (let i = 0; i < 10 && !cache.unreachable; i++) await cache.get('k');
      expect(cache.unreachable).toBe(true);
      expect(await cache.getOrSet('k', () => 'computed')).toBe('computed');
      expect(cache.stats().sets).toBe(0);
    } finally {
      await cache.close();
    }
  });
});
