/**
 * The demo site over real HTTP on a free loopback port, on its embedded configuration (locmem for
 * pages and fragments, a file cache in a temp dir for queries): what each level of caching saves,
 * counted in slow queries and read from X-Cache, and what an edit invalidates.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { caches } from 'cachegrain';
import { demoFragmentKeys } from './demo-keys.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { demoCaches } from '../examples/demo/caches.js';
import { PER_PAGE, recommendersOf, sectionOf, sectionPageOf, sectionPath } from '../examples/demo/catalogue.js';
import { totals } from '../examples/demo/metrics.js';
import { createDemoApp } from '../examples/demo/server.js';
import { listen, type Reply, send } from './http/client.js';

// Before the catalogue is imported: its queries sleep this long (the counts, not the time, show the savings).
vi.hoisted(() => {
  process.env.DEMO_QUERY_DELAY_MS = '5';
});

const cacheDir = mkdtempSync(join(tmpdir(), 'cachegrain-demo-test-'));
let base: string;
let close: () => Promise<void>;

beforeAll(async () => {
  const app = await createDemoApp({ caches: demoCaches({ DEMO_CACHE_DIR: cacheDir }) });
  ({ url: base, close } = await listen(app));
});

afterAll(async () => {
  await close();
  await caches.closeAll();
  rmSync(cacheDir, { recursive: true, force: true });
});

/** GETs a path and answers the reply with how many slow queries it ran. */
async function visit(path: string, headers: Record<string, string> = {}): Promise<Reply & { queries: number }> {
  const before = totals.queries;
  const reply = await send(base, path, { headers });
  expect(reply.status, `GET ${path}`).toBeLessThan(400);
  return { ...reply, queries: totals.queries - before };
}

const fragments = () => caches.get('template_fragments');
/** Whether fragment `name` of item `id` is stored, by whichever demo template holds it (their keys carry its digest). */
async function has(name: string, id: number): Promise<boolean> {
  for (const key of demoFragmentKeys(name, [id])) if (await fragments().hasKey(key)) return true;
  return false;
}

