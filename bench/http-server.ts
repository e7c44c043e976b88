/**
 * One server of the HTTP benchmark, in a process of its own (`node http-server.js <app>`): every
 * server starts from a fresh heap and a JIT that has seen no other server's code, so none pays for
 * what ran before it. It fills its cache with one request, then tells its parent the URL to load.
 */
import http, { type RequestListener } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import nunjucks from 'nunjucks';
import { cacheMiddleware, defineHole } from '../adapters/express.js';
import { installCacheTag, renderString } from '../adapters/nunjucks.js';
import { LocMemCache } from '../src/index.js';

const require = createRequire(import.meta.url);
const PAGE = Buffer.from(`<!doctype html><title>Page</title>${'<p>Some cached paragraph of a page.</p>'.repeat(50)}`);

/** The servers there are, by name. */
const APPS = ['express-ceiling', 'express-ours', 'bare-ceiling', 'bare-ours', 'apicache', 'route-cache', 'holes-ours', 'one-timer'] as const;
export type AppName = (typeof APPS)[number];

function view(_req: unknown, res: http.ServerResponse): void {
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.end(PAGE);
}

/** The headers a hit sends, for the ceilings to send as well. */
const PREBUILT = [
  'Content-Type',
  'text/html; charset=utf-8',
  'Cache-Control',
  'max-age=600',
  'Expires',
  new Date(Date.now() + 600_000).toUTCString(),
  'Content-Length',
  String(PAGE.length),
  'Age',
  '0',
  'X-Cache',
  'HIT',
];

/** How long each hole's builder of the holes page waits, in ms: a query or a call to another service. */
export const HOLE_BUILDER_MS = 5;
/** The holes page: the same page with a greeting, a cart and a stock count, each a hole. */
const HOLES_PAGE = `<!doctype html><title>Page</title><header>{% hole "greeting" %} {% hole "cart" %}</header>${'<p>Some cached paragraph of a page.</p>'.repeat(50)}<p>{% hole "stock" 7 %}</p>`;

function holesView(): RequestListener {
  const env = installCacheTag(new nunjucks.Environment(null, { autoescape: true }));
  const visitor = (req: http.IncomingMessage) => req.headers.cookie ?? 'guest';
  defineHole('greeting', async (req) => (await sleep(HOLE_BUILDER_MS), `Hello, ${visitor(req)}`));
  defineHole('cart', async (req) => (await sleep(HOLE_BUILDER_MS), `Cart of ${visitor(req)}: 3`));
  defineHole('stock', async (_req, id: number) => (await sleep(HOLE_BUILDER_MS), `${id * 3} left`));
  return (_req, res) => {
    void renderString(env, HOLES_PAGE, {}).then((html) => {
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      res.end(html);
    });
  };
}

function app(name: AppName): RequestListener {
  const cache = () => new LocMemCache({ location: 'bench-http', options: { maxEntries: 10_000 } });
  switch (name) {
    case 'express-ceiling': {
      const ceiling = express();
      ceiling.use((_req, res) => void res.writeHead(200, PREBUILT).end(PAGE));
      return ceiling as never;
    }
    case 'express-ours': {
      const cached = express();
      cached.use(cacheMiddleware({ cache: cache() }), view as never);
      return cached as never;
    }
    case 'bare-ceiling':
      return (_req, res) => void res.writeHead(200, PREBUILT).end(PAGE);
    case 'bare-ours': {
      const cached = cacheMiddleware({ cache: cache(), keyPrefix: 'bare' });
      return (req, res) => cached(req, res, () => view(req, res));
    }
    case 'apicache': {
      const apicache = require('apicache') as { middleware(duration: string): express.RequestHandler };
      const cached = express();
      cached.get('/page', apicache.middleware('10 minutes'), view as never);
      return cached as never;
    }
    case 'holes-ours': {
      // A hit: the page is stored once, its three holes filled for each request.
      const cached = cacheMiddleware({ cache: cache(), keyPrefix: 'holes' });
      const view = holesView();
      return (req, res) => cached(req, res, () => view(req, res));
    }
    case 'one-timer':
      // What one hole's builder alone costs: the page's bytes after one wait.
      return (_req, res) => void sleep(HOLE_BUILDER_MS).then(() => res.writeHead(200, PREBUILT).end(PAGE));
    case 'route-cache': {
      const routeCache = require('route-cache') as { cacheSeconds(seconds: number): express.RequestHandler };
      const cached = express();
      cached.get('/page', routeCache.cacheSeconds(600), view as never);
      return cached as never;
    }
  }
}

const name = process.argv[2] as AppName;
if (!APPS.includes(name)) throw new Error(`http-server: unknown app ${String(name)} (one of ${APPS.join(', ')})`);
const server = http.createServer(app(name));
server.listen(0, '127.0.0.1', () => {
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/page`;
  void fetch(url)
    .then((reply) => reply.arrayBuffer()) // fills the cache
    .then(() => process.send!({ url }));
});
// The parent going away (it kills this process when done, or it died) ends this one.
process.on('disconnect', () => process.exit(0));
