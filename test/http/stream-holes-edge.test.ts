/**
 * Streamed holes as curl sees them, straight from the application and through the shipped nginx and
 * Varnish configurations in front of it: each hole's builder held on a gate, the shell arrives
 * before any gate opens, and each later part as its hole is made, on the application's MISS and on
 * its HIT, out of order to a browser that ran the script and in order to any other client. nginx
 * passes the page unbuffered (`X-Accel-Buffering: no`), Varnish passes it (private) as it streams it.
 */
import type { Server } from 'node:http';
import { once } from 'node:events';
import express from 'express';
import nunjucks from 'nunjucks';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cacheMiddleware, defineHole } from '../../src/frameworks/express.js';
import { installCacheTag, renderString } from '../../src/engines/nunjucks.js';
import { forgetHole } from '../../src/http/index.js';
import { caches, configureCaches } from '../../src/index.js';
import { type Proxy, startShippedNginx, startShippedVarnish } from '../setup/proxies.js';
import { curlArriving, HoleGates } from './streamed.js';

const env = installCacheTag(new nunjucks.Environment(null, { autoescape: true }));
const PAGE =
  '<!doctype html><html><body><h1>shop</h1><aside>{% hole "cart" %}</aside>{% cache 600 "recs" %}<section>{% hole "recs" %}</section>{% endcache %}' +
  '<footer>end</footer></body></html>';
const BEFORE_CART = '<!doctype html><html><body><h1>shop</h1><aside>';

let site: Server;
let origin: string;
let nginx: Proxy;
let varnish: Proxy;
let gates: HoleGates;
let renders = 0;

beforeAll(async () => {
  await configureCaches({ default: { backend: 'locmem', location: 'stream-holes-edge' } });
  defineHole(
    'cart',
    async (req: { headers: { cookie?: string } }) => {
      await gates.hold('cart');
      return `cart of ${/visitor=(\w+)/.exec(req.headers.cookie ?? '')?.[1] ?? 'guest'}`;
    },
    { fallback: '<i>cart</i>' },
  );
  defineHole(
    'recs',
    async () => {
      await gates.hold('recs');
      return '<ul><li>tea</li></ul>';
    },
    { fallback: '<i>recs</i>' },
  );
  const app = express();
  app.use(cacheMiddleware({ seconds: 600, holes: 'stream' }));
  app.get('/{*path}', (_req, res, next) => {
    renders++;
    renderString(env, PAGE).then((html) => res.type('html').send(html), next);
  });
  site = app.listen(0, '127.0.0.1');
  await once(site, 'listening');
  const port = (site.address() as { port: number }).port;
  origin = `http://127.0.0.1:${port}`;
  [nginx, varnish] = await Promise.all([startShippedNginx({ backendPort: port }), startShippedVarnish({ backendPort: port })]);
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([nginx?.stop(), varnish?.stop()]);
  await new Promise((resolve) => site?.close(resolve));
  for (const name of ['cart', 'recs']) forgetHole(name);
  await caches.closeAll();
});

beforeEach(() => {
  gates = new HoleGates();
});

const WAYS = {
  'straight from the application': () => origin,
  'through the shipped nginx': () => nginx.url,
  'through the shipped Varnish': () => varnish.url,
};

describe.each(Object.keys(WAYS) as Array<keyof typeof WAYS>)('streamed holes, read by curl %s', (way) => {
  const path = `/${way.split(' ').at(-1)}`;

  it('arrive in parts as the holes are made: out of order to a browser that ran the script (a MISS), in order to another client (a HIT)', async () => {
    const base = WAYS[way]();
    const rendered = renders;
    const marked = await curlArriving(`${base}${path}`, { Cookie: 'visitor=ann; cachegrain-holes=script' });
    expect(marked.status).toBe(200);
    expect(marked.headers['cache-control']).toMatch(/^max-age=\d+, private$/);
    // Both builders are held: the shell arrived without them, then each hole as it is made.
    const shell = await marked.until('</script>');
    expect(shell).toMatch(/^<!doctype html><html><body><h1>shop<\/h1><aside><cachegrain-hole id="[\w-]+-0"><i>cart<\/i><\/cachegrain-hole><\/aside>/);
    await gates.open('recs');
    await marked.until('<ul><li>tea</li></ul></template>');
    expect(marked.text()).not.toContain('cart of ann');
    await gates.open('cart');
    expect(await marked.ended).toMatch(/<template data-cachegrain-hole="[\w-]+-0">cart of ann<\/template>\n<\/body><\/html>$/);
    expect(renders).toBe(rendered + 1);

    const plain = await curlArriving(`${base}${path}`, { Cookie: 'visitor=bob' });
    expect(await plain.until('<aside>')).toBe(BEFORE_CART);
    await gates.open('cart');
    expect(await plain.until('<section>')).toBe(`${BEFORE_CART}cart of bob</aside><section>`);
    await gates.open('recs');
    expect(await plain.ended).toMatch(/<section><ul><li>tea<\/li><\/ul><\/section><footer>end<\/footer><script src="[^"]+" async><\/script><\/body><\/html>$/);
    // The application answered a HIT: the edge kept nothing of a private page.
    expect(renders).toBe(rendered + 1);
  }, 30_000);
});
