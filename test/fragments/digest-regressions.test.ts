/**
 * What dependency trackers have got wrong elsewhere (Rails' cache digests among them), held off in
 * each engine: a template language whose dependencies were never found; a word in a comment or in
 * prose, or a `.render(` call in an inline script, taken for a dependency; a missing template digested
 * as if it were not named at all; a cycle followed forever; and a fragment around a partial left
 * stale when the partial changed. Plus the two kinds of names a digest cannot follow: built by an
 * expression (declared in a comment, or warned about), and declared as a folder.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { caches, configureCaches } from '../../src/index.js';
import { DIGEST_ENGINES, type DigestEngine, fileOf, siteFolder, writeTemplates } from './digest-engines.js';

const folders: string[] = [];
afterAll(async () => {
  await caches.closeAll();
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

let reported: string[] = [];
beforeEach(async () => {
  await configureCaches({ default: { backend: 'locmem', location: 'digest-regressions' } });
  await caches.get('default').clear();
  reported = [];
  caches.get('default').on('error', (error: Error) => reported.push(error.message));
});

/** A site of `files` besides the partials every case may name (b, price, layout with no fragment of its own). */
function folder(engine: DigestEngine, files: Record<string, string>): string {
  const dir = siteFolder(engine, { layout: engine.layout(''), b: 'bee', price: '9.99', other: 'Other', ...files });
  folders.push(dir);
  return dir;
}

/** The fragments whose bodies ran when `dir`'s site, started afresh, rendered its page. */
async function ranAfresh(engine: DigestEngine, dir: string): Promise<string[]> {
  return (await engine.start(dir).render('page')).ran.sort();
}

/** \`it\` where the engine can do what the case does; elsewhere the case is left out, not skipped. */
const itWhere = (can: boolean): typeof it | ((...args: Parameters<typeof it>) => void) => (can ? it : () => undefined);

const edit = (engine: DigestEngine, dir: string, name: string, source: string) => writeTemplates(engine, dir, { [name]: source });

describe.each(DIGEST_ENGINES)('template digests in $name, against what trackers got wrong', (engine) => {
  it('finds a dependency in every form the engine has to name one', async () => {
    const dir = folder(engine, { page: engine.page('page'), every: engine.everyForm.source, a: 'a', unused: 'unused' });
    const site = engine.start(dir);
    await site.render('page');
    const tree = site.digest('every');
    expect(tree.dependencies.map((node) => node.name)).toEqual(engine.everyForm.found);
    expect(tree.unresolved).toEqual([]);
  });

  it('takes no word of a comment or of prose for a dependency', async () => {
    const mention = `rendered by ${engine.include('b')}: include partials/b, render "b", {{> b}}`;
    const dir = folder(engine, { page: engine.page(`${engine.comment(mention)}<p>We include partials/b and render b.</p>${engine.fragment('C', 'c')}`) });
    expect(await ranAfresh(engine, dir)).toEqual(['C']);
    edit(engine, dir, 'b', 'bee, edited');
    expect(await ranAfresh(engine, dir)).toEqual([]);
    expect(reported).toEqual([]);
  });

  it('takes no `.render(` or include call of an inline script for a dependency', async () => {
    const script = `<script>view.render("partials/b"); app.render('b'); include("/partials/b"); includeAsync('partials/b'); layout("b")</script>`;
    const dir = folder(engine, { page: engine.page(`${script}${engine.fragment('S', 's')}`) });
    expect(await ranAfresh(engine, dir)).toEqual(['S']);
    edit(engine, dir, 'b', 'bee, edited');
    expect(await ranAfresh(engine, dir)).toEqual([]);
    expect(reported).toEqual([]);
  });

  // Pug reads what a template includes as it compiles it: a template that includes a missing one, or one that includes it back, fails to compile.
  itWhere(!engine.cannot?.renderMissing)(
    'warns once, naming the template and line, of a missing dependency, digests it as missing, and renews once it exists',
    async () => {
      const dir = folder(engine, { page: engine.page(engine.fragment('M', engine.never(engine.include('nope')))) });
      const site = engine.start(dir);
      expect((await site.render('page')).ran).toEqual(['M']);
      expect((await site.render('page')).ran).toEqual([]);
      expect(reported).toHaveLength(1);
      expect(reported[0]).toMatch(
        new RegExp(`template digest: \\S*page\\.${engine.extension}, line ${engine.bodyLine}: '${escape(engine.ref('nope'))}' is named and cannot be found`),
      );
      expect(await ranAfresh(engine, dir)).toEqual([]);
      edit(engine, dir, 'nope', 'now here');
      expect(await ranAfresh(engine, dir)).toEqual(['M']);
    },
  );

  itWhere(!engine.cannot?.renderCycle)('ends a cycle: a partial that includes one that includes it back', async () => {
    const dir = folder(engine, {
      page: engine.page(engine.fragment('Y', engine.include('a'))),
      a: `a${engine.never(engine.include('c'))}`,
      c: `c${engine.never(engine.include('a'))}`,
    });
    const site = engine.start(dir);
    expect((await site.render('page')).ran).toEqual(['Y']);
    const tree = site.digest('a');
    expect(tree.dependencies).toEqual([
      {
        name: engine.named('c'),
        line: 1,
        declared: false,
        state: 'found',
        dependencies: [{ name: engine.named('a'), line: 1, declared: false, state: 'seen', dependencies: [] }],
      },
    ]);
    expect(await ranAfresh(engine, dir)).toEqual([]);
    edit(engine, dir, 'c', `c, edited${engine.never(engine.include('a'))}`);
    expect(await ranAfresh(engine, dir)).toEqual(['Y']);
  });

  it('renews the fragment around a partial when the partial changes, though the partial has no fragment of its own', async () => {
    const dir = folder(engine, { page: engine.page(`${engine.fragment('Outer', `<div>${engine.include('b')}</div>`)}${engine.fragment('Beside', 'x')}`) });
    expect(await ranAfresh(engine, dir)).toEqual(['Beside', 'Outer']);
    edit(engine, dir, 'b', 'bee, edited');
    const site = engine.start(dir);
    const page = await site.render('page');
    expect(page.ran.sort()).toEqual(['Beside', 'Outer']);
    expect(page.html).toContain('bee, edited');
  });

  // Pug names every template it includes by a literal path.
  itWhere(!engine.cannot?.includeNamed)('warns once, naming the template and line, of an include by an expression that no comment declares', async () => {
    const dir = folder(engine, { page: engine.page(engine.fragment('D', engine.includeNamed('partialName'))) });
    const site = engine.start(dir);
    expect((await site.render('page')).html).toContain('9.99');
    await site.render('page');
    expect(reported).toHaveLength(1);
    expect(reported[0]).toMatch(
      new RegExp(
        `template digest: \\S*page\\.${engine.extension}, line ${engine.bodyLine}: a template named by an expression is left out of the digest: declare`,
      ),
    );
  });

  it('follows a folder declared with a trailing *', async () => {
    const dir = folder(engine, {
      page: engine.page(`${engine.comment(`cachegrain: depends on ${engine.partialsFolder}`)}\n${engine.fragment('W', engine.includeNamed('partialName'))}`),
    });
    expect(await ranAfresh(engine, dir)).toEqual(['W']);
    expect(await ranAfresh(engine, dir)).toEqual([]);
    edit(engine, dir, 'price', '10.99');
    expect(await ranAfresh(engine, dir)).toEqual(['W']);
    expect(reported).toEqual([]);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
