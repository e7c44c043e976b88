/**
 * The cache dashboard as a person uses it, mounted on each framework as the README says (Express,
 * node:http, Fastify, Koa, Hono): a real site with a page cache on a real Redis and fragments on
 * locmem, some traffic over HTTP, then the dashboard in Debian's chromium (driven by puppeteer-core):
 * the figures it shows against the caches' own, the invalidate form and its effect, and proof that
 * nothing but a POST with the page's token, from someone the site's authentication lets in, changes
 * anything.
 */
import { integrationOf } from '../src/cache/integration.js';
import { mkdirSync } from 'node:fs';
import nunjucks from 'nunjucks';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pageStats, pageVariants, resetPageStats } from '../src/http/index.js';
import { installCacheTag, render } from '../src/engines/nunjucks.js';
import { caches, configureCaches, fragmentStats } from '../src/index.js';
import { resetFragmentStats } from '../src/fragments/index.js';
import { eventually } from './setup/eventually.js';
import { chromiumPath } from './setup/chromium.js';
import { closedPort } from './setup/closed-port.js';
import { type RedisServer, startRedisServer } from './setup/redis.js';
import { DASHBOARD_MOUNTS, type DashboardSite, type SitePages, TITLE } from './http/dashboard-sites.js';

let redis: RedisServer;
let browser: Browser;
let pages: SitePages;

beforeAll(async () => {
  redis = await startRedisServer();
  await configureCaches({
    default: { backend: 'locmem', location: 'dashboard-test' },
    pages: { backend: 'redis', location: redis.url, keyPrefix: 'dashboard-pages' },
    // A server that died: nothing listens on its port.
    gone: {
      backend: 'redis',
      location: `redis://127.0.0.1:${await closedPort()}`,
      options: { failOpen: true, timeoutMs: 50 },
      logger: { warn: () => undefined },
    },
  });
  const templates: Record<string, string> = {
    item: '<h1>Item {{ id }}</h1>{% cache 600 card id tags=["item:" + id] %}<p>card of {{ id }}</p>{% endcache %}',
    themed: '{% cache 600 "banner" contexts="cookie:theme" %}<p>{{ theme }} banner</p>{% endcache %}',
  };
  const loader = { getSource: (name: string) => ({ src: templates[name]!, path: name, noCache: false }) } as unknown as nunjucks.ILoader;
  const env = installCacheTag(new nunjucks.Environment(loader, { autoescape: true }));
  pages = {
    item: (id) => render(env, 'item', { id }),
    themed: (cookie) => render(env, 'themed', { theme: /theme=(\w+)/.exec(cookie ?? '')?.[1] }),
  };
  browser = await puppeteer.launch({ executablePath: chromiumPath(), headless: true, args: ['--no-sandbox', '--disable-gpu'] });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await caches.closeAll();
  await redis?.stop();
});

const STAFF = { Cookie: 'staff=yes' };

/** The text of a cell the dashboard shows, found by its row and field. */
const cell = (page: Page, row: string, field: string) => page.$eval(`${row} td[data-field="${field}"]`, (element) => element.textContent?.trim() ?? '');

/** What the page cache answered a GET of each path, counted as the dashboard counts them: by the route `routeOf` names. */
function countsByRoute(visits: Array<[path: string, outcome: 'hits' | 'misses']>, routeOf: (path: string) => string) {
  const counts = new Map<string, { hits: number; misses: number; staleHits: number; paths: Set<string> }>();
  for (const [path, outcome] of visits) {
    const route = routeOf(path);
    if (!counts.has(route)) counts.set(route, { hits: 0, misses: 0, staleHits: 0, paths: new Set() });
    counts.get(route)![outcome]++;
    counts.get(route)!.paths.add(path);
  }
  return counts;
}

