/**
 * What the page cache sends downstream, as the caches after it read it: a real
 * Varnish (ESI assembled from `Surrogate-Control`, its TTL from `Surrogate-Control: max-age`) and a
 * real nginx (`proxy_cache`) in front of the application, each configured here. A HIT older than its
 * browser lifetime is still kept by them; an ESI page is not revalidated into another visitor's
 * holes, and leaves the ESI proxy private; tags go in the tag header one key each; a HEAD declares
 * its GET's length or none. Where a proxy cannot show a rule, the rule is written out over HTTP.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import nunjucks from 'nunjucks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addCacheTags, defineHole, holeHandler, type Middleware } from '../../src/frameworks/express.js';
import { installCacheTag, renderString } from '../../src/engines/nunjucks.js';
import { forgetHole } from '../../src/http/index.js';
import { caches, configureCaches } from '../../src/index.js';
import { type Proxy, startNginx, startVarnish } from '../setup/proxies.js';
import { listen, type Reply, send } from './client.js';
import { bare, cacheMiddleware, conditionalGet, express5, expressApp, type Handler } from './stacks.js';
import { sleep } from '../setup/sleep.js';

const env = installCacheTag(new nunjucks.Environment(null, { autoescape: true }));
const SECRET = 'a secret of the whole site, 32 characters';
const BROWSER_MAX_AGE = 3;
const visitorOf = (req: IncomingMessage) => /visitor=(\w+)/.exec(req.headers.cookie ?? '')?.[1] ?? 'guest';
const as = (visitor: string, headers: Record<string, string> = {}) => ({ headers: { Cookie: `visitor=${visitor}`, ...headers } });

/** Requests the application received, by path: what a proxy in front of it did not answer itself. */
const received = new Map<string, number>();
const carts = new Map<string, number>();
let app: { url: string; close(): Promise<void> };
let varnish: Proxy;
let nginx: Proxy;

/** The ESI page, sent as an Express view sends it: `res.send`, which answers a HEAD with the length of a body it drops. */
const view = (_req: IncomingMessage, res: ServerResponse) =>
  renderString(env, '<h1>page</h1><p>{% hole "cart" %}</p><nav>{% hole "greeting" %}</nav>', {}).then((html) => {
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    (res as ServerResponse & { send(body: string): void }).send(html);
  });

/** Each part of the site is a page cache configured as the case needs, on one server the proxies share. */
function site(): Handler {
  const esi = expressApp(express5)(
    [holeHandler({ secret: SECRET }) as Middleware, cacheMiddleware({ seconds: 600, holes: 'esi', secret: SECRET }), conditionalGet()],
    view,
  );
  const lifetime = bare([cacheMiddleware({ seconds: 300, browserMaxAge: BROWSER_MAX_AGE })], (_req, res) => res.end('a page'));
  const tagged = bare([cacheMiddleware({ seconds: 300, tagHeader: 'Surrogate-Key' })], (req, res) => {
    addCacheTags(res, ...JSON.parse(new URL(req.url!, 'http://x').searchParams.get('tags')!));
    res.end('tagged');
  });
  return (req, res) => {
    const path = req.url!.split('?')[0]!;
    received.set(path, (received.get(path) ?? 0) + 1);
    if (path.startsWith('/lifetime/')) return lifetime(req, res);
    if (path.startsWith('/tags/')) return tagged(req, res);
    return esi(req, res);
  };
}

beforeAll(async () => {
  await configureCaches({ default: { backend: 'locmem', location: 'downstream' } });
  defineHole('greeting', (req) => `hi ${visitorOf(req)}`);
  defineHole('cart', (req) => `cart ${carts.get(visitorOf(req)) ?? 0}`);
  app = await listen(site());
  const appPort = new URL(app.url).port;
  varnish = await startVarnish({
    backendPort: Number(appPort),
    // An ESI proxy's usual rules: a page whose Surrogate-Control asks for ESI is assembled, and kept
    // for that header's max-age whatever its Cache-Control says to caches after this one; a visitor's
    // cookies do not keep a shared page from being looked up; it says it assembles ESI
    // (Surrogate-Capability), and Surrogate-Control stops here.
    vcl: `
      import std;
      sub vcl_recv {
        if (req.method != "GET" && req.method != "HEAD") { return (pass); }
        set req.http.Surrogate-Capability = {"cachegrain="ESI/1.0""};
        return (hash);
      }
      sub vcl_backend_response {
        if (beresp.http.Surrogate-Control ~ {"content="ESI/1.0""}) { set beresp.do_esi = true; }
        if (beresp.http.Surrogate-Control ~ "max-age=[0-9]+") {
          set beresp.ttl = std.duration(regsub(beresp.http.Surrogate-Control, ".*max-age=([0-9]+).*", "\\1") + "s", 0s);
          return (deliver);
        }
      }
      sub vcl_deliver { unset resp.http.Surrogate-Control; }`,
  });
  // A shared cache as the CDN in front of Varnish, and in front of the application for plain pages.
  nginx = await startNginx({
    server: `
      proxy_cache pages;
      location /lifetime/ { proxy_pass http://127.0.0.1:${appPort}; }
      location / { proxy_pass ${varnish.url}; }`,
  });
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([varnish?.stop(), nginx?.stop(), app?.close()]);
  forgetHole('greeting');
  forgetHole('cart');
  await caches.closeAll();
});

