import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import Handlebars from 'handlebars';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installCacheHelper, render as renderHandlebars } from '../../src/engines/handlebars.js';
import { fragmentStats, resetFragmentStats, withRenderState } from '../../src/fragments/index.js';
import { caches, configureCaches, LocMemCache, makeTemplateFragmentKey } from '../../src/index.js';
import { currentScope, inRequestScope } from '../../src/cacheability/request-scope.js';
import { ENGINES } from './engines.js';

describe('makeTemplateFragmentKey(name, varyOn)', () => {
  it("gives Django's keys", () => {
    expect(makeTemplateFragmentKey('sidebar')).toBe('template.cache.sidebar.d41d8cd98f00b204e9800998ecf8427e');
    expect(makeTemplateFragmentKey('sidebar', ['alice'])).toBe('template.cache.sidebar.6496a001d04a089af74acbb2476031e4');
    expect(makeTemplateFragmentKey('foo', ['abc:def%', 'x'])).toBe('template.cache.foo.45bf103fd145903ad0f930ee9ed8bfe7');
    expect(makeTemplateFragmentKey('foo', [1, 2, 3, 4, 5])).toBe('template.cache.foo.087c006c1b99e0d147f624b4921f8a13');
    expect(makeTemplateFragmentKey('foo', ['42º', '😀'])).toBe('template.cache.foo.ab66482052ab2084b9d25bdd04bc9b10');
    expect(makeTemplateFragmentKey('a.fragment', null)).toBe('template.cache.a.fragment.d41d8cd98f00b204e9800998ecf8427e');
  });

  it('frames each value as a netstring (Django 6.1), so lists of values never collide', () => {
    expect(makeTemplateFragmentKey('foo', ['a:b'])).toBe('template.cache.foo.dc16319ae166c8df116bd88f10ca9d6e');
    expect(makeTemplateFragmentKey('foo', ['a', 'b'])).toBe('template.cache.foo.85e2d709642419eb2d254542ec75556a');
    expect(makeTemplateFragmentKey('x', [])).toBe(makeTemplateFragmentKey('x'));
  });

  it('gives a number the key of its text, looked up again by index or by map alike', () => {
    for (const value of [0, 7, 4095, 4096, 1e6, -3, 2.5]) {
      const byText = makeTemplateFragmentKey('n', [String(value), 'x']);
      expect(makeTemplateFragmentKey('n', [value, 'x'])).toBe(byText);
      expect(makeTemplateFragmentKey('n', [value, 'x'])).toBe(byText);
    }
    expect(makeTemplateFragmentKey('n', [-0])).toBe(makeTemplateFragmentKey('n', ['0']));
    expect(makeTemplateFragmentKey('n', [1, 2])).not.toBe(makeTemplateFragmentKey('n', [12]));
  });

  it('hashes dates as ISO text and objects as stable JSON', () => {
    const when = new Date('2024-01-02T03:04:05.000Z');
    expect(makeTemplateFragmentKey('x', [when])).toBe(makeTemplateFragmentKey('x', ['2024-01-02T03:04:05.000Z']));
    expect(makeTemplateFragmentKey('x', [{ b: 1, a: [2] }])).toBe(makeTemplateFragmentKey('x', ['{"a":[2],"b":1}']));
  });
});

describe("a render's data with its fragment state", () => {
  it('is a copy with one more property, and an own __proto__ from JSON stays an own property', () => {
    const data = JSON.parse('{"title": "t", "__proto__": {"admin": true}}') as Record<string, unknown>;
    const copy = withRenderState(data, '__state', 1);
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect(copy.admin).toBeUndefined();
    expect(Object.keys(copy)).toEqual(['title', '__proto__', '__state']);
    expect(data.__state).toBeUndefined();
    expect(withRenderState(undefined, '__state', 2)).toEqual({ __state: 2 });
  });
});

describe('one fragment, every engine', () => {
  beforeAll(() => configureCaches({ default: { backend: 'locmem', location: 'fragments-cross-engine' } }));
  afterAll(() => caches.closeAll());

  it('uses the same key in every engine, so one render serves the others', async () => {
    const engines = ENGINES.map((engine) => engine());
    const [first, ...others] = engines.map((engine) => ({ engine, source: engine.cache('60', 'sidebar', ['$user'], `${engine.name} ${engine.out('user')}`) }));
    expect(await first!.engine.renderSource(first!.source, { user: 'alice' })).toBe('nunjucks alice');
    expect(await caches.get('default').get(makeTemplateFragmentKey('sidebar', ['alice']))).toBe('nunjucks alice');
    for (const { engine, source } of others) expect(await engine.renderSource(source, { user: 'alice' })).toBe('nunjucks alice');
    await caches.get('default').delete(makeTemplateFragmentKey('sidebar', ['alice']));
    const last = others.at(-1)!;
    expect(await last.engine.renderSource(last.source, { user: 'alice' })).toBe(`${last.engine.name} alice`);
  });
});

