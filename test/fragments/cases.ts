/**
 * The fragment case table: every case runs against each engine through its real renderer,
 * on locmem caches that count their reads, so that "one round trip per render" is checked everywhere,
 * with hits held in process emitted while the engine renders, and on a store that holds nothing in
 * process, where every hit is read after the pass.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import express from 'express';
import { afterAll, beforeEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { cacheMiddleware } from '../../src/frameworks/express.js';
import { type CacheParams, caches, configureCaches, DatabaseCache, invalidateTags, LocMemCache, makeTemplateFragmentKey } from '../../src/index.js';
import type { FragmentEngine } from './engines.js';
import { RemoteLikeStore } from './remote-like-store.js';

/** locmem that counts the batch reads reaching it (one per render level). */
export class CountingLocMem extends LocMemCache {
  reads = 0;
  constructor(params: CacheParams) {
    super(params);
  }
  protected override read(keys: string[]) {
    this.reads++;
    return super.read(keys);
  }
}

/**
 * The same count on a server cache with an L1 in front (SQLite, so that the cases' clock moves its
 * expiry too): it counts the batch reads the fragment core makes, whether the L1 or the table answers.
 */
export class CountingL1Cache extends DatabaseCache {
  reads = 0;
  constructor(params: CacheParams) {
    const table = String(params.location).replace(/\W/g, '_');
    super({ ...params, location: table, options: { connection: 'sqlite::memory:', l1: { maxEntries: 1000, timeout: 30 } } });
  }
  override readEntriesAndTags<T = unknown>(...args: Parameters<DatabaseCache['readEntriesAndTags']>) {
    this.reads++;
    return super.readEntriesAndTags<T>(...args);
  }
}

/** What the cases' caches run on: locmem, SQLite behind an L1, or a store that holds nothing in process. */
export type FragmentStore = 'locmem' | 'l1' | 'remote-like';
const STORES = { locmem: CountingLocMem, l1: CountingL1Cache, 'remote-like': RemoteLikeStore };
let Counting: (typeof STORES)[FragmentStore] = CountingLocMem;

interface Harness {
  engine: FragmentEngine;
  /** Whether hits held in process are emitted while the engine renders (then a warm page reads nothing). */
  inline: boolean;
  /** How often bodies called `count()`. */
  counted: number;
  render(source: string, context?: Record<string, unknown>): Promise<string>;
  page(context?: Record<string, unknown>): Promise<string>;
  cache(alias?: string): CountingLocMem | CountingL1Cache | RemoteLikeStore;
  /** Moves every cache's clock forward. */
  advance(seconds: number): void;
}

const normalize = (html: string) => html.replace(/>\s+</g, '><').trim();
const items = [
  { id: 1, title: 'One & only' },
  { id: 2, title: '<Two>' },
  { id: 3, title: 'Three' },
];
const PAGE = '<html><body><aside>1<p>Hello ann</p></aside><ul><li>21. One &amp; only</li><li>32. &lt;Two&gt;</li><li>43. Three</li></ul></body></html>';

