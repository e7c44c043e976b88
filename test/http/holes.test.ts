/**
 * The page cache's delivery of holes, on Express 5, Express 4 and a bare node:http server:
 * filled in place on a MISS and on a HIT (`private` downstream, no validators of the shell), or sent
 * as signed ESI includes that `holeHandler()` answers; builders run at once; composed and split
 * page-cache layers store the shell and fill once, in the outermost layer; concurrent misses share
 * one render and each gets its own holes; options checked by the project's one check.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gunzipSync } from 'node:zlib';
import compression from 'compression';
import nunjucks from 'nunjucks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defineHole, holeHandler, type Middleware } from '../../src/frameworks/express.js';
import { installCacheTag, renderString } from '../../src/engines/nunjucks.js';
import { forgetHole } from '../../src/http/index.js';
import { caches, configureCaches } from '../../src/index.js';
import { listen, type Reply, requestsArrived, send, storedHit } from './client.js';
import {
  bare,
  cacheMiddleware,
  cachePage,
  cookieHeaderOf,
  conditionalGet,
  fetchFromCacheMiddleware,
  STACKS,
  updateCacheMiddleware,
  type View,
} from './stacks.js';
import { sleep } from '../setup/sleep.js';

const env = installCacheTag(new nunjucks.Environment(null, { autoescape: true }));
const SECRET = 'a secret of the whole site, 32 characters';
const visitorOf = (request: object) => /visitor=(\w+)/.exec(cookieHeaderOf(request) ?? '')?.[1] ?? 'guest';
const as = (visitor: string) => ({ headers: { Cookie: `visitor=${visitor}` } });
/** A request as an ESI processor in front sends it (the shipped VCL's capability). */
const esiAs = (visitor: string, capability = 'cachegrain="ESI/1.0"') => ({ headers: { ...as(visitor).headers, 'Surrogate-Capability': capability } });
const INCLUDE = /<esi:include src="[^"]+"\/>/g;

let location = 0;
const servers: Array<Awaited<ReturnType<typeof listen>>> = [];
let renders = 0;

