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