const CASES: Array<[string, (h: Harness) => Promise<void>]> = [
  [
    'renders a miss, stores it, and serves the hit without evaluating the body',
    async (h) => {
      const source = h.engine.cache('60', 'greeting', [], `Hello ${h.engine.out('name')}${h.engine.count()}`);
      expect(await h.render(source, { name: 'Ann' })).toBe('Hello Ann1');
      expect(await h.render(source, { name: 'Bob' })).toBe('Hello Ann1');
      expect(h.counted).toBe(1);
      expect(await h.cache().get(makeTemplateFragmentKey('greeting'))).toBe('Hello Ann1');
    },
  ],
  [
    'answers a hit kept in memory again only while its entry stands: not once replaced, deleted, cleared or expired',
    async (h) => {
      const source = h.engine.cache('60', 'kept', ['$id'], `v${h.engine.count()}`);
      const key = makeTemplateFragmentKey('kept', [7]);
      const render = () => h.render(source, { id: 7 });
      // A miss, a hit read from the store, then hits answered from what the last one kept.
      for (let i = 0; i < 3; i++) expect(await render()).toBe('v1');
      await h.cache().set(key, 'replaced');
      for (let i = 0; i < 2; i++) expect(await render()).toBe('replaced');
      await h.cache().delete(key);
      for (let i = 0; i < 3; i++) expect(await render()).toBe('v2');
      await h.cache().clear();
      for (let i = 0; i < 3; i++) expect(await render()).toBe('v3');
      await h.cache().touch(key, 5);
      h.advance(4);
      expect(await render()).toBe('v3');
      h.advance(2);
      for (let i = 0; i < 3; i++) expect(await render()).toBe('v4');
      expect(h.counted).toBe(4);
    },
  ],
  [
    'keys on the vary-on values',
    async (h) => {
      const source = h.engine.cache('60', 'greeting', ['$name', '$lang'], `Hello ${h.engine.out('name')}`);
      expect(await h.render(source, { name: 'Ann', lang: 'en' })).toBe('Hello Ann');
      expect(await h.render(source, { name: 'Bob', lang: 'en' })).toBe('Hello Bob');
      expect(await h.cache().get(makeTemplateFragmentKey('greeting', ['Ann', 'en']))).toBe('Hello Ann');
      expect(await h.cache().get(makeTemplateFragmentKey('greeting', ['Bob', 'en']))).toBe('Hello Bob');
    },
  ],
  [
    'takes a literal timeout in seconds',
    async (h) => {
      const source = h.engine.cache('60', 'clock', [], h.engine.count());
      await h.render(source);
      h.advance(59);
      expect(await h.render(source)).toBe('1');
      h.advance(2);
      expect(await h.render(source)).toBe('2');
    },
  ],
  [
    'takes the timeout from a variable, an integer string too',
    async (h) => {
      const source = h.engine.cache('$ttl', 'clock', [], h.engine.count());
      await h.render(source, { ttl: 10 });
      h.advance(11);
      expect(await h.render(source, { ttl: '100' })).toBe('2');
      h.advance(99);
      expect(await h.render(source, { ttl: '100' })).toBe('2');
      h.advance(2);
      expect(await h.render(source, { ttl: '100' })).toBe('3');
    },
  ],
  [
    'keeps a fragment forever with a null timeout',
    async (h) => {
      await h.render(h.engine.cache('null', 'forever', [], h.engine.count()));
      h.advance(10 * 365 * 86400);
      await h.render(h.engine.cache('$ttl', 'forever', [], h.engine.count()), { ttl: null });
      expect(h.counted).toBe(1);
    },
  ],
  [
    "rejects a non-integer timeout with Django's text",
    async (h) => {
      const source = h.engine.cache('$ttl', 'bad', [], 'x');
      await expect(h.render(source, { ttl: 'fail' })).rejects.toThrow(`"cache" tag got a non-integer timeout value: 'fail'`);
      await expect(h.render(source, { ttl: 1.5 })).rejects.toThrow('"cache" tag got a non-integer timeout value: 1.5');
      await expect(h.render(source, { ttl: [] })).rejects.toThrow('"cache" tag got a non-integer timeout value: []');
    },
  ],
  [
    'stores in the cache named by using=',
    async (h) => {
      expect(await h.render(h.engine.cache('60', 'elsewhere', [], 'there', 'other'))).toBe('there');
      expect(await h.cache('other').get(makeTemplateFragmentKey('elsewhere'))).toBe('there');
      expect(await h.cache().hasKey(makeTemplateFragmentKey('elsewhere'))).toBe(false);
    },
  ],
  [
    'renders the body each time on a cache turned off (the dummy backend), tagged and stale-windowed fragments too',
    async (h) => {
      const off = `unused-${h.engine.name}`;
      const { cache, count } = h.engine;
      const plain = cache('60', 'off', ['$id'], `p${count()}`, off);
      const tagged = cache('60', 'offTagged', ['$id'], `t${count()}`, { using: off, tags: 'item:1', stale: '30' });
      for (const expected of ['p1', 'p2']) expect(await h.render(plain, { id: 7 })).toBe(expected);
      for (const expected of ['t3', 't4']) expect(await h.render(tagged, { id: 7 })).toBe(expected);
      expect(caches.get(off).stats().errors).toBe(0);
    },
  ],
  [
    "rejects an unknown using= alias with Django's text",
    async (h) => {
      await expect(h.render(h.engine.cache('60', 'lost', [], 'x', 'nope'))).rejects.toThrow("Invalid cache name specified for cache tag: 'nope'");
    },
  ],
  [
    'names the closest configured alias to a misspelt using=',
    async (h) => {
      await expect(h.render(h.engine.cache('60', 'lost', [], 'x', 'ohter'))).rejects.toThrow(
        "Invalid cache name specified for cache tag: 'ohter' (did you mean 'other'?)",
      );
    },
  ],
  [
    'uses the template_fragments alias when it is configured',
    async (h) => {
      await configureCaches({ ...baseConfig(h.engine), template_fragments: { backend: Counting, location: `${location}-tf` } });
      await h.render(h.engine.cache('60', 'fallback', [], 'kept'));
      expect(await h.cache('template_fragments').get(makeTemplateFragmentKey('fallback'))).toBe('kept');
      expect(await h.cache().hasKey(makeTemplateFragmentKey('fallback'))).toBe(false);
    },
  ],
  [
    'fails to compile with fewer than two arguments, naming the tag',
    async (h) => {
      await expect(h.render(h.engine.bareCache('60', 'x'))).rejects.toThrow("'cache' tag requires at least 2 arguments.");
    },
  ],
  [
    'resolves nested fragments level by level; an outer hit covers the inner ones',
    async (h) => {
      const { cache, count, out } = h.engine;
      const source = cache('60', 'outer', ['$user'], `<o>${count()}${cache('60', 'inner', ['$user'], `<i>${count()}${out('user')}</i>`)}</o>`);
      expect(await h.render(source, { user: 'ann' })).toBe('<o>1<i>2ann</i></o>');
      expect(h.cache().reads).toBe(2);
      await h.cache().delete(makeTemplateFragmentKey('outer', ['ann']));
      expect(await h.render(source, { user: 'ann' })).toBe('<o>3<i>2ann</i></o>');
      await h.cache().delete(makeTemplateFragmentKey('inner', ['ann']));
      expect(await h.render(source, { user: 'ann' })).toBe('<o>3<i>2ann</i></o>');
      expect(await h.cache().hasKey(makeTemplateFragmentKey('inner', ['ann']))).toBe(false);
    },
  ],
  [
    'renders the fixture page (layout, loop, includes) and serves it warm in one read',
    async (h) => {
      expect(normalize(await h.page())).toBe(PAGE);
      const key = makeTemplateFragmentKey('item', [2]);
      expect(await h.cache().get(key)).toBe('<li>32. &lt;Two&gt;</li>');
      const readsBefore = h.cache().reads;
      expect(normalize(await h.page({ user: 'ann', items: [...items].reverse() }))).toBe(
        PAGE.replace(/<ul>.*<\/ul>/, '<ul><li>43. Three</li><li>32. &lt;Two&gt;</li><li>21. One &amp; only</li></ul>'),
      );
      expect(h.cache().reads - readsBefore).toBe(h.inline ? 0 : 1);
      expect(h.counted).toBe(4);
    },
  ],
  [
    'escapes once, on the miss and on the hit',
    async (h) => {
      const source = h.engine.cache('60', 'escaped', ['$text'], `<b>${h.engine.out('text')}</b>`);
      expect(await h.render(source, { text: '<i>&' })).toBe('<b>&lt;i&gt;&amp;</b>');
      expect(await h.render(source, { text: '<i>&' })).toBe('<b>&lt;i&gt;&amp;</b>');
    },
  ],
  [
    'is invalidated from code with makeTemplateFragmentKey',
    async (h) => {
      const source = h.engine.cache('60', 'profile', ['$user'], `${h.engine.out('bio')}`);
      await h.render(source, { user: 'ann', bio: 'old' });
      expect(await h.render(source, { user: 'ann', bio: 'new' })).toBe('old');
      expect(await h.cache().delete(makeTemplateFragmentKey('profile', ['ann']))).toBe(true);
      expect(await h.render(source, { user: 'ann', bio: 'new' })).toBe('new');
    },
  ],
  [
    'fails naming the fragment when a block transforms its text',
    async (h) => {
      const source = h.engine.upper(h.engine.cache('60', 'shouted', [], 'quiet'));
      await expect(h.render(source)).rejects.toThrow(`"cache" tag 'shouted' is inside template code that changed or dropped its output`);
    },
  ],
  [
    'renders a fragment once for concurrent renders that miss it',
    async (h) => {
      const source = h.engine.cache('60', 'busy', [], `body${h.engine.count()}`);
      const pages = await Promise.all(Array.from({ length: 5 }, () => h.render(source)));
      expect(pages).toEqual(Array(5).fill('body1'));
      expect(h.counted).toBe(1);
    },
  ],
  [
    'serves the page as an Express view',
    async (h) => {
      const app = h.engine.app(() => ({ user: 'ann', items, count: () => ++h.counted }));
      const first = await request(app).get('/page').expect(200);
      expect(normalize(first.text)).toBe(PAGE);
      const second = await request(app).get('/page').expect(200);
      expect(normalize(second.text)).toBe(PAGE);
      expect(h.counted).toBe(4);
    },
  ],
  [
    "serves the page through the engine's usual Express integration, over HTTP, in one read when warm",
    async (h) => {
      const server = h.engine.usualApp(() => ({ user: 'ann', items, count: () => ++h.counted })).listen(0, '127.0.0.1');
      await once(server, 'listening');
      try {
        const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/page`;
        const first = await fetch(url);
        expect(first.status).toBe(200);
        expect(normalize(await first.text())).toBe(PAGE);
        const readsBefore = h.cache().reads;
        const second = await fetch(url);
        expect(normalize(await second.text())).toBe(PAGE);
        expect(h.cache().reads - readsBefore).toBe(h.inline ? 0 : 1);
        expect(h.counted).toBe(4);
        expect(await h.cache().get(makeTemplateFragmentKey('item', [2]))).toBe('<li>32. &lt;Two&gt;</li>');
      } finally {
        server.close();
      }
    },
  ],
  [
    'renders a fragment nested in itself (same name and vary-on) as Django does, storing the outer HTML',
    async (h) => {
      const { cache, count } = h.engine;
      const source = cache('60', 'self', ['$user'], `<o>${count()}${cache('60', 'self', ['$user'], `<i>${count()}</i>`)}</o>`);
      expect(await h.render(source, { user: 'ann' })).toBe('<o>1<i>2</i></o>');
      expect(await h.cache().get(makeTemplateFragmentKey('self', ['ann']))).toBe('<o>1<i>2</i></o>');
      expect(await h.render(source, { user: 'ann' })).toBe('<o>1<i>2</i></o>');
      expect(h.counted).toBe(2);
    },
  ],
  [
    'tags= invalidate a fragment and every fragment around it, and nothing else',
    async (h) => {
      const { cache, count } = h.engine;
      const inner = (name: string, tag: string) => cache('60', name, [], `<${name}>${count()}</${name}>`, { tags: tag });
      const source = `${cache('60', 'outer', [], `<o>${count()}${inner('a', 'item:1')}${inner('b', 'item:2')}</o>`)}${inner('c', 'item:3')}`;
      expect(await h.render(source)).toBe('<o>1<a>3</a><b>4</b></o><c>2</c>');
      const outer = (await h.cache().getEntries([makeTemplateFragmentKey('outer')])).get(makeTemplateFragmentKey('outer'));
      expect([...outer!.tags].sort()).toEqual(['item:1', 'item:2']);
      expect(await h.render(source)).toBe('<o>1<a>3</a><b>4</b></o><c>2</c>');
      await h.cache().invalidateTags(['item:1']);
      // The outer fragment and the one tagged render again; the sibling inside and the one outside are hits.
      expect(await h.render(source)).toBe('<o>5<a>6</a><b>4</b></o><c>2</c>');
      expect(h.counted).toBe(6);
      await h.cache().invalidateTags(['item:3']);
      expect(await h.render(source)).toBe('<o>5<a>6</a><b>4</b></o><c>7</c>');
      expect(h.counted).toBe(7);
    },
  ],
  [
    'an outer hit passes on the tags of the fragments inside it, so an invalidation reaches it from a warm render',
    async (h) => {
      const { cache, count } = h.engine;
      const source = cache('60', 'outer', [], `<o>${count()}${cache('60', 'inner', [], `<i>${count()}</i>`, { tags: 'item:1' })}</o>`, { tags: 'page' });
      expect(await h.render(source)).toBe('<o>1<i>2</i></o>');
      expect(await h.render(source)).toBe('<o>1<i>2</i></o>');
      await h.cache().delete(makeTemplateFragmentKey('inner'));
      await h.cache().invalidateTags(['page']);
      // The outer renders again with the inner a miss too; it is stored with both tags.
      expect(await h.render(source)).toBe('<o>3<i>4</i></o>');
      await h.cache().invalidateTags(['item:1']);
      expect(await h.render(source)).toBe('<o>5<i>6</i></o>');
    },
  ],
  [
    'tags= take a variable holding a string or a list, and refuse anything else naming the value',
    async (h) => {
      const source = h.engine.cache('60', 'listed', [], h.engine.count(), { tags: '$tags' });
      expect(await h.render(source, { tags: ['a', 'b'] })).toBe('1');
      await h.cache().invalidateTags(['b']);
      expect(await h.render(source, { tags: 'a' })).toBe('2');
      await h.cache().invalidateTags(['a']);
      expect(await h.render(source, { tags: 'a' })).toBe('3');
      await expect(h.render(source, { tags: 5 })).rejects.toThrow('"cache" tag got invalid tags: 5 (a string or an array of non-empty strings)');
      await expect(h.render(source, { tags: ['ok', ''] })).rejects.toThrow('"cache" tag got invalid tags: ["ok",""]');
    },
  ],
  [
    'stale= serves an expired fragment at once and renders it again behind the render, once',
    async (h) => {
      const source = h.engine.cache('10', 'feed', [], h.engine.count(), { stale: '60' });
      expect(await h.render(source)).toBe('1');
      h.advance(11);
      const served = await Promise.all(Array.from({ length: 5 }, () => h.render(source)));
      expect(served).toEqual(Array(5).fill('1'));
      await vi.waitFor(async () => expect(await h.render(source)).toBe('2'));
      expect(h.counted).toBe(2);
      // Past the stale window it is a plain miss, rendered in the render.
      h.advance(10 + 61);
      expect(await h.render(source)).toBe('3');
    },
  ],
  [
    'stale= with lock=true renders the stale fragment again behind the render too',
    async (h) => {
      const source = h.engine.cache('10', 'lockedFeed', [], h.engine.count(), { stale: '60', lock: 'true' });
      expect(await h.render(source)).toBe('1');
      h.advance(11);
      expect(await h.render(source)).toBe('1');
      await vi.waitFor(async () => expect(await h.render(source)).toBe('2'));
      expect(h.counted).toBe(2);
    },
  ],
  [
    'an outer fragment rendered around a stale one is not stored until the inner one is fresh again',
    async (h) => {
      const { cache, count } = h.engine;
      const source = cache('60', 'around', [], `<o>${count()}${cache('10', 'within', [], `<i>${count()}</i>`, { stale: '60' })}</o>`);
      expect(await h.render(source)).toBe('<o>1<i>2</i></o>');
      await h.cache().delete(makeTemplateFragmentKey('around'));
      h.advance(11);
      expect(await h.render(source)).toBe('<o>3<i>2</i></o>');
      expect(await h.cache().hasKey(makeTemplateFragmentKey('around'))).toBe(false);
      await vi.waitFor(async () => expect(await h.cache().get(makeTemplateFragmentKey('within'))).toBe('<i>4</i>'));
      expect(await h.render(source)).toBe('<o>5<i>4</i></o>');
      expect(await h.cache().get(makeTemplateFragmentKey('around'))).toBe('<o>5<i>4</i></o>');
    },
  ],
  [
    'a soft invalidation makes a fragment with stale= stale, one without it a miss',
    async (h) => {
      const { cache, count } = h.engine;
      const source = `${cache('60', 'soft', [], `<s>${count()}</s>`, { tags: 'news', stale: '60' })}${cache('60', 'hard', [], `<h>${count()}</h>`, { tags: 'news' })}`;
      expect(await h.render(source)).toBe('<s>1</s><h>2</h>');
      await h.cache().invalidateTags(['news'], { soft: true });
      expect(await h.render(source)).toBe('<s>1</s><h>3</h>');
      await vi.waitFor(async () => expect(await h.render(source)).toBe('<s>4</s><h>3</h>'));
    },
  ],
  [
    'lock=true: while another holds the lock, the render waits for the fragment it stores instead of rendering it',
    async (h) => {
      const source = h.engine.cache('60', 'locked', [], `mine${h.engine.count()}`, { lock: 'true' });
      const key = makeTemplateFragmentKey('locked');
      const cache = h.cache();
      const release = await cache.acquireLock(`fragment:${key}`, 30);
      expect(release).toBeDefined();
      // The signal: the render asked for the lock and was refused it, so it now waits for the holder's fragment.
      const refused = new Promise<void>((resolve) => {
        const acquire = cache.acquireLock.bind(cache);
        cache.acquireLock = async (name, seconds) => {
          const taken = await acquire(name, seconds);
          if (taken === undefined && name === `fragment:${key}`) resolve();
          return taken;
        };
      });
      const rendering = h.render(source);
      await refused;
      await cache.set(key, 'theirs', 60);
      await release!();
      expect(await rendering).toBe('theirs');
      expect(h.counted).toBe(0);
      // With the lock free, a miss is rendered as usual.
      await h.cache().delete(key);
      expect(await h.render(source)).toBe('mine1');
    },
  ],
  [
    'refuses a stale= or lock= value it cannot read, naming it',
    async (h) => {
      await expect(h.render(h.engine.cache('60', 'bad', [], 'x', { stale: '$stale' }), { stale: 'soon' })).rejects.toThrow(
        `"cache" tag got a stale value that is not a non-negative integer: 'soon'`,
      );
      await expect(h.render(h.engine.cache('60', 'bad', [], 'x', { lock: '$lock' }), { lock: 'maybe' })).rejects.toThrow(
        `"cache" tag got a lock value that is not a boolean: 'maybe'`,
      );
    },
  ],
  [
    'the page cache stores a page with the tags of its fragments: invalidating one item renders that item alone again',
    async (h) => {
      const app = express();
      app.use(cacheMiddleware({ seconds: 600, tagHeader: 'Cache-Tag' }));
      app.use(h.engine.app(() => ({ user: 'ann', items, count: () => ++h.counted })));
      // One server, so that every request names the same host (the page key is the absolute URL).
      const server = app.listen(0, '127.0.0.1');
      await once(server, 'listening');
      onTestFinished(() => void server.close());
      const first = await request(server).get('/page').expect(200);
      expect(first.headers['x-cache']).toBe('MISS');
      const { port } = server.address() as AddressInfo;
      expect(first.headers['cache-tag']!.split(',').sort()).toEqual(['item:1', 'item:2', 'item:3', `url://127.0.0.1:${port}/page`, 'url:/page', 'user:ann']);
      // The page is stored behind its response.
      const hit = async () => vi.waitFor(async () => expect((await request(server).get('/page')).headers['x-cache']).toBe('HIT'));
      await hit();
      expect(h.counted).toBe(4);
      await invalidateTags(['item:2']);
      const again = await request(server).get('/page').expect(200);
      expect(again.headers['x-cache']).toBe('MISS');
      expect(normalize(again.text)).toBe(PAGE.replace('32. &lt;Two&gt;', '52. &lt;Two&gt;'));
      expect(h.counted).toBe(5);
      await hit();
      await invalidateTags(['unrelated']);
      expect((await request(server).get('/page')).headers['x-cache']).toBe('HIT');
    },
  ],
];

let location = '';
let serial = 0;
const baseConfig = (engine: FragmentEngine) => ({
  default: { backend: Counting, location },
  other: { backend: Counting, location: `${location}-other` },
  [`unused-${engine.name}`]: { backend: 'dummy' as const },
});

/** Runs the whole table against one engine. */
export function describeFragmentCases(engine: FragmentEngine, store: FragmentStore = 'locmem'): void {
  const inline = store !== 'remote-like';
  const where = store === 'l1' ? ', on an L1 in front of SQLite' : inline ? '' : ', every hit read after the pass';
  describe(`cache tag in ${engine.name}${where}`, () => {
    let harness: Harness;
    beforeEach(async () => {
      Counting = STORES[store];
      location = `fragments-${engine.name}-${++serial}`;
      await configureCaches(baseConfig(engine));
      let offset = 0;
      const context = (extra: Record<string, unknown>) => ({ count: () => ++harness.counted, ...extra });
      harness = {
        engine,
        inline,
        counted: 0,
        render: (source, extra = {}) => engine.renderSource(source, context(extra)),
        page: (extra = { user: 'ann', items }) => engine.renderPage(context(extra)),
        cache: (alias = 'default') => caches.get<CountingLocMem | CountingL1Cache | RemoteLikeStore>(alias),
        advance(seconds) {
          offset += seconds;
          for (const cache of caches.all()) cache.now = () => Date.now() / 1000 + offset;
        },
      };
    });
    afterAll(() => caches.closeAll());
    for (const [title, run] of CASES) it(title, () => run(harness));
  });
}
