/**
 * The edge configurations the package ships (`edge/`), run as shipped by a real Varnish (with and
 * without the xkey vmod) and a real nginx (with the cache-purge module) in front of a page cache:
 * one edge copy per theme, not per visitor, by the `Cachegrain-Context` they derive from
 * the named cookies; the internal headers stopped at the edge; purges refused outside the ACL; ESI
 * assembled and left private; a page kept for the edge's lifetime (Surrogate-Control's max-age, else
 * s-maxage) apart from the browser's; a stale page answered while one refresh runs.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import nunjucks from 'nunjucks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addCacheContexts, cacheControl, defineHole, holeHandler, markUncacheable, type Middleware } from '../../src/frameworks/express.js';
import { installCacheTag, renderString } from '../../src/engines/nunjucks.js';
import { forgetHole } from '../../src/http/index.js';
import { caches, configureCaches } from '../../src/index.js';
import { type Proxy, type ShippedEdges, startShippedEdges, startShippedNginx, startShippedVarnish, stopEdges } from '../setup/proxies.js';
import { eventually } from '../setup/eventually.js';
import { listen, send } from './client.js';
import { bare, cacheMiddleware, express5, expressApp, type Handler, parseCookies } from './stacks.js';
import { sleep } from '../setup/sleep.js';

const env = installCacheTag(new nunjucks.Environment(null, { autoescape: true }));
const SECRET = 'a secret of the whole site, 32 characters';
const INTERNAL_HEADERS = ['x-cache', 'x-cache-reason', 'x-cache-contexts', 'x-cache-max-age', 'xkey', 'surrogate-key', 'cache-tag', 'surrogate-control'];
const themeOf = (req: IncomingMessage) => parseCookies(req.headers.cookie).theme ?? 'plain';
const cookies = (text: string) => ({ headers: { Cookie: text } });

/** Requests the application received, by path: what the edge in front of it did not answer itself. */
const received = new Map<string, number>();
let app: { url: string; close(): Promise<void> };
let edges: ShippedEdges = {} as never;

/** The stale page's renders: each version's, held where a test holds them. */
const staleRenders = { version: 0, hold: undefined as Promise<void> | undefined, entered: () => {} };

function site(): Handler {
  const themed = bare([cacheMiddleware({ seconds: 300, tagHeader: 'xkey', debug: true })], (req, res) => {
    addCacheContexts(res, 'cookie:theme');
    // Pages that read more of the Cookie header than the cookies an edge can name.
    if (req.url!.startsWith('/themed/whole-cookie')) addCacheContexts(res, 'cookie');
    if (req.url!.startsWith('/themed/own-vary')) res.setHeader('Vary', 'Cookie');
    if (req.url!.startsWith('/themed/bypass')) markUncacheable(res, 'a page no cache keeps');
    // What the other edges read, beside Varnish's own tag header.
    res.setHeader('Surrogate-Key', 'item:1 item:2');
    res.setHeader('Cache-Tag', 'item:1,item:2');
    res.end(`theme ${themeOf(req)}`);
  });
  const esi = expressApp(express5)(
    [holeHandler({ secret: SECRET }) as Middleware, cacheMiddleware({ seconds: 600, holes: 'esi', secret: SECRET })],
    (_req, res) => renderString(env, '<h1>page</h1><nav>{% hole "greeting" %}</nav>', {}).then((html) => res.end(html)),
  );
  // Kept at the edge by its s-maxage, revalidated by the browser each time (its max-age=0).
  const edgeOnly = bare([cacheMiddleware({ seconds: 300, browserMaxAge: 0 }), cacheControl({ sMaxage: 300 })], (_req, res) => res.end('kept at the edge'));
  const stale = async (_req: IncomingMessage, res: ServerResponse) => {
    const version = ++staleRenders.version;
    staleRenders.entered();
    await staleRenders.hold;
    const lifetime = 'max-age=1, stale-while-revalidate=60';
    res.setHeader('Cache-Control', lifetime);
    res.setHeader('Surrogate-Control', lifetime);
    res.end(`version ${version}`);
  };
  return (req, res) => {
    const path = req.url!.split('?')[0]!;
    received.set(path, (received.get(path) ?? 0) + 1);
    if (path.startsWith('/themed/')) return themed(req, res);
    if (path.startsWith('/stale/')) return void stale(req, res);
    if (path.startsWith('/uncacheable/')) {
      // Each with a lifetime for the edge that its other header overrules.
      const [kind] = path.split('/').slice(2);
      res.setHeader('Cache-Control', kind === 'set-cookie' ? 's-maxage=300' : `${kind}, s-maxage=300`);
      if (kind === 'set-cookie') {
        res.setHeader('Set-Cookie', 'visitor=new');
        res.setHeader('Surrogate-Control', 'max-age=300');
      }
      return void res.end('one visitor');
    }
    if (path.startsWith('/edge-only/')) return edgeOnly(req, res);
    if (path.startsWith('/lifetimes/')) {
      res.setHeader('Cache-Control', 'max-age=1, s-maxage=300');
      res.setHeader('Surrogate-Control', 'max-age=300');
      return void res.end('two lifetimes');
    }
    return esi(req, res);
  };
}

