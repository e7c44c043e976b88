/**
 * A hole that fails never puts an error into a visitor's page behind Varnish: a Koa site whose
 * dashboard guard is a prefix test (`ctx.path.startsWith('/_cache')`) gets every hole filled, as
 * hole URLs live where no such guard reaches; a builder that throws is answered with its fallback,
 * 200, and reported once; an include the application answers with an error status (or cannot answer
 * at all) adds nothing to the assembled page, under the shipped VCL and under the one the manual shows.
 */
import type { Server } from 'node:http';
import Koa from 'koa';
import nunjucks from 'nunjucks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as onKoa from '../../src/frameworks/koa.js';
import { installCacheTag, renderString } from '../../src/engines/nunjucks.js';
import { forgetHole } from '../../src/http/index.js';
import { caches, configureCaches } from '../../src/index.js';
import { type Proxy, startShippedVarnish, startVarnish } from '../setup/proxies.js';
import { readmeFiles, whereShown } from '../setup/readme.js';
import { listen, send } from './client.js';

const env = installCacheTag(new nunjucks.Environment(null, { autoescape: true }));
const SECRET = 'a secret of the whole site, 32 characters';
const STAFF_ONLY = 'staff only';
const as = (visitor: string) => ({ headers: { Cookie: `visitor=${visitor}` } });
const visitorOf = (ctx: onKoa.KoaContext) => ctx.cookies.get('visitor') ?? 'guest';

/** What reached the application, by path. */
const received = new Map<string, number>();
/** What the default cache reported. */
const reported: string[] = [];

/**
 * A Koa shop as its README mounts it, its dashboard behind a guard written as a prefix test, pages
 * cached with their holes as ESI includes; and a few pages whose shells name includes that fail.
 */
function shop(): Koa {
  const app = new Koa();
  app.silent = true;
  app.use(async (ctx, next) => {
    received.set(ctx.path, (received.get(ctx.path) ?? 0) + 1);
    await next();
  });
  app.use(async (ctx, next) => {
    if (!ctx.path.startsWith('/_cache')) return next();
    ctx.status = 403;
    ctx.body = STAFF_ONLY;
  });
  app.use(onKoa.cacheDashboard({ path: '/_cache' }));
  app.use(onKoa.holeHandler({ secret: SECRET }));
  app.use(async (ctx, next) => {
    // Shells written by hand: includes of URLs the application answers with an error status.
    const failing = /^\/failing\/(\d+)$/.exec(ctx.path);
    if (failing !== null) {
      ctx.status = Number(failing[1]);
      ctx.body = `error body ${failing[1]}`;
      return;
    }
    if (ctx.path === '/shell/failing-includes') {
      ctx.set('Surrogate-Control', 'max-age=600, content="ESI/1.0"');
      ctx.set('Cache-Control', 'private');
      ctx.body =
        ['500', '403', '404', '503'].map((status) => `<p>${status}</p><esi:include src="/failing/${status}"/>`).join('') +
        `<p>forged</p><esi:include src="${forgedCartUrl()}"/>`;
      return;
    }
    await next();
  });
  app.use(onKoa.cacheMiddleware({ seconds: 600, holes: 'esi', secret: SECRET }));
  app.use(async (ctx) => {
    const product = /^\/products\/(\w+)$/.exec(ctx.path)?.[1];
    if (product === undefined) return;
    ctx.type = 'html';
    ctx.body = await renderString(env, '<h1>{{ product }}</h1><aside>{% hole "cart" %}</aside><p>{% hole "stock" product %}</p><p>{% hole "offer" %}</p>', {
      product,
    });
  });
  return app;
}

/** The two Varnish configurations a site may run: the one the package ships, or the least the manual shows (`esi.vcl`). */
const VARNISHES = {
  shipped: (backendPort: number) => startShippedVarnish({ backendPort }),
  "the manual's esi.vcl": (backendPort: number) => {
    const shown = readmeFiles().get('esi.vcl');
    if (shown === undefined || !shown.includes('.port = "3000";'))
      throw new Error(`the manual no longer shows esi.vcl with its backend on port 3000 (${whereShown('esi.vcl')}): update this test`);
    return startVarnish({ vcl: shown.replace(/^vcl 4\.1;\n/, '').replace('.port = "3000";', `.port = "${backendPort}";`) });
  },
};
type VarnishKind = keyof typeof VARNISHES;
const VARNISH_KINDS = Object.keys(VARNISHES) as VarnishKind[];

/** A hole's URL as a shell of the site names it, by hole. */
const HOLE_URL_OF: Record<string, string> = {};
/** The cart's URL under a signature of no key. */
const forgedCartUrl = () => HOLE_URL_OF.cart!.replace(/sig=.*/, `sig=${'A'.repeat(43)}`);

let site: { server: Server; url: string; close(): Promise<void> };
let varnish: Proxy;
let readmeVarnish: Proxy;

beforeAll(async () => {
  await configureCaches({ default: { backend: 'locmem', location: 'holes-edge' } });
  caches.get('default').on('error', (error: Error) => reported.push(error.message));
  onKoa.defineHole('cart', (ctx) => `cart of ${visitorOf(ctx)}`);
  onKoa.defineHole('stock', (_ctx, product: string) => `${product.length} left`);
  onKoa.defineHole('offer', (ctx) => `an offer for ${visitorOf(ctx)}`);
  site = await listen(shop().callback());
  [varnish, readmeVarnish] = await Promise.all(VARNISH_KINDS.map((kind) => VARNISHES[kind](Number(new URL(site.url).port))));
  const shell = await send(site.url, '/products/shell', { headers: { 'Surrogate-Capability': 'cachegrain="ESI/1.0"' } });
  for (const [, src] of shell.text.matchAll(/<esi:include src="([^"]+)"\/>/g)) HOLE_URL_OF[/\/hole\/(\w+)/.exec(src!)![1]!] = src!;
}, 60_000);

