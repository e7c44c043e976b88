/**
 * A real nginx running the shipped `edge/nginx.conf` and `edge/nginx-http.conf` in front of a page
 * cache whose `purge` option names it: every copy nginx keeps is one a purge by URL can
 * name, so a page invalidated by path or by its `url:` tag is served fresh for every theme; a page
 * with tags nginx cannot purge by, or varying on more than Cachegrain-Context, is not kept there;
 * and a clear, which nginx's module cannot do, is reported as not purged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addCacheContexts, addCacheTags } from '../../src/frameworks/express.js';
import { invalidatePage } from '../../src/http/index.js';
import { type BaseCache, caches, configureCaches } from '../../src/index.js';
import type { NginxPurge } from '../../src/edge/purge-options.js';
import { EdgePurgeError } from '../../src/edge/purge-queue.js';
import { type Proxy, startShippedNginx } from '../setup/proxies.js';
import { listen, send } from './client.js';
import { bare, cacheMiddleware, type Handler, parseCookies } from './stacks.js';

/** Requests the application received, by path: those nginx did not answer itself. */
const received = new Map<string, number>();
let renders = 0;
let configured = 0;
let app: { url: string; close(): Promise<void> };
let nginx: Proxy;

function site(): Handler {
  const page = bare([cacheMiddleware({ seconds: 300 })], (req, res) => {
    const path = req.url!.split('?')[0]!;
    // A page the same for every theme, kept by nginx once per theme all the same (its key holds the context).
    if (!path.startsWith('/same/')) addCacheContexts(res, 'cookie:theme');
    if (path.startsWith('/tagged/')) addCacheTags(res, 'item:1');
    if (path.startsWith('/vary/')) res.setHeader('Vary', path.split('/')[2]!);
    res.end(`${path} ${parseCookies(req.headers.cookie).theme ?? 'plain'} render ${++renders}`);
  });
  return (req, res) => {
    const path = req.url!.split('?')[0]!;
    received.set(path, (received.get(path) ?? 0) + 1);
    page(req, res);
  };
}

/** A cache whose invalidations purge the nginx started here, with `options`, and what it reports. */
async function purgingNginx(options: Partial<NginxPurge> = {}): Promise<{ cache: BaseCache; reported: Error[] }> {
  const edge: NginxPurge = { edge: 'nginx', url: nginx.url, contexts: ['theme=dark', 'theme=light'], ...options };
  await configureCaches({ default: { backend: 'locmem', location: `edge-nginx-${++configured}`, purge: [edge] } });
  const cache = caches.get('default');
  const reported: Error[] = [];
  cache.on('error', (error: Error) => reported.push(error));
  return { cache, reported };
}

beforeAll(async () => {
  app = await listen(site());
  nginx = await startShippedNginx({ backendPort: Number(new URL(app.url).port) });
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([nginx?.stop(), app?.close()]);
  await caches.closeAll();
});

/** Ten visitors of two themes and one without the cookie ask nginx for `path`: the bodies each got, and how many reached the application. */
async function visitors(path: string, headers: Record<string, string> = {}): Promise<{ bodies: Set<string>; reached: number }> {
  const before = received.get(path) ?? 0;
  const bodies = new Set<string>();
  const cookies = [...Array.from({ length: 10 }, (_, i) => `visitor=v${i}; theme=${i % 2 === 0 ? 'light' : 'dark'}`), 'visitor=none'];
  for (const cookie of cookies) {
    const reply = await send(nginx.url, path, { headers: { ...headers, Cookie: cookie } });
    expect(reply.text).toMatch(new RegExp(`^${path} ${/theme=(\w+)/.exec(cookie)?.[1] ?? 'plain'} render \\d+$`));
    bodies.add(reply.text);
  }
  return { bodies, reached: (received.get(path) ?? 0) - before };
}