describe('the per-site cache and the fragments under it', () => {
  it('runs the slow queries on a first visit (a miss) and none on the second (a hit)', async () => {
    const first = await visit('/books');
    expect(first.headers['x-cache']).toBe('MISS');
    expect(first.queries).toBe(1 + PER_PAGE); // the list, and the recommendations of each card
    expect(first.text).toContain('Rendered by Nunjucks');
    expect(first.text.match(/class="card"/g)).toHaveLength(PER_PAGE);

    const second = await visit('/books');
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.queries).toBe(0);
    expect(second.text).toBe(first.text);
  });

  it('greets another visitor by name and shows their cart from the same cached page: the greeting and the cart are holes', async () => {
    const bob = await visit('/books', { Cookie: 'visitor=bob' });
    expect(bob.headers['x-cache']).toBe('HIT');
    expect(bob.text).toContain('Hello, bob!');
    expect(bob.text).toContain('Cart: 0 items');
    expect(bob.queries).toBe(0);
    // One visitor's page downstream, though the page cache shares it.
    expect(bob.headers['cache-control']).toMatch(/\bprivate\b/);
    const added = await send(base, '/cart', {
      method: 'POST',
      headers: { Cookie: 'visitor=bob', 'Content-Type': 'application/x-www-form-urlencoded', Referer: `${base}/books` },
      body: 'item=3',
    });
    expect([added.status, added.headers['location']]).toEqual([303, '/books']);
    const again = await visit('/books', { Cookie: 'visitor=bob' });
    expect([again.headers['x-cache'], again.queries]).toEqual(['HIT', 0]);
    expect(again.text).toContain('Cart: 1 item<');
    const ann = await visit('/books', { Cookie: 'visitor=ann' });
    expect([ann.headers['x-cache'], ann.text.includes('Hello, ann!'), ann.text.includes('Cart: 0 items')]).toEqual(['HIT', true, true]);
    expect(ann.text).not.toContain('bob');
  });

  it.each([
    ['/music', 'Handlebars'],
    ['/films', 'Eta'],
    ['/books?page=2', 'Nunjucks'],
  ])('renders %s with %s, fragments and all', async (path, engine) => {
    const page = await visit(path, { Cookie: 'visitor=ann' });
    expect(page.headers['x-cache']).toBe('MISS');
    expect(page.text).toContain(`Rendered by ${engine}`);
    expect(page.text).toContain('Hello, ann!');
    expect(page.text.match(/class="card"/g)).toHaveLength(PER_PAGE);
    expect(page.text.match(/class="recs"/g)).toHaveLength(PER_PAGE);
    expect(page.queries).toBe(1 + PER_PAGE);
    expect((await visit(path, { Cookie: 'visitor=ann' })).queries).toBe(0);
  });

  it.each([
    ['/music', 'Handlebars'],
    ['/films', 'Eta'],
    ['/books', 'Nunjucks'],
  ])('counts in the footer of %s (%s) the fragments a render found, whether first read or kept from the render before', async (path) => {
    // Each query string is a page of its own to the page cache; the fragments are the same.
    const footers = [];
    for (const run of [1, 2, 3]) {
      const page = await visit(`${path}?footer=${run}`);
      expect(page.headers['x-cache']).toBe('MISS');
      footers.push(/fragments: (\d+) hit, (\d+) missed/.exec(page.text)!.slice(1).map(Number));
    }
    const [, second, third] = footers;
    expect(second![0]).toBeGreaterThanOrEqual(PER_PAGE);
    expect(second![1]).toBe(0);
    expect(third).toEqual(second);
  });

  it('answers 304 to If-None-Match, from the cache', async () => {
    const first = await visit('/items/6');
    const etag = first.headers['etag']!;
    expect(etag).toMatch(/^"[0-9a-f]+"$/);
    const notModified = await visit('/items/6', { 'If-None-Match': etag });
    expect(notModified.status).toBe(304);
    expect(notModified.headers['x-cache']).toBe('HIT');
    expect(notModified.body).toHaveLength(0);
  });
});

describe('pages that vary on a theme and a role, not on the whole Cookie header', () => {
  it('stores one page per theme: a visitor with another session and the same theme gets the same page', async () => {
    const dark = await visit('/films', { Cookie: 'theme=dark; session=first' });
    expect(dark.headers['x-cache']).toBe('MISS');
    expect(dark.text).toContain('<body class="theme-dark">');
    expect(dark.headers['x-cache-contexts']).toBe('cookie:theme, user.roles');
    expect(dark.headers.vary).toContain('Cookie');
    const again = await visit('/films', { Cookie: 'session=second; theme=dark' });
    expect(again.headers['x-cache']).toBe('HIT');
    expect(again.text).toBe(dark.text);
    const light = await visit('/films', { Cookie: 'theme=light; session=third' });
    expect(light.headers['x-cache']).toBe('MISS');
    expect(light.text).toContain('<body class="theme-light">');
  });

  it('shows staff their menu through a fragment that varies on the role, and never shows it to a reader', async () => {
    const staff = await visit('/music', { Cookie: 'role=staff; session=s1' });
    expect(staff.text).toContain('Staff menu');
    const reader = await visit('/music', { Cookie: 'session=r1' });
    expect(reader.text).not.toContain('Staff menu');
    expect(reader.text).toContain('Reading as a visitor.');
    expect((await visit('/music', { Cookie: 'role=staff; session=s2' })).headers['x-cache']).toBe('HIT');
    expect((await visit('/books', { Cookie: 'role=staff' })).text).toContain('Staff menu');
  });
});

