/**
 * The applications of the deployed benchmark, on each stack: the product list (bench/product-list.ts)
 * behind the page cache on a locmem, its cart a hole or part of the page, and the anchors it is
 * measured against: the same framework sending, from its first handler, what the page cache's hit
 * sends (its status, headers and bytes, taken from a hit of ours), or that page compressed once.
 */
import http, { type IncomingMessage, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { brotliCompressSync, brotliDecompressSync, constants, gunzipSync, gzipSync } from 'node:zlib';
import { getRequestListener } from '@hono/node-server';
import compression from 'compression';
import express from 'express';
import type { FastifyInstance } from 'fastify';
import { Hono } from 'hono';
import Koa from 'koa';
import { cacheMiddleware, defineHole, type PageCacheOptions } from '../src/frameworks/express.js';
import { cachegrain } from '../src/frameworks/fastify.js';
import { cacheMiddleware as honoCacheMiddleware } from '../src/frameworks/hono.js';
import { cacheMiddleware as koaCacheMiddleware } from '../src/frameworks/koa.js';
import { LocMemCache } from '../src/index.js';
import { fastifyListening } from './http-apps.js';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  cartOf,
  productListEnvironment,
  recommendationsOf,
  renderProductList,
  renderSlowHolesProductList,
  renderStaticProductList,
  SLOW_CART_MS,
  SLOW_RECOMMENDATIONS_MS,
} from './product-list.js';

export const STACKS = ['express', 'node-http', 'fastify', 'koa', 'hono'] as const;
export type Stack = (typeof STACKS)[number];

/** The visitor every request of the load is: the cart hole is filled for them. */
export const VISITOR_COOKIE = 'visitor=ann';
/** What the load asks with: a browser's Accept-Encoding, and the visitor's cookie. */
export const BROWSER_HEADERS = { 'accept-encoding': 'gzip, deflate, br, zstd', cookie: VISITOR_COOKIE };

/**
 * The page an application serves: the product list with its cart as a hole, with the cart written
 * in, or with a cart and recommendations whose builders take 100 and 300 ms (`slow-holes`).
 */
export type PageKind = 'holes' | 'static' | 'slow-holes';

/** What a response is, for an anchor to send again. */
export interface Reply {
  status: number;
  /** Name, value… as the response sent them, less those of the connection and the moment (Date). */
  headers: string[];
  body: Buffer;
}

/** Headers a server adds for the connection or the moment, which an anchor's own server adds again. */
const OF_THE_CONNECTION = new Set(['date', 'connection', 'keep-alive', 'transfer-encoding']);

const HTML = 'text/html; charset=utf-8';

/** Refuses compression() on any stack but Express, the only one the bench mounts it on. */
function compressionOnExpress(stack: Stack): void {
  if (stack !== 'express') throw new Error(`bench/deployed-apps: compression() is mounted on Express alone, not on ${stack}`);
}

/** The visitor's name, read from the Cookie header of any framework's request (Node's, Fastify's, Koa's context, Hono's context). */
function visitorOf(request: unknown): string {
  const req = request as { headers?: Record<string, string | undefined>; req?: { header(name: string): string | undefined } };
  const cookie = req.headers?.cookie ?? req.req?.header('cookie') ?? '';
  return /visitor=(\w+)/.exec(cookie)?.[1] ?? 'guest';
}

/**
 * The page cache on `stack` over a locmem of its own, in front of the product list; on Express,
 * `compressionAt` puts compression() in front of it or after it.
 */
export async function pageCacheApp(stack: Stack, page: PageKind, options: PageCacheOptions = {}, compressionAt?: 'front' | 'after'): Promise<RequestListener> {
  if (compressionAt !== undefined) compressionOnExpress(stack);
  if (page === 'slow-holes') {
    defineHole('cart', async (request) => (await sleep(SLOW_CART_MS), cartOf(visitorOf(request))));
    defineHole('recommendations', async (request) => (await sleep(SLOW_RECOMMENDATIONS_MS), recommendationsOf(visitorOf(request))));
  } else defineHole('cart', (request) => cartOf(visitorOf(request)));
  const env = productListEnvironment();
  const RENDER = { holes: renderProductList, static: renderStaticProductList, 'slow-holes': renderSlowHolesProductList };
  const render = () => RENDER[page](env);
  const pages = { cache: new LocMemCache({ location: `bench-deployed-${stack}-${page}` }), ...options };
  switch (stack) {
    case 'express': {
      const app = express();
      if (compressionAt === 'front') app.use(compression());
      app.use(cacheMiddleware(pages));
      if (compressionAt === 'after') app.use(compression());
      app.get('/', (_req, res, next) => void render().then((html) => res.type('html').send(html), next));
      return app as unknown as RequestListener;
    }
    case 'node-http': {
      const cached = cacheMiddleware(pages);
      return (req, res) =>
        cached(req, res, () => {
          void render().then((html) => {
            res.setHeader('Content-Type', HTML);
            res.end(html);
          });
        });
    }
    case 'fastify':
      return fastifyListener(async (app) => {
        await app.register(cachegrain, pages);
        app.get('/', async (_request, reply) => reply.type(HTML).send(await render()));
      });
    case 'koa': {
      const koa = new Koa();
      koa.use(koaCacheMiddleware(pages));
      koa.use(async (ctx) => {
        ctx.type = 'html';
        ctx.body = await render();
      });
      return koa.callback();
    }
    case 'hono': {
      const hono = new Hono();
      hono.use(honoCacheMiddleware(pages));
      hono.get('/', async (c) => c.html(await render()));
      return getRequestListener(hono.fetch);
    }
  }
}

