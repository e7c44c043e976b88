/**
 * The README's examples run as written, from a folder of their own with cachegrain installed: each
 * block the README names a file for is that file.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readmeApp, startReadmeApp } from './setup/readme.js';

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
    const visit = async (cookie: string) => {
      const response = await fetch(`${server.url}/`, { headers: { cookie } });
      return { cache: response.headers.get('x-cache'), body: await response.text() };
    };
    try {
      const anonymous = await visit('cart=1');
      expect(anonymous.cache).toBe('MISS');
      expect(anonymous.body).toContain('<nav>Shop · Help</nav>');
      expect(anonymous.body).toContain('1 items in your cart');

      const staff = await visit('kind=staff; cart=2');
      expect(staff.cache).toBe('MISS');
      expect(staff.body).toContain('<nav>Orders · Stock</nav>');
      expect(staff.body).toContain('2 items in your cart');

      const anotherStaff = await visit('kind=staff; cart=5');
      expect(anotherStaff.cache).toBe('HIT');
      expect(anotherStaff.body).toContain('<nav>Orders · Stock</nav>');
      expect(anotherStaff.body).toContain('5 items in your cart');

      const anotherAnonymous = await visit('cart=3');
      expect(anotherAnonymous.cache).toBe('HIT');
      expect(anotherAnonymous.body).toContain('<nav>Shop · Help</nav>');
      expect(anotherAnonymous.body).toContain('3 items in your cart');
    } finally {
      await server.stop();
    }
  }, 30_000);
});
