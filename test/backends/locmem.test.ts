import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { LocMemCache } from '../../src/index.js';
import { type CacheEvent, channelName } from '../../src/observation/observation.js';
import { describeBackend } from '../kit/backend.js';
import { integrationOf } from '../../src/cache/integration.js';

describeBackend('locmem', {
  make: (overrides) => new LocMemCache({ location: 'conformance', ...overrides }),
  traits: { culling: { 3: 29, 0: 19 } },
});

describe('locmem', () => {
  it('shares one store between caches with the same location, and only then', async () => {
    const a = new LocMemCache({ location: 'shared-a' });
    const b = new LocMemCache({ location: 'shared-a', alias: 'other' });
    const c = new LocMemCache({ location: 'shared-c' });
    await a.set('k', 'v');
    expect(await b.get('k')).toBe('v');
    expect(await c.get('k')).toBeUndefined();
  });

  it('culls the least recently used entries first', async () => {
    const cache = new LocMemCache({ location: 'lru', options: { maxEntries: 9, cullFrequency: 3 } });
    for (let i = 0; i < 9; i++) await cache.set(i, i);
    for (let i = 0; i < 4; i++) expect(await cache.get(i)).toBe(i); // 0..3 are now the most recent
    await cache.set(9, 9); // culls 3: the least recently used are 4, 5, 6
    expect([...(await cache.getMany([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])).keys()]).toEqual([0, 1, 2, 3, 7, 8, 9]);
  });

  it('counts a use of a remembered key, read or written without looking it up again, as culling sees it', async () => {
    const cache = new LocMemCache({ location: 'lru-remembered', options: { maxEntries: 9, cullFrequency: 3 } });
    const keys = Array.from({ length: 10 }, (_, i) => `k${i}`);
    for (const key of keys.slice(0, 9)) await cache.set(key, key);
    for (const key of keys.slice(0, 2)) expect(await cache.get(key)).toBe(key);
    for (const key of keys.slice(2, 4)) await cache.set(key, `${key} again`);
    await cache.set('k9', 'k9'); // culls 3: the least recently used are k4, k5, k6
    expect([...(await cache.getMany(keys)).keys()]).toEqual(['k0', 'k1', 'k2', 'k3', 'k7', 'k8', 'k9']);
    expect(await cache.get('k2')).toBe('k2 again');
  });

  it('answers a remembered key as the store holds it after another alias of its location wrote, deleted or cleared it', async () => {
    const reader = new LocMemCache({ location: 'remembered-shared' });
    const writer = new LocMemCache({ location: 'remembered-shared', alias: 'writer' });
    await writer.set('k', 'first');
    expect(await reader.get('k')).toBe('first');
    await writer.set('k', 'second');
    expect(await reader.get('k')).toBe('second');
    await writer.delete('k');
    expect(await reader.get('k')).toBeUndefined();
    await writer.set('k', 'third');
    expect(await reader.get('k')).toBe('third');
    await writer.set('k', 'expired', 0);
    expect(await reader.get('k')).toBeUndefined();
    await writer.set('k', 'fourth');
    expect(await reader.get('k')).toBe('fourth');
    await reader.set('k', 'fifth');
    await writer.clear();
    expect(await reader.get('k')).toBeUndefined();
    await reader.set('k', 'sixth');
    expect(await writer.get('k')).toBe('sixth');
  });

  it('does not refresh recency on hasKey or touch', async () => {
    const cache = new LocMemCache({ location: 'lru2', options: { maxEntries: 3, cullFrequency: 3 } });
    await cache.set('a', 1);
    await cache.set('b', 2);
    await cache.set('c', 3);
    await cache.hasKey('a');
    await cache.touch('a', 100);
    await cache.set('d', 4); // culls one: still 'a'
    expect(await cache.hasKey('a')).toBe(false);
    expect(await cache.hasKey('b')).toBe(true);
  });

  it('grows a shared store when a later alias allows more entries, keeping what is stored', async () => {
    const small = new LocMemCache({ location: 'grow', options: { maxEntries: 2 } });
    await small.set('kept', 1);
    const large = new LocMemCache({ location: 'grow', options: { maxEntries: 50 } });
    for (let i = 0; i < 40; i++) await large.set(`k${i}`, i);
    expect(await large.get('kept')).toBe(1);
    expect((await large.getMany(Array.from({ length: 40 }, (_, i) => `k${i}`))).size).toBe(40);
  });

  it('rejects a bad maxEntries or cullFrequency, naming the cache and option', () => {
    expect(() => new LocMemCache({ alias: 'mem', options: { maxEntries: -1 } })).toThrow(
      "cache 'mem': options.maxEntries must be a non-negative integer (got -1)",
    );
    expect(() => new LocMemCache({ alias: 'mem', options: { maxEntries: '10' as never } })).toThrow(/options\.maxEntries.*'10'/);
    expect(() => new LocMemCache({ alias: 'mem', options: { cullFrequency: 1.5 } })).toThrow(/options\.cullFrequency/);
  });
});

