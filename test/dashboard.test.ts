/**
 * The cache dashboard as a person uses it: a real Express site with a page cache on a real Redis
 * and fragments on locmem, some traffic over HTTP, then the dashboard in Debian's chromium (driven
 * by puppeteer-core): the figures it shows against the caches' own, the invalidate form and its
 * effect, and proof that nothing but a POST with the page's token changes anything.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import nunjucks from 'nunjucks';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheDashboard, cacheMiddleware, pageStats, resetPageStats } from '../adapters/express.js';
import { pageVariants } from '../src/http/index.js';
import { installCacheTag, render } from '../adapters/nunjucks.js';
import { caches, configureCaches, fragmentStats, resetFragmentStats } from '../src/index.js';
import { eventually } from './setup/eventually.js';
import { closedPort } from './setup/closed-port.js';
import { type RedisServer, startRedisServer } from './setup/redis.js';

/** Debian's chromium: a missing one fails the test naming the package, never skips it. */
function chromiumPath(): string {
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
    } catch {
      // try the next name
    }
  }
  throw new Error("the dashboard test needs a browser: install Debian's package 'chromium' (apt-get install -y chromium)");
}

let redis: RedisServer;
let server: Server;
let base: string;
let browser: Browser;

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
  const app = express();
  // The browser asks for one; answered before the page cache, it leaves the counts to the test's traffic.
  app.get('/favicon.ico', (_req, res) => void res.status(204).end());
  app.use('/_cache', cacheDashboard({ actions: true, title: 'Test caches' }));
  app.use('/watch', cacheDashboard());
  app.use(cacheMiddleware({ cache: 'pages', seconds: 60 }));
  app.get('/items/:id', async (req, res) => void res.type('html').send(await render(env, 'item', { id: req.params.id })));
  app.get(
    '/themed/:id',
    async (req, res) => void res.type('html').send(await render(env, 'themed', { theme: /theme=(\w+)/.exec(req.headers.cookie ?? '')?.[1] })),
  );
  server = await new Promise<Server>((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await puppeteer.launch({ executablePath: chromiumPath(), headless: true, args: ['--no-sandbox', '--disable-gpu'] });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => server?.close(resolve));
  await caches.closeAll();
  await redis?.stop();
});

/** The text of a cell the dashboard shows, found by its row and field. */
const cell = (page: Page, row: string, field: string) => page.$eval(`${row} td[data-field="${field}"]`, (element) => element.textContent?.trim() ?? '');

