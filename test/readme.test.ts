/**
 * The README's examples run as written, from a folder of their own with cachegrain installed: each
 * block the README names a file for is that file.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readmeApp, runInReadmeApp, startReadmeApp } from './setup/readme.js';

describe('README: Quick start', () => {
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

describe('README: where to mount the page cache (a shop)', () => {
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

describe('README: Testing an application that caches', () => {
  /** How long an example's run is given before it counts as one that does not end. */
  const BUDGET_MS = 60_000;

  it('node:test and Express: both tests pass, and the process ends by itself with code 0', async () => {
    const app = readmeApp(['articles.mjs', 'articles.test.mjs']);
    try {
      const { code, output } = await runInReadmeApp(app.dir, ['--test', 'articles.test.mjs'], BUDGET_MS);
      expect(output).toMatch(/^# pass 2$/m);
      expect(output).toMatch(/^# fail 0$/m);
      expect(code, `node --test still ran ${BUDGET_MS} ms after it started, or failed:\n${output}`).toBe(0);
    } finally {
      app.remove();
    }
  }, 90_000);

  it('vitest and Fastify: both tests pass', async () => {
    const app = readmeApp(['fastify-articles.mjs', 'fastify-articles.test.ts']);
    try {
      const vitest = join(app.dir, 'node_modules', 'vitest', 'vitest.mjs');
      const { code, output } = await runInReadmeApp(app.dir, [vitest, 'run'], BUDGET_MS);
      expect(output).toMatch(/Tests\s+2 passed \(2\)/);
      expect(code, output).toBe(0);
    } finally {
      app.remove();
    }
  }, 90_000);
});
