import pug from 'pug';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installCacheTag } from '../../src/engines/pug.js';
import { caches, configureCaches } from '../../src/index.js';
import { describeFragmentCases } from './cases.js';
import { pugEngine } from './engines.js';

describeFragmentCases(pugEngine());
describeFragmentCases(pugEngine(), 'remote-like');

describe('Pug: a call of the tag answered by a hit kept in memory', () => {
  beforeAll(() => configureCaches({ default: { backend: 'locmem', location: 'pug-kept-hits' }, other: { backend: 'locmem', location: 'pug-kept-other' } }));
  afterAll(() => caches.closeAll());

  // Every number of vary-on values, a name given as a number, and keywords: each is answered from memory on the second render.
  const calls = [
    "+cache(600, 'none')",
    "+cache(600, 'one', arg(item))",
    "+cache(600, 'two', arg(item), arg(2))",
    "+cache(600, 'three', arg(item), arg(2), arg(3))",
    "+cache(600, 'five', arg(item), arg(2), arg(3), arg(4), arg(5))",
    '+cache(600, arg(7), arg(item))',
    "+cache(600, 'using', arg(item))(using=arg('other'))",
  ];

  it.each(calls)('%s evaluates each argument once per render and runs its body on the miss alone', async (call) => {
    installCacheTag(pug);
    const template = pug.compile(`ul\n  each item in items\n    ${call}\n      li= item + ':' + body()`) as unknown as (locals: object) => Promise<string>;
    let evaluated = 0;
    let bodies = 0;
    const locals = {
      items: ['a', 'b'],
      arg: (value: unknown) => (evaluated++, value),
      body: () => ++bodies,
    };
    const first = await template(locals);
    expect(evaluated % 2).toBe(0);
    const perRender = evaluated;
    expect(bodies).toBe(call.includes("'none'") ? 1 : 2);
    expect(await template(locals)).toBe(first);
    expect(await template(locals)).toBe(first);
    expect(evaluated).toBe(perRender * 3);
    expect(bodies).toBe(call.includes("'none'") ? 1 : 2);
  });

  it('refuses a call with too few arguments, naming the template and line', async () => {
    installCacheTag(pug);
    const template = pug.compile('ul\n  +cache(600)\n    li x', { filename: 'few.pug' }) as unknown as (locals: object) => Promise<string>;
    await expect(template({})).rejects.toThrow(/few\.pug.*line 2|line 2.*few\.pug/s);
  });
});
