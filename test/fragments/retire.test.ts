/**
 * A finished render lets go of what its fragments held: their bodies (closures over the engine's
 * scope at each tag) and their HTML. Whatever keeps the render object itself (an engine's data, an
 * object V8 promoted while its page waited on a round trip) must not keep those alive with it.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caches, configureCaches } from '../../src/index.js';
import { FragmentRender } from '../../src/fragments/index.js';
import { RemoteLikeStore } from './remote-like-store.js';

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

/** What a body closes over: the engine's scope at its tag, as large as a page's data may be. */
interface Scope {
  rows: string[];
}

/**
 * Records one fragment whose body closes over a scope of its own, and answers the placeholder with a
 * weak reference to that scope: the only strong one is the body's.
 */
function tagWithScope(render: FragmentRender, name: string, key: number, html: string): { output: string; scope: WeakRef<Scope> } {
  const scope: Scope = { rows: Array.from({ length: 1_000 }, (_, i) => `row ${i}`) };
  const output = render.tag({ timeout: 60, name, varyOn: [key], keywords: {} }, () => () => (scope.rows.length > 0 ? html : ''));
  return { output, scope: new WeakRef(scope) };
}

/** Whether, once pending reactions ran and everything unreachable was collected, `render` (still referenced) holds neither its fragments nor `scope`. */
async function expectLetGo(render: FragmentRender, scope: WeakRef<Scope>): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  collectGarbage();
  expect(scope.deref()).toBeUndefined();
  expect(render.fragments).toEqual([]);
}

describe('a finished render', () => {
  beforeAll(async () => {
    await configureCaches({
      default: { backend: RemoteLikeStore, location: 'retire-default' },
      template_fragments: { backend: RemoteLikeStore, location: 'retire' },
    });
  });
  afterAll(() => caches.closeAll());

  it('holds no body of a fragment it rendered (a miss)', async () => {
    const render = new FragmentRender();
    const { output, scope } = tagWithScope(render, 'retire-miss', 1, '<p>rendered</p>');
    expect(await render.finish(`<main>${output}</main>`)).toBe('<main><p>rendered</p></main>');
    await expectLetGo(render, scope);
  });

  it('holds no body of a fragment answered from the cache (a fresh hit, whose body never runs)', async () => {
    const first = new FragmentRender();
    const stored = tagWithScope(first, 'retire-hit', 2, '<p>stored</p>');
    expect(await first.finish(stored.output)).toBe('<p>stored</p>');
    const render = new FragmentRender();
    const { output, scope } = tagWithScope(render, 'retire-hit', 2, '<p>never rendered</p>');
    expect(await render.finish(`<main>${output}</main>`)).toBe('<main><p>stored</p></main>');
    await expectLetGo(render, scope);
  });

  it('keeps the body of a stale fragment it serves, which is rendered again behind the page', async () => {
    const first = new FragmentRender();
    const stored = first.tag({ timeout: 1, name: 'retire-stale', varyOn: [3], keywords: { stale: 60 } }, () => () => '<p>old</p>');
    expect(await first.finish(stored)).toBe('<p>old</p>');
    const cache = caches.get('template_fragments');
    const realNow = cache.now.bind(cache);
    cache.now = () => realNow() + 2;
    try {
      const render = new FragmentRender();
      let rendered: (html: string) => void;
      const renderedAgain = new Promise<string>((resolve) => (rendered = resolve));
      const output = render.tag({ timeout: 1, name: 'retire-stale', varyOn: [3], keywords: { stale: 60 } }, () => () => {
        rendered('<p>new</p>');
        return '<p>new</p>';
      });
      expect(await render.finish(output)).toBe('<p>old</p>');
      expect(await renderedAgain).toBe('<p>new</p>');
    } finally {
      cache.now = realNow;
    }
  });
});