beforeAll(async () => {
  await configureCaches({ default: { backend: 'locmem', location: 'edge-shipped' } });
  defineHole('greeting', (req) => `hi ${parseCookies(req.headers.cookie).visitor ?? 'guest'}`);
  app = await listen(site());
  edges = await startShippedEdges(Number(new URL(app.url).port));
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([stopEdges(edges), app?.close()]);
  forgetHole('greeting');
  await caches.closeAll();
});

const EDGES = ['varnish', 'xkey', 'nginx'] as const;

describe('the shipped edge configurations', () => {
  it.each(EDGES)('keep one copy per theme, not per visitor, and each visitor sees their theme (%s)', async (edge) => {
    const path = `/themed/${edge}`;
    for (let i = 0; i < 10; i++) {
      const theme = i % 2 === 0 ? 'light' : 'dark';
      const reply = await send(edges[edge].url, path, cookies(`visitor=v${i}; theme=${theme}`));
      expect(reply.text, `visitor v${i}`).toBe(`theme ${theme}`);
    }
    expect(received.get(path), 'requests that reached the application').toBe(2);
    // A visitor's own Cachegrain-Context is replaced by the edge's: it never picks another theme's copy.
    const forged = await send(edges[edge].url, path, { headers: { Cookie: 'theme=dark', 'Cachegrain-Context': 'theme=light' } });
    expect(forged.text).toBe('theme dark');
  });

  it.each(EDGES)('files no page under a theme the edge read otherwise than the application (%s)', async (edge) => {
    const path = `/themed/crafted-${edge}`;
    // nginx reads a cookie's name in any case, the application in its own: they disagree on the theme.
    expect((await send(edges[edge].url, path, cookies('THEME=light; theme=dark'))).text).toBe('theme dark');
    for (const theme of ['light', 'dark']) expect((await send(edges[edge].url, path, cookies(`theme=${theme}`))).text).toBe(`theme ${theme}`);
  });

  it('sends Vary: Cookie to a request no shipped edge stands in front of, and Vary: Cachegrain-Context to one it does', async () => {
    const direct = await send(app.url, '/themed/direct', cookies('visitor=ann; theme=dark'));
    expect([direct.headers['x-cache'], direct.headers.vary, direct.text]).toEqual(['MISS', 'Cookie', 'theme dark']);
    // The copy the application stored goes out with the Vary of the request it is sent to, each way.
    const fromEdge = await send(app.url, '/themed/direct', { headers: { Cookie: 'visitor=bob; theme=dark', 'Cachegrain-Context': 'theme=dark' } });
    expect([fromEdge.headers['x-cache'], fromEdge.headers.vary, fromEdge.text]).toEqual(['HIT', 'Cachegrain-Context', 'theme dark']);
    const directAgain = await send(app.url, '/themed/direct', cookies('visitor=cy; theme=dark'));
    expect([directAgain.headers['x-cache'], directAgain.headers.vary]).toEqual(['HIT', 'Cookie']);
    // A header that disagrees with the cookies (sent by a visitor, or an edge that reads them otherwise):
    // the page is the cookies' and varies on them, never filed under the header's theme.
    const forged = await send(app.url, '/themed/direct', { headers: { Cookie: 'theme=light', 'Cachegrain-Context': 'theme=dark' } });
    expect([forged.headers.vary, forged.text]).toEqual(['Cookie', 'theme light']);
    const noTheme = await send(app.url, '/themed/direct', { headers: { Cookie: 'visitor=dee', 'Cachegrain-Context': 'theme=dark' } });
    expect([noTheme.headers.vary, noTheme.text]).toEqual(['Cookie', 'theme plain']);
    // An edge that names other cookies than the page varies on: the page still varies on Cookie.
    const otherCookies = await send(app.url, '/themed/direct', { headers: { Cookie: 'theme=dark', 'Cachegrain-Context': 'lang=en' } });
    expect(otherCookies.headers.vary).toBe('Cookie');
    // A page that reads the whole Cookie header, or whose view varies on it, varies on it whatever the edge names.
    for (const path of ['/themed/whole-cookie', '/themed/own-vary']) {
      for (let visit = 0; visit < 2; visit++) {
        const reply = await send(app.url, path, { headers: { Cookie: 'theme=dark', 'Cachegrain-Context': 'theme=dark' } });
        expect(reply.headers.vary, `${path}, ${String(reply.headers['x-cache'])}`).toBe('Cookie');
      }
    }
  });

  it.each(EDGES)('stop the internal headers before the visitor (%s)', async (edge) => {
    for (const path of [`/themed/headers-${edge}`, `/themed/bypass-${edge}`]) {
      const direct = await send(app.url, path, cookies('theme=dark'));
      expect(Object.keys(direct.headers).filter((name) => INTERNAL_HEADERS.includes(name)).length, `${path} from the application`).toBeGreaterThan(3);
      const reply = await send(edges[edge].url, path, cookies('theme=dark'));
      expect(reply.text).toBe('theme dark');
      expect(
        Object.keys(reply.headers).filter((name) => INTERNAL_HEADERS.includes(name)),
        path,
      ).toEqual([]);
    }
  });

  it('assembles an ESI page in Varnish from one shell, and sends it private', async () => {
    for (const visitor of ['ann', 'bob', 'cy']) {
      const reply = await send(edges.varnish.url, '/esi/greeting', cookies(`visitor=${visitor}`));
      expect(reply.text).toBe(`<h1>page</h1><nav>hi ${visitor}</nav>`);
      expect(reply.headers['cache-control']).toMatch(/\bprivate\b/);
      expect(reply.headers['surrogate-control']).toBeUndefined();
    }
    expect(received.get('/esi/greeting'), 'shells fetched').toBe(1);
  });

  it.each(EDGES)('never keeps a response with Set-Cookie, private or no-store (%s)', async (edge) => {
    for (const kind of ['set-cookie', 'private', 'no-store']) {
      const path = `/uncacheable/${kind}/${edge}`;
      for (let visit = 0; visit < 2; visit++) expect((await send(edges[edge].url, path)).text).toBe('one visitor');
      expect(received.get(path), path).toBe(2);
    }
  });

  it.each(EDGES)("keeps a page for the edge's lifetime, and sends it fresh for the browser's max-age (%s)", async (edge) => {
    const path = `/lifetimes/${edge}`;
    await send(edges[edge].url, path);
    // Longer than the browser's max-age of one second (a server's TTL).
    await sleep(1100);
    const kept = await send(edges[edge].url, path);
    expect(received.get(path), 'requests that reached the application').toBe(1);
    expect(kept.headers['cache-control']).toBe('max-age=1, s-maxage=300');
    // Its age at the edge counts against the edge's lifetime: with the browser's gone, it would arrive stale.
    expect(Number(kept.headers.age ?? 0)).toBeLessThan(1);
  });

  it.each(EDGES)('keeps a page for its s-maxage when its max-age is 0, and sends it as the application did (%s)', async (edge) => {
    const path = `/edge-only/${edge}`;
    const first = await send(edges[edge].url, path);
    const kept = await send(edges[edge].url, path);
    expect(kept.text).toBe('kept at the edge');
    expect(received.get(path), 'requests that reached the application').toBe(1);
    expect([first.headers['cache-control'], kept.headers['cache-control']]).toEqual(['s-maxage=300, max-age=0', 's-maxage=300, max-age=0']);
    // An Age would count against the browser's max-age=0 and say nothing it does not know already.
    expect(Number(kept.headers.age ?? 0)).toBe(0);
  });

  it.each(EDGES)('answers a stale page within its stale-while-revalidate while one refresh runs (%s)', async (edge) => {
    const path = `/stale/${edge}`;
    staleRenders.hold = undefined;
    const first = await send(edges[edge].url, path);
    // Its lifetime of one second passes (a server's TTL; nginx counts it in whole seconds from the second it stored it in).
    await sleep(2100);
    let release!: () => void;
    staleRenders.hold = new Promise((resolve) => (release = resolve));
    const entered = new Promise<void>((resolve) => (staleRenders.entered = resolve));
    const during = await Promise.all([send(edges[edge].url, path), send(edges[edge].url, path)]);
    await entered;
    expect(during.map((reply) => reply.text)).toEqual([first.text, first.text]);
    expect(received.get(path), 'the first render and one refresh').toBe(2);
    release();
    await eventually(async () => expect((await send(edges[edge].url, path)).text).not.toBe(first.text));
    staleRenders.entered = () => {};
  });
});

