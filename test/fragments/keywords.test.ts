/**
 * Keywords a tag does not take (SPEC §5, §13): in every engine a misspelt one is a template error
 * naming it and the keyword meant, never ignored, run as code, or taken for a vary-on value.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caches, configureCaches, makeTemplateFragmentKey } from '../../src/index.js';
import { ENGINES, etaEngine, type TagKeywordArgs } from './engines.js';

beforeAll(() => configureCaches({ default: { backend: 'locmem', location: 'keywords' }, localcache: { backend: 'locmem', location: 'keywords-local' } }));
afterAll(() => caches.closeAll());

const engines = ENGINES.map((engine) => engine());

describe.each(engines.map((engine) => [engine.name, engine] as const))('%s: a keyword the tag does not take', (_name, engine) => {
  it('fails, naming it and the closest keyword', async () => {
    const source = engine.cache('60', 'typo-stale', ['$user'], 'x', { stael: '5' } as TagKeywordArgs);
    await expect(engine.renderSource(source, { user: 'ann' })).rejects.toThrow(/unknown keyword 'stael' \(did you mean 'stale'\?\)/);
  });

  it('fails for a misspelt using=, writing to no cache', async () => {
    const source = engine.cache('60', `typo-using-${engine.name}`, [], 'x', { usin: '"localcache"' } as TagKeywordArgs);
    await expect(engine.renderSource(source, {})).rejects.toThrow(/unknown keyword 'usin' \(did you mean 'using'\?\)/);
    expect(await caches.get('default').hasKey(makeTemplateFragmentKey(`typo-using-${engine.name}`))).toBe(false);
  });

  it('fails among keywords it takes', async () => {
    const source = engine.cache('60', 'typo-among', [], 'x', { tags: 'news', lokc: 'true' } as TagKeywordArgs);
    await expect(engine.renderSource(source, {})).rejects.toThrow(/unknown keyword 'lokc' \(did you mean 'lock'\?\)/);
  });
});

describe('eta: a vary-on expression with =', () => {
  const engine = etaEngine();

  it('never runs a misspelt keyword as code', async () => {
    const source = engine.cache('60', 'typo-global', [], 'x', { stael: '5' } as TagKeywordArgs);
    await expect(engine.renderSource(source, {})).rejects.toThrow(/unknown keyword 'stael'/);
    expect('stael' in globalThis).toBe(false);
    expect(await caches.get('default').hasKey(makeTemplateFragmentKey('typo-global', [5]))).toBe(false);
  });

  it('keeps comparisons and arrows as vary-on values', async () => {
    const source = '<% cache 60 "compare" it.a==it.b it.a!=it.b it.a<=it.b it.a>=it.b [1].map(x=>x+it.a)[0] %>x<% endcache %>';
    expect(await engine.renderSource(source, { a: 1, b: 2 })).toBe('x');
    expect(await caches.get('default').hasKey(makeTemplateFragmentKey('compare', [false, true, true, false, 2]))).toBe(true);
  });
});
