// An application of cachegrain as ES modules: a cache, a template of each engine with a cache tag,
// and an Express route with cachePage, checked over real HTTP.
import assert from 'node:assert/strict';
import { hasSubscribers } from 'node:diagnostics_channel';
import { realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import express from 'express';
import handlebars from 'handlebars';
import nunjucks from 'nunjucks';
import { Eta } from 'eta';
import { caches, configureCaches } from 'cachegrain';
import { cachePage } from 'cachegrain/express';
import * as forNunjucks from 'cachegrain/nunjucks';
import * as forHandlebars from 'cachegrain/handlebars';
import { cachePlugin } from 'cachegrain/eta';

const views = fileURLToPath(new URL('./views', import.meta.url));
await configureCaches({
  default: { backend: 'locmem', options: { maxEntries: 100 } },
  shared: { backend: 'redis', location: 'redis://127.0.0.1:6379', options: { failOpen: true } },
});
const cache = caches.get('default');
await cache.set('greeting', 'hello');
assert.equal(await cache.get('greeting'), 'hello');

let renders = 0;
const count = () => ++renders;

const env = forNunjucks.installCacheTag(new nunjucks.Environment(new nunjucks.FileSystemLoader(views)));
assert.equal(await forNunjucks.render(env, 'page.njk', { count }), await forNunjucks.render(env, 'page.njk', { count }));

const hbs = forHandlebars.installCacheHelper(handlebars.create());
const template = hbs.compile('{{#cache 60 "hbs-fragment"}}[{{count}}]{{/cache}}');
assert.equal(await forHandlebars.render(template, { count }), await forHandlebars.render(template, { count }));

const eta = new Eta({ views, plugins: [cachePlugin()] });
assert.equal(await eta.renderAsync('page', { count }), await eta.renderAsync('page', { count }));
assert.equal(renders, 3, 'each fragment is rendered once, then read from the cache');

const app = express();
let views_run = 0;
app.get('/news', cachePage(60), (_req, res) => res.send(`news ${++views_run}`));
const server = app.listen(0, '127.0.0.1');
await new Promise((resolve) => server.once('listening', resolve));
const url = `http://127.0.0.1:${server.address().port}/news`;
const first = await (await fetch(url)).text();
const second = await fetch(url);
assert.equal(await second.text(), first);
assert.equal(second.headers.get('x-cache'), 'HIT');
server.close();
// Building a redis cache loads ioredis (it connects on first use): the application's copy, whatever
// the working directory holds.
caches.get('shared');
const loaded = Object.keys(createRequire(import.meta.url).cache).filter((path) => /[\\/]ioredis[\\/]built[\\/]index\.js$/.test(path));
assert.deepEqual(
  loaded.map((path) => realpathSync(path)),
  [realpathSync(fileURLToPath(new URL('./node_modules/ioredis/built/index.js', import.meta.url)))],
);
// With OpenTelemetry's API installed and no SDK registered, the bridge subscribes to nothing.
const { enableOpenTelemetry } = await import('cachegrain/opentelemetry');
const stopTelemetry = enableOpenTelemetry();
assert.equal(hasSubscribers('cachegrain:get'), false);
stopTelemetry();
await caches.closeAll();
console.log('esm: ok');