describe.each(DASHBOARD_MOUNTS)('the cache dashboard in a browser, on $name', ({ name, start, routeOf }) => {
  let site: DashboardSite;
  let base: string;

  beforeAll(async () => {
    // Each framework's site starts from empty caches: a page or fragment another one stored would be a hit here.
    await caches.get('default').clear();
    await caches.get('pages').clear();
    site = await start(pages);
    base = site.base;
  }, 30_000);

  afterAll(() => site?.close());

  /** A browser tab whose visitor the site's authentication lets in. */
  async function staffPage(): Promise<Page> {
    const page = await browser.newPage();
    await page.setCookie({ name: 'staff', value: 'yes', url: base });
    return page;
  }

  it('shows what the caches counted, invalidates tags from its form, and changes nothing on a GET', async () => {
    resetPageStats();
    resetFragmentStats();
    for (const cache of caches.all()) cache.resetStats();
    const local = caches.get('default');
    await local.set('news-page', 'cached', { tags: ['news'] });
    await local.set('other', 'kept');
    await local.get('news-page');
    await local.get('absent');
    for (const path of ['/items/1', '/items/2']) expect((await fetch(`${base}${path}`)).headers.get('x-cache')).toBe('MISS');
    // A page is stored after its response has gone: its list of variants and itself.
    await eventually(() => expect(caches.get('pages').stats().sets).toBe(4));
    for (const path of ['/items/1', '/items/2', '/items/1']) expect((await fetch(`${base}${path}`)).headers.get('x-cache')).toBe('HIT');
    const visits = countsByRoute(
      [
        ['/items/1', 'misses'],
        ['/items/2', 'misses'],
        ['/items/1', 'hits'],
        ['/items/2', 'hits'],
        ['/items/1', 'hits'],
      ],
      routeOf,
    );

    const page = await staffPage();
    await page.setViewport({ width: 1200, height: 900 });
    const loaded = await page.goto(`${base}/_cache/`);
    expect(loaded?.status()).toBe(200);
    expect(loaded?.headers()['cache-control']).toBe('no-store');
    expect(await page.title()).toBe(TITLE);
    for (const alias of ['default', 'pages']) {
      const stats = caches.get(alias).stats();
      for (const field of ['hits', 'misses', 'staleHits', 'sets', 'deletes', 'errors'] as const) {
        expect(await cell(page, `tr[data-alias="${alias}"]`, field), `${alias} ${field}`).toBe(String(stats[field]));
      }
    }
    expect(await cell(page, 'tr[data-alias="default"]', 'entries')).toBe(String(await integrationOf(caches.get('default')).countEntries()));
    for (const [route, { paths, ...counts }] of visits) {
      expect(pageStats().get(route)).toEqual(counts);
      expect(await cell(page, `#routes tr[data-name="${route}"]`, 'hits')).toBe(String(counts.hits));
      expect(await cell(page, `#routes tr[data-name="${route}"]`, 'misses')).toBe(String(counts.misses));
      expect(await cell(page, `#routes tr[data-name="${route}"]`, 'variants')).toBe(String(paths.size));
      expect(await cell(page, `#routes tr[data-name="${route}"]`, 'variesOn')).toBe('nothing');
    }
    const card = fragmentStats().get('card')!;
    expect(await cell(page, '#fragments tr[data-name="card"]', 'misses')).toBe(String(card.misses));
    expect(card.misses).toBe(2);

    // The form: invalidate the tag 'news' in the locmem cache.
    await page.select('#invalidate-tags select[name="alias"]', 'default');
    await page.type('#invalidate-tags input[name="tags"]', 'news');
    const [redirected] = await Promise.all([page.waitForNavigation(), page.click('#invalidate-tags button')]);
    expect(
      redirected
        ?.request()
        .redirectChain()
        .map((request) => request.response()?.status()),
    ).toEqual([303]);
    expect(await page.$eval('.flash', (element) => element.textContent)).toBe("Invalidated tags news in cache 'default'.");
    expect(await page.content()).toContain('tags news');
    expect(await local.get('news-page')).toBeUndefined();
    expect(await local.get('other')).toBe('kept');

    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: `test-results/dashboard-${name.replace(/\W/g, '').toLowerCase()}.png`, fullPage: true });
    await page.close();
  });

  it('shows per route what its pages vary on and how many variants were stored', async () => {
    resetPageStats();
    const visits: Array<[path: string, theme: string]> = [
      ['/themed/1', 'dark'],
      ['/themed/1', 'light'],
      ['/themed/2', 'dark'],
    ];
    for (const [path, theme] of visits) {
      expect((await fetch(`${base}${path}`, { headers: { Cookie: `theme=${theme}; session=${path}${theme}` } })).headers.get('x-cache')).toBe('MISS');
    }
    const variants = countsByRoute(
      visits.map(([path]) => [path, 'misses']),
      routeOf,
    );
    await eventually(() =>
      expect([...variants.keys()].map((route) => pageVariants().get(route)?.variants)).toEqual([...variants.values()].map((route) => route.misses)),
    );
    const page = await staffPage();
    await page.goto(`${base}/_cache/`);
    for (const [route, { misses }] of variants) {
      expect(await cell(page, `#routes tr[data-name="${route}"]`, 'variesOn')).toBe('cookie:theme');
      expect(await cell(page, `#routes tr[data-name="${route}"]`, 'variants')).toBe(String(misses));
    }
    await page.close();
  });

  it('changes nothing on a GET, nor on a POST without its token, nor without actions: true, nor with a body larger than its forms', async () => {
    const local = caches.get('default');
    await local.set('guarded', 'still here', { tags: ['guarded'] });
    for (const path of ['/_cache/', '/_cache/invalidate-tags?alias=default&tags=guarded', '/_cache/clear?alias=default', '/watch/']) {
      const reply = await fetch(`${base}${path}`, { headers: STAFF });
      expect([200, 405], path).toContain(reply.status);
    }
    const post = (path: string, body: string) =>
      fetch(`${base}${path}`, { method: 'POST', headers: { ...STAFF, 'Content-Type': 'application/x-www-form-urlencoded' }, body });
    expect((await post('/_cache/clear', 'alias=default&token=forged')).status).toBe(403);
    const token = /name="token" value="([^"]+)"/.exec(await (await fetch(`${base}/_cache/`, { headers: STAFF })).text())![1]!;
    expect((await post('/_cache/clear', `alias=default&token=${token}&padding=${'x'.repeat(20_000)}`)).status).toBe(413);
    const page = await staffPage();
    await page.goto(`${base}/watch/`);
    expect(await page.$('h1')).not.toBeNull();
    expect(await page.$('form')).toBeNull();
    await page.close();
    expect((await post('/watch/clear', `alias=default&token=${token}`)).status).toBe(404);
    expect(await local.get('guarded')).toBe('still here');
  });

  it("shows nothing and changes nothing for a visitor the site's authentication refuses, its token notwithstanding", async () => {
    const local = caches.get('default');
    await local.set('guarded', 'still here');
    const token = /name="token" value="([^"]+)"/.exec(await (await fetch(`${base}/_cache/`, { headers: STAFF })).text())![1]!;
    for (const path of ['/_cache', '/_cache/', '/watch/']) expect((await fetch(`${base}${path}`)).status, path).toBe(403);
    const stranger = await fetch(`${base}/_cache/clear`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: `alias=default&token=${token}`,
    });
    expect(stranger.status).toBe(403);
    expect(await local.get('guarded')).toBe('still here');
  });

  it.each(['/_cache', '/_cache/'])('works from %s: its form posts to the dashboard and comes back to it', async (path) => {
    const local = caches.get('default');
    await local.set('mounted', 'cached', { tags: ['mounted'] });
    const page = await staffPage();
    expect((await page.goto(`${base}${path}`))?.status()).toBe(200);
    await page.select('#invalidate-tags select[name="alias"]', 'default');
    await page.type('#invalidate-tags input[name="tags"]', 'mounted');
    await Promise.all([page.waitForNavigation(), page.click('#invalidate-tags button')]);
    expect(new URL(page.url()).pathname).toBe('/_cache/');
    expect(await page.$eval('.flash', (element) => element.textContent)).toBe("Invalidated tags mounted in cache 'default'.");
    expect(await local.get('mounted')).toBeUndefined();
    await page.close();
  });

  it('clears a cache from its form', async () => {
    const local = caches.get('default');
    await local.set('cleared', 'cached');
    const page = await staffPage();
    await page.goto(`${base}/_cache/`);
    await page.select('#clear select[name="alias"]', 'default');
    await Promise.all([page.waitForNavigation(), page.click('#clear button')]);
    expect(await page.$eval('.flash', (element) => element.textContent)).toBe("Cleared cache 'default'.");
    expect(await local.get('cleared')).toBeUndefined();
    await page.close();
  });

  it('says in words how each server is: healthy, or open since when', async () => {
    const gone = caches.get('gone');
    // Failures in a row open its breaker: calls answer at once without it.
    for (let i = 0; i < 3; i++) await gone.get('anything');
    await caches.get('pages').get('anything');
    const [down] = (gone as unknown as { health(): Array<{ server: string; state: string; openedAt: number }> }).health();
    expect(down!.state).toBe('open');
    const [up] = (caches.get('pages') as unknown as { health(): Array<{ server: string }> }).health();
    const page = await staffPage();
    await page.goto(`${base}/_cache/`);
    const since = new Date(down!.openedAt).toISOString().replace('T', ' ').slice(0, 19);
    expect(await cell(page, 'tr[data-alias="gone"]', 'servers')).toBe(`${down!.server}: open since ${since} UTC`);
    expect(await cell(page, 'tr[data-alias="pages"]', 'servers')).toBe(`${up!.server}: healthy`);
    expect(await cell(page, 'tr[data-alias="default"]', 'servers')).toBe('in process');
    await page.close();
  });
});
