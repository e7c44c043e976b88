/**
 * What the page cache sends to the edge, through a real Varnish and a real nginx configured here as
 * a site would: a page with 300 or 3,000 tags is answered and kept by both (the tag
 * header split or shortened under their limits: nginx answered 502 for 4 KB of headers, Varnish 503
 * for 8 KB on one line); an ESI page is assembled by the Varnish that announces ESI, and filled for a
 * request that comes straight; a page past its edge lifetime is answered stale by Varnish at once
 * while one refresh reaches the application.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import nunjucks from 'nunjucks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addCacheTags, defineHole, holeHandler, type Middleware } from '../../src/frameworks/express.js';
import { installCacheTag, renderString } from '../../src/engines/nunjucks.js';
import { forgetHole } from '../../src/http/index.js';
import { caches, configureCaches } from '../../src/index.js';
import { type Proxy, startNginx, startVarnish } from '../setup/proxies.js';
import { headerLines, listen, send } from './client.js';
import { bare, cacheMiddleware, express5, expressApp, type Handler } from './stacks.js';
import { sleep } from '../setup/sleep.js';

const env = installCacheTag(new nunjucks.Environment(null, { autoescape: true }));
const SECRET = 'a secret of the whole site, 32 characters';
/** The edge's lifetime of the stale page: its browser lifetime, which Varnish keeps it for. */
const EDGE_SECONDS = 1;

/** Requests the application received, by path: what a proxy in front of it did not answer itself. */
const received = new Map<string, number>();
let app: { url: string; close(): Promise<void> };
let varnish: Proxy;
let nginx: Proxy;

/** `count` tags as a shop names them: items, categories, authors. */
function shopTags(count: number): string[] {
  const kinds = [(i: number) => `item:${10_000 + i}`, (i: number) => `category:shoes-and-boots-${i}`, (i: number) => `author:${i}`];
  return Array.from({ length: count }, (_, i) => kinds[i % kinds.length]!(i));
}

/** A gate the stale page's refresh waits at: the test learns it arrived, and lets it go on. */
class RefreshGate {
  private arrive!: () => void;
  readonly arrived = new Promise<void>((resolve) => (this.arrive = resolve));
  private open!: () => void;
  private readonly opened = new Promise<void>((resolve) => (this.open = resolve));
  hold(next: () => void): void {
    this.arrive();
    void this.opened.then(next);
  }
  release(): void {
    this.open();
  }
}
const refreshGate = new RefreshGate();
let staleRenders = 0;

function site(): Handler {
  const tagged = (tagHeader: 'xkey' | 'Cache-Tag') =>
    bare([cacheMiddleware({ seconds: 600, tagHeader, keyPrefix: tagHeader })], (req, res) => {
      addCacheTags(res, ...shopTags(Number(new URL(req.url!, 'http://x').searchParams.get('tags'))));
      res.end('tagged');
    });
  const xkey = tagged('xkey');
  const cacheTag = tagged('Cache-Tag');
  const esi = expressApp(express5)(
    [holeHandler({ secret: SECRET }) as Middleware, cacheMiddleware({ seconds: 600, holes: 'esi', secret: SECRET, keyPrefix: 'esi' })],
    (_req, res) =>
      renderString(env, '<h1>page</h1><nav>{% hole "greeting" %}</nav>', {}).then((html) => {
        res.setHeader('Content-Type', 'text/html; charset=utf-8');
        res.end(html);
      }),
  );
  // Kept by the application for 600 s, by the edge for its browser lifetime, and stale at the edge for 600 s more.
  const stale = bare([cacheMiddleware({ seconds: 600, browserMaxAge: EDGE_SECONDS, staleWhileRevalidate: 600, keyPrefix: 'stale' })], (_req, res) =>
    res.end(`render ${++staleRenders}`),
  );
  return (req: IncomingMessage, res: ServerResponse) => {
    const path = req.url!.split('?')[0]!;
    const count = (received.get(path) ?? 0) + 1;
    received.set(path, count);
    if (path.startsWith('/xkey/')) return xkey(req, res);
    if (path.startsWith('/cache-tag/')) return cacheTag(req, res);
    if (path.startsWith('/stale/')) return count === 1 ? stale(req, res) : refreshGate.hold(() => stale(req, res));
    return esi(req, res);
  };
}

