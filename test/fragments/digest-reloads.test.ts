/**
 * Template digests while an engine runs: a digest is computed once per compiled template, so an edit
 * the engine does not reload changes no key (a hit computes nothing), while an engine that reloads
 * templates as they change (Nunjucks' `watch` and `noCache`, Eta's `cache: false`, express-handlebars
 * reading views and partials again for each render) renews exactly the fragments of the templates that
 * reach the edited one, in the same process.
 */
import { rmSync } from 'node:fs';
import Handlebars from 'handlebars';
import nunjucks from 'nunjucks';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { installCacheHelper, render as renderHandlebars } from '../../src/engines/handlebars.js';
import { installCacheTag, render } from '../../src/engines/nunjucks.js';
import { noDependencies, TemplateDigests } from '../../src/digests/index.js';
import { caches, configureCaches } from '../../src/index.js';
import { eventually } from '../setup/eventually.js';
import { DIGEST_ENGINES, type DigestEngine, nunjucksDigests, siteFolder, writeTemplates } from './digest-engines.js';

const folders: string[] = [];
afterAll(async () => {
  await caches.closeAll();
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

beforeEach(async () => {
  await configureCaches({ default: { backend: 'locmem', location: 'digest-reloads' } });
  await caches.get('default').clear();
});

/** The page (fragment P) holds partial a (fragment A), which holds b (fragment B); `other` (fragment O) holds neither. */
function folder(engine: DigestEngine): string {
  const dir = siteFolder(engine, {
    page: engine.page(engine.fragment('P', engine.include('a'))),
    layout: engine.layout(''),
    a: `A:${engine.fragment('A', engine.include('b'))}`,
    b: 'bee',
    other: engine.fragment('O', 'Other'),
  });
  folders.push(dir);
  return dir;
}

describe.each(DIGEST_ENGINES)('template digests in $name while it runs', (engine) => {
  it('computes a digest once per compiled template: an edit the engine does not reload changes no key', async () => {
    const dir = folder(engine);
    const site = engine.start(dir);
    expect((await site.render('page')).ran.sort()).toEqual(['A', 'P']);
    writeTemplates(engine, dir, { b: 'bee, edited' });
    const page = await site.render('page');
    expect(page.ran).toEqual([]);
    expect(page.html).not.toContain('edited');
  });

  it('renews exactly the fragments that reach a template the engine reloads', async () => {
    const dir = folder(engine);
    const site = engine.start(dir, true);
    expect((await site.render('page')).ran.sort()).toEqual(['A', 'P']);
    expect((await site.render('other')).ran).toEqual(['O']);
    expect((await site.render('page')).ran).toEqual([]);
    // Nunjucks hears of an edit from its file watcher, a moment after it is written, once the watcher
    // has scanned the folder: the edit is written again until a render shows it was heard of.
    await eventually(async () => {
      writeTemplates(engine, dir, { b: 'bee, edited' });
      const page = await site.render('page');
      expect(page.html).toContain('bee, edited');
      expect(page.ran.sort()).toEqual(['A', 'P']);
    });
    expect((await site.render('page')).ran).toEqual([]);
    expect((await site.render('other')).ran).toEqual([]);
  });
});

describe('template digests in nunjucks with noCache', () => {
  it('renews the fragments of a page whose partial changed, though the page is a hit that never renders the partial', async () => {
    const dir = folder(nunjucksDigests);
    const env = installCacheTag(new nunjucks.Environment(new nunjucks.FileSystemLoader(dir, { noCache: true })), { digests: true });
    const ran: string[] = [];
    const renderPage = () => render(env, 'page.njk', { mark: (name: string) => (ran.push(name), '') });
    await renderPage();
    await renderPage();
    expect(ran.sort()).toEqual(['A', 'P']);
    writeTemplates(nunjucksDigests, dir, { b: 'bee, edited' });
    ran.length = 0;
    expect(await renderPage()).toContain('bee, edited');
    expect(ran.sort()).toEqual(['A', 'P']);
    ran.length = 0;
    await renderPage();
    expect(ran).toEqual([]);
  });
});

describe('template digests in handlebars with a partial registered again', () => {
  it('renews the fragments of the templates that call the partial, and only those', async () => {
    const handlebars = installCacheHelper(Handlebars.create(), { digests: true });
    const ran: string[] = [];
    handlebars.registerHelper('mark', (name: string) => (ran.push(name), ''));
    handlebars.registerPartial('b', 'bee');
    const page = handlebars.compile('{{#cache 60 "P"}}{{mark "P"}}{{> b}}{{/cache}}', { srcName: 'page.hbs' } as CompileOptions);
    const other = handlebars.compile('{{#cache 60 "O"}}{{mark "O"}}other{{/cache}}', { srcName: 'other.hbs' } as CompileOptions);
    const renderBoth = async () => [await renderHandlebars(page, {}), await renderHandlebars(other, {})];
    expect(await renderBoth()).toEqual(['bee', 'other']);
    expect(await renderBoth()).toEqual(['bee', 'other']);
    expect(ran).toEqual(['P', 'O']);
    handlebars.registerPartial('b', 'bee, edited');
    expect(await renderBoth()).toEqual(['bee, edited', 'other']);
    expect(ran).toEqual(['P', 'O', 'P']);
  });
});

describe("an engine's template digests across a reload", () => {
  it('holds the digest computed after the reload, for the hits after it to find', () => {
    const digests = new TemplateDigests({
      declarationExample: '',
      resolve: (written) => written,
      read: () => 'page',
      list: () => undefined,
      find: () => noDependencies(),
      nameOf: (site) => site,
    });
    const key = digests.keyOf('page');
    const first = digests.digestOf(key, 'page.html', () => {});
    expect(digests.held(key)).toBe(first);
    digests.reloaded();
    expect(digests.held(key)).toBeUndefined();
    expect(digests.digestOf(key, 'page.html', () => {})).toBe(first);
    expect(digests.held(key)).toBe(first);
  });
});
