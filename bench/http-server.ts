/**
 * One server of the HTTP benchmark, in a process of its own (`node http-server.js <app>`): every
 * server starts from a fresh heap and a JIT that has seen no other server's code, so none pays for
 * what ran before it. It fills its cache with one request, then tells its parent the URL to load.
 */
import http, { type RequestListener } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { getRequestListener } from '@hono/node-server';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { Hono } from 'hono';
import Koa from 'koa';
import nunjucks from 'nunjucks';
import { cacheMiddleware, defineHole } from '../adapters/express.js';
import { cachegrain } from '../adapters/fastify.js';
import { cacheMiddleware as honoCacheMiddleware } from '../adapters/hono.js';
import { cacheMiddleware as koaCacheMiddleware } from '../adapters/koa.js';
import { installCacheTag, renderString } from '../adapters/nunjucks.js';
import { LocMemCache } from '../src/index.js';

const require = createRequire(import.meta.url);
const PAGE = Buffer.from(`<!doctype html><title>Page</title>${'<p>Some cached paragraph of a page.</p>'.repeat(50)}`);

/** The servers there are, by name. */
const APPS = [
  'express-ceiling',
  'express-ours',
  'bare-ceiling',
  'bare-ours',
  'fastify-ceiling',
  'fastify-ours',
  'koa-ceiling',
  'koa-ours',
  'hono-ceiling',
  'hono-ours',
  'apicache',
  'route-cache',
  'holes-ours',
  'one-timer',
] as const;
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

/** The same headers by name, as Fastify, Koa and Hono take them. */
const PREBUILT_HEADERS: Record<string, string> = Object.fromEntries(
  Array.from({ length: PREBUILT.length / 2 }, (_, i) => [PREBUILT[2 * i]!, PREBUILT[2 * i + 1]!]),
);
const HTML = 'text/html; charset=utf-8';

/** A Fastify app's request listener: Fastify builds its handler into the server its factory is given. */
async function fastifyListener(build: (app: FastifyInstance) => Promise<void>): Promise<RequestListener> {
  let listener: RequestListener | undefined;
  const app = Fastify({
    serverFactory: (handler) => {
      listener = handler as RequestListener;
      return http.createServer(handler);
    },
  });
  await build(app as unknown as FastifyInstance);
  await app.ready();
  return listener!;
}

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

async function app(name: AppName): Promise<RequestListener> {
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
    case 'fastify-ceiling':
      return fastifyListener(async (app) => {
        app.get('/page', (_request, reply) => reply.headers(PREBUILT_HEADERS).send(PAGE));
      });
    case 'fastify-ours':
      return fastifyListener(async (app) => {
        await app.register(cachegrain, { cache: cache(), keyPrefix: 'fastify' });
        app.get('/page', (_request, reply) => reply.type(HTML).send(PAGE));
      });
    case 'koa-ceiling': {
      const koa = new Koa();
      koa.use((ctx) => {
        ctx.set(PREBUILT_HEADERS);
        ctx.body = PAGE;
      });
      return koa.callback();
    }
    case 'koa-ours': {
      const koa = new Koa();
      koa.use(koaCacheMiddleware({ cache: cache(), keyPrefix: 'koa' }));
      koa.use((ctx) => {
        ctx.type = HTML;
        ctx.body = PAGE;
      });
      return koa.callback();
    }
    case 'hono-ceiling': {
      const hono = new Hono();
      hono.get('/page', (c) => c.body(PAGE, 200, PREBUILT_HEADERS));
      return getRequestListener(hono.fetch);
    }
    case 'hono-ours': {
      const hono = new Hono();
      hono.use(honoCacheMiddleware({ cache: cache(), keyPrefix: 'hono' }));
      hono.get('/page', (c) => c.body(PAGE, 200, { 'Content-Type': HTML }));
      return getRequestListener(hono.fetch);
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
const server = http.createServer(await app(name));
server.listen(0, '127.0.0.1', () => {
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/page`;
  void fetch(url)
    .then((reply) => reply.arrayBuffer()) // fills the cache
    .then(() => process.send!({ url }));
});
// The parent going away (it kills this process when done, or it died) ends this one.
process.on('disconnect', () => process.exit(0));