describe('nginx with the shipped configuration, purged by the page cache', () => {
  it.each([
    ['invalidatePage', (path: string) => invalidatePage(path)],
    ['its url: tag', (path: string) => caches.get('default').invalidateTags([`url:${path}`])],
  ])("serves a page invalidated by %s fresh, for the copy without a theme and each theme's", async (how, invalidate) => {
    const { cache, reported } = await purgingNginx();
    const path = `/page/${how.replace(/\W/g, '')}`;
    const first = await visitors(path);
    expect([first.reached, (await visitors(path)).reached], 'one copy per theme and one without').toEqual([3, 0]);
    await invalidate(path);
    await cache.purgesSettled();
    const after = await visitors(path);
    expect(after.reached, 'each copy fetched once after the purge').toBe(3);
    expect([...after.bodies].filter((body) => first.bodies.has(body))).toEqual([]);
    expect(reported).toEqual([]);
    // Each copy under either scheme: nginx answers 404 for the https ones, which it does not hold.
    expect(cache.stats()).toMatchObject({ purgesSent: 6, purgesFailed: 0 });
  });

  it('serves a page invalidated by absolute URL fresh on its host, and keeps it on another', async () => {
    const { cache, reported } = await purgingNginx();
    const path = '/page/absolute';
    for (const host of ['127.0.0.1', 'other.example']) expect((await visitors(path, { Host: host })).reached).toBe(3);
    await invalidatePage(`http://127.0.0.1${path}`);
    await cache.purgesSettled();
    expect([(await visitors(path, { Host: '127.0.0.1' })).reached, (await visitors(path, { Host: 'other.example' })).reached]).toEqual([3, 0]);
    expect(reported).toEqual([]);
  });

  it("serves a page invalidated by path fresh on each of the edge's hosts", async () => {
    const { cache, reported } = await purgingNginx({ hosts: ['shop.example', 'www.shop.example'] });
    const path = '/page/hosts';
    for (const host of ['shop.example', 'www.shop.example']) expect((await visitors(path, { Host: host })).reached).toBe(3);
    await invalidatePage(path);
    await cache.purgesSettled();
    for (const host of ['shop.example', 'www.shop.example']) expect((await visitors(path, { Host: host })).reached, host).toBe(3);
    expect(reported).toEqual([]);
  });

  it('keeps no copy of a page carrying a tag it cannot be purged by, so invalidateTags serves it fresh at once', async () => {
    const { cache } = await purgingNginx();
    const path = '/tagged/page';
    // Its MISS and its HIT alike tell nginx to keep nothing.
    for (const status of ['MISS', 'HIT']) {
      const direct = await send(app.url, path);
      expect([direct.headers['x-cache'], direct.headers['x-accel-expires']]).toEqual([status, '0']);
    }
    received.delete(path);
    expect([(await visitors(path)).reached, (await visitors(path)).reached], 'every visitor reaches the application').toEqual([11, 11]);
    const before = (await send(nginx.url, path)).text;
    await cache.invalidateTags(['item:1']);
    expect((await send(nginx.url, path)).text).not.toBe(before);
  });

  it('keeps such a page for keepTaggedFor seconds, the staleness accepted', async () => {
    await purgingNginx({ keepTaggedFor: 60 });
    const path = '/tagged/kept';
    expect((await send(app.url, path)).headers['x-accel-expires']).toBe('60');
    received.delete(path);
    expect([(await visitors(path)).reached, (await visitors(path)).reached]).toEqual([3, 0]);
  });

  it.each(['Cookie', 'Accept-Language'])('keeps no copy of a page that varies on %s', async (header) => {
    await purgingNginx();
    const path = `/vary/${header}`;
    for (let visit = 0; visit < 2; visit++) await send(nginx.url, path, { headers: { Cookie: 'theme=dark', 'Accept-Language': 'en' } });
    expect(received.get(path)).toBe(2);
  });

  it('keeps no copy for a theme not listed, nor of a URL with a query: no purge names them', async () => {
    await purgingNginx();
    for (let visit = 0; visit < 2; visit++) {
      // A listed value in other letters is another value.
      for (const theme of ['blue', 'DARK']) {
        expect((await send(nginx.url, '/page/unlisted', { headers: { Cookie: `theme=${theme}` } })).text).toMatch(`/page/unlisted ${theme} `);
      }
      await send(nginx.url, '/page/query?q=1', { headers: { Cookie: 'theme=dark' } });
    }
    expect([received.get('/page/unlisted'), received.get('/page/query')]).toEqual([4, 2]);
  });

  it('keeps no copy for a theme nginx lists and its purge does not, from a miss or a hit', async () => {
    await purgingNginx({ contexts: ['theme=dark'] });
    const [themed, same] = ['/page/light-unnamed', '/same/light-unnamed'];
    for (const path of [themed, same]) {
      for (const theme of ['dark', 'light', 'dark', 'light']) await send(nginx.url, path, { headers: { Cookie: `theme=${theme}` } });
    }
    // The page the same for every theme: dark's miss stored it; light's requests were hits, each sent on.
    expect([received.get(themed), received.get(same)]).toEqual([3, 3]);
    const direct = async (context: string) =>
      (await send(app.url, same, { headers: { Cookie: `theme=${context}`, 'Cachegrain-Context': `theme=${context}` } })).headers;
    const replies = [await direct('dark'), await direct('light'), await direct('dark')];
    expect(replies.map((headers) => [headers['x-cache'], headers['x-accel-expires']])).toEqual([
      ['MISS', undefined],
      ['HIT', '0'],
      ['HIT', undefined],
    ]);
  });

  it('reports a clear as not purged, nginx purging one URL at a time', async () => {
    const { cache, reported } = await purgingNginx();
    await cache.clear();
    await cache.purgesSettled();
    expect(reported).toHaveLength(1);
    const error = reported[0] as EdgePurgeError;
    expect(error).toBeInstanceOf(EdgePurgeError);
    expect([error.edge, error.notPurged]).toEqual([`nginx ${nginx.url}`, 'everything']);
    expect(error.message).toBe(
      `cache 'default': the edge nginx ${nginx.url} did not purge everything (not sent: Debian's cache-purge module purges one URL at a time and cannot list what it keeps)`,
    );
    expect(cache.stats()).toMatchObject({ purgesSent: 0, purgesFailed: 1 });
  });
});
