import { Eta } from 'eta';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cachePlugin } from '../../src/engines/eta.js';
import { type BaseCache, caches, configureCaches, LocMemCache } from '../../src/index.js';
import { RemoteLikeStore } from './remote-like-store.js';

/** locmem that counts the batch reads reaching it. */
class CountingCache extends LocMemCache {
  reads = 0;
  protected override read(keys: string[]) {
    this.reads++;
    return super.read(keys);
  }
}

describe('eta: a page without tags of its own', () => {
  let cache: RemoteLikeStore;
  // What is checked here is how a page's fragments are batched: on a store that holds nothing in
  // process, every hit is read after the pass.
  beforeAll(() => {
    configureCaches({ default: { backend: RemoteLikeStore, location: 'eta-includes' } });
    cache = caches.get<RemoteLikeStore>('default');
  });
  afterAll(() => caches.closeAll());

  it('hands one render to its partials: every fragment of the page in one read', async () => {
    const eta = new Eta({ plugins: [cachePlugin()] });
    eta.loadTemplate('@card', '<% cache 60 card it.id %><li><%= it.id %></li><% endcache %>', { async: true });
    eta.loadTemplate('@page', '<ul><% for (const id of it.ids) { %><%~ await includeAsync("@card", { id }) %><% } %></ul>', { async: true });
    const ids = Array.from({ length: 20 }, (_, i) => i);
    const expected = `<ul>${ids.map((id) => `<li>${id}</li>`).join('')}</ul>`;
    expect(await eta.renderAsync('@page', { ids })).toBe(expected);
    const before = cache.reads;
    expect(await eta.renderAsync('@page', { ids })).toBe(expected);
    expect(cache.reads - before).toBe(1);
  });

  it('still renders synchronously when no tag is reached, and names renderAsync when one is', () => {
    const eta = new Eta({ plugins: [cachePlugin()] });
    expect(eta.renderString('<p><%= it.x %></p>', { x: 1 })).toBe('<p>1</p>');
    expect(() => eta.renderString('<% cache 60 box %>x<% endcache %>', {})).toThrow(/renderAsync/);
  });
});

describe('eta: a compiled template called with the same render options again', () => {
  beforeAll(() => configureCaches({ default: { backend: CountingCache, location: 'eta-reused-options' } }));
  afterAll(() => caches.closeAll());

  it('starts a render of its own each time, so its hits are answered while the engine renders', async () => {
    const cache = caches.get<CountingCache & BaseCache>('default');
    const eta = new Eta({ plugins: [cachePlugin()] });
    eta.loadTemplate('@inner', '<% cache 60 reusedInner it.id %>(<%= it.id %>)<% endcache %>', { async: true });
    const template = eta.compile('<% cache 60 reused it.id %>[<%= it.id %>]<% endcache %><%~ await includeAsync("@inner", { id: it.id }) %>', {
      async: true,
    });
    const options = { async: true };
    for (const id of [1, 2, 1, 2]) expect(await template.call(eta, { id }, options)).toBe(`[${id}](${id})`);
    const before = cache.reads;
    for (const id of [1, 2]) expect(await template.call(eta, { id }, options)).toBe(`[${id}](${id})`);
    expect(cache.reads - before).toBe(0);
  });
});
