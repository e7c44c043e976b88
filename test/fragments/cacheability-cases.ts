/**
 * The cacheability table: contexts, max-age and conditions on the cache tag, and how they
 * bubble into the page, run against each engine through its real renderer, over real HTTP (contexts
 * are the request's), on locmem and on a store that holds nothing in process.
 */
import { once } from 'node:events';
import type { Server } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import request from 'supertest';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { addCacheContexts, cacheMiddleware, cacheScope, defineCacheContext, invalidatePage, markUncacheable } from '../../src/frameworks/express.js';
import { forgetCacheContext, type PageCacheOptions, pageVariants, resetPageStats } from '../../src/http/index.js';
import { caches, configureCaches, makeTemplateFragmentKey } from '../../src/index.js';
import { CountingLocMem, type FragmentStore } from './cases.js';
import type { FragmentEngine } from './engines.js';
import { RemoteLikeStore } from './remote-like-store.js';

interface Harness {
  engine: FragmentEngine;
  counted: number;
  /**
   * A site whose every URL renders `source` (`source(req)` when it depends on the request) with the
   * request's theme cookie and role header as `theme` and `role`, behind the page cache when
   * `pageCache` is given, else in the request scope alone.
   */
  site(source: string | ((req: Request) => string), options?: { pageCache?: PageCacheOptions; view?: (req: Request, res: Response) => void }): Promise<Server>;
  render(source: string, context?: Record<string, unknown>): Promise<string>;
  advance(seconds: number): void;
}

const dark = { Cookie: 'theme=dark; session=a1' };
const darkToo = { Cookie: 'session=b2; theme=dark' };
const light = { Cookie: 'theme=light; session=c3' };
const get = (server: Server, path = '/', headers: Record<string, string> = {}) => request(server).get(path).set(headers);

/** Waits until the page cache answers the request from a stored page (it stores behind the response). */
async function storedHit(server: Server, path: string, headers: Record<string, string>) {
  let response!: request.Response;
  await vi.waitFor(async () => {
    response = await get(server, path, headers);
    expect(response.headers['x-cache']).toBe('HIT');
  });
  return response;
}

