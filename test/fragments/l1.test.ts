import { afterAll, describe, expect, it } from 'vitest';
import { caches, configureCaches, makeTemplateFragmentKey } from '../../src/index.js';
import { CountingL1Cache, describeFragmentCases } from './cases.js';
import { ENGINES, nunjucksEngine } from './engines.js';

// The whole fragment table again, every cache being SQLite with an L1 in front.
for (const engine of ENGINES) describeFragmentCases(engine(), 'l1');

describe('fragments on an L1', () => {
  afterAll(() => caches.closeAll());

  it('answers a warm render from the L1, without reading the table', async () => {
    await configureCaches({ default: { backend: CountingL1Cache, location: 'fragments-l1-hits' } });
    const engine = nunjucksEngine();
    const source = engine.cache('60', 'sidebar', ['$user'], `side ${engine.out('user')}`);
    expect(await engine.renderSource(source, { user: 'ann' })).toBe('side ann');
    const cache = caches.get<CountingL1Cache>('default');
    expect(cache.l1!.holds(cache.makeKey(makeTemplateFragmentKey('sidebar', ['ann'])))).toBe(true);
    // Rows changed behind the L1's back (no announcement) are not seen: the render was answered in process.
    await cache.set('unrelated', 1);
    (cache as unknown as { primary: { upsert(entries: Array<[string, Buffer]>, expires: number): unknown } }).primary.upsert(
      [[cache.makeKey(makeTemplateFragmentKey('sidebar', ['ann'])), Buffer.from('\u0000changed')]],
      Infinity,
    );
    expect(await engine.renderSource(source, { user: 'ann' })).toBe('side ann');
  });
});