beforeEach(async () => {
  renders = 0;
  await configureCaches({
    default: { backend: 'locmem', location: `holes-http-${++location}` },
    other: { backend: 'locmem', location: `holes-http-other-${location}` },
  });
  defineHole('greeting', (req) => `hi ${visitorOf(req)}`);
  defineHole('stock', async (_req, id: number) => `${id * 2} left`);
});
afterEach(async () => {
  for (const name of ['greeting', 'stock', 'slow', 'gone']) forgetHole(name);
  await Promise.all(servers.splice(0).map((server) => server.close()));
  await caches.closeAll();
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = await listen(handler);
  servers.push(server);
  return server.url;
}

const PAGE = '<h1>{{ n }}</h1>{% cache 600 "product" id %}<p>product {{ id }}</p>{% hole "stock" id %}{% endcache %}<nav>{% hole "greeting" %}</nav>';

/** A view rendering `source` (the product page by default), counting its renders; `send` picks how it writes the body. */
function pageView(source = PAGE, write: (res: ServerResponse, html: string) => void = (res, html) => res.end(html)): View {
  return (_req, res) => {
    renderString(env, source, { n: ++renders, id: 21 }).then(
      (html) => {
        res.setHeader('Content-Type', 'text/html; charset=utf-8');
        write(res, html);
      },
      (error: Error) => {
        res.statusCode = 500;
        res.end(error.message);
      },
    );
  };
}

const filled = (visitor: string, n = 1) => `<h1>${n}</h1><p>product 21</p>42 left<nav>hi ${visitor}</nav>`;

describe.each(STACKS)('holes behind the page cache on %s', (_flavour, build) => {
  it("fills them on a MISS and on a HIT for each visitor from one stored page, sent private with the filled page's own ETag", async () => {
    const base = await serve(build([cacheMiddleware({ seconds: 600 }), conditionalGet()], pageView()));
    const ann = await send(base, '/p', as('ann'));
    expect([ann.headers['x-cache'], ann.text]).toEqual(['MISS', filled('ann')]);
    expect(ann.headers['cache-control']).toBe('max-age=600, private');
    expect(ann.headers['content-length']).toBe(String(Buffer.byteLength(filled('ann'))));
    // Validators of the page without its holes would answer 304 to a visitor whose holes changed: a
    // strong ETag of the shell and of the holes' bytes, the same for the same filled page.
    expect(ann.headers.etag).toMatch(/^"[0-9a-f]{16}"$/);
    const bob = await storedHit(base, '/p', as('bob'));
    expect(bob.text).toBe(filled('bob'));
    expect(bob.headers['cache-control']).toBe('max-age=600, private');
    expect(bob.headers['content-length']).toBe(String(Buffer.byteLength(filled('bob'))));
    expect(bob.headers.etag).toMatch(/^"[0-9a-f]{16}"$/);
    expect(bob.headers.etag).not.toBe(ann.headers.etag);
    expect((await send(base, '/p', as('ann'))).headers.etag).toBe(ann.headers.etag);
    const unchanged = await send(base, '/p', { headers: { ...as('bob').headers, 'If-None-Match': bob.headers.etag! } });
    expect([unchanged.status, unchanged.headers['x-cache'], unchanged.body.length]).toEqual([304, 'HIT', 0]);
    const anns = await send(base, '/p', { headers: { ...as('bob').headers, 'If-None-Match': ann.headers.etag! } });
    expect([anns.status, anns.text]).toEqual([200, filled('bob')]);
    expect((await send(base, '/p', { headers: { ...as('ann').headers, 'If-None-Match': ann.headers.etag! } })).status).toBe(304);
    expect(renders).toBe(1);
    const head = await send(base, '/p', { method: 'HEAD', ...as('cy') });
    expect([head.status, head.headers['x-cache'], head.headers['cache-control'], head.body.length]).toEqual([200, 'HIT', 'max-age=600, private', 0]);
  });

  it("gives the filled page an ETag as weak as the view's, of that ETag and the holes: another shell, or other holes, another ETag", async () => {
    let shell = 'v1';
    const weak = pageView(PAGE, (res, html) => {
      res.setHeader('ETag', `W/"${shell}"`);
      res.end(html);
    });
    const base = await serve(build([cacheMiddleware({ seconds: 600 }), conditionalGet()], weak));
    const ann = await send(base, '/weak', as('ann'));
    expect(ann.headers.etag).toMatch(/^W\/"[0-9a-f]{16}"$/);
    const bob = await storedHit(base, '/weak', as('bob'));
    expect(bob.headers.etag).toMatch(/^W\/"[0-9a-f]{16}"$/);
    expect(bob.headers.etag).not.toBe(ann.headers.etag);
    const again = await send(base, '/weak', { headers: { ...as('ann').headers, 'If-None-Match': ann.headers.etag! } });
    expect([again.status, again.headers['x-cache'], again.headers.etag]).toEqual([304, 'HIT', ann.headers.etag]);
    // The same holes in a shell the view tells apart by its ETag: another filled page.
    shell = 'v2';
    const other = await send(base, '/weak-elsewhere', as('ann'));
    expect(other.text).toContain('<nav>hi ann</nav>');
    expect(other.headers.etag).toMatch(/^W\/"[0-9a-f]{16}"$/);
    expect(other.headers.etag).not.toBe(ann.headers.etag);
  });

  it('fills a body the view writes in several chunks', async () => {
    const chunked = pageView(PAGE, (res, html) => {
      res.write(html.slice(0, 10));
      res.write(html.slice(10, 30));
      res.end(html.slice(30));
    });
    const base = await serve(build([cacheMiddleware({ seconds: 600 })], chunked));
    expect((await send(base, '/c', as('ann'))).text).toBe(filled('ann'));
    expect((await storedHit(base, '/c', as('bob'))).text).toBe(filled('bob'));
  });

  it('gives each of several visitors waiting on one render their own holes', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow: View = (req, res) => void gate.then(() => pageView()(req, res));
    const base = await serve(build([cacheMiddleware({ seconds: 600 })], slow));
    const visitors = ['ann', 'bob', 'cy', 'dee', 'eve'];
    const arrived = requestsArrived(servers.at(-1)!.server, visitors.length);
    const replies = visitors.map((visitor) => send(base, '/w', as(visitor)));
    // All visitors reached the site while the first render is held.
    await arrived;
    release();
    const texts = (await Promise.all(replies)).map((reply) => reply.text);
    expect(texts).toEqual(visitors.map((visitor) => filled(visitor)));
    expect(renders).toBe(1);
  });

  it('runs the builders of a page at once', async () => {
    let running = 0;
    let most = 0;
    defineHole('slow', async (_req, n: number) => {
      most = Math.max(most, ++running);
      await sleep(20);
      running--;
      return `[${n}]`;
    });
    const base = await serve(build([cacheMiddleware({ seconds: 600 })], pageView('{% hole "slow" 1 %}{% hole "slow" 2 %}{% hole "slow" 3 %}')));
    expect((await send(base, '/s', as('ann'))).text).toBe('[1][2][3]');
    expect(most).toBe(3);
    most = 0;
    expect((await storedHit(base, '/s', as('bob'))).text).toBe('[1][2][3]');
    expect(most).toBe(3);
  });

  it('sends ESI includes with signed URLs, the page kept by the ESI proxy (Surrogate-Control) and private after it; holeHandler answers each hole private, 403 to a bad signature, 404 to an unknown hole', async () => {
    const pages = cacheMiddleware({ seconds: 600, holes: 'esi', secret: SECRET });
    const base = await serve(build([holeHandler({ secret: SECRET }) as Middleware, pages], pageView()));
    const shell = await send(base, '/e', esiAs('ann'));
    expect(shell.headers['x-cache']).toBe('MISS');
    expect(shell.headers['cache-control']).toBe('max-age=600, private');
    expect(shell.headers['surrogate-control']).toBe('max-age=600, content="ESI/1.0"');
    const includes = [...shell.text.matchAll(/<esi:include src="([^"]+)"\/>/g)].map((match) => match[1]!);
    expect(shell.text.replace(/<esi:include src="[^"]+"\/>/g, '<esi/>')).toBe('<h1>1</h1><p>product 21</p><esi/><nav><esi/></nav>');
    expect(includes).toEqual([
      expect.stringMatching(/^\/-\/cachegrain\/hole\/stock\?args=%5B21%5D&sig=[\w-]{43}$/),
      expect.stringMatching(/^\/-\/cachegrain\/hole\/greeting\?sig=[\w-]{43}$/),
    ]);
    const again = await storedHit(base, '/e', esiAs('bob'));
    expect(again.text).toBe(shell.text);
    const stock = await send(base, includes[0]!, as('bob'));
    expect([stock.status, stock.text, stock.headers['cache-control']]).toEqual([200, '42 left', 'private, no-store']);
    expect((await send(base, includes[1]!, as('bob'))).text).toBe('hi bob');
    // Another argument under the same signature, a signature of another key, none at all.
    for (const forged of [
      includes[0]!.replace('%5B21%5D', '%5B22%5D'),
      includes[1]!.replace(/sig=.*/, 'sig=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'),
      '/-/cachegrain/hole/greeting',
    ]) {
      const refused = await send(base, forged, as('bob'));
      expect([refused.status, refused.headers['cache-control']], forged).toEqual([403, 'private, no-store']);
    }
    // Paths that are no hole's go on to the site.
    expect((await send(base, '/-/cachegrain/hole/a/b', esiAs('bob'))).text).toContain('<esi:include');
    forgetHole('greeting');
    expect((await send(base, includes[1]!, as('bob'))).status).toBe(404);
  });

  it('answers a hole whose builder throws with its fallback, 200 and private, empty by default, each failure reported once', async () => {
    const reported: string[] = [];
    caches.get('default').on('error', (error: Error) => reported.push(error.message));
    const pages = cacheMiddleware({ seconds: 600, holes: 'esi', secret: SECRET });
    const base = await serve(build([holeHandler({ secret: SECRET }) as Middleware, pages], pageView()));
    const [stock, greeting] = [...(await send(base, '/t', esiAs('ann'))).text.matchAll(/<esi:include src="([^"]+)"\/>/g)].map((match) => match[1]!);
    defineHole('stock', () => Promise.reject(new Error('stock service down')), { fallback: '<i>ask us</i>' });
    defineHole('greeting', () => {
      throw new Error('greetings service down');
    });
    for (const [src, fallback] of [
      [stock!, '<i>ask us</i>'],
      [greeting!, ''],
    ]) {
      const answer = await send(base, src!, as('bob'));
      expect([answer.status, answer.text, answer.headers['cache-control'], answer.headers['content-length']], src).toEqual([
        200,
        fallback,
        'private, no-store',
        String(Buffer.byteLength(fallback!)),
      ]);
    }
    expect(reported).toEqual([
      expect.stringMatching(/^hole 'stock' failed on GET \/-\/cachegrain\/hole\/stock\?args=%5B21%5D&sig=[\w-]{43}: stock service down$/),
      expect.stringMatching(/^hole 'greeting' failed on GET \/-\/cachegrain\/hole\/greeting\?sig=[\w-]{43}: greetings service down$/),
    ]);
  });

  it('puts the fallback of a builder that has not answered by its deadline in its place, reported once, filled or under ESI', async () => {
    const reported: string[] = [];
    caches.get('default').on('error', (error: Error) => reported.push(error.message));
    let late!: () => void;
    const answered = new Promise<void>((resolve) => (late = resolve));
    // Answers once the test has seen the fallback go out: too late to count.
    defineHole('stock', () => answered.then(() => 'late stock'), { fallback: '<i>ask us</i>', timeout: 0.05 });
    const pages = cacheMiddleware({ seconds: 600, holes: 'esi', secret: SECRET });
    const base = await serve(build([holeHandler({ secret: SECRET }) as Middleware, pages], pageView()));
    const page = await send(base, '/d', as('ann'));
    expect([page.status, page.text]).toEqual([200, filled('ann').replace('42 left', '<i>ask us</i>')]);
    const stock = /<esi:include src="([^"]+stock[^"]+)"\/>/.exec((await storedHit(base, '/d', esiAs('bob'))).text)![1]!;
    const answer = await send(base, stock, as('bob'));
    expect([answer.status, answer.text, answer.headers['cache-control']]).toEqual([200, '<i>ask us</i>', 'private, no-store']);
    late();
    expect(reported).toEqual([
      "page cache: a hole's fallback was sent: hole 'stock' passed its deadline of 0.05 s on GET /d",
      expect.stringMatching(/^hole 'stock' passed its deadline of 0\.05 s on GET \/-\/cachegrain\/hole\/stock\?args=%5B21%5D&sig=[\w-]{43}$/),
    ]);
    // The late answers are dropped, reported nowhere; a builder answering in time is answered.
    await answered;
    expect((await send(base, '/d', as('cy'))).text).toBe(filled('cy').replace('42 left', 'late stock'));
    expect(reported).toHaveLength(2);
  });

  it('leaves a hole no longer defined empty in a stored page, reported once, and sends the page', async () => {
    const reported: string[] = [];
    caches.get('default').on('error', (error: Error) => reported.push(error.message));
    const base = await serve(build([cacheMiddleware({ seconds: 600 })], pageView()));
    await send(base, '/g', as('ann'));
    expect((await storedHit(base, '/g', as('ann'))).text).toBe(filled('ann'));
    forgetHole('greeting');
    const bob = await send(base, '/g', as('bob'));
    expect([bob.status, bob.headers['x-cache'], bob.text]).toEqual([200, 'HIT', '<h1>1</h1><p>product 21</p>42 left<nav></nav>']);
    expect(reported).toEqual([
      "page cache: a hole's fallback was sent: the page holds hole 'greeting', which is not defined: defineHole('greeting', builder) is missing, " +
        'or was renamed since the page was stored; it was left empty',
    ]);
  });

  it('sends ESI includes only to a request whose Surrogate-Capability names ESI/1.0, and fills the holes of any other, private, from one stored page', async () => {
    const pages = cacheMiddleware({ seconds: 600, holes: 'esi', secret: SECRET });
    const base = await serve(build([holeHandler({ secret: SECRET }) as Middleware, pages], pageView()));
    const expectIncludes = (reply: Reply, what: string, n = 1) => {
      expect(reply.text.replace(INCLUDE, '<esi/>'), what).toBe(`<h1>${n}</h1><p>product 21</p><esi/><nav><esi/></nav>`);
      // The page's lifetime is what its fragment has left: a second may have passed since the first render.
      expect([reply.headers['cache-control'], reply.headers['surrogate-control']], what).toEqual([
        expect.stringMatching(/^max-age=(600|599), private$/),
        expect.stringMatching(/^max-age=(600|599), content="ESI\/1.0"$/),
      ]);
    };
    const expectFilled = (reply: Reply, visitor: string, what: string, n = 1) => {
      expect(reply.text, what).toBe(filled(visitor, n));
      expect([reply.headers['cache-control'], reply.headers['surrogate-control']], what).toEqual([
        expect.stringMatching(/^max-age=(600|599), private$/),
        undefined,
      ]);
    };
    // A visitor straight to the application renders and stores the page, and gets it filled.
    const direct = await send(base, '/n', as('ann'));
    expect(direct.headers['x-cache']).toBe('MISS');
    expectFilled(direct, 'ann', 'a direct MISS');
    expectIncludes(await storedHit(base, '/n', esiAs('bob')), 'a HIT for Varnish');
    expectIncludes(await send(base, '/n', esiAs('bob', 'abc="ESI/1.0 ESI-Inline/1.0", def="ESI/0.8"')), 'a HIT for another device');
    expectFilled(await send(base, '/n', as('cy')), 'cy', 'a direct HIT');
    // A capability that is not ESI/1.0's gets the page filled.
    for (const capability of ['abc="ESI/0.8"', 'abc="ESI-Inline/1.0"', 'cachegrain="XESI/1.0"'])
      expectFilled(await send(base, '/n', esiAs('dee', capability)), 'dee', capability);
    // The other way round: the ESI processor's request renders it.
    const forEsi = await send(base, '/m', esiAs('ann'));
    expect(forEsi.headers['x-cache']).toBe('MISS');
    expectIncludes(forEsi, 'a MISS for Varnish', 2);
    expectFilled(await storedHit(base, '/m', as('bob')), 'bob', 'a direct HIT', 2);
    expect(renders).toBe(2);
  });

  it('advertises the stale windows to the ESI proxy in Surrogate-Control, and in Cache-Control, on the MISS and the HIT', async () => {
    const pages = cacheMiddleware({ seconds: 600, holes: 'esi', secret: SECRET, staleWhileRevalidate: 30, staleIfError: 600 });
    const base = await serve(build([holeHandler({ secret: SECRET }) as Middleware, pages], pageView()));
    for (const reply of [await send(base, '/w', esiAs('ann')), await storedHit(base, '/w', esiAs('bob'))]) {
      expect([reply.headers['cache-control'], reply.headers['surrogate-control']]).toEqual([
        expect.stringMatching(/^max-age=(600|599), stale-while-revalidate=30, stale-if-error=600, private$/),
        expect.stringMatching(/^max-age=(600|599), stale-while-revalidate=30, stale-if-error=600, content="ESI\/1.0"$/),
      ]);
    }
  });

  it('stores the page without holes in every composed layer, and fills them once, in the outermost', async () => {
    const site = cacheMiddleware({ seconds: 600, cache: 'other', keyPrefix: 'site' });
    const route = cachePage(600, { keyPrefix: 'route' });
    const base = await serve(build([site, route], pageView()));
    expect((await send(base, '/l', as('ann'))).text).toBe(filled('ann'));
    expect((await storedHit(base, '/l', as('bob'))).text).toBe(filled('bob'));
    // The site's store is emptied: the route's stored page answers, and the site stores it again with its holes.
    await caches.get('other').clear();
    expect((await send(base, '/l', as('cy'))).text).toBe(filled('cy'));
    expect((await storedHit(base, '/l', as('dee'))).text).toBe(filled('dee'));
    expect(renders).toBe(1);
  });

  it('fills the holes of a stored page sent instead of a failing view (staleIfError)', async () => {
    let clock = Date.now() / 1000;
    caches.get('default').now = () => clock;
    const reported: string[] = [];
    caches.get('default').on('error', (error: Error) => reported.push(error.message));
    const render = pageView();
    let runs = 0;
    const failingLater: View = (req, res) => {
      if (++runs === 1) return render(req, res);
      res.statusCode = 503;
      res.end('busy');
    };
    const base = await serve(build([cachePage(1, { staleIfError: 600 })], failingLater));
    expect((await send(base, '/f', as('ann'))).text).toBe(filled('ann'));
    await storedHit(base, '/f', as('ann'));
    clock += 2;
    const bob = await send(base, '/f', as('bob'));
    expect([bob.status, bob.headers['x-cache'], bob.text, bob.headers['cache-control']]).toEqual([
      200,
      'STALE',
      filled('bob'),
      'max-age=0, stale-if-error=600, private',
    ]);
    expect(runs).toBe(2);
    expect(reported).toEqual([expect.stringMatching(/the view for http:\/\/127\.0\.0\.1:\d+\/f answered 503; the stale page was sent instead/)]);
  });

  it('fills the holes of a page the split middleware answer', async () => {
    const options = { seconds: 600, keyPrefix: 'split' };
    const base = await serve(build([updateCacheMiddleware(options), fetchFromCacheMiddleware(options)], pageView()));
    expect((await send(base, '/split', as('ann'))).text).toBe(filled('ann'));
    const bob = await storedHit(base, '/split', as('bob'));
    expect([bob.text, bob.headers['cache-control']]).toEqual([filled('bob'), 'max-age=600, private']);
  });
});

describe('holes and compression', () => {
  it('fills a page compressed after the page cache fills it (compression() in front)', async () => {
    const base = await serve(bare([compression({ threshold: 0 }) as unknown as Middleware, cacheMiddleware({ seconds: 600 })], pageView()));
    const gzip = { headers: { ...as('ann').headers, 'Accept-Encoding': 'gzip' } };
    const ann = await send(base, '/z', gzip);
    expect([ann.headers['content-encoding'], gunzipSync(ann.body).toString()]).toEqual(['gzip', filled('ann')]);
    const bob = await storedHit(base, '/z', { headers: { ...as('bob').headers, 'Accept-Encoding': 'gzip' } });
    expect(gunzipSync(bob.body).toString()).toBe(filled('bob'));
  });

  it('refuses to send a compressed body whose holes it cannot fill, and says why', async () => {
    const reported: string[] = [];
    caches.get('default').on('error', (error: Error) => reported.push(error.message));
    const base = await serve(bare([cacheMiddleware({ seconds: 600 }), compression({ threshold: 0 }) as unknown as Middleware], pageView()));
    const reply = await send(base, '/z2', { headers: { ...as('ann').headers, 'Accept-Encoding': 'gzip' } });
    expect(reply.status).toBe(500);
    expect(reported.at(-1)).toContain('its holes cannot be filled: put compression() before the page cache');
  });
});

describe('the options of holes', () => {
  it('are checked by the options check, each error naming the option', () => {
    expect(() => cacheMiddleware({ holes: 'inline' as never })).toThrow("cacheMiddleware: options.holes must be 'fill', 'esi' or 'stream' (got 'inline')");
    expect(() => cachePage(60, { secret: 'short' })).toThrow("cachePage: options.secret must be a string of at least 16 characters (got 'short')");
    expect(() => holeHandler({ secrt: SECRET } as never)).toThrow("holeHandler: unknown option 'options.secrt' (did you mean 'options.secret'?)");
    expect(() => defineHole('cart', () => '', { fallbak: '' } as never)).toThrow(
      "defineHole('cart'): unknown option 'options.fallbak' (did you mean 'options.fallback'?)",
    );
    expect(() => defineHole('cart', () => '', { fallback: 3 as never })).toThrow("defineHole('cart'): options.fallback must be a string (got 3)");
    expect(() => defineHole('my cart', () => '')).toThrow("defineHole: the name must be letters, digits and . _ : - such as 'cart' (got 'my cart')");
    expect(() => defineHole('cart', 'x' as never)).toThrow("defineHole('cart'): the builder must be a function of the request (got 'x')");
  });

  it('signs with a random key of the process when given no secret, which a handler with another key refuses', async () => {
    const pages = cacheMiddleware({ seconds: 600, holes: 'esi' });
    const base = await serve(bare([holeHandler() as Middleware, pages], pageView()));
    const other = await serve(bare([holeHandler({ secret: SECRET }) as Middleware], pageView()));
    const src = /<esi:include src="([^"]+)"/.exec((await send(base, '/k', esiAs('ann'))).text)![1]!;
    expect((await send(base, src, as('ann'))).status).toBe(200);
    expect((await send(other, src, as('ann'))).status).toBe(403);
  });
});
