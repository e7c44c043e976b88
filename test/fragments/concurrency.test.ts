import nunjucks from 'nunjucks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderString, installCacheTag } from '../../adapters/nunjucks.js';
import { caches, configureCaches } from '../../src/index.js';

describe('concurrent renders', () => {
  beforeAll(() => configureCaches({ default: { backend: 'locmem', location: 'fragments-concurrency' } }));
  afterAll(() => caches.closeAll());

  it('render a fragment missed by many renders at once only once', async () => {
    let bodies = 0;
    const env = installCacheTag(new nunjucks.Environment());
    env.addGlobal('count', () => ++bodies);
    const source = '{% cache 60 shared %}body {{ count() }}{% endcache %}';
    const pages = await Promise.all(Array.from({ length: 10 }, () => renderString(env, source)));
    expect(new Set(pages)).toEqual(new Set(['body 1']));
    expect(bodies).toBe(1);
  });

  it('finish when two pages nest the same two fragments in opposite orders', async () => {
    const env = installCacheTag(new nunjucks.Environment());
    const xThenY = '{% cache 60 outer_x %}x[{% cache 60 inner_y %}y{% endcache %}]{% endcache %}';
    const yThenX = '{% cache 60 inner_y %}y[{% cache 60 outer_x %}x{% endcache %}]{% endcache %}';
    const bothDone = Promise.all([renderString(env, xThenY), renderString(env, yThenX)]);
    const stuck = new Promise((resolve) => setTimeout(() => resolve('stuck'), 2000));
    expect(await Promise.race([bothDone, stuck])).toEqual(['x[y]', 'y[x]']);
  });
});
