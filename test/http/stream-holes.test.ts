/**
 * Streamed holes (`holes: 'stream'`) behind the page cache on each stack (Express 5 and 4,
 * node:http, Fastify, Koa, Hono), read part by part as they arrive, each hole's builder held on a
 * gate the test opens: the shell leaves before any hole is made, on a MISS and on a HIT; a browser
 * that ran the script gets placeholders holding the fallbacks and each hole as a template in the
 * order they come; any other client gets the holes in place, each part as soon as it and those
 * before it are made. The head is final at the shell (private, no validators, not buffered by
 * proxies); a hole that fails or passes its deadline streams its fallback, reported once; the
 * script is served by the layer and by holeHandler().
 */
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import compression from 'compression';
import nunjucks from 'nunjucks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defineHole, holeHandler, type Middleware } from '../../src/frameworks/express.js';
import { installCacheTag, renderString } from '../../src/engines/nunjucks.js';
import { forgetHole } from '../../src/http/index.js';
import { STREAM_SCRIPT, STREAM_SCRIPT_PATH } from '../../src/holes/stream-script.js';
import { caches, configureCaches } from '../../src/index.js';
import { listen, send } from './client.js';
import { bare, cacheMiddleware, cachePage, cookieHeaderOf, express5, expressApp, STACKS, type View } from './stacks.js';
import { arriving, HoleGates } from './streamed.js';

const env = installCacheTag(new nunjucks.Environment(null, { autoescape: true }));
const visitorOf = (request: object) => /visitor=(\w+)/.exec(cookieHeaderOf(request) ?? '')?.[1] ?? 'guest';
/** A browser that ran the holes' script before: it sends the cookie the script sets. */
const SCRIPT_RAN = 'cachegrain-holes=script';
const firstVisit = (visitor: string) => ({ Cookie: `visitor=${visitor}` });
const scriptRan = (visitor: string) => ({ Cookie: `visitor=${visitor}; ${SCRIPT_RAN}` });

const PAGE =
  '<!doctype html><html><head><title>shop</title></head><body><h1>{{ n }}</h1><aside>{% hole "cart" %}</aside>' +
  '{% cache 600 "recs" %}<section>{% hole "recs" %}</section>{% endcache %}<footer>end</footer></body></html>';
const BEFORE_CART = '<!doctype html><html><head><title>shop</title></head><body><h1>1</h1><aside>';
const CART_FALLBACK = '<i>your cart</i>';
const RECS_FALLBACK = '<i>picks for you</i>';
const RECS = '<ul><li>tea</li></ul>';
const filled = (visitor: string, n = 1) =>
  `<!doctype html><html><head><title>shop</title></head><body><h1>${n}</h1><aside>cart of ${visitor}</aside><section>${RECS}</section><footer>end</footer></body></html>`;

/** The script's tag in a page sent in order: a browser that runs it gets its next pages out of order. */
const PLAIN_TAG = `<script src="${STREAM_SCRIPT_PATH}" async></script>`;
/** The page as a client that has not run the script gets it: filled, with the script's tag before its end. */
const inOrder = (visitor: string, n = 1) => filled(visitor, n).replace('</body>', `${PLAIN_TAG}</body>`);

/** The shell an out-of-order client gets, up to its script's tag: the fallbacks in placeholders of the response's nonce. */
const SHELL = new RegExp(
  '^' +
    escapeRegExp(BEFORE_CART) +
    `<cachegrain-hole id="([\\w-]{12})-0">${escapeRegExp(CART_FALLBACK)}</cachegrain-hole></aside>` +
    `<section><cachegrain-hole id="\\1-1">${escapeRegExp(RECS_FALLBACK)}</cachegrain-hole></section><footer>end</footer>` +
    `<script src="${escapeRegExp(STREAM_SCRIPT_PATH)}" async data-cachegrain-holes="\\1"></script>$`,
);

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

let location = 0;
let gates: HoleGates;
let renders = 0;
const reported: string[] = [];
const servers: Array<Awaited<ReturnType<typeof listen>>> = [];

