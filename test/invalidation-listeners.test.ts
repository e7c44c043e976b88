/**
 * `addInvalidationListener`: a listener of the application's own hears every `invalidateTags` (the
 * module-level one in every cache), `invalidatePage` and `clear`, once the cache's own invalidation
 * has landed, in the order listeners were added; what it answers neither fails nor delays the caller
 * unless the caller waits (`waitForEdges`), and `settled()` waits for it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BaseCache,
  caches,
  configureCaches,
  type InvalidationEvent,
  type InvalidationListener,
  invalidateTags,
  LocMemCache,
  type TagsInvalidatedEvent,
} from '../src/index.js';
import { invalidatePage } from '../src/http/index.js';
import { errorOf } from './setup/error-of.js';

const redisUrl = process.env.CACHEGRAIN_TEST_REDIS_URL;
if (!redisUrl) throw new Error('CACHEGRAIN_TEST_REDIS_URL is not set: the vitest global setup starts it (Debian package redis-server)');
let configured = 0;

afterAll(async () => {
  await configureCaches({ default: { backend: 'locmem' } });
});

/** What a recording listener heard, with the entries it read from the cache when it heard it. */
type Heard = [what: string, alias: string, soft: boolean | undefined, read: Record<string, unknown>];

/**
 * A listener that records each invalidation it hears, and reads `keys` from the cache it was told
 * about as it hears it: what it read shows whether the cache's own invalidation had landed.
 */
function recorder(keys: readonly string[]): InvalidationListener & { heard: Heard[] } {
  const heard: Heard[] = [];
  const readAll = async (alias: string) => {
    const found = await caches.get(alias).getMany(keys);
    return Object.fromEntries(keys.map((key) => [key, found.get(key)]));
  };
  return {
    heard,
    async tagsInvalidated(tags: readonly string[], { alias, soft }: TagsInvalidatedEvent) {
      heard.push([`tags ${tags.join(' ')}`, alias, soft, await readAll(alias)]);
    },
    async everythingCleared({ alias }: InvalidationEvent) {
      heard.push(['clear', alias, undefined, await readAll(alias)]);
    },
  };
}

/** A cache on the test Redis, under an alias of the default configuration and a prefix of its own. */
async function redisCache(): Promise<BaseCache> {
  await configureCaches({ default: { backend: 'redis', location: redisUrl!, keyPrefix: `listeners-${process.pid}-${++configured}` } });
  return caches.get('default');
}

