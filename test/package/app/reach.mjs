// An application on each framework and engine beyond Express and the first three: a cached page on
// Fastify, Koa and Hono, checked over real HTTP, and a cached fragment in EJS, Pug and Liquid.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { serve } from '@hono/node-server';
import ejs from 'ejs';
import Fastify from 'fastify';
import { Hono } from 'hono';
import Koa from 'koa';
import { Liquid } from 'liquidjs';
import pug from 'pug';
import { caches, configureCaches } from 'cachegrain';
import * as forEjs from 'cachegrain/ejs';
import { cachegrain } from 'cachegrain/fastify';
import * as forHono from 'cachegrain/hono';
import * as forKoa from 'cachegrain/koa';
import * as forLiquid from 'cachegrain/liquid';
import * as forPug from 'cachegrain/pug';

await configureCaches({ default: { backend: 'locmem', options: { maxEntries: 100 } } });

/** Asks `url` twice: the first a MISS, the second a HIT with the same body, the handler run once. */
async function cachedTwice(name, url, handled) {
  const first = await fetch(url);
  assert.equal(first.headers.get('x-cache'), 'MISS', name);
  const body = await first.text();
  for (let attempt = 0; ; attempt++) {
    const again = await fetch(url);
    const text = await again.text();
    if (again.headers.get('x-cache') === 'HIT') {
      assert.equal(text, body, name);
      break;
    }
    assert.ok(attempt < 50, `${name}: never answered from the cache`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(handled(), 1, `${name}: the handler ran once`);
}

let fastifyRuns = 0;
const fastify = Fastify();
await fastify.register(cachegrain, { site: false });
fastify.get('/news', { config: { cachePage: 60 } }, async () => `fastify ${++fastifyRuns}`);
await fastify.listen({ port: 0, host: '127.0.0.1' });
await cachedTwice('Fastify', `http://127.0.0.1:${fastify.server.address().port}/news`, () => fastifyRuns);
await fastify.close();

let koaRuns = 0;
const koa = new Koa();
koa.use(forKoa.cacheMiddleware({ seconds: 60 }));
koa.use((ctx) => {
  ctx.body = `koa ${++koaRuns}`;
});
const koaServer = koa.listen(0, '127.0.0.1');
await new Promise((resolve) => koaServer.once('listening', resolve));
await cachedTwice('Koa', `http://127.0.0.1:${koaServer.address().port}/news`, () => koaRuns);
koaServer.close();

let honoRuns = 0;
const hono = new Hono();
hono.get('/news', forHono.cachePage(60), (c) => c.text(`hono ${++honoRuns}`));
const honoServer = serve({ fetch: hono.fetch, port: 0, hostname: '127.0.0.1' });
await new Promise((resolve) => honoServer.once('listening', resolve));
await cachedTwice('Hono', `http://127.0.0.1:${honoServer.address().port}/news`, () => honoRuns);
honoServer.close();

let renders = 0;
const count = () => ++renders;
forEjs.installCacheTag(ejs);
const ejsPage = `<% cache(60, 'ejs-fragment', [], async () => { %>[<%= count() %>]<% }) %>`;
assert.equal(await ejs.render(ejsPage, { count }, { async: true }), await ejs.render(ejsPage, { count }, { async: true }));
forPug.installCacheTag(pug);
const pugPage = pug.compile("+cache(60, 'pug-fragment')\n  | [#{count()}]");
assert.equal(await pugPage({ count }), await pugPage({ count }));
const liquid = forLiquid.installCacheTag(new Liquid({ root: fileURLToPath(new URL('./views', import.meta.url)) }));
assert.equal(await liquid.parseAndRender("{% cache 60 'liquid-fragment' %}[{{ count }}]{% endcache %}", { count }), '[3]');
assert.equal(await liquid.parseAndRender("{% cache 60 'liquid-fragment' %}[{{ count }}]{% endcache %}", { count }), '[3]');
assert.equal(renders, 3, 'each fragment is rendered once, then read from the cache');
await caches.closeAll();
console.log('reach: ok');