beforeEach(async () => {
  renders = 0;
  reported.length = 0;
  gates = new HoleGates();
  await configureCaches({ default: { backend: 'locmem', location: `stream-holes-${++location}` } });
  caches.get('default').on('error', (error: Error) => reported.push(error.message));
  defineHole(
    'cart',
    async (request) => {
      await gates.hold('cart');
      return `cart of ${visitorOf(request)}`;
    },
    { fallback: CART_FALLBACK },
  );
  defineHole(
    'recs',
    async () => {
      await gates.hold('recs');
      return RECS;
    },
    { fallback: RECS_FALLBACK },
  );
});
afterEach(async () => {
  for (const name of ['cart', 'recs', 'token']) forgetHole(name);
  await Promise.all(servers.splice(0).map((server) => server.close()));
  await caches.closeAll();
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = await listen(handler);
  servers.push(server);
  return server.url;
}

function pageView(source = PAGE): View {
  return (_req, res) => {
    renderString(env, source, { n: ++renders }).then(
      (html) => {
        res.setHeader('Content-Type', 'text/html; charset=utf-8');
        res.end(html);
      },
      (error: Error) => {
        res.statusCode = 500;
        res.end(error.message);
      },
    );
  };
}

/** The head every streamed page goes out with. */
function expectStreamedHead(headers: IncomingMessage['headers'], what: string): void {
  expect(
    {
      cacheControl: headers['cache-control'],
      buffering: headers['x-accel-buffering'],
      length: headers['content-length'],
      chunked: headers['transfer-encoding'],
      etag: headers.etag,
      lastModified: headers['last-modified'],
    },
    what,
  ).toEqual({ cacheControl: 'max-age=600, private', buffering: 'no', length: undefined, chunked: 'chunked', etag: undefined, lastModified: undefined });
}

describe.each(STACKS)('streamed holes on %s', (_flavour, build) => {
  it('sends a browser that ran the script the shell at once, its fallbacks in placeholders, then each hole as a template as it comes, on a MISS and on a HIT', async () => {
    const base = await serve(build([cacheMiddleware({ seconds: 600, holes: 'stream' })], pageView()));
    for (const [label, visitor] of [
      ['MISS', 'ann'],
      ['HIT', 'bob'],
    ] as const) {
      const page = await arriving(base, '/p', { headers: scriptRan(visitor) });
      expect([page.status, page.headers['x-cache']], label).toEqual([200, label]);
      expectStreamedHead(page.headers, label);
      // Both builders are held: the shell came without them.
      const shell = await page.until('</script>');
      const nonce = SHELL.exec(shell)?.[1];
      expect(nonce, `${label}: ${shell}`).toBeDefined();
      // The later hole is made first, and comes first.
      await gates.open('recs');
      await page.until(`<template data-cachegrain-hole="${nonce}-1">${RECS}</template>\n`);
      expect(page.text()).not.toContain(`${nonce}-0">cart`);
      await gates.open('cart');
      expect(await page.ended, label).toBe(
        `${shell}<template data-cachegrain-hole="${nonce}-1">${RECS}</template>\n` +
          `<template data-cachegrain-hole="${nonce}-0">cart of ${visitor}</template>\n</body></html>`,
      );
    }
    expect(renders).toBe(1);
    expect(reported).toEqual([]);
  });

  it('sends any other client the holes in place, each part as soon as it and the holes before it are made, on a MISS and on a HIT', async () => {
    const base = await serve(build([cacheMiddleware({ seconds: 600, holes: 'stream' })], pageView()));
    for (const [label, visitor] of [
      ['MISS', 'ann'],
      ['HIT', 'bob'],
    ] as const) {
      const page = await arriving(base, '/p', { headers: firstVisit(visitor) });
      expect([page.status, page.headers['x-cache']], label).toEqual([200, label]);
      expectStreamedHead(page.headers, label);
      // The shell up to the first hole, while both are held.
      expect(await page.until('<aside>'), label).toBe(BEFORE_CART);
      await gates.open('cart');
      expect(await page.until('<section>'), label).toBe(`${BEFORE_CART}cart of ${visitor}</aside><section>`);
      await gates.open('recs');
      expect(await page.ended, label).toBe(inOrder(visitor));
    }
    expect(renders).toBe(1);
  });

  it('sends the holes in order to a browser that ran the script where holesInOrder marks its request', async () => {
    const crawler = (request: object) => /bot/.test(JSON.stringify(cookieHeaderOf(request)) + String(userAgentOf(request)));
    const base = await serve(build([cacheMiddleware({ seconds: 600, holes: 'stream', holesInOrder: crawler })], pageView()));
    const bot = arriving(base, '/p', { headers: { ...scriptRan('ann'), 'User-Agent': 'a-bot/1.0' } });
    await gates.open('cart');
    await gates.open('recs');
    expect(await (await bot).ended).toBe(inOrder('ann'));
    const browser = await arriving(base, '/p', { headers: { ...scriptRan('bob'), 'User-Agent': 'Mozilla/5.0' } });
    expect(await browser.until('</script>')).toMatch(SHELL);
    await gates.open('cart');
    await gates.open('recs');
    await browser.ended;
  });

  it('streams the fallback of a hole that fails or passes its deadline, reported once, and completes the page', async () => {
    defineHole(
      'cart',
      () => {
        throw new Error('cart service down');
      },
      { fallback: CART_FALLBACK },
    );
    // Never answers: its deadline ends its wait.
    defineHole('recs', () => new Promise(() => undefined), { fallback: RECS_FALLBACK, timeout: 0.05 });
    const base = await serve(build([cacheMiddleware({ seconds: 600, holes: 'stream' })], pageView()));
    const firstVisitPage = await (await arriving(base, '/p', { headers: firstVisit('ann') })).ended;
    expect(firstVisitPage).toBe(inOrder('ann').replace('cart of ann', CART_FALLBACK).replace(RECS, RECS_FALLBACK));
    const outOfOrder = await (await arriving(base, '/p', { headers: scriptRan('bob') })).ended;
    const nonce = /data-cachegrain-holes="([\w-]+)"/.exec(outOfOrder)![1]!;
    // The cart's fallback is the cart's answer, at once: it stands in place; the deadline's comes as a template.
    expect(outOfOrder).toContain(`<aside>${CART_FALLBACK}</aside><section><cachegrain-hole id="${nonce}-1">${RECS_FALLBACK}</cachegrain-hole>`);
    expect(outOfOrder).toMatch(new RegExp(`<template data-cachegrain-hole="${nonce}-1">${escapeRegExp(RECS_FALLBACK)}</template>\n</body></html>$`));
    expect(reported.sort()).toEqual([
      "page cache: a hole's fallback was sent: hole 'cart' failed on GET /p: cart service down",
      "page cache: a hole's fallback was sent: hole 'cart' failed on GET /p: cart service down",
      "page cache: a hole's fallback was sent: hole 'recs' passed its deadline of 0.05 s on GET /p",
      "page cache: a hole's fallback was sent: hole 'recs' passed its deadline of 0.05 s on GET /p",
    ]);
  });

  it('answers a HEAD with the head alone, no builder run', async () => {
    const base = await serve(build([cacheMiddleware({ seconds: 600, holes: 'stream' })], pageView()));
    const miss = arriving(base, '/p', { headers: firstVisit('ann') });
    await gates.open('cart');
    await gates.open('recs');
    await (
      await miss
    ).ended;
    const head = await send(base, '/p', { method: 'HEAD', headers: scriptRan('bob') });
    expect([head.status, head.headers['x-cache'], head.body.length]).toEqual([200, 'HIT', 0]);
    expect([head.headers['cache-control'], head.headers['x-accel-buffering'], head.headers['content-length'], head.headers.etag]).toEqual([
      'max-age=600, private',
      'no',
      undefined,
      undefined,
    ]);
    expect([gates.calls.get('cart'), gates.calls.get('recs')]).toEqual([1, 1]);
  });

  it("serves the holes' script at its path, cacheable for a year, with an ETag and 304", async () => {
    const base = await serve(build([cacheMiddleware({ seconds: 600, holes: 'stream' })], pageView()));
    const script = await send(base, STREAM_SCRIPT_PATH);
    expect([script.status, script.text, script.headers['content-type'], script.headers['cache-control']]).toEqual([
      200,
      STREAM_SCRIPT,
      'text/javascript; charset=utf-8',
      'public, max-age=31536000, immutable',
    ]);
    expect(script.headers.etag).toMatch(/^"[0-9a-f]{12}"$/);
    const again = await send(base, STREAM_SCRIPT_PATH, { headers: { 'If-None-Match': script.headers.etag! } });
    expect([again.status, again.body.length]).toEqual([304, 0]);
    const head = await send(base, STREAM_SCRIPT_PATH, { method: 'HEAD' });
    expect([head.status, head.headers['content-length'], head.body.length]).toEqual([200, String(Buffer.byteLength(STREAM_SCRIPT)), 0]);
    expect(renders).toBe(0);
  });

  it('streams a HIT stored with compress as one gzip member, each part decoded as it arrives, in order and out of order', async () => {
    const base = await serve(build([cacheMiddleware({ seconds: 600, holes: 'stream', compress: true })], pageView()));
    // The MISS goes out as the view made it; it stores the page with its shell deflated in parts.
    const miss = await arriving(base, '/c', { headers: { ...firstVisit('ann'), 'Accept-Encoding': 'gzip' } });
    await gates.open('cart');
    await gates.open('recs');
    expect([miss.headers['content-encoding'], await miss.ended]).toEqual([undefined, inOrder('ann')]);

    const outOfOrder = await arriving(base, '/c', { headers: { ...scriptRan('bob'), 'Accept-Encoding': 'gzip, br' }, gunzip: true });
    expect([outOfOrder.headers['x-cache'], outOfOrder.headers['content-encoding'], outOfOrder.headers.vary]).toEqual(['HIT', 'gzip', 'Accept-Encoding']);
    expectStreamedHead(outOfOrder.headers, 'a streamed HIT in gzip');
    expect(await outOfOrder.until('</script>')).toMatch(SHELL);
    await gates.open('recs');
    expect(await outOfOrder.until(`${RECS}</template>`)).not.toContain('cart of bob');
    await gates.open('cart');
    expect(await outOfOrder.ended).toMatch(/cart of bob<\/template>\n<\/body><\/html>$/);

    const first = await arriving(base, '/c', { headers: { ...firstVisit('cy'), 'Accept-Encoding': 'gzip' }, gunzip: true });
    expect(first.headers['content-encoding']).toBe('gzip');
    expect(await first.until('<aside>')).toBe(BEFORE_CART);
    await gates.open('cart');
    await first.until('cart of cy</aside>');
    await gates.open('recs');
    expect(await first.ended).toBe(inOrder('cy'));
    expect(reported).toEqual([]);
  });
});

/** The User-Agent of the request a builder or holesInOrder gets, on any stack. */
function userAgentOf(request: any): string | undefined {
  return (request.headers as Record<string, string | undefined> | undefined)?.['user-agent'] ?? request.req?.header('user-agent');
}

describe('streamed holes, on Express and node:http', () => {
  it('keeps the head a hole finds sent: a cookie a builder sets fails it, its fallback streamed and reported once', async () => {
    defineHole(
      'cart',
      async (req: IncomingMessage & { res: ServerResponse }) => {
        await gates.hold('cart');
        req.res.setHeader('Set-Cookie', 'cart=1');
        return 'cart';
      },
      { fallback: CART_FALLBACK },
    );
    const base = await serve(expressApp(express5)([cacheMiddleware({ seconds: 600, holes: 'stream' })], pageView()));
    const page = await arriving(base, '/p', { headers: firstVisit('ann') });
    await gates.open('cart');
    await gates.open('recs');
    expect(await page.ended).toBe(inOrder('ann').replace('cart of ann', CART_FALLBACK));
    expect([page.status, page.headers['set-cookie']]).toEqual([200, undefined]);
    expect(reported).toEqual([
      expect.stringMatching(/^page cache: a hole's fallback was sent: hole 'cart' failed on GET \/p: Cannot set headers after they are sent/),
    ]);
  });

  it('flushes each part through compression() in front of the page cache', async () => {
    const base = await serve(bare([compression({ threshold: 0 }) as unknown as Middleware, cacheMiddleware({ seconds: 600, holes: 'stream' })], pageView()));
    const page = await arriving(base, '/z', { headers: { ...scriptRan('ann'), 'Accept-Encoding': 'gzip' }, gunzip: true });
    expect([page.headers['content-encoding'], page.headers['x-accel-buffering']]).toEqual(['gzip', 'no']);
    expect(await page.until('</script>')).toMatch(SHELL);
    await gates.open('recs');
    await page.until(`${RECS}</template>`);
    await gates.open('cart');
    expect(await page.ended).toMatch(/cart of ann<\/template>\n<\/body><\/html>$/);
  });

  it('fills in place a hole no element can stand in for (an attribute, a title, a table row), the shell waiting for it there', async () => {
    defineHole('token', () => Promise.resolve('t0k"en'.replace('"', '')));
    const source =
      '<html><head><title>{% hole "token" %}</title></head><body><form><input name="csrf" value="{% hole "token" %}"></form>' +
      '<table><tr><td>{% hole "recs" %}</td></tr>{% hole "token" %}</table><p>{% hole "cart" %}</p></body></html>';
    const base = await serve(bare([cacheMiddleware({ seconds: 600, holes: 'stream' })], pageView(source)));
    const page = await arriving(base, '/f', { headers: scriptRan('ann') });
    const shell = await page.until('</script>');
    const nonce = /data-cachegrain-holes="([\w-]+)"/.exec(shell)![1]!;
    expect(shell).toBe(
      `<html><head><title>t0ken</title></head><body><form><input name="csrf" value="t0ken"></form><table><tr><td><cachegrain-hole id="${nonce}-2">${RECS_FALLBACK}</cachegrain-hole></td></tr>t0ken</table>` +
        `<p><cachegrain-hole id="${nonce}-4">${CART_FALLBACK}</cachegrain-hole></p>` +
        `<script src="${STREAM_SCRIPT_PATH}" async data-cachegrain-holes="${nonce}"></script>`,
    );
    await gates.open('cart');
    await gates.open('recs');
    await page.ended;
  });

  it('streams the holes of a body that is not HTML in place, with no script, to a browser that ran it too', async () => {
    const json: View = (_req, res) => {
      renderString(env, '{"cart": "{% hole "cart" %}", "n": {{ n }}}', { n: ++renders }).then((text) => {
        res.setHeader('Content-Type', 'application/json');
        res.end(text);
      });
    };
    const base = await serve(bare([cacheMiddleware({ seconds: 600, holes: 'stream' })], json));
    for (const label of ['MISS', 'HIT']) {
      const page = await arriving(base, '/cart.json', { headers: scriptRan('ann') });
      expect([page.headers['x-cache'], page.headers['content-type'], page.headers['x-accel-buffering']], label).toEqual([label, 'application/json', 'no']);
      expect(await page.until('"cart": "'), label).toBe('{"cart": "');
      await gates.open('cart');
      expect(await page.ended, label).toBe('{"cart": "cart of ann", "n": 1}');
    }
  });

  it('streams the holes in the outermost of composed layers, the inner storing the shell', async () => {
    const base = await serve(bare([cacheMiddleware({ seconds: 600, holes: 'stream', keyPrefix: 'site' }), cachePage(600, { keyPrefix: 'route' })], pageView()));
    const page = await arriving(base, '/l', { headers: firstVisit('ann') });
    expect(await page.until('<aside>')).toBe(BEFORE_CART);
    await gates.open('cart');
    await gates.open('recs');
    expect(await page.ended).toBe(inOrder('ann'));
  });

  it('ends a page streamed to an HTTP/1.0 client by closing the connection', async () => {
    const base = await serve(bare([cacheMiddleware({ seconds: 600, holes: 'stream' })], pageView()));
    const socket = connect(Number(new URL(base).port), '127.0.0.1');
    await once(socket, 'connect');
    socket.write(`GET /o HTTP/1.0\r\nHost: 127.0.0.1\r\nCookie: visitor=ann\r\n\r\n`);
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    await gates.open('cart');
    await gates.open('recs');
    await once(socket, 'end');
    const [head, body] = received.split('\r\n\r\n') as [string, string];
    expect(head).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(head).not.toMatch(/transfer-encoding|content-length/i);
    expect(head).toMatch(/\r\nConnection: close(\r\n|$)/i);
    expect(body).toBe(inOrder('ann'));
  });

  it("lets holeHandler() serve the holes' script, and no layer of another mode", async () => {
    const base = await serve(bare([holeHandler() as Middleware, cacheMiddleware({ seconds: 600 })], pageView('<p>app</p>')));
    const script = await send(base, `${STREAM_SCRIPT_PATH}?v=1`);
    expect([script.status, script.text, script.headers['cache-control']]).toEqual([200, STREAM_SCRIPT, 'public, max-age=31536000, immutable']);
    const filling = await serve(bare([cacheMiddleware({ seconds: 600 })], pageView('<p>app</p>')));
    expect((await send(filling, STREAM_SCRIPT_PATH)).text).toBe('<p>app</p>');
  });
});

describe('the options of streamed holes', () => {
  it('are checked by the options check', () => {
    expect(() => cacheMiddleware({ holes: 'streamed' as never })).toThrow("cacheMiddleware: options.holes must be 'fill', 'esi' or 'stream' (got 'streamed')");
    expect(() => cacheMiddleware({ holes: 'stream', holesInOrder: true as never })).toThrow(
      'cacheMiddleware: options.holesInOrder must be a function (req) => boolean (got true)',
    );
    expect(() => cacheMiddleware({ holesInOrder: () => true })).toThrow(
      "cacheMiddleware: options.holesInOrder orders streamed holes: give it with holes: 'stream'",
    );
    expect(() => defineHole('cart', () => '', { timeout: 0 })).toThrow("defineHole('cart'): options.timeout must be a positive number of seconds (got 0)");
  });
});
