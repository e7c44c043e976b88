/**
 * Template digests reach the pages: a cached page carries the digests of the templates it
 * was rendered from, so a deploy that edits one of them renders the page again, and a deploy that
 * edits nothing keeps it. A deploy is a real restart: a site process (`fixtures/digest-site.ts`)
 * renders and stores the page in a cache shared across processes (a filebased folder, or Redis), and
 * is stopped; its templates, copied into a folder of their own, are edited (or not), and another
 * process is started over them.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Handlebars from 'handlebars';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { cachePage } from '../../src/frameworks/express.js';
import { installCacheHelper, render } from '../../src/engines/handlebars.js';
import { caches, configureCaches } from '../../src/index.js';
import { listen, type Reply, send } from './client.js';
import { type SiteProcess, startSiteProcess } from './fixtures/site-process.js';
import { eventually } from '../setup/eventually.js';

/** Each engine's views: a page holding no cache tag of its own, and a card it includes once per card, which holds one. */
const ENGINES: Array<[engine: string, extension: string]> = [
  ['nunjucks', 'njk'],
  ['handlebars', 'hbs'],
  ['eta', 'eta'],
  ['ejs', 'ejs'],
  ['pug', 'pug'],
  ['liquid', 'liquid'],
];

const redisUrl = process.env.CACHEGRAIN_TEST_REDIS_URL;
// One host for every process, as a site's name is: the page key holds it.
const HOST = 'shop.example';
const folders: string[] = [];
afterAll(async () => {
  await caches.closeAll();
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

function tempFolder(prefix: string): string {
  const folder = mkdtempSync(join(tmpdir(), prefix));
  folders.push(folder);
  return folder;
}

const STORES: Array<[string, () => object]> = [
  ['a filebased folder', () => ({ backend: 'filebased', location: tempFolder('cachegrain-page-digests-store-') })],
  [
    'Redis',
    () => {
      if (redisUrl === undefined) throw new Error('CACHEGRAIN_TEST_REDIS_URL is not set: the test setup starts redis-server (Debian package redis-server)');
      return { backend: 'redis', location: redisUrl };
    },
  ],
];
// Eta is rendered on Express only: rendered by renderAsync alone, an Eta's digests are made at its first render (see the README).
const STACKS: Record<string, string[]> = {
  nunjucks: ['express', 'node'],
  handlebars: ['express', 'node'],
  eta: ['express'],
  ejs: ['express', 'node'],
  pug: ['express', 'node'],
  liquid: ['express', 'node'],
};
const CASES = ENGINES.flatMap(([engine, extension]) =>
  STACKS[engine]!.flatMap((stack) => STORES.map(([store, cache]) => ({ engine, extension, stack, store, cache }))),
);

describe.each(CASES)('a page rendered by $engine on $stack, stored in $store', ({ engine, extension, stack, store, cache }) => {
  /** The folder of the templates the next deploy runs, and the test's own key prefix. */
  let views = '';
  let prefix = '';
  /** The templates as the last deploy had them (as a test begins: as written), copied into a new folder. */
  const release = (from = views) => {
    const next = tempFolder(`cachegrain-page-digests-${engine}-`);
    cpSync(from, next, { recursive: true });
    views = next;
  };
  let tests = 0;
  beforeEach(() => {
    release(new URL(`./fixtures/digest-views/${engine}`, import.meta.url).pathname);
    prefix = `digests${process.pid}${engine}${stack}${store === 'Redis' ? 'redis' : 'files'}${++tests}`;
  });
  // The store is described when a test starts: a missing server fails its tests, not the whole file.
  let described: string | undefined;
  const env = () => ({
    DIGEST_ENGINE: engine,
    DIGEST_STACK: stack,
    DIGEST_VIEWS: views,
    DIGEST_CACHE: (described ??= JSON.stringify(cache())),
    SITE_KEY_PREFIX: prefix,
  });

  /**
   * Starts the site (a deploy of the templates as they are now, run in their folder), and answers what
   * `/cards` gives, then stops it.
   */
  async function deploy(): Promise<Reply> {
    const site = await startSiteProcess(new URL('./fixtures/digest-site.ts', import.meta.url), env(), views);
    try {
      const reply = await get(site);
      // The page is stored behind its response: it is in the shared cache once this process hits it.
      await eventually(async () => expect((await get(site)).headers['x-cache']).toBe('HIT'));
      return reply;
    } finally {
      await site.close();
    }
  }
  const get = (site: SiteProcess) => send(site.url, '/cards', { headers: { Host: HOST } });
  const summary = (reply: Reply) => [reply.status, reply.headers['x-cache'], reply.text.replace(/\s+/g, '')];
  const edit = (file: string, from: string, to: string) => {
    const text = readFileSync(join(views, file), 'utf8');
    expect(text).toContain(from);
    writeFileSync(join(views, file), text.replace(from, to));
  };

  it('keeps the page across a deploy that edits nothing, and renders it again after one that edits a template it includes or its own', async () => {
    expect(summary(await deploy())).toEqual([200, 'MISS', '<h1>Shop</h1><p>Tea</p><p>Cake</p>']);
    expect(summary(await deploy())).toEqual([200, 'HIT', '<h1>Shop</h1><p>Tea</p><p>Cake</p>']);
    edit(`partials/card.${extension}`, '<p>', '<p class="card">');
    expect(summary(await deploy())).toEqual([200, 'MISS', '<h1>Shop</h1><pclass="card">Tea</p><pclass="card">Cake</p>']);
    expect(summary(await deploy())).toEqual([200, 'HIT', '<h1>Shop</h1><pclass="card">Tea</p><pclass="card">Cake</p>']);
    edit(`page.${extension}`, 'Shop', 'Our shop');
    expect(summary(await deploy())).toEqual([200, 'MISS', '<h1>Ourshop</h1><pclass="card">Tea</p><pclass="card">Cake</p>']);
  }, 60_000);

  it('does the same when each deploy is a folder of its own and the last one stays in place', async () => {
    expect(summary(await deploy())).toEqual([200, 'MISS', '<h1>Shop</h1><p>Tea</p><p>Cake</p>']);
    release();
    expect(summary(await deploy())).toEqual([200, 'HIT', '<h1>Shop</h1><p>Tea</p><p>Cake</p>']);
    release();
    edit(`partials/card.${extension}`, '<p>', '<p class="card">');
    expect(summary(await deploy())).toEqual([200, 'MISS', '<h1>Shop</h1><pclass="card">Tea</p><pclass="card">Cake</p>']);
    release();
    edit(`page.${extension}`, 'Shop', 'Our shop');
    expect(summary(await deploy())).toEqual([200, 'MISS', '<h1>Ourshop</h1><pclass="card">Tea</p><pclass="card">Cake</p>']);
  }, 60_000);
});

describe('a page whose template changes while the process runs', () => {
  it('is rendered again once its engine reloads the template, and only the pages that reach it are', async () => {
    await configureCaches({ default: { backend: 'locmem', location: 'page-digests-running' } });
    const handlebars = installCacheHelper(Handlebars.create(), { digests: true });
    handlebars.registerPartial('card', '<p>{{name}}</p>');
    const pages: Record<string, Handlebars.TemplateDelegate> = {
      '/cards': handlebars.compile('<h1>Shop</h1>{{#each cards}}{{> card}}{{/each}}'),
      '/about': handlebars.compile('<h1>About</h1>'),
    };
    const page = cachePage(600);
    const site = await listen((req, res) =>
      page(req, res, () => {
        void render(pages[req.url!]!, { cards: [{ name: 'Tea' }] }).then((html) => res.end(html));
      }),
    );
    try {
      const get = async (path: string) => {
        const reply = await send(site.url, path);
        return [reply.headers['x-cache'], reply.text];
      };
      const stored = (path: string, text: string) => eventually(async () => expect(await get(path)).toEqual(['HIT', text]));
      expect(await get('/cards')).toEqual(['MISS', '<h1>Shop</h1><p>Tea</p>']);
      expect(await get('/about')).toEqual(['MISS', '<h1>About</h1>']);
      await stored('/cards', '<h1>Shop</h1><p>Tea</p>');
      await stored('/about', '<h1>About</h1>');
      // A partial registered again with another source is a reload, as a view engine's watcher makes one.
      handlebars.registerPartial('card', '<p class="card">{{name}}</p>');
      expect(await get('/cards')).toEqual(['MISS', '<h1>Shop</h1><p class="card">Tea</p>']);
      expect(await get('/about')).toEqual(['HIT', '<h1>About</h1>']);
      await stored('/cards', '<h1>Shop</h1><p class="card">Tea</p>');
    } finally {
      await site.close();
    }
  });
});
