// The same package from CommonJS: require() of the entry points, a cache and a cached route.
const assert = require('node:assert/strict');
const { caches, configureCaches } = require('cachegrain');
const { cachePage } = require('cachegrain/express');
const express = require('express');

(async () => {
  await configureCaches({ default: { backend: 'locmem' } });
  const cache = caches.get('default');
  assert.equal(await cache.getOrSet('answer', () => 42), 42);
  assert.equal(await cache.incr('answer'), 43);
  const app = express();
  let runs = 0;
  app.get('/', cachePage(60), (_req, res) => res.send(`run ${++runs}`));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const url = `http://127.0.0.1:${server.address().port}/`;
  assert.equal(await (await fetch(url)).text(), 'run 1');
  assert.equal(await (await fetch(url)).text(), 'run 1');
  server.close();
  await caches.closeAll();
  console.log('cjs: ok');
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