/** The product list with its cart written in, rendered by the framework of `stack` for every request: a site with no page cache. */
export async function uncachedApp(stack: Stack): Promise<RequestListener> {
  if (stack !== 'express') throw new Error(`bench/deployed-apps: the uncached product list is served by Express alone, not by ${stack}`);
  const env = productListEnvironment();
  const app = express();
  app.get('/', (_req, res, next) => void renderStaticProductList(env).then((html) => res.type('html').send(html), next));
  return app as unknown as RequestListener;
}

/** How many pages the MISS's locmem keeps, and the reference route keeps the bytes of. */
export const MISS_PAGES_KEPT = 10_000;

/**
 * `listener` keeping in `kept` the bytes of the last `count` responses it ends with bytes, as they
 * were sent (no copy): what keeping a site's pages costs a server by itself, with no cache around them.
 */
export function keepingResponses(listener: RequestListener, count: number, kept: Buffer[] = []): RequestListener {
  let next = 0;
  return (req, res) => {
    const response = res as unknown as { end: (...args: unknown[]) => unknown };
    const end = response.end;
    response.end = function (this: unknown, chunk?: unknown, ...rest: unknown[]) {
      if (Buffer.isBuffer(chunk)) {
        kept[next] = chunk;
        next = (next + 1) % count;
      }
      return end.call(this, chunk, ...rest);
    };
    listener(req, res);
  };
}

/**
 * `listener` asked for a URL of its own by every request, as a site's long tail of pages is: the load
 * asks one path, and each request gets a query no other request had before it reaches the application.
 */
function everyUrlNew(listener: RequestListener): RequestListener {
  let visits = 0;
  return (req, res) => {
    req.url = `${req.url ?? '/'}?visit=${visits++}`;
    listener(req, res);
  };
}

/**
 * The framework of `stack` sending `reply` from its first handler, as it was sent; on Express,
 * `compressionInFront` puts compression() before that handler, which passes an encoded reply through.
 */
export async function prebuiltApp(stack: Stack, reply: Reply, compressionInFront = false): Promise<RequestListener> {
  if (compressionInFront) compressionOnExpress(stack);
  const { status, headers, body } = reply;
  const pairs: Record<string, string> = {};
  for (let i = 0; i < headers.length; i += 2) pairs[headers[i]!] = headers[i + 1]!;
  const send: RequestListener = (_req, res) => void res.writeHead(status, headers).end(body);
  switch (stack) {
    case 'express': {
      const app = express();
      if (compressionInFront) app.use(compression());
      return app.use(send) as unknown as RequestListener;
    }
    case 'node-http':
      return send;
    case 'fastify':
      return fastifyListener(async (app) => {
        app.get('/', (_request, answer) => answer.code(status).headers(pairs).send(body));
      });
    case 'koa': {
      const koa = new Koa();
      koa.use((ctx) => {
        ctx.status = status;
        ctx.set(pairs);
        ctx.body = body;
      });
      return koa.callback();
    }
    case 'hono': {
      const hono = new Hono();
      hono.get('/', (c) => c.body(new Uint8Array(body), status as 200, pairs));
      return getRequestListener(hono.fetch);
    }
  }
}

/**
 * Express sending `reply` after one timer of `ms`: what a page costs that waits on its slowest hole
 * and on nothing else, as the machine runs timers now.
 */
export function prebuiltAfter(reply: Reply, ms: number): RequestListener {
  const { status, headers, body } = reply;
  return express().use((_req, res) => void sleep(ms).then(() => res.writeHead(status, headers).end(body))) as unknown as RequestListener;
}

async function fastifyListener(build: (app: FastifyInstance) => Promise<void>): Promise<RequestListener> {
  return (await fastifyListening(build)).listener;
}

/**
 * What `listener` sends for `/` with `headers` once its page is stored: asked over a socket until
 * the page cache answers HIT (it stores behind the first response), as the load will ask it.
 */
