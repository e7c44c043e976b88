/**
 * The purges the shipped edge configurations answer, sent by hand over HTTP from loopback
 * (inside their ACL) to a real Varnish (with and without the xkey vmod) and a real nginx (with the
 * cache-purge module) in front of a page cache: Varnish's PURGE by URL, BAN by a regex of tags, BAN
 * of everything and xkey purges; nginx's PURGE by URL, one context's copy at a time (its purges by
 * the page cache's own client: edge-nginx.test.ts). A page purged
 * is fetched from the application on the next request; a page not purged is not.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addCacheContexts, addCacheTags } from '../../src/frameworks/express.js';
import { caches, configureCaches } from '../../src/index.js';
import { type Proxy, type ShippedEdges, startShippedEdges, stopEdges } from '../setup/proxies.js';
import { listen, send } from './client.js';
import { bare, cacheMiddleware, type Handler, parseCookies } from './stacks.js';

/** Requests the application received, by path: what the edge in front of it did not answer itself. */
const received = new Map<string, number>();
let app: { url: string; close(): Promise<void> };
let edges: ShippedEdges = {} as never;
const themes = ['light', 'dark'];

function site(): Handler {
  const page = bare([cacheMiddleware({ seconds: 300, tagHeader: 'xkey' })], (req, res) => {
    const url = new URL(req.url!, 'http://site');
    addCacheContexts(res, 'cookie:theme');
    addCacheTags(res, ...url.searchParams.getAll('tag'));
    res.end(`${url.pathname} ${parseCookies(req.headers.cookie).theme ?? 'plain'}`);
  });
  return (req, res) => {
    const path = req.url!.split('?')[0]!;
    received.set(path, (received.get(path) ?? 0) + 1);
    // Tags over several lines, as a page whose tag header was split sends them.
    if (path.startsWith('/lines/')) {
      res.setHeader('Cache-Control', 'max-age=300');
      res.setHeader('xkey', ['item:5', 'item:6 item:7']);
      return void res.end('lines');
    }
    page(req, res);
  };
}

beforeAll(async () => {
  await configureCaches({ default: { backend: 'locmem', location: 'edge-purge' } });
  app = await listen(site());
  edges = await startShippedEdges(Number(new URL(app.url).port));
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([stopEdges(edges), app?.close()]);
  await caches.closeAll();
});

/** Asks the edge for `url` in every theme: each answered right, whether the edge kept it or not. */
async function visit(edge: Proxy, url: string): Promise<void> {
  for (const theme of themes) {
    expect((await send(edge.url, url, { headers: { Cookie: `theme=${theme}` } })).text).toBe(`${url.split('?')[0]} ${theme}`);
  }
}

/** How many requests for each path reached the application. */
const reached = (...paths: string[]) => paths.map((path) => received.get(path) ?? 0);

async function purge(edge: Proxy, method: string, path: string, headers: Record<string, string> = {}): Promise<number> {
  const reply = await send(edge.url, path, { method, headers });
  return reply.status;
}

describe.each(['varnish', 'xkey'] as const)('Varnish with the shipped %s configuration', (name) => {
  const edge = () => edges[name];
  const tagged = (path: string, ...tags: string[]) => `/${name}${path}?${tags.map((tag) => `tag=${encodeURIComponent(tag)}`).join('&')}`;

  it('drops every variant of a URL on PURGE, and no other URL', async () => {
    const [page, other] = [tagged('/purge/page'), tagged('/purge/other')];
    for (const url of [page, other, page, other]) await visit(edge(), url);
    expect(reached(`/${name}/purge/page`, `/${name}/purge/other`)).toEqual([2, 2]);
    expect(await purge(edge(), 'PURGE', page)).toBe(200);
    for (const url of [page, other]) await visit(edge(), url);
    expect(reached(`/${name}/purge/page`, `/${name}/purge/other`)).toEqual([4, 2]);
  });

  it('drops the pages whose tags match a BAN regex, its tokens escaped, and no others', async () => {
    const dotted = tagged('/ban/dotted', 'a.b+c', 'item:1');
    const lookalike = tagged('/ban/lookalike', 'aXb+c', 'item:10');
    for (const url of [dotted, lookalike, dotted, lookalike]) await visit(edge(), url);
    expect(await purge(edge(), 'BAN', '/', { 'Cachegrain-Ban-Regex': '(^| )(a\\.b\\+c)( |$)' })).toBe(200);
    for (const url of [dotted, lookalike]) await visit(edge(), url);
    expect(reached(`/${name}/ban/dotted`, `/${name}/ban/lookalike`)).toEqual([4, 2]);
    expect(await purge(edge(), 'BAN', '/', { 'Cachegrain-Ban-Regex': '(^| )(nothing|item:10)( |$)' })).toBe(200);
    for (const url of [dotted, lookalike]) await visit(edge(), url);
    expect(reached(`/${name}/ban/dotted`, `/${name}/ban/lookalike`)).toEqual([4, 4]);
  });

  it('bans by a tag of any line of the tag header', async () => {
    const path = `/lines/${name}`;
    await send(edge().url, path);
    await send(edge().url, path);
    expect(await purge(edge(), 'BAN', '/', { 'Cachegrain-Ban-Regex': '(^| )(item:7)( |$)' })).toBe(200);
    await send(edge().url, path);
    expect(reached(path)).toEqual([2]);
  });

  it('drops everything on BAN with Cachegrain-Ban-All', async () => {
    const [one, two] = [tagged('/all/one', 'x'), tagged('/all/two')];
    for (const url of [one, two, one, two]) await visit(edge(), url);
    expect(await purge(edge(), 'BAN', '/', { 'Cachegrain-Ban-All': '1' })).toBe(200);
    for (const url of [one, two]) await visit(edge(), url);
    expect(reached(`/${name}/all/one`, `/${name}/all/two`)).toEqual([4, 4]);
  });
});