describe('locmem on its hot path', () => {
  it('makes each key of a hot set of 100,000 once: the second pass over them makes none', async () => {
    let made = 0;
    const cache = new LocMemCache({
      location: 'hot-set',
      options: { maxEntries: 100_000 },
      keyFunction: (key, prefix, version) => {
        made++;
        return `${prefix}:${version}:${key}`;
      },
    });
    const keys = Array.from({ length: 100_000 }, (_, i) => `item:${i}`);
    for (const key of keys) await cache.set(key, key);
    made = 0;
    for (const key of keys) expect(await cache.get(key)).toBe(key);
    for (const key of keys) await cache.set(key, 'again');
    expect(made).toBe(0);
    await cache.clear();
  });

  it('remembers made keys within a bound: past it, keys are made again', async () => {
    let made = 0;
    const cache = new LocMemCache({
      location: 'past-the-bound',
      keyFunction: (key, prefix, version) => {
        made++;
        return `${prefix}:${version}:${key}`;
      },
    });
    for (let i = 0; i < 300_000; i++) await cache.get(`item:${i}`);
    made = 0;
    await cache.get('item:0');
    expect(made).toBe(1);
  });

  it("gives a message's duration as its subscriber reads it, once, and in its JSON", async () => {
    const cache = new LocMemCache({ location: 'published-duration' });
    await cache.set('a', 1);
    const seen: Array<{ duration: number; again: number; json: Record<string, unknown> }> = [];
    const listen = (message: unknown) => {
      const event = message as CacheEvent;
      seen.push({ duration: event.duration, again: event.duration, json: JSON.parse(JSON.stringify(event)) as Record<string, unknown> });
    };
    subscribe(channelName('get'), listen);
    try {
      await cache.get('a');
    } finally {
      unsubscribe(channelName('get'), listen);
    }
    expect(seen).toHaveLength(1);
    const [{ duration, again, json }] = seen as [(typeof seen)[number]];
    expect(duration).toBeGreaterThanOrEqual(0);
    expect(again).toBe(duration);
    expect(json).toEqual({ operation: 'get', alias: 'default', key: 'a', outcome: 'hit', duration });
  });

  it('publishes a get answered from this process at once, before the caller awaits it', async () => {
    const cache = new LocMemCache({ location: 'published-at-once' });
    await cache.set('a', 1);
    const events: CacheEvent[] = [];
    const listen = (message: unknown) => events.push(message as CacheEvent);
    subscribe(channelName('get'), listen);
    try {
      const answer = cache.get('a');
      const missing = cache.get('absent', 'fallback');
      expect(events.map(({ key, outcome }) => ({ key, outcome }))).toEqual([
        { key: 'a', outcome: 'hit' },
        { key: 'absent', outcome: 'miss' },
      ]);
      expect(await answer).toBe(1);
      expect(await missing).toBe('fallback');
    } finally {
      unsubscribe(channelName('get'), listen);
    }
  });
});

describe('values held for readers that never mutate them (the page cache’s pages)', () => {
  it.each([
    ['untagged', undefined],
    ['tagged', { timeout: 60, tags: ['page:1'] }],
  ] as const)(
    '%s: shared readers get the value itself; get answers a copy, Buffers included, that can be changed without changing it',
    async (_kind, options) => {
      const cache = new LocMemCache({ location: `held-${_kind}` });
      const page = { status: 200, headers: ['Content-Type', 'text/html'], body: Buffer.from('<p>page</p>') };
      await integrationOf(cache).setHeld('page', page, options);
      expect(integrationOf(cache).readShared('page')).toBe(page);
      const copy = (await cache.get('page')) as typeof page;
      expect(copy).toEqual(page);
      expect(copy).not.toBe(page);
      expect(Buffer.isBuffer(copy.body)).toBe(true);
      copy.body.write('X');
      copy.headers.push('X-Changed', 'yes');
      expect(page.body.toString()).toBe('<p>page</p>');
      expect(page.headers).toEqual(['Content-Type', 'text/html']);
      expect(integrationOf(cache).readShared('page')).toBe(page);
    },
  );

  it('is published as no set of the application’s, and counted as a set', async () => {
    const cache = new LocMemCache({ location: 'held-unpublished' });
    const events: unknown[] = [];
    const listen = (message: unknown) => events.push(message);
    subscribe(channelName('set'), listen);
    try {
      await integrationOf(cache).setHeld('page', { body: 'page' }, 60);
    } finally {
      unsubscribe(channelName('set'), listen);
    }
    expect(events).toEqual([]);
    expect(cache.stats().sets).toBe(1);
  });
});