/** The rule every cache after this one reads a response by (RFC 9111 §4.2): fresh on arrival, or kept by none. */
function freshOnArrival(reply: Reply): void {
  const maxAge = Number(/max-age=(\d+)/.exec(reply.headers['cache-control'] ?? '')?.[1]);
  expect(Number(reply.headers.age ?? 0), 'Age within the max-age it comes with').toBeLessThan(maxAge);
  expect(Date.parse(reply.headers.expires!), 'Expires not before Date').toBeGreaterThan(Date.parse(reply.headers.date!));
}

describe('downstream of the page cache', () => {
  it('sends a HIT older than its browser lifetime fresh, and Varnish and nginx keep it', async () => {
    // Stored as each proxy will ask for it: Varnish passes its client's Host on, nginx names the application's.
    const hosts = { '/lifetime/direct': app.url, '/lifetime/varnish': varnish.url, '/lifetime/nginx': app.url };
    for (const [path, host] of Object.entries(hosts)) {
      expect((await send(app.url, path, { headers: { Host: new URL(host).host } })).headers['x-cache']).toBe('MISS');
    }
    // The browser lifetime of the copies stored above passes; the server's is 300 s.
    await sleep((BROWSER_MAX_AGE + 1) * 1000);
    const hit = await send(app.url, '/lifetime/direct');
    expect(hit.headers['x-cache']).toBe('HIT');
    freshOnArrival(hit);
    // Each proxy is asked twice: the second is answered from what it kept of the first.
    for (const [proxy, path] of [
      [varnish, '/lifetime/varnish'],
      [nginx, '/lifetime/nginx'],
    ] as const) {
      const first = await send(proxy.url, path);
      expect(first.headers['x-cache'], path).toBe('HIT');
      freshOnArrival(first);
      expect((await send(proxy.url, path)).text).toBe('a page');
      expect(received.get(path), `${path}: requests that reached the application`).toBe(2);
    }
  });

  it('sends an ESI page without validators: a visitor revalidating through Varnish gets their changed cart', async () => {
    const first = await send(varnish.url, '/esi/cart', as('ann'));
    expect(first.text).toBe('<h1>page</h1><p>cart 0</p><nav>hi ann</nav>');
    carts.set('ann', 1);
    // A browser revalidates with the validators it was given, and only those (RFC 9111 §4.3.1).
    const validators: Record<string, string> = {};
    if (first.headers.etag !== undefined) validators['If-None-Match'] = first.headers.etag;
    if (first.headers['last-modified'] !== undefined) validators['If-Modified-Since'] = first.headers['last-modified'];
    const again = await send(varnish.url, '/esi/cart', as('ann', validators));
    expect([again.status, again.text]).toEqual([200, '<h1>page</h1><p>cart 1</p><nav>hi ann</nav>']);
    expect([first.headers.etag, first.headers['last-modified']]).toEqual([undefined, undefined]);
  });

  it("keeps an ESI page in Varnish for Surrogate-Control's max-age, and private after it: a CDN in front gives each visitor their own", async () => {
    // One after the other, so that each could be served what the one before it left in the CDN.
    const replies: Reply[] = [];
    for (const visitor of ['user0', 'user1', 'user2']) replies.push(await send(nginx.url, '/esi/greeting', as(visitor)));
    expect(replies.map((reply) => reply.text)).toEqual(['user0', 'user1', 'user2'].map((visitor) => `<h1>page</h1><p>cart 0</p><nav>hi ${visitor}</nav>`));
    for (const reply of replies) {
      expect(reply.headers['cache-control']).toMatch(/\bprivate\b/);
      expect(reply.headers['surrogate-control']).toBeUndefined();
    }
    // The shell was fetched once, and Varnish assembled every visit from it.
    expect(received.get('/esi/greeting')).toBe(1);
    const shell = await send(app.url, '/esi/greeting', { headers: { 'Surrogate-Capability': 'cachegrain="ESI/1.0"' } });
    expect(shell.headers['surrogate-control']).toBe('max-age=600, content="ESI/1.0"');
  });

  it('puts each tag in the tag header as one key, encoded where a byte cannot stand in it, and never answers 500 for a tag', async () => {
    const tags = ['plain', 'two words', 'line\nbreak', 'a,b', '50%', 'tab\there', 'café', 'lone\uD800'];
    const reply = await send(app.url, `/tags/p?tags=${encodeURIComponent(JSON.stringify(tags))}`);
    expect([reply.status, reply.text]).toEqual([200, 'tagged']);
    // A CDN's rule for Surrogate-Key (Fastly, Varnish xkey): keys are separated by whitespace.
    const keys = String(reply.headers['surrogate-key']).split(/\s+/);
    const urlTags = keys.filter((key) => key.startsWith('url:'));
    expect(urlTags).toContain('url:/tags/p');
    expect(keys).toEqual(['plain', 'two%20words', 'line%0Abreak', 'a%2Cb', '50%25', 'tab%09here', 'caf%C3%A9', 'lone%EF%BF%BD', ...urlTags]);
  });

  it("answers a HEAD on an uncached ESI page with its GET's Content-Length or none", async () => {
    const head = await send(app.url, '/esi/head', { method: 'HEAD' });
    const get = await send(app.url, '/esi/head');
    expect(head.status).toBe(200);
    expect([undefined, String(get.body.length)]).toContain(head.headers['content-length']);
  });
});
