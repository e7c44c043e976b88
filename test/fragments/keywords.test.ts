/**
 * Keywords a tag does not take: in every engine a misspelt one is a template error
 * naming it and the keyword meant, never ignored, run as code, or taken for a vary-on value.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caches, configureCaches, makeTemplateFragmentKey } from '../../src/index.js';
import { ENGINES, etaEngine, nunjucksEngine, type TagKeywordArgs } from './engines.js';

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

  it('takes a keyword value with spaces in parentheses, and says so of one without', async () => {
    const spaced = (value: string) => `<% cache 60 "spaced" it.id if=${value} tags="a" %>x<% endcache %>`;
    expect(await engine.renderSource(spaced('(it.a && it.b)'), { id: 1, a: true, b: true })).toBe('x');
    expect(await caches.get('default').hasKey(makeTemplateFragmentKey('spaced', [1]))).toBe(true);
    await expect(engine.renderSource(spaced('it.a && it.b'), { id: 1, a: true, b: true })).rejects.toThrow(
      "'cache' tag: '&&' follows if=: the vary-on values come before the keywords, and a value with spaces goes in parentheses, as in if=(it.a && it.b) (a template string, line 1)",
    );
  });

  it('keeps comparisons and arrows as vary-on values', async () => {
    const source = '<% cache 60 "compare" it.a==it.b it.a!=it.b it.a<=it.b it.a>=it.b [1].map(x=>x+it.a)[0] %>x<% endcache %>';
    expect(await engine.renderSource(source, { a: 1, b: 2 })).toBe('x');
    expect(await caches.get('default').hasKey(makeTemplateFragmentKey('compare', [false, true, true, false, 2]))).toBe(true);
  });
});

describe.each(engines.map((engine) => [engine.name, engine] as const))('%s: keywords after the vary-on values', (_name, engine) => {
  const orders: TagKeywordArgs[] = [
    { if: '$cached' },
    { if: '$cached', tags: 'a', stale: '30', using: 'localcache' },
    { using: 'localcache', if: '$cached', stale: '30', tags: 'a' },
    { tags: 'a', stale: '30', lock: 'true', if: '$cached', using: 'localcache' },
  ];

  it.each(orders.map((keywords, i) => [Object.keys(keywords).join(' '), i, keywords] as const))(
    'come in any order after a vary-on expression: %s',
    async (_order, i, keywords) => {
      let counted = 0;
      const name = `order-${engine.name}-${i}`;
      const source = engine.cache('60', name, ['$user.id'], `x${engine.count()}`, keywords);
      const context = (cached: boolean) => ({ user: { id: 7 }, cached, count: () => ++counted });
      const cache = caches.get('using' in keywords ? 'localcache' : 'default');
      // if= false: rendered each time, stored nowhere; true: an ordinary fragment, keyed on the vary-on value.
      expect(await engine.renderSource(source, context(false))).toBe('x1');
      expect(await engine.renderSource(source, context(false))).toBe('x2');
      expect(await cache.hasKey(makeTemplateFragmentKey(name, [7]))).toBe(false);
      expect(await engine.renderSource(source, context(true))).toBe('x3');
      expect(await engine.renderSource(source, context(true))).toBe('x3');
      expect(await cache.get(makeTemplateFragmentKey(name, [7]))).toBe('x3');
    },
  );
});

describe('nunjucks: keywords after any vary-on expression', () => {
  const engine = nunjucksEngine();
  const context = { user: { id: 7, name: 'ann' }, admin: false, double: (n: number) => n * 2 };

  it.each(
    [
      ['if=user', 'bare-if'],
      ['if=(user)', 'parenthesized-if'],
      ['if=not admin', 'negated-if'],
      ['tags=["a", "b"] if=user stale=5', 'tags-list-then-if'],
      ['stale=5 if=user tags=["a"] contexts=[] using="localcache"', 'stale-first'],
    ].map(([keywords, name]) => ({ keywords: keywords!, name: name! })),
  )('{% cache 60 $name user.id $keywords %}', async ({ keywords, name }) => {
    const source = `{% cache 60 ${name} user.id ${keywords} %}x{% endcache %}`;
    expect(await engine.renderSource(source, context)).toBe('x');
    const cache = caches.get(keywords.includes('using=') ? 'localcache' : 'default');
    expect(await cache.hasKey(makeTemplateFragmentKey(name, [7]))).toBe(true);
  });

  it('after an inline if, a filter and a call among the vary-on values', async () => {
    const source = '{% cache 60 "expressions" user.id if admin else "guest" user.name | upper double(3) if=user tags="user:" + user.id %}x{% endcache %}';
    expect(await engine.renderSource(source, context)).toBe('x');
    expect(await caches.get('default').hasKey(makeTemplateFragmentKey('expressions', ['guest', 'ANN', 6]))).toBe(true);
  });

  it('takes a variable named as a keyword as a vary-on value', async () => {
    const source = '{% cache 60 "named-tags" tags if=user %}x{% endcache %}';
    expect(await engine.renderSource(source, { ...context, tags: 'news' })).toBe('x');
    expect(await caches.get('default').hasKey(makeTemplateFragmentKey('named-tags', ['news']))).toBe(true);
  });

  it('refuses a vary-on value after a keyword, a keyword without a value and one given twice, naming the line', async () => {
    await expect(engine.renderSource('\n{% cache 60 late user.id if=user user.name %}x{% endcache %}', context)).rejects.toThrow(
      /Line 2, Column \d+\]\s+'cache' tag: if= must come after the vary-on values/,
    );
    await expect(engine.renderSource('{% cache 60 empty user.id if= %}x{% endcache %}', context)).rejects.toThrow(
      "'cache' tag: if= needs a value, as in if=user",
    );
    await expect(engine.renderSource('{% cache 60 twice if=user if=admin %}x{% endcache %}', context)).rejects.toThrow("'cache' tag: if= is given twice");
  });
});