const CASES: Array<[string, (h: Harness) => Promise<void>]> = [
  [
    'keys a fragment by the request values of the contexts it names: one render per theme, not one per visitor',
    async (h) => {
      const server = await h.site(h.engine.cache('60', 'sidebar', [], `${h.engine.out('theme')}${h.engine.count()}`, { contexts: '"cookie:theme"' }));
      expect((await get(server, '/', dark)).text).toBe('dark1');
      expect((await get(server, '/', darkToo)).text).toBe('dark1');
      expect((await get(server, '/', light)).text).toBe('light2');
      expect((await get(server, '/')).text).toBe('3');
      expect((await get(server, '/', dark)).text).toBe('dark1');
      expect(await caches.get('default').get(makeTemplateFragmentKey('sidebar', [], { 'cookie:theme': 'dark' }))).toBe('dark1');
      expect(await caches.get('default').get(makeTemplateFragmentKey('sidebar', [], { 'cookie:theme': undefined }))).toBe('3');
      // Django's key, for the tag without contexts, holds nothing.
      expect(await caches.get('default').hasKey(makeTemplateFragmentKey('sidebar'))).toBe(false);
    },
  ],
  [
    'folds a context under its parent, takes a list, and refuses an unknown name naming the template and line',
    async (h) => {
      const server = await h.site(h.engine.cache('60', 'folded', [], h.engine.count(), { contexts: '"cookie:theme, cookie, header:x-role"' }));
      expect((await get(server, '/', { ...dark, 'X-Role': 'admin' })).text).toBe('1');
      const key = makeTemplateFragmentKey('folded', [], { cookie: dark.Cookie, 'header:x-role': 'admin' });
      expect(await caches.get('default').get(key)).toBe('1');
      const bad = await h.site(h.engine.cache('60', 'bad', [], 'x', { contexts: '"cookie:theme, colour"' }));
      const refused = await get(bad, '/', dark).expect(500);
      expect(refused.text).toContain("unknown cache context 'colour'");
      expect(refused.text).toContain('line 1');
      await expect(h.render(h.engine.cache('60', 'bare', [], 'x', { contexts: '"cookie:"' }))).rejects.toThrow("cache context 'cookie:' names no cookie");
    },
  ],
  [
    "varies on an application's context (defineCacheContext), and refuses one outside any request",
    async (h) => {
      defineCacheContext('user.roles', (req) => String(req.headers['x-role'] ?? 'anonymous'), { vary: ['X-Role'] });
      const source = h.engine.cache('60', 'menu', [], `${h.engine.out('role')}${h.engine.count()}`, { contexts: '"user.roles"' });
      const server = await h.site(source);
      expect((await get(server, '/', { 'X-Role': 'admin' })).text).toBe('admin1');
      expect((await get(server, '/', { 'X-Role': 'editor' })).text).toBe('editor2');
      expect((await get(server, '/', { 'X-Role': 'admin' })).text).toBe('admin1');
      await expect(h.render(source)).rejects.toThrow('"cache" tag \'menu\' varies on contexts, and this render is outside any request');
    },
  ],
  [
    'the page cache stores a page once per value of the contexts its fragments carry, with Vary: Cookie downstream',
    async (h) => {
      const source = `<p>${h.engine.cache('60', 'themed', [], `${h.engine.out('theme')}${h.engine.count()}`, { contexts: '"cookie:theme"' })}</p>`;
      const server = await h.site(source, { pageCache: { seconds: 600, debug: true } });
      resetPageStats();
      const first = await get(server, '/news', dark);
      expect([first.headers['x-cache'], first.text]).toEqual(['MISS', '<p>dark1</p>']);
      expect(first.headers.vary).toMatch(/cookie/i);
      expect(first.headers['x-cache-contexts']).toBe('cookie:theme');
      // Another visitor with the same theme: the same page, though every cookie header differs.
      expect((await storedHit(server, '/news', darkToo)).text).toBe('<p>dark1</p>');
      const other = await get(server, '/news', light);
      expect([other.headers['x-cache'], other.text]).toEqual(['MISS', '<p>light2</p>']);
      expect((await storedHit(server, '/news', light)).text).toBe('<p>light2</p>');
      expect((await get(server, '/news', { Cookie: 'theme=dark; session=zz' })).text).toBe('<p>dark1</p>');
      expect(h.counted).toBe(2);
      // What the dashboard shows of the route: what its pages vary on, and how many variants were stored.
      expect(pageVariants().get('/{*path}')).toEqual({ variesOn: ['cookie:theme'], variants: 2 });
    },
  ],
  [
    'an outer fragment varies on the contexts of a fragment inside it, through hits of either (a redirect to its variants)',
    async (h) => {
      const { cache, count, out } = h.engine;
      const inner = cache('60', 'inner', [], `<i>${out('theme')}</i>`, { contexts: '"cookie:theme"' });
      const server = await h.site(cache('60', 'outer', [], `<o>${count()}${inner}</o>`));
      expect((await get(server, '/', dark)).text).toBe('<o>1<i>dark</i></o>');
      expect((await get(server, '/', light)).text).toBe('<o>2<i>light</i></o>');
      expect((await get(server, '/', darkToo)).text).toBe('<o>1<i>dark</i></o>');
      expect((await get(server, '/', light)).text).toBe('<o>2<i>light</i></o>');
      expect(await caches.get('default').get(makeTemplateFragmentKey('outer'))).toEqual({ cachegrainContexts: ['cookie:theme'] });
      // The page around them learns the context from the outer fragment's hit too.
      const pages = await h.site(cache('60', 'outer', [], `<o>${count()}${inner}</o>`), { pageCache: { seconds: 600, debug: true } });
      const page = await get(pages, '/p', light);
      expect([page.text, page.headers['x-cache-contexts']]).toEqual(['<o>2<i>light</i></o>', 'cookie:theme']);
      expect((await storedHit(pages, '/p', { Cookie: 'theme=light' })).text).toBe('<o>2<i>light</i></o>');
      expect((await get(pages, '/p', dark)).text).toBe('<o>1<i>dark</i></o>');
      expect(h.counted).toBe(2);
    },
  ],
  [
    'contexts bubble from a fragment in an included template into the fragment around the include and the page',
    async (h) => {
      const source = `<p>${h.engine.cache('60', 'around', [], `${h.engine.count()}${h.engine.include('themed')}`)}</p>`;
      const server = await h.site(source, { pageCache: { seconds: 600, debug: true } });
      const dark1 = await get(server, '/inc', dark);
      expect([dark1.text, dark1.headers['x-cache-contexts']]).toEqual(['<p>1<b>dark</b></p>', 'cookie:theme']);
      expect((await get(server, '/inc', light)).text).toBe('<p>2<b>light</b></p>');
      expect((await storedHit(server, '/inc', darkToo)).text).toBe('<p>1<b>dark</b></p>');
      expect((await get(server, '/other', darkToo)).text).toBe('<p>1<b>dark</b></p>');
      expect(h.counted).toBe(2);
    },
  ],
  [
    "max-age bubbles: a page is kept no longer than its shortest-lived fragment, a hit's by what it has left",
    async (h) => {
      const source = `<p>${h.engine.cache('60', 'ticker', [], h.engine.count())}</p>`;
      const server = await h.site(source, { pageCache: { seconds: 600, debug: true } });
      const first = await get(server, '/a');
      expect(first.headers['x-cache-max-age']).toBe('60');
      expect(first.headers['cache-control']).toBe('max-age=60');
      h.advance(45);
      const second = await get(server, '/b');
      expect(second.text).toBe('<p>1</p>');
      const left = Number(second.headers['x-cache-max-age']);
      expect(left).toBeGreaterThanOrEqual(14);
      expect(left).toBeLessThanOrEqual(15);
      expect(second.headers['cache-control']).toBe(`max-age=${left}`);
    },
  ],
  [
    'a fragment with timeout 0 keeps its enclosing fragment and the page out of the cache, and says where',
    async (h) => {
      const { cache, count } = h.engine;
      const source = cache('60', 'outer', [], `<o>${count()}${cache('0', 'live', [], `<l>${count()}</l>`)}</o>`);
      const server = await h.site(source, { pageCache: { seconds: 600, debug: true } });
      const first = await get(server, '/');
      expect([first.text, first.headers['x-cache']]).toEqual(['<o>1<l>2</l></o>', 'BYPASS']);
      expect(first.headers['x-cache-reason']).toMatch(/"cache" tag 'live' has timeout 0 \(.*line 1\)/);
      expect(first.headers['cache-control']).toBe('max-age=0');
      expect(await caches.get('default').hasKey(makeTemplateFragmentKey('outer'))).toBe(false);
      const second = await get(server, '/');
      expect([second.text, second.headers['x-cache']]).toEqual(['<o>3<l>4</l></o>', 'BYPASS']);
    },
  ],
  [
    'uncacheable(why) in a template, and markUncacheable(res) in a view, keep the page out of the cache',
    async (h) => {
      const source = h.engine.cache('60', 'greeting', [], `hi${h.engine.uncacheable('per visitor')}${h.engine.count()}`);
      const server = await h.site(source, { pageCache: { seconds: 600, debug: true } });
      const first = await get(server, '/');
      expect([first.text, first.headers['x-cache']]).toEqual(['hi1', 'BYPASS']);
      expect(first.headers['x-cache-reason']).toMatch(/^per visitor \(.+, line \d+\)$/);
      expect((await get(server, '/')).text).toBe('hi2');
      const view = await h.site('plain', { pageCache: { seconds: 600, debug: true }, view: (_req, res) => markUncacheable(res, 'a live score') });
      const plain = await get(view, '/');
      expect([plain.headers['x-cache'], plain.headers['x-cache-reason']]).toEqual(['BYPASS', 'a live score']);
    },
  ],
  [
    'addCacheContexts(res) in a view varies the page as a fragment would',
    async (h) => {
      const server = await h.site(`${h.engine.out('theme')}${h.engine.count()}`, {
        pageCache: { seconds: 600 },
        view: (_req, res) => addCacheContexts(res, 'cookie:theme'),
      });
      expect((await get(server, '/', dark)).text).toBe('dark1');
      expect((await storedHit(server, '/', darkToo)).text).toBe('dark1');
      expect((await get(server, '/', light)).text).toBe('light2');
      expect(() => addCacheContexts({} as Response, 'colour')).toThrow("addCacheContexts: unknown cache context 'colour'");
    },
  ],
  [
    "stores a page once per value of an application's context, whose Vary: Cookie goes downstream; a view's own Vary: Cookie keys it by the whole header",
    async (h) => {
      // The default `vary` of an application's context: the Cookie header, as a session's would be.
      defineCacheContext('user.level', (req) => (/(?:^|; )role=admin(?:;|$)/.test(req.headers.cookie ?? '') ? 'staff' : 'visitor'));
      const source = `<p>${h.engine.cache('60', 'level', [], h.engine.count(), { contexts: '"user.level"' })}</p>`;
      const server = await h.site(source, { pageCache: { seconds: 600 } });
      const first = await get(server, '/levels', { Cookie: 'role=reader; session=a1' });
      expect([first.headers['x-cache'], first.text]).toEqual(['MISS', '<p>1</p>']);
      expect(first.headers.vary).toMatch(/cookie/i);
      await storedHit(server, '/levels', { Cookie: 'role=reader; session=a1' });
      // Another visitor of the same level: the same page at the first request, though the Cookie headers differ.
      const same = await get(server, '/levels', { Cookie: 'role=writer; session=b2' });
      expect([same.headers['x-cache'], same.text]).toEqual(['HIT', '<p>1</p>']);
      const staff = await get(server, '/levels', { Cookie: 'role=admin; session=c3' });
      expect([staff.headers['x-cache'], staff.text]).toEqual(['MISS', '<p>2</p>']);
      await storedHit(server, '/levels', { Cookie: 'role=admin; session=c3' });
      const otherStaff = await get(server, '/levels', { Cookie: 'session=d4; role=admin' });
      expect([otherStaff.headers['x-cache'], otherStaff.text]).toEqual(['HIT', '<p>2</p>']);
      // A view that varies on the Cookie header itself (it greets the visitor, say): one visitor's page each.
      const greeting = await h.site(source, { pageCache: { seconds: 600 }, view: (_req, res) => void res.setHeader('Vary', 'Cookie') });
      await get(greeting, '/hello', { Cookie: 'role=reader; session=a1' });
      expect((await storedHit(greeting, '/hello', { Cookie: 'role=reader; session=a1' })).text).toBe('<p>1</p>');
      expect((await get(greeting, '/hello', { Cookie: 'role=writer; session=b2' })).headers['x-cache']).toBe('MISS');
    },
  ],
  [
    'learns a context a later render of the URL adds, and keeps the variants apart from then on',
    async (h) => {
      let themed = false;
      const plainSource = `<p>${h.engine.count()}</p>`;
      const themedSource = `<p>${h.engine.cache('60', 'late', [], `${h.engine.out('theme')}${h.engine.count()}`, { contexts: '"cookie:theme"' })}</p>`;
      const server = await h.site(() => (themed ? themedSource : plainSource), { pageCache: { seconds: 600 } });
      expect((await get(server, '/late', dark)).text).toBe('<p>1</p>');
      expect((await storedHit(server, '/late', light)).text).toBe('<p>1</p>');
      themed = true;
      await invalidatePage('/late');
      expect((await get(server, '/late', dark)).text).toBe('<p>dark2</p>');
      expect((await storedHit(server, '/late', darkToo)).text).toBe('<p>dark2</p>');
      const other = await get(server, '/late', light);
      expect([other.headers['x-cache'], other.text]).toEqual(['MISS', '<p>light3</p>']);
    },
  ],
  [
    'if= false renders the body every time and stores nothing of it; true caches as usual',
    async (h) => {
      const source = h.engine.cache('60', 'maybe', [], h.engine.count(), { if: '$flag' });
      expect(await h.render(source, { flag: false })).toBe('1');
      expect(await h.render(source, { flag: false })).toBe('2');
      expect(await caches.get('default').hasKey(makeTemplateFragmentKey('maybe'))).toBe(false);
      expect(await h.render(source, { flag: true })).toBe('3');
      expect(await h.render(source, { flag: true })).toBe('3');
      expect(await h.render(source, { flag: false })).toBe('4');
    },
  ],
  [
    'takes contexts= and if= in either order after a vary-on value',
    async (h) => {
      const { cache, count, out } = h.engine;
      const contextsFirst = cache('60', 'first', ['$role'], `${out('theme')}${count()}`, { contexts: '"cookie:theme"', if: '$role', tags: 'a' });
      const ifFirst = cache('60', 'last', ['$role'], `${out('theme')}${count()}`, { tags: 'a', if: '$role', contexts: '"cookie:theme"' });
      const server = await h.site(`${contextsFirst}|${ifFirst}`);
      const admin = { ...dark, 'X-Role': 'admin' };
      expect((await get(server, '/', admin)).text).toBe('dark1|dark2');
      expect((await get(server, '/', { ...darkToo, 'X-Role': 'admin' })).text).toBe('dark1|dark2');
      expect((await get(server, '/', { ...light, 'X-Role': 'admin' })).text).toBe('light3|light4');
      for (const name of ['first', 'last']) {
        expect(await caches.get('default').hasKey(makeTemplateFragmentKey(name, ['admin'], { 'cookie:theme': 'dark' }))).toBe(true);
      }
      // No role: if= is false, and the fragments are rendered each time.
      expect((await get(server, '/', dark)).text).toBe('dark5|dark6');
      expect((await get(server, '/', dark)).text).toBe('dark7|dark8');
    },
  ],
];