describe('the per-view cache and neverCache', () => {
  it('caches the JSON API with cachePage, ETag and all', async () => {
    const first = await visit('/api/items/9');
    expect(first.headers['x-cache']).toBe('MISS');
    expect(first.queries).toBe(1);
    expect(JSON.parse(first.text).item.id).toBe(9);
    const second = await visit('/api/items/9', { 'If-None-Match': first.headers['etag']! });
    expect(second.status).toBe(304);
    expect(second.queries).toBe(0);
  });

  it('never caches /stats', async () => {
    const json = { Accept: 'application/json' };
    const before = await visit('/stats', json);
    // It passes the site's page cache, which says why it did not keep it.
    expect(before.headers['x-cache']).toBe('BYPASS');
    expect(before.headers['x-cache-reason']).toMatch(/^Cache-Control: (no-cache|no-store|private)$/);
    const edit = await visit('/items/12/edit');
    expect(edit.headers['x-cache']).toBe('BYPASS');
    expect(before.headers['cache-control']).toContain('no-store');
    await visit('/items/12');
    const after = await visit('/stats', json);
    expect(after.headers['cache-control']).toContain('no-store');
    expect(JSON.parse(after.text).queries).toBeGreaterThan(JSON.parse(before.text).queries);
    expect(JSON.parse(after.text).mostViewed).toContainEqual({ id: 12, views: 1 });
  });
});

describe('an edit', () => {
  it('invalidates exactly the fragments and pages that show the item', async () => {
    const edited = 3;
    const recommender = recommendersOf(edited)[0]!;
    // A book whose page does not show the edited one, and an item and a page of another section.
    const bystander = Array.from({ length: 300 }, (_, index) => index + 1).find(
      (id) => sectionOf(id) === 'books' && id !== edited && !recommendersOf(edited).includes(id),
    )!;
    const film = 2;
    for (const path of [`/items/${edited}`, `/items/${recommender}`, `/items/${bystander}`, `/items/${film}`, '/films']) {
      await visit(path);
    }
    for (const [name, id] of [
      ['card', edited],
      ['detail', edited],
      ['recommendations', recommender],
      ['detail', bystander],
      ['card', bystander],
    ] as const) {
      expect(await has(name, id), `${name} ${id} before the edit`).toBe(true);
    }

    const saved = await send(base, `/items/${edited}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'title=A+Renamed+Book&price=12.50&description=Rewritten',
    });
    expect(saved.status).toBe(303);
    expect(saved.headers['location']).toBe(`/items/${edited}`);

    // Its fragments, and the recommendations that list it with the cards and details holding them, are gone.
    for (const [name, id] of [
      ['card', edited],
      ['detail', edited],
      ['recommendations', recommender],
      ['card', recommender],
      ['detail', recommender],
    ] as const) {
      expect(await has(name, id), `${name} ${id} after the edit`).toBe(false);
    }
    // Its own recommendations do not show it, and the bystander's fragments are untouched.
    for (const [name, id] of [
      ['recommendations', edited],
      ['detail', bystander],
      ['card', bystander],
      ['recommendations', bystander],
    ] as const) {
      expect(await has(name, id), `${name} ${id} after the edit`).toBe(true);
    }

    const page = await visit(`/items/${edited}`);
    expect(page.headers['x-cache']).toBe('MISS');
    expect(page.text).toContain('A Renamed Book');
    expect(page.queries).toBe(1); // the item; its nested recommendations still hit
    const listing = await visit(sectionPath('books', sectionPageOf(edited)));
    expect(listing.headers['x-cache']).toBe('MISS');
    expect(listing.text).toContain('A Renamed Book');
    const recommending = await visit(`/items/${recommender}`);
    expect(recommending.headers['x-cache']).toBe('MISS');
    expect(recommending.text).toContain('A Renamed Book');

    for (const path of [`/items/${bystander}`, `/items/${film}`, '/films']) {
      const untouched = await visit(path);
      expect(untouched.headers['x-cache'], path).toBe('HIT');
      expect(untouched.queries, path).toBe(0);
    }
    expect(await caches.get('default').get(`edits:${edited}`)).toBe(1);
  });

  it('refuses a form without a title or with a bad price, naming what is missing', async () => {
    const refused = await send(base, '/items/4', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'title=&price=x' });
    expect(refused.status).toBe(400);
    expect(refused.text).toBe('A title and a non-negative price are needed.');
  });
});