describe('the shipped edge configurations, purged from outside their ACL', () => {
  let guarded: Record<'xkey' | 'nginx', Proxy>;

  beforeAll(async () => {
    const backendPort = Number(new URL(app.url).port);
    // Only an address this machine never sends from may purge: loopback is outside the ACL.
    const purgers = ['192.0.2.1'];
    const [xkey, nginx] = await Promise.all([startShippedVarnish({ backendPort, xkey: true, purgers }), startShippedNginx({ backendPort, purgers })]);
    guarded = { xkey, nginx };
  }, 60_000);

  afterAll(async () => {
    await Promise.allSettled(Object.values(guarded ?? {}).map((edge) => edge.stop()));
  });

  it('refuses PURGE, BAN and xkey purges, and keeps the page (Varnish: 405; nginx: 403)', async () => {
    const varnish = guarded.xkey.url;
    await send(varnish, '/themed/acl-varnish', cookies('theme=dark'));
    const purges: Array<{ method: string; path: string; headers?: Record<string, string> }> = [
      { method: 'PURGE', path: '/themed/acl-varnish' },
      { method: 'BAN', path: '/', headers: { 'Cachegrain-Ban-All': '1' } },
      { method: 'BAN', path: '/', headers: { 'Cachegrain-Ban-Regex': '(^| )(item:1)( |$)' } },
      { method: 'PURGE', path: '/', headers: { 'xkey-purge': 'item:1' } },
      { method: 'PURGE', path: '/', headers: { 'xkey-softpurge': 'item:1' } },
    ];
    for (const { method, path, headers } of purges) {
      const reply = await send(varnish, path, { method, headers });
      expect([reply.status, reply.text.includes('Not allowed')], `${method} ${JSON.stringify(headers ?? {})}`).toEqual([405, true]);
    }
    await send(guarded.nginx.url, '/themed/acl-nginx', cookies('theme=dark'));
    for (const path of ['/themed/acl-nginx*', '/themed/acl-nginx', '/*']) {
      expect((await send(guarded.nginx.url, path, { method: 'PURGE' })).status, `PURGE ${path}`).toBe(403);
    }
    expect((await send(varnish, '/themed/acl-varnish', cookies('theme=dark'))).text).toBe('theme dark');
    expect((await send(guarded.nginx.url, '/themed/acl-nginx', cookies('theme=dark'))).text).toBe('theme dark');
    expect([received.get('/themed/acl-varnish'), received.get('/themed/acl-nginx')], 'requests that reached the application').toEqual([1, 1]);
  });
});