describe('addInvalidationListener', () => {
  it("tells tag invalidations, page invalidations and clears, once the cache's own has landed", async () => {
    const cache = await redisCache();
    const listener = recorder(['item', 'news', 'plain']);
    cache.addInvalidationListener(listener);
    await cache.set('item', 'item 1', { tags: ['item:1'] });
    await cache.set('news', 'the news', { tags: ['url:/news'] });
    await cache.set('plain', 'untagged');
    await cache.invalidateTags(['item:1']);
    await invalidatePage('/news');
    await cache.invalidateTags(['nothing:stored'], { soft: true });
    await cache.clear();
    await cache.settled();
    expect(listener.heard).toEqual([
      ['tags item:1', 'default', false, { item: undefined, news: 'the news', plain: 'untagged' }],
      ['tags url:/news', 'default', false, { item: undefined, news: undefined, plain: 'untagged' }],
      ['tags nothing:stored', 'default', true, { item: undefined, news: undefined, plain: 'untagged' }],
      ['clear', 'default', undefined, { item: undefined, news: undefined, plain: undefined }],
    ]);
  });

  it('tells the module-level invalidateTags in every configured cache', async () => {
    await configureCaches({
      default: { backend: 'locmem', location: `listeners-every-${++configured}` },
      shared: { backend: 'redis', location: redisUrl!, keyPrefix: `listeners-${process.pid}-${++configured}` },
    });
    const listener = recorder(['item']);
    for (const each of caches.all()) {
      each.addInvalidationListener(listener);
      await each.set('item', `item 2 in ${each.alias}`, { tags: ['item:2'] });
    }
    await invalidateTags(['item:2']);
    await caches.settled();
    expect(listener.heard.sort()).toEqual([
      ['tags item:2', 'default', false, { item: undefined }],
      ['tags item:2', 'shared', false, { item: undefined }],
    ]);
  });

  it('keeps another cache in step: settled() waits for what a listener does behind its caller', async () => {
    const cache = await redisCache();
    const mirror = new LocMemCache({ alias: 'mirror', location: `listeners-mirror-${++configured}` });
    cache.addInvalidationListener({
      tagsInvalidated: (tags, { soft }) => mirror.invalidateTags(tags, { soft }),
      everythingCleared: () => mirror.clear(),
    });
    await mirror.set('item', 'item 3', { tags: ['item:3'] });
    await mirror.set('plain', 'untagged');
    await cache.invalidateTags(['item:3']);
    await cache.settled();
    expect(await mirror.get('item')).toBeUndefined();
    expect(await mirror.get('plain')).toBe('untagged');
    await cache.clear();
    await cache.settled();
    expect(await mirror.get('plain')).toBeUndefined();
  });

  it('tells the listeners in the order added; one that fails or answers late neither fails nor delays the caller', async () => {
    const cache = await redisCache();
    const reported: Error[] = [];
    cache.on('error', (error: Error) => reported.push(error));
    const order: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    cache.addInvalidationListener({
      tagsInvalidated: () => {
        order.push('the throwing listener');
        throw new Error('index unreachable');
      },
    });
    cache.addInvalidationListener({
      tagsInvalidated: async () => {
        order.push('the slow listener');
        await held;
        order.push('the slow listener done');
        throw new Error('bus closed');
      },
    });
    cache.addInvalidationListener({ tagsInvalidated: () => void order.push('the last listener') });
    await cache.invalidateTags(['item:4']);
    order.push('invalidateTags resolved');
    const settled = cache.settled().then(() => order.push('settled'));
    release();
    await settled;
    expect(order).toEqual(['the throwing listener', 'the slow listener', 'the last listener', 'invalidateTags resolved', 'the slow listener done', 'settled']);
    expect(reported.map((error) => [error.message, (error.cause as Error).message])).toEqual([
      ["cache 'default': an invalidation listener failed on tags item:4: index unreachable", 'index unreachable'],
      ["cache 'default': an invalidation listener failed on tags item:4: bus closed", 'bus closed'],
    ]);
  });

  it('is waited for by a caller given waitForEdges, which fails with its failure', async () => {
    const cache = await redisCache();
    const order: string[] = [];
    const waits: Array<number | undefined> = [];
    /** Settles, once the listener was told of a waiting call, with what lets it answer. */
    let told!: (answer: () => void) => void;
    const nextTold = () => new Promise<() => void>((resolve) => (told = resolve));
    cache.addInvalidationListener({
      tagsInvalidated: (_tags, { waitSeconds }) => {
        waits.push(waitSeconds);
        if (waitSeconds === undefined) return;
        return new Promise<void>((resolve) => told(resolve)).then(() => void order.push('the listener answered'));
      },
      everythingCleared: ({ waitSeconds }) => {
        waits.push(waitSeconds);
        return Promise.reject(new Error('index unreachable'));
      },
    });
    await cache.invalidateTags(['item:5']);
    let answer = nextTold();
    const waited = cache.invalidateTags(['item:5'], { waitForEdges: true }).then(() => void order.push('invalidateTags resolved'));
    (await answer)();
    await waited;
    answer = nextTold();
    const waitedTwoSeconds = cache.invalidateTags(['item:5'], { waitForEdges: 2 });
    (await answer)();
    await waitedTwoSeconds;
    expect(order).toEqual(['the listener answered', 'invalidateTags resolved', 'the listener answered']);
    expect((await errorOf(() => cache.clear({ waitForEdges: true }))).message).toBe('index unreachable');
    expect(waits).toEqual([undefined, 5, 2, 5]);
  });

  it('refuses a listener that hears nothing, naming the cache and what it was given', () => {
    const cache = new LocMemCache({ alias: 'refusing', location: 'listeners-refusing' });
    const refusals: Array<[unknown, string]> = [
      [{}, '{}'],
      [null, 'null'],
      [{ tagsInvalidated: 'index' }, '{"tagsInvalidated":"index"}'],
      [{ tagsInvalidated: () => undefined, settled: true }, '{"settled":true}'],
    ];
    for (const [listener, got] of refusals) {
      expect(() => cache.addInvalidationListener(listener as InvalidationListener)).toThrow(
        `cache 'refusing': addInvalidationListener: a listener must be an object with a tagsInvalidated(tags, event) or everythingCleared(event) method (got ${got})`,
      );
    }
  });

  it('is how edges are purged: a cache built directly refuses purge, which configureCaches reads', () => {
    expect(() => new LocMemCache({ alias: 'direct', purge: [{ edge: 'http', url: 'http://127.0.0.1:1' }] } as never)).toThrow(
      "cache 'direct': purge is an option of the alias in configureCaches",
    );
  });
});