describe('the cache dashboard in a browser', () => {
  it('shows what the caches counted, invalidates tags from its form, and changes nothing on a GET', async () => {
    resetPageStats();
    resetFragmentStats();
    for (const cache of caches.all()) cache.resetStats();
    const local = caches.get('default');
    await local.set('news-page', 'cached', { tags: ['news'] });
    await local.set('other', 'kept');
    await local.get('news-page');
    await local.get('absent');
    for (const path of ['/items/1', '/items/2']) expect((await fetch(`${base}${path}`)).status).toBe(200);
    // A page is stored after its response has gone: its list of variants and itself.
    await eventually(() => expect(caches.get('pages').stats().sets).toBe(4));
    for (const path of ['/items/1', '/items/2', '/items/1']) expect((await fetch(`${base}${path}`)).headers.get('x-cache')).toBe('HIT');

    const page = await browser.newPage();
    await page.setViewport({ width: 1200, height: 900 });
    const loaded = await page.goto(`${base}/_cache/`);
    expect(loaded?.status()).toBe(200);
    expect(loaded?.headers()['cache-control']).toBe('no-store');
    for (const alias of ['default', 'pages']) {
      const stats = caches.get(alias).stats();
      for (const field of ['hits', 'misses', 'staleHits', 'sets', 'deletes', 'errors'] as const) {
        expect(await cell(page, `tr[data-alias="${alias}"]`, field), `${alias} ${field}`).toBe(String(stats[field]));
      }
    }
    expect(await cell(page, 'tr[data-alias="default"]', 'entries')).toBe(String(await caches.get('default').countEntries()));
    const route = pageStats().get('/items/:id')!;
    expect(route).toEqual({ hits: 3, misses: 2, staleHits: 0 });
    expect(await cell(page, '#routes tr[data-name="/items/:id"]', 'hits')).toBe('3');
    expect(await cell(page, '#routes tr[data-name="/items/:id"]', 'misses')).toBe('2');
    expect(await cell(page, '#routes tr[data-name="/items/:id"]', 'variants')).toBe('2');
    expect(await cell(page, '#routes tr[data-name="/items/:id"]', 'variesOn')).toBe('nothing');
    const card = fragmentStats().get('card')!;
    expect(await cell(page, '#fragments tr[data-name="card"]', 'misses')).toBe(String(card.misses));
    expect(card.misses).toBe(2);

    // The form: invalidate the tag 'news' in the locmem cache.
    await page.select('#invalidate-tags select[name="alias"]', 'default');
    await page.type('#invalidate-tags input[name="tags"]', 'news');
    await Promise.all([page.waitForNavigation(), page.click('#invalidate-tags button')]);
    expect(await page.$eval('.flash', (element) => element.textContent)).toBe("Invalidated tags news in cache 'default'.");
    expect(await page.content()).toContain('tags news');
    expect(await local.get('news-page')).toBeUndefined();
    expect(await local.get('other')).toBe('kept');

    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/dashboard.png', fullPage: true });
    await page.close();
  });

  it('shows per route what its pages vary on and how many variants were stored', async () => {
    resetPageStats();
    for (const [path, theme] of [
      ['/themed/1', 'dark'],
      ['/themed/1', 'light'],
      ['/themed/2', 'dark'],
    ] as const) {
      expect((await fetch(`${base}${path}`, { headers: { Cookie: `theme=${theme}; session=${path}${theme}` } })).headers.get('x-cache')).toBe('MISS');
    }
    await eventually(() => expect(pageVariants().get('/themed/:id')?.variants).toBe(3));
    const page = await browser.newPage();
    await page.goto(`${base}/_cache/`);
    expect(await cell(page, '#routes tr[data-name="/themed/:id"]', 'variesOn')).toBe('cookie:theme');
    expect(await cell(page, '#routes tr[data-name="/themed/:id"]', 'variants')).toBe('3');
    await page.close();
  });

  it('changes nothing on a GET, nor on a POST without its token, nor without actions: true', async () => {
    const local = caches.get('default');
    await local.set('guarded', 'still here', { tags: ['guarded'] });
    for (const path of ['/_cache/', '/_cache/invalidate-tags?alias=default&tags=guarded', '/_cache/clear?alias=default', '/watch/']) {
      const reply = await fetch(`${base}${path}`);
      expect([200, 405]).toContain(reply.status);
    }
    const forged = await fetch(`${base}/_cache/clear`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'alias=default&token=forged',
    });
    expect(forged.status).toBe(403);
    const page = await browser.newPage();
    await page.goto(`${base}/watch/`);
    expect(await page.$('form')).toBeNull();
    await page.close();
    const readOnly = await fetch(`${base}/watch/clear`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'alias=default',
    });
    expect(readOnly.status).toBe(404);
    expect(await local.get('guarded')).toBe('still here');
  });

  it.each(['/_cache', '/_cache/'])('works from %s: its form posts to the dashboard and comes back to it', async (path) => {
    const local = caches.get('default');
    await local.set('mounted', 'cached', { tags: ['mounted'] });
    const page = await browser.newPage();
    expect((await page.goto(`${base}${path}`))?.status()).toBe(200);
    await page.select('#invalidate-tags select[name="alias"]', 'default');
    await page.type('#invalidate-tags input[name="tags"]', 'mounted');
    await Promise.all([page.waitForNavigation(), page.click('#invalidate-tags button')]);
    expect(new URL(page.url()).pathname).toBe('/_cache/');
    expect(await page.$eval('.flash', (element) => element.textContent)).toBe("Invalidated tags mounted in cache 'default'.");
    expect(await local.get('mounted')).toBeUndefined();
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
    const page = await browser.newPage();
    await page.goto(`${base}/_cache/`);
    const since = new Date(down!.openedAt).toISOString().replace('T', ' ').slice(0, 19);
    expect(await cell(page, 'tr[data-alias="gone"]', 'servers')).toBe(`${down!.server}: open since ${since} UTC`);
    expect(await cell(page, 'tr[data-alias="pages"]', 'servers')).toBe(`${up!.server}: healthy`);
    expect(await cell(page, 'tr[data-alias="default"]', 'servers')).toBe('in process');
    await page.close();
  });
});
