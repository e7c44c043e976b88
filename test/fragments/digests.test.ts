/**
 * Template digests in each engine, on real template files: an edit renews exactly the
 * fragments of the templates that reach the edited one, a restart with no edit keeps every key, and
 * each way a dependency tracker has gone wrong elsewhere (no dependencies found for a template
 * language, a word in a comment or a script's `.render(` taken for one, a missing template digested
 * as nothing, a cycle followed forever, a parent fragment left stale) is held off.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { md5 } from '../../src/keys/hash.js';
import { caches, configureCaches, makeTemplateFragmentKey } from '../../src/index.js';
import { DIGEST_ENGINES, type DigestEngine, fileOf, siteFolder, writeTemplates } from './digest-engines.js';

const folders: string[] = [];
afterAll(async () => {
  await caches.closeAll();
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

/** Problems reported on the fragments' cache (its `error` events), since the test began. */
let reported: string[] = [];
beforeEach(async () => {
  await configureCaches({ default: { backend: 'locmem', location: 'digests' } });
  await caches.get('default').clear();
  reported = [];
  caches.get('default').on('error', (error: Error) => reported.push(error.message));
});

/**
 * The site every edit case starts from. The page (fragments P and Q) is in the layout (fragment L);
 * P holds partial a (fragment A), which holds b (fragment B), two levels down; Q includes, by an
 * expression, the partial price (fragment R), which a comment declares. `other` (fragment O) shares
 * nothing with them, and `unused` is reached by no page.
 */
function site(engine: DigestEngine): Record<string, string> {
  return {
    page: engine.page(
      `${engine.comment(`cachegrain: depends on ${engine.declared('price')}`)}\n` +
        `<h1>Page</h1>${engine.fragment('P', `<p>${engine.include('a')}</p>`)}${engine.fragment('Q', engine.includeNamed('partialName'))}`,
    ),
    layout: engine.layout(`<header>${engine.fragment('L', 'Layout')}</header>`),
    a: `A:${engine.fragment('A', engine.include('b'))}`,
    b: `B:${engine.fragment('B', 'bee')}`,
    price: `R:${engine.fragment('R', '9.99')}`,
    other: engine.fragment('O', 'Other'),
    unused: engine.fragment('U', 'Unused'),
  };
}

/** The fragments whose bodies ran when a site, started afresh, rendered both pages. */
async function renderedAfresh(engine: DigestEngine, dir: string): Promise<string[]> {
  const started = engine.start(dir);
  const page = await started.render('page');
  const other = await started.render('other');
  return [...page.ran, ...other.ran].sort();
}

describe.each(DIGEST_ENGINES)('template digests in $name', (engine) => {
  let dir: string;
  beforeEach(async () => {
    dir = siteFolder(engine, site(engine));
    folders.push(dir);
    expect(await renderedAfresh(engine, dir)).toEqual(['A', 'B', 'L', 'O', 'P', 'Q', 'R']);
  });

  it('keeps every key over a restart with no edit, whatever order the templates load in', async () => {
    expect(await renderedAfresh(engine, dir)).toEqual([]);
    const started = engine.start(dir);
    expect((await started.render('other')).ran).toEqual([]);
    const page = await started.render('page');
    expect(page.ran).toEqual([]);
    expect(page.html).toContain('bee');
    expect(page.html).toContain('9.99');
  });

  const edits: Array<[string, string, string[]]> = [
    ['the template itself', 'page', ['P', 'Q']],
    ['a partial two levels down', 'b', ['A', 'B', 'P', 'Q']],
    ['the layout', 'layout', ['L', 'P', 'Q']],
    ['a declared dependency named by an expression', 'price', ['P', 'Q', 'R']],
    ['another page', 'other', ['O']],
    ['a template no page reaches', 'unused', []],
  ];
  it.each(edits)('an edit to %s renews exactly the fragments of the templates that reach it', async (_what, edited, renewed) => {
    writeTemplates(engine, dir, { [edited]: engine.edit(site(engine)[edited]!) });
    expect(await renderedAfresh(engine, dir)).toEqual(renewed);
    expect(await renderedAfresh(engine, dir)).toEqual([]);
  });

  it('gives the fragment keys that makeTemplateFragmentKey makes with the digest templateDigest reports', async () => {
    const started = engine.start(dir);
    // A site knows its partials once it renders (express-handlebars reads them for its first render).
    await started.render('page');
    const { digest } = started.digest('a');
    expect(digest).toMatch(/^[0-9a-f]{32}$/);
    expect(String(await caches.get('default').get(makeTemplateFragmentKey('A', [], undefined, digest)))).toContain('bee');
    expect(await caches.get('default').hasKey(makeTemplateFragmentKey('A'))).toBe(false);
  });

  it('reports what a template depends on, as a tree', async () => {
    const started = engine.start(dir);
    await started.render('page');
    const tree = started.digest('a');
    expect(tree.dependencies).toEqual([{ name: engine.named('b'), line: engine.includeLine, declared: false, state: 'found', dependencies: [] }]);
    expect(tree.unresolved).toEqual([]);
  });
});

describe('makeTemplateFragmentKey(name, varyOn, contextValues, digest)', () => {
  const digest = 'a'.repeat(32);

  it("hashes '#<digest>' after the vary-on values' netstrings, and before the contexts' values", () => {
    expect(makeTemplateFragmentKey('sidebar', ['alice'], undefined, digest)).toBe(`template.cache.sidebar.${md5(`5:alice,#${digest}`)}`);
    expect(makeTemplateFragmentKey('sidebar', [], undefined, digest)).toBe(`template.cache.sidebar.${md5(`#${digest}`)}`);
    expect(makeTemplateFragmentKey('sidebar', ['alice'], { 'cookie:theme': 'dark' }, digest)).toBe(
      `template.cache.sidebar.${md5(`5:alice,#${digest}|12:cookie:theme=4:dark`)}`,
    );
  });

  it("leaves Django's keys as they are without a digest, and no digest spells a list of values", () => {
    expect(makeTemplateFragmentKey('sidebar', ['alice'])).toBe('template.cache.sidebar.6496a001d04a089af74acbb2476031e4');
    expect(makeTemplateFragmentKey('sidebar', ['alice'], undefined, undefined)).toBe('template.cache.sidebar.6496a001d04a089af74acbb2476031e4');
    expect(makeTemplateFragmentKey('sidebar', [`#${digest}`])).not.toBe(makeTemplateFragmentKey('sidebar', [], undefined, digest));
    expect(makeTemplateFragmentKey('sidebar', [], undefined, 'b'.repeat(32))).not.toBe(makeTemplateFragmentKey('sidebar', [], undefined, digest));
  });
});

// Without digests they share one (a fragment's key is its name and values, the same in every
// engine), which cross-engine.test.ts holds; with digests, the template is part of the key.
describe('the same fragment name and vary-on values in two templates with digests', () => {
  const pairs = DIGEST_ENGINES.flatMap((first) => DIGEST_ENGINES.filter((second) => second !== first).map((second) => ({ first, second })));
  it.each(pairs)('are two entries: $first.name, then $second.name, each renders its own', async ({ first, second }) => {
    for (const engine of [first, second]) {
      const dir = siteFolder(engine, { other: engine.fragment('side', `<p>${engine.name} side 1</p>`) });
      folders.push(dir);
      const rendered = await engine.start(dir).render('other');
      expect(rendered.html).toContain(`${engine.name} side 1`);
      expect(rendered.ran).toEqual(['side']);
    }
  });
});