describe('Varnish with the xkey vmod', () => {
  it('drops the pages of a tag on xkey-purge and xkey-softpurge, and no others', async () => {
    const url = (path: string, tag: string) => `/keys${path}?tag=${tag}`;
    const [hard, soft, kept] = [url('/hard', 'item:21'), url('/soft', 'item:22'), url('/kept', 'item:23')];
    for (const page of [hard, soft, kept, hard, soft, kept]) await visit(edges.xkey, page);
    expect(await purge(edges.xkey, 'PURGE', '/', { 'xkey-purge': 'item:21 nothing' })).toBe(200);
    expect(await purge(edges.xkey, 'PURGE', '/', { 'xkey-softpurge': 'item:22' })).toBe(200);
    for (const page of [hard, soft, kept]) await visit(edges.xkey, page);
    expect(reached('/keys/hard', '/keys/soft', '/keys/kept')).toEqual([4, 4, 2]);
  });

  it('is needed for xkey purges: without it Varnish answers 501 and keeps the page', async () => {
    await visit(edges.varnish, '/keys/none?tag=item:24');
    const reply = await send(edges.varnish.url, '/', { method: 'PURGE', headers: { 'xkey-purge': 'item:24' } });
    expect([reply.status, reply.text]).toEqual([501, expect.stringContaining('varnish-xkey.vcl')]);
    await visit(edges.varnish, '/keys/none?tag=item:24');
    expect(reached('/keys/none')).toEqual([2]);
  });
});

describe('nginx with the shipped configuration', () => {
  const visitors = { none: {}, light: { Cookie: 'theme=light' }, dark: { Cookie: 'theme=dark' } };
  /** Asks nginx for `url` as each visitor, and answers how many of them reached the application. */
  async function fetched(url: string): Promise<number> {
    const path = url.split('?')[0]!;
    const before = received.get(path) ?? 0;
    for (const [theme, headers] of Object.entries(visitors)) {
      expect((await send(edges.nginx.url, url, { headers })).text).toBe(`${path} ${theme === 'none' ? 'plain' : theme}`);
    }
    return (received.get(path) ?? 0) - before;
  }

  it("drops a URL's copy on PURGE of its path, for one context at a time, and keeps no copy of a URL with a query", async () => {
    const [page, query] = ['/nginx/page', '/nginx/query?q=1'];
    expect([await fetched(page), await fetched(page), await fetched(query), await fetched(query)]).toEqual([3, 0, 3, 3]);
    // The purge's own context (no theme cookie), then the one it names.
    expect(await purge(edges.nginx, 'PURGE', page)).toBe(200);
    expect(await purge(edges.nginx, 'PURGE', page, { 'Cachegrain-Purge-Context': 'theme=dark' })).toBe(200);
    expect(await fetched(page)).toBe(2);
    // No wildcard: a trailing `*` names a URL of its own, never kept.
    expect(await purge(edges.nginx, 'PURGE', `${page}*`)).toBe(404);
    expect(await purge(edges.nginx, 'PURGE', '/nginx/never-cached')).toBe(404);
  });
});
