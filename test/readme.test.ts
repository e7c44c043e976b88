/**
 * The manual's examples run as written, from a folder of their own with cachegrain installed: each
 * block README.md or a guide of docs/ names a file for is that file, and every such block is one a
 * test of the suite runs.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { root } from './setup/manual.js';
import { readmeApp, readmeFiles, runInReadmeApp, startReadmeApp, whereShown } from './setup/readme.js';

describe(`${whereShown('app.mjs')}: Quick start`, () => {
  const app = readmeApp(['app.mjs', 'views/home.njk']);
  afterAll(() => app.remove());

  it('answers MISS, then HIT with the same page, and keeps the fragment inside it', async () => {
    const server = await startReadmeApp(app.dir, 'app.mjs');
    try {
      const first = await fetch(`${server.url}/`);
      const firstBody = await first.text();
      expect(first.headers.get('x-cache')).toBe('MISS');
      expect(firstBody).toMatch(/<h1>Page rendered at .+<\/h1>/);
      expect(firstBody).toMatch(/<aside>Sidebar rendered at .+<\/aside>/);
      const second = await fetch(`${server.url}/`);
      expect(second.headers.get('x-cache')).toBe('HIT');
      expect(await second.text()).toBe(firstBody);
    } finally {
      await server.stop();
    }
  }, 30_000);
});

describe(`${whereShown('shop.mjs')}: where to mount the page cache (a shop)`, () => {
  const app = readmeApp(['shop.mjs', 'views/shop.njk']);
  afterAll(() => app.remove());

  it('stores the page once per kind of visitor and fills each HIT with that visitor’s cart', async () => {
    const server = await startReadmeApp(app.dir, 'shop.mjs');
    // Who visits, in order, and what each gets: the page cache's answer, the menu of their kind, their own cart.
    const visits: Array<[cookie: string, cache: string, menu: string, cart: string]> = [
      ['cart=1', 'MISS', 'Shop · Help', '1 items in your cart'],
      ['kind=staff; cart=2', 'MISS', 'Orders · Stock', '2 items in your cart'],
      ['kind=staff; cart=5', 'HIT', 'Orders · Stock', '5 items in your cart'],
      ['cart=3', 'HIT', 'Shop · Help', '3 items in your cart'],
    ];
    try {
      for (const [cookie, cache, menu, cart] of visits) {
        const response = await fetch(`${server.url}/`, { headers: { cookie } });
        const body = await response.text();
        expect([response.headers.get('x-cache'), body.includes(`<nav>${menu}</nav>`), body.includes(cart)], cookie).toEqual([cache, true, true]);
      }
    } finally {
      await server.stop();
    }
  }, 30_000);
});

describe(`${whereShown('streamed.mjs')}: streamed holes`, () => {
  const app = readmeApp(['streamed.mjs', 'views/product.njk']);
  afterAll(() => app.remove());

  it('streams the holes in place to a first visit and to a crawler, after the shell to a browser that ran the script, which it serves', async () => {
    const server = await startReadmeApp(app.dir, 'streamed.mjs');
    try {
      const first = await fetch(`${server.url}/`, { headers: { cookie: 'cart=2' } });
      const page = await first.text();
      expect([first.headers.get('x-cache'), first.headers.get('cache-control'), first.headers.get('x-accel-buffering')]).toEqual([
        'MISS',
        'max-age=600, private',
        'no',
      ]);
      expect(page).toContain('<header>Cart: 2 items</header>');
      expect(page).toMatch(
        /<aside><ul><li>Merino Beanie<\/li><li>Waxed Anorak<\/li><\/ul><\/aside>\n<script src="(\/-\/cachegrain\/holes-\w+\.js)" async><\/script><\/body>/,
      );
      const script = await fetch(`${server.url}${/<script src="([^"]+)"/.exec(page)![1]!}`);
      expect([script.status, script.headers.get('content-type')]).toEqual([200, 'text/javascript; charset=utf-8']);
      expect(await script.text()).toContain('cachegrain-holes=script');

      const marked = await fetch(`${server.url}/`, { headers: { cookie: 'cart=3; cachegrain-holes=script' } });
      const streamed = await marked.text();
      const nonce = /data-cachegrain-holes="([\w-]+)"/.exec(streamed)?.[1];
      expect(marked.headers.get('x-cache')).toBe('HIT');
      expect(streamed).toContain(`<header><cachegrain-hole id="${nonce}-0"><a href="/cart">Cart</a></cachegrain-hole></header>`);
      expect(streamed).toContain(`<template data-cachegrain-hole="${nonce}-0">Cart: 3 items</template>`);
      expect(streamed).toContain(`<template data-cachegrain-hole="${nonce}-1"><ul><li>Merino Beanie</li><li>Waxed Anorak</li></ul></template>`);

      const crawler = await fetch(`${server.url}/`, { headers: { cookie: 'cachegrain-holes=script', 'user-agent': 'Googlebot/2.1' } });
      expect(await crawler.text()).toContain('<header>Cart: 0 items</header>');
    } finally {
      await server.stop();
    }
  }, 30_000);
});

describe(`${whereShown('articles.test.mjs')}: Testing an application that caches`, () => {
  /** How long an example's run is given before it counts as one that does not end. */
  const BUDGET_MS = 60_000;

  it('node:test and Express: both tests pass, and the process ends by itself with code 0', async () => {
    const app = readmeApp(['articles.mjs', 'articles.test.mjs']);
    try {
      const { code, output } = await runInReadmeApp(app.dir, ['--test', 'articles.test.mjs'], BUDGET_MS);
      expect(output).toMatch(/^# pass 2$/m);
      expect(output).toMatch(/^# fail 0$/m);
      expect(code, `node --test (${whereShown('articles.test.mjs')}) still ran ${BUDGET_MS} ms after it started, or failed:\n${output}`).toBe(0);
    } finally {
      app.remove();
    }
  }, 90_000);

  it('vitest and Fastify: both tests pass', async () => {
    const app = readmeApp(['fastify-articles.mjs', 'fastify-articles.test.ts']);
    try {
      const vitest = join(app.dir, 'node_modules', 'vitest', 'vitest.mjs');
      const { code, output } = await runInReadmeApp(app.dir, [vitest, 'run'], BUDGET_MS);
      expect(output, `vitest run (${whereShown('fastify-articles.test.ts')}):\n${output}`).toMatch(/Tests\s+2 passed \(2\)/);
      expect(code, output).toBe(0);
    } finally {
      app.remove();
    }
  }, 90_000);
});

/** Every test file of the suite, by its path from the project root. */
function testFiles(): string[] {
  return readdirSync(join(root, 'test'), { recursive: true, encoding: 'utf8' })
    .filter((path) => path.endsWith('.ts'))
    .map((path) => `test/${path}`);
}

describe('the manual', () => {
  it('shows no named block that no test runs', () => {
    // A test runs a block by naming it to readmeApp or reading it with readmeFiles().get.
    const run = new Set<string>();
    for (const file of testFiles()) {
      const text = readFileSync(join(root, file), 'utf8');
      for (const [, names] of text.matchAll(/readmeApp\(\[([^\]]*)\]/g)) for (const [, name] of names!.matchAll(/'([^']+)'/g)) run.add(name!);
      for (const [, name] of text.matchAll(/readmeFiles\(\)\.get\('([^']+)'\)/g)) run.add(name!);
    }
    const shown = [...readmeFiles().keys()];
    expect(shown.length).toBeGreaterThan(10);
    expect(shown.filter((name) => !run.has(name)).map((name) => `${name} (${whereShown(name)})`)).toEqual([]);
  });
});