export async function hitOf(listener: RequestListener, headers: Record<string, string>, until: (reply: Reply) => boolean = () => true): Promise<Reply> {
  const server = http.createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    for (let tries = 0; tries < 500; tries++) {
      const reply = await request(origin, headers);
      if (headerOf(reply, 'x-cache') === 'HIT' && until(reply)) return reply;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error(`${origin}/ never answered the HIT waited for`);
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

/** The value of a header of `reply`. */
export function headerOf(reply: Reply, name: string): string | undefined {
  const at = reply.headers.findIndex((sent, i) => i % 2 === 0 && sent.toLowerCase() === name);
  return at === -1 ? undefined : reply.headers[at + 1];
}

/** `reply` with `body` in place of its own, its Content-Length that body's. */
export function withBody(reply: Reply, body: Buffer): Reply {
  const headers = reply.headers.slice();
  const at = headers.findIndex((name, i) => i % 2 === 0 && name.toLowerCase() === 'content-length');
  headers[at + 1] = String(body.length);
  return { ...reply, headers, body };
}

/** One GET of `/`, its headers as they came (less those of the connection) and its bytes as sent. */
function request(origin: string, headers: Record<string, string>): Promise<Reply> {
  return new Promise((resolve, reject) => {
    http
      .get(`${origin}/`, { headers, agent: false }, (response: IncomingMessage) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const sent: string[] = [];
          for (let i = 0; i < response.rawHeaders.length; i += 2)
            if (!OF_THE_CONNECTION.has(response.rawHeaders[i]!.toLowerCase())) sent.push(response.rawHeaders[i]!, response.rawHeaders[i + 1]!);
          resolve({ status: response.statusCode!, headers: sent, body: Buffer.concat(chunks) });
        });
        response.on('error', reject);
      })
      .on('error', reject);
  });
}

/** The page cache's gzip hit of the page with its hole (`compress`), its filled page gzipped once at compression()'s level. */
async function filledPageGzippedOnce(stack: Stack): Promise<Reply> {
  const hit = await hitOf(await pageCacheApp(stack, 'holes', { compress: true }), BROWSER_HEADERS, (reply) => headerOf(reply, 'content-encoding') === 'gzip');
  return withBody(hit, gzipSync(gunzipSync(hit.body)));
}

/**
 * The servers by side: ours, the page cache's hit of the product list with its cart hole (`holes`)
 * or with its cart written in (`static`), with `compress` (and compression() in front); each
 * anchor, the framework sending that hit's status and headers prebuilt, with its bytes as they are,
 * or its page gzipped once (compression()'s level; also with compression() in front of it, which
 * passes it through), or Brotli-compressed once at quality 11.
 */
export const SIDES: Record<string, (stack: Stack) => Promise<RequestListener>> = {
  holes: (stack) => pageCacheApp(stack, 'holes'),
  'holes-prebuilt': async (stack) => prebuiltApp(stack, await hitOf(await pageCacheApp(stack, 'holes'), BROWSER_HEADERS)),
  'holes-compress': (stack) => pageCacheApp(stack, 'holes', { compress: true }),
  'holes-compress-front': (stack) => pageCacheApp(stack, 'holes', { compress: true }, 'front'),
  'holes-gzipped-once': async (stack) => prebuiltApp(stack, await filledPageGzippedOnce(stack)),
  'holes-gzipped-once-front': async (stack) => prebuiltApp(stack, await filledPageGzippedOnce(stack), true),
  static: (stack) => pageCacheApp(stack, 'static'),
  'static-compress': (stack) => pageCacheApp(stack, 'static', { compress: true }),
  'static-compression-after': (stack) => pageCacheApp(stack, 'static', {}, 'after'),
  'static-brotli-once': async (stack) => {
    const hit = await hitOf(await pageCacheApp(stack, 'static', { compress: true }), BROWSER_HEADERS, (reply) => headerOf(reply, 'content-encoding') === 'br');
    return prebuiltApp(stack, withBody(hit, brotliCompressSync(brotliDecompressSync(hit.body), { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } })));
  },
  miss: async (stack) =>
    everyUrlNew(
      await pageCacheApp(stack, 'holes', { cache: new LocMemCache({ location: `bench-deployed-${stack}-miss`, options: { maxEntries: MISS_PAGES_KEPT } }) }),
    ),
  'miss-uncached': async (stack) => everyUrlNew(await uncachedApp(stack)),
  'miss-uncached-kept': async (stack) => everyUrlNew(keepingResponses(await uncachedApp(stack), MISS_PAGES_KEPT)),
  streamed: (stack) => pageCacheApp(stack, 'slow-holes', { holes: 'stream' }),
  filled: (stack) => pageCacheApp(stack, 'slow-holes'),
  'slowest-hole': async (stack) => prebuiltAfter(await hitOf(await pageCacheApp(stack, 'slow-holes'), BROWSER_HEADERS), SLOW_RECOMMENDATIONS_MS),
};