afterEach(() => {
  reported.length = 0;
});

afterAll(async () => {
  await Promise.allSettled([varnish?.stop(), readmeVarnish?.stop(), site?.close()]);
  for (const name of ['cart', 'stock', 'offer']) forgetHole(name);
  await caches.closeAll();
});

describe('holes behind Varnish', () => {
  it("are filled in every visitor's page where the dashboard's guard is a prefix test, which still guards the dashboard", async () => {
    const pages: string[] = [];
    for (const product of ['tea', 'cocoa', 'coffee']) {
      for (let i = 0; i < 10; i++) pages.push((await send(varnish.url, `/products/${product}`, as(`v${i}`))).text);
    }
    expect(pages.filter((page) => page.includes(STAFF_ONLY)).length, "pages with the guard's answer in them").toBe(0);
    expect(pages.filter((page, n) => page.includes(`<aside>cart of v${n % 10}</aside>`)).length, "pages with their visitor's cart").toBe(30);
    for (const path of ['/_cache', '/_cache/', '/_cache/invalidate-tags']) {
      const refused = await send(varnish.url, path, as('v1'));
      expect([refused.status, refused.text], path).toEqual([403, STAFF_ONLY]);
    }
    expect(reported).toEqual([]);
  });

  it('answer the fallback of a builder that throws, 200 and private, empty by default, each failure reported once', async () => {
    onKoa.defineHole('stock', () => Promise.reject(new Error('stock service down')), { fallback: '<i>ask us</i>' });
    onKoa.defineHole('offer', () => {
      throw new Error('offers service down');
    });
    try {
      const page = await send(varnish.url, '/products/tea', as('ann'));
      expect([page.status, page.text]).toEqual([200, '<h1>tea</h1><aside>cart of ann</aside><p><i>ask us</i></p><p></p>']);
      expect(reported.sort()).toEqual([
        expect.stringMatching(/^hole 'offer' failed on GET \/-\/cachegrain\/hole\/offer\?sig=[\w-]{43}: offers service down$/),
        expect.stringMatching(/^hole 'stock' failed on GET \/-\/cachegrain\/hole\/stock\?args=%5B%22tea%22%5D&sig=[\w-]{43}: stock service down$/),
      ]);
      reported.length = 0;
      for (const [hole, fallback] of [
        ['stock', '<i>ask us</i>'],
        ['offer', ''],
      ] as const) {
        const answer = await send(site.url, HOLE_URL_OF[hole]!, as('bob'));
        expect([answer.status, answer.text, answer.headers['cache-control'], answer.headers['content-type']], hole).toEqual([
          200,
          fallback,
          'private, no-store',
          'text/html; charset=utf-8',
        ]);
      }
      expect(reported).toEqual([expect.stringContaining("hole 'stock' failed"), expect.stringContaining("hole 'offer' failed")]);
    } finally {
      onKoa.defineHole('stock', (_ctx, product: string) => `${product.length} left`);
      onKoa.defineHole('offer', (ctx) => `an offer for ${visitorOf(ctx)}`);
    }
  });

  it.each(VARNISH_KINDS)('add nothing to the page for an include the application answers with an error status, or a forged signature (%s)', async (kind) => {
    received.clear();
    const edge = kind === 'shipped' ? varnish : readmeVarnish;
    const page = await send(edge.url, '/shell/failing-includes', as('ann'));
    expect([page.status, page.text]).toEqual([200, '<p>500</p><p>403</p><p>404</p><p>503</p><p>forged</p>']);
    for (const status of ['500', '403', '404', '503']) expect(received.get(`/failing/${status}`), `/failing/${status} was asked`).toBeGreaterThan(0);
    // The forged one reached the hole handler, which refused it: no builder ran, nothing was reported.
    const forged = await send(site.url, forgedCartUrl(), as('ann'));
    expect(forged.status).toBe(403);
    expect(reported).toEqual([]);
  });
});

describe('a hole Varnish cannot reach', () => {
  it.each(VARNISH_KINDS)(
    'adds nothing to the page kept there: no error page of Varnish in it (%s)',
    async (kind) => {
      const down = await listen(shop().callback());
      const edge = await VARNISHES[kind](Number(new URL(down.url).port));
      try {
        const first = await send(edge.url, '/products/tea', as('ann'));
        expect(first.text).toBe('<h1>tea</h1><aside>cart of ann</aside><p>3 left</p><p>an offer for ann</p>');
        // The application goes away; Varnish keeps the shell and fetches each hole again.
        await new Promise<void>((resolve) => {
          down.server.close(() => resolve());
          down.server.closeAllConnections();
        });
        const kept = await send(edge.url, '/products/tea', as('bob'));
        expect([kept.status, kept.text]).toEqual([200, '<h1>tea</h1><aside></aside><p></p><p></p>']);
      } finally {
        await edge.stop();
        await down.close().catch(() => undefined);
      }
    },
    60_000,
  );
});
