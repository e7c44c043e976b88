/**
 * The memo of fragment keys, and of the hits kept in memory with them, belongs to the cache that
 * stores the fragments: two caches keep theirs apart, a cache let go takes its memo with it, and a
 * memo past its bound forgets the fragments no longer asked for, not every fragment at once.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BaseCache, caches, configureCaches, makeTemplateFragmentKey } from '../../src/index.js';
import { FragmentRender } from '../../src/fragments/index.js';
import { FragmentKeys } from '../../src/fragments/fragment-keys.js';
import { integrationOf } from '../../src/cache/integration.js';

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

/** Counts the times `cache` is asked for a fresh entry in memory: what a fragment kept in the memo does without. */
function countAsks(cache: BaseCache): { asked: string[] } {
  const counted = { asked: [] as string[] };
  const integration = integrationOf(cache);
  const peekFreshToKeep = integration.peekFreshToKeep.bind(integration);
  integration.peekFreshToKeep = (made) => {
    counted.asked.push(made);
    return peekFreshToKeep(made);
  };
  return counted;
}

/** One render of fragments named `names`, each from the cache `using` names, as an engine's tags would run it. */
async function render(fragments: ReadonlyArray<{ name: string; using?: string }>): Promise<string> {
  const render = new FragmentRender();
  const output = fragments.map(
    ({ name, using }) =>
      render.keptHitVaryingOn0(60, name, using === undefined ? undefined : { using }) ??
      render.tag({ timeout: 60, name, varyOn: [], keywords: { using } }, () => () => `<${name}>`),
  );
  return render.finish(output.join(''));
}

describe("a fragment memo is its cache's own", () => {
  beforeAll(() =>
    configureCaches({
      default: { backend: 'locmem', location: 'memo-default' },
      a: { backend: 'locmem', location: 'memo-a' },
      b: { backend: 'locmem', location: 'memo-b' },
    }),
  );
  afterAll(() => caches.closeAll());

  it('two caches storing one fragment name each answer it from memory, render after render', async () => {
    const page = [
      { name: 'shared-name', using: 'a' },
      { name: 'shared-name', using: 'b' },
    ];
    expect(await render(page)).toBe('<shared-name><shared-name>');
    // The second render reads each from its store and keeps it.
    expect(await render(page)).toBe('<shared-name><shared-name>');
    const [a, b] = [countAsks(caches.get('a')), countAsks(caches.get('b'))];
    for (let i = 0; i < 3; i++) expect(await render(page)).toBe('<shared-name><shared-name>');
    expect([a.asked, b.asked]).toEqual([[], []]);
  });

  it('a fragment still in use stays kept while more fragments than the memo holds come and go', async () => {
    const hot = countAsks(caches.get('default'));
    await render([{ name: 'hot' }]);
    await render([{ name: 'hot' }]);
    hot.asked.length = 0;
    // Each render makes one more key than the last: together, more than the memo holds.
    for (let i = 0; i < 12_000; i++) expect(await render([{ name: 'hot' }, { name: `cold-${i}` }])).toBe(`<hot><cold-${i}>`);
    expect(hot.asked.filter((made) => made === integrationOf(caches.get('default')).storedKey('template.cache.hot.d41d8cd98f00b204e9800998ecf8427e'))).toEqual(
      [],
    );
  });
});

describe('a memo past its bound', () => {
  it('holds no more nodes than its limit, however many names, values and digests come', () => {
    const keys = new FragmentKeys(100);
    for (let i = 0; i < 1000; i++) {
      keys.key(`name-${i}`, [i, 'x'], keys.undigested);
      keys.key('digested', [i], keys.root(`digest-${i}`));
      expect(keys.size).toBeLessThanOrEqual(100);
    }
    // Forgetting changes no key: one made again is the one every engine makes.
    expect(keys.key('name-0', [0, 'x'], keys.undigested).key).toBe(makeTemplateFragmentKey('name-0', [0, 'x']));
    expect(keys.key('digested', [0], keys.root('digest-0')).key).toBe(makeTemplateFragmentKey('digested', [0], undefined, 'digest-0'));
  });
});

describe('a cache let go', () => {
  it('is not kept alive by the fragments it stored and answered from memory', async () => {
    await configureCaches({ default: { backend: 'locmem', location: 'memo-default' }, gone: { backend: 'locmem', location: 'memo-gone' } });
    const page = [{ name: 'kept', using: 'gone' }];
    await render(page);
    expect(await render(page)).toBe('<kept>');
    const gone = new WeakRef(caches.get('gone'));
    await configureCaches({ default: { backend: 'locmem', location: 'memo-default' } });
    await new Promise((resolve) => setImmediate(resolve));
    collectGarbage();
    expect(gone.deref()).toBeUndefined();
    await caches.closeAll();
  });
});