beforeAll(async () => {
  await configureCaches({ default: { backend: 'locmem', location: 'edge-headers' } });
  defineHole('greeting', (req) => `hi ${/visitor=(\w+)/.exec(req.headers.cookie ?? '')?.[1] ?? 'guest'}`);
  app = await listen(site());
  const appPort = Number(new URL(app.url).port);
  varnish = await startVarnish({
    backendPort: appPort,
    // A site's Varnish: it looks pages up whatever the visitor's cookies, says it assembles ESI, and
    // assembles a page whose Surrogate-Control asks for it, kept for that header's max-age. Any
    // other page is kept as its Cache-Control says, its stale-while-revalidate the grace (Varnish's own rule).
    vcl: `
      import std;
      sub vcl_recv {
        set req.http.Surrogate-Capability = {"cachegrain="ESI/1.0""};
        if (req.method == "GET" || req.method == "HEAD") { return (hash); }
      }
      sub vcl_deliver { unset resp.http.Surrogate-Control; }
      sub vcl_backend_response {
        if (beresp.http.Surrogate-Control ~ {"content="ESI/1.0""}) {
          set beresp.do_esi = true;
          set beresp.ttl = std.duration(regsub(beresp.http.Surrogate-Control, ".*max-age=([0-9]+).*", "\\1") + "s", 0s);
          return (deliver);
        }
        // Varnish's default grace (10 s) off: a page is kept stale only as long as it says.
        if (beresp.http.Cache-Control !~ "stale-while-revalidate") { set beresp.grace = 0s; }
      }`,
  });
  nginx = await startNginx({
    // Every header of a response must fit in proxy_buffer_size (4 KB by default: 502 past it); the
    // tag header lists up to 16,000 bytes by default, so 32 KB holds it and the other headers.
    server: `
      proxy_buffer_size 32k;
      proxy_buffers 8 32k;
      proxy_cache pages;
      location / { proxy_pass http://127.0.0.1:${appPort}; }`,
  });
}, 60_000);

afterAll(async () => {
  refreshGate.release();
  await Promise.allSettled([varnish?.stop(), nginx?.stop(), app?.close()]);
  forgetHole('greeting');
  await caches.closeAll();
});

describe('the edge in front of the page cache', () => {
  describe.each([
    ['Varnish', 'xkey', ' '],
    ['nginx', 'cache-tag', ','],
  ] as const)('through %s', (proxyName, header, separator) => {
    it.each([300, 3000])('answers a page with %i tags 200, and keeps it', async (count) => {
      const proxy = proxyName === 'Varnish' ? varnish : nginx;
      const path = `/${header}/${proxyName}-${count}`;
      const first = await send(proxy.url, `${path}?tags=${count}`);
      expect([first.status, first.text]).toEqual([200, 'tagged']);
      const tokens = headerLines(first, header).flatMap((line) => line.split(separator));
      // 300 tags fit whole; 3,000 would not even in short forms, and go as the overflow token.
      if (count === 300) expect(tokens.slice(0, count)).toEqual(shopTags(count));
      else expect(tokens).toEqual(['cachegrain:overflow']);
      const second = await send(proxy.url, `${path}?tags=${count}`);
      expect([second.status, second.text]).toEqual([200, 'tagged']);
      expect(received.get(path), `${path}: requests that reached the application`).toBe(1);
    });
  });

  it('has Varnish, which announces ESI, assemble an ESI page per visitor, and fills it for a request that comes straight', async () => {
    const replies = [];
    for (const visitor of ['ann', 'bob']) replies.push(await send(varnish.url, '/esi/page', { headers: { Cookie: `visitor=${visitor}` } }));
    expect(replies.map((reply) => reply.text)).toEqual(['<h1>page</h1><nav>hi ann</nav>', '<h1>page</h1><nav>hi bob</nav>']);
    expect(received.get('/esi/page')).toBe(1);
    // The Host Varnish passed on: the page it stored.
    const direct = await send(app.url, '/esi/page', { headers: { Cookie: 'visitor=cy', Host: new URL(varnish.url).host } });
    expect([direct.headers['x-cache'], direct.text, direct.headers['surrogate-control']]).toEqual(['HIT', '<h1>page</h1><nav>hi cy</nav>', undefined]);
    expect(direct.headers['cache-control']).toMatch(/\bprivate\b/);
  });

  it('has Varnish answer a page past its edge lifetime stale at once, while one refresh reaches the application', async () => {
    const first = await send(varnish.url, '/stale/page');
    expect([first.text, first.headers['cache-control']]).toEqual(['render 1', `max-age=${EDGE_SECONDS}, stale-while-revalidate=600`]);
    // The edge's lifetime passes.
    await sleep((EDGE_SECONDS + 1) * 1000);
    // The refresh is held at the application's door: the answer cannot be waiting on it.
    const stale = await send(varnish.url, '/stale/page');
    expect([stale.status, stale.text]).toEqual([200, 'render 1']);
    await refreshGate.arrived;
    const again = await send(varnish.url, '/stale/page');
    expect([again.status, again.text]).toEqual([200, 'render 1']);
    expect(received.get('/stale/page'), 'requests that reached the application').toBe(2);
    refreshGate.release();
  });
});