let serial = 0;

/** Runs the cacheability table against one engine. */
export function describeCacheabilityCases(engine: FragmentEngine, store: FragmentStore = 'locmem'): void {
  const Store = store === 'remote-like' ? RemoteLikeStore : CountingLocMem;
  describe(`cacheability in ${engine.name}${store === 'remote-like' ? ', every hit read after the pass' : ''}`, () => {
    let harness: Harness;
    const servers: Server[] = [];
    beforeEach(async () => {
      await configureCaches({ default: { backend: Store, location: `cacheability-${engine.name}-${++serial}` } });
      let offset = 0;
      const context = (extra: Record<string, unknown>) => ({ count: () => ++harness.counted, ...extra });
      harness = {
        engine,
        counted: 0,
        render: (source, extra = {}) => engine.renderSource(source, context(extra)),
        async site(source, options = {}) {
          const app = express();
          app.use(options.pageCache === undefined ? cacheScope() : cacheMiddleware(options.pageCache));
          app.get('/{*path}', async (req, res, next) => {
            try {
              options.view?.(req, res);
              const text = typeof source === 'string' ? source : source(req);
              res.send(
                await engine.renderSource(text, context({ theme: /theme=(\w+)/.exec(req.headers.cookie ?? '')?.[1] ?? '', role: req.headers['x-role'] ?? '' })),
              );
            } catch (error) {
              next(error);
            }
          });
          app.use((error: Error, _req: Request, res: Response, _next: NextFunction) => void res.status(500).send(error.message));
          const server = app.listen(0, '127.0.0.1');
          await once(server, 'listening');
          servers.push(server);
          return server;
        },
        advance(seconds) {
          offset += seconds;
          for (const cache of caches.all()) cache.now = () => Date.now() / 1000 + offset;
        },
      };
    });
    afterEach(async () => {
      forgetCacheContext('user.roles');
      forgetCacheContext('user.level');
      await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
    });
    afterAll(() => caches.closeAll());
    for (const [title, run] of CASES) it(title, () => run(harness));
  });
}