describe('a fragment hit kept in memory, in a locmem store near full', () => {
  beforeAll(() => configureCaches({ default: { backend: 'locmem', location: 'fragments-kept-recency', options: { maxEntries: 4 } } }));
  afterAll(() => caches.closeAll());

  it.each(ENGINES.map((engine) => engine()))('still counts as a use in $name, so the store culls what was used less lately', async (engine) => {
    const cache = caches.get('default');
    await cache.clear();
    resetFragmentStats();
    const source = engine.cache('60', 'recent', [], `body of ${engine.name}`);
    for (let i = 0; i < 3; i++) expect(await engine.renderSource(source, {})).toBe(`body of ${engine.name}`);
    await cache.set('a', 1);
    await cache.set('b', 2);
    // Half full: from now on a kept hit reports its use, and the fragment becomes the latest used.
    expect(await engine.renderSource(source, {})).toBe(`body of ${engine.name}`);
    await cache.set('c', 3);
    await cache.set('d', 4); // over full: the least recently used entry goes
    expect(await cache.hasKey(makeTemplateFragmentKey('recent'))).toBe(true);
    expect(await cache.hasKey('a')).toBe(false);
    expect(fragmentStats().get('recent')).toEqual({ hits: 3, misses: 1, staleHits: 0 });
  });
});

describe('a Handlebars cache tag, with keywords or without', () => {
  beforeAll(() =>
    configureCaches({
      default: { backend: 'locmem', location: 'fragments-handlebars-kept' },
      other: { backend: 'locmem', location: 'fragments-handlebars-kept-other' },
    }),
  );
  afterAll(() => caches.closeAll());

  it('is compiled to ask for a kept hit first: the helper runs only when there is none', async () => {
    const handlebars = installCacheHelper(Handlebars.create());
    const helper = handlebars.helpers.cache as (...args: unknown[]) => unknown;
    let calls = 0;
    handlebars.registerHelper('cache', function counted(this: unknown, ...args: unknown[]) {
      calls++;
      return helper.apply(this, args);
    });
    const plain = handlebars.compile('{{#each items}}{{#cache 60 "row" id}}<li>{{title}}</li>{{/cache}}{{/each}}');
    const using = handlebars.compile('{{#each items}}{{#cache 60 "row" id using="other"}}<li>{{title}}</li>{{/cache}}{{/each}}');
    const items = [
      { id: 1, title: 'one' },
      { id: 2, title: 'two' },
    ];
    for (const template of [plain, using]) {
      calls = 0;
      // A miss, then a hit read from the store: the helper is called for each tag.
      for (let i = 0; i < 2; i++) expect(await renderHandlebars(template, { items })).toBe('<li>one</li><li>two</li>');
      expect(calls).toBe(4);
      expect(await renderHandlebars(template, { items })).toBe('<li>one</li><li>two</li>');
      // Kept: answered by the compiled tag itself, keyword or not.
      expect(calls).toBe(4);
    }
  });
});

/** locmem that counts the reads of its entries in this process (what a kept hit spares). */
class ReadCountingLocMem extends LocMemCache {
  reads = 0;
  override held(key: string) {
    this.reads++;
    return super.held(key);
  }
}

describe('a kept fragment hit of a tag with keywords', () => {
  beforeAll(() =>
    configureCaches({
      default: { backend: 'locmem', location: 'fragments-kept-keywords' },
      counted: { backend: ReadCountingLocMem, location: 'fragments-kept-keywords-counted' },
    }),
  );
  afterAll(() => caches.closeAll());

  // What the compiled hit path saves over the tag's (nothing built per hit) is measured by the
  // fragments bench, against a tag without keywords.
  it.each(ENGINES.map((engine) => engine()))('is answered in $name from what an earlier hit kept, without reading the store', async (engine) => {
    const cache = caches.get<ReadCountingLocMem>('counted');
    await cache.clear();
    const sources = [
      engine.cache('60', 'kept-using', ['$id'], `using ${engine.out('id')}`, { using: 'counted' }),
      engine.cache('60', 'kept-tagged', ['$id'], `tagged ${engine.out('id')}`, { using: 'counted', tags: 'news', stale: '30' }),
    ];
    for (const source of sources) {
      // A miss, then a hit read from the store, which keeps it.
      for (let i = 0; i < 2; i++) await engine.renderSource(source, { id: 7 });
      cache.reads = 0;
      expect(await engine.renderSource(source, { id: 7 })).toMatch(/^(using|tagged) 7$/);
      expect(cache.reads).toBe(0);
    }
  });

  it.each(ENGINES.map((engine) => engine()))('passes its tags on to the page in $name, and is not answered once one of them is invalidated', async (engine) => {
    const cache = caches.get<ReadCountingLocMem>('counted');
    await cache.clear();
    const source = engine.cache('60', 'kept-news', [], `news ${engine.out('edition')}`, { using: 'counted', tags: 'news' });
    expect(await engine.renderSource(source, { edition: 'one' })).toBe('news one');
    expect(await engine.renderSource(source, { edition: 'two' })).toBe('news one');
    const response = new EventEmitter() as unknown as ServerResponse;
    try {
      const tags = await inRequestScope(response, async () => {
        expect(await engine.renderSource(source, { edition: 'two' })).toBe('news one');
        return [...currentScope()!.cacheability.tags];
      });
      expect(tags).toEqual(['news']);
    } finally {
      response.emit('close');
    }
    await cache.invalidateTags(['news']);
    expect(await engine.renderSource(source, { edition: 'two' })).toBe('news two');
  });
});
