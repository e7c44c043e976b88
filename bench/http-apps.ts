/**
 * The applications of the HTTP benchmark, each stack's page cache and its ceiling: the same framework
 * sending, from its first handler, the status, headers and bytes a hit sends. Each is built the same
 * way for a server of its own (bench/http-server.ts) and for the framework's own injection (the
 * in-process rows, and the test that the ceilings answer as the hits do).
 */
import http, { type RequestListener } from 'node:http';
import { createRequire } from 'node:module';
import { getRequestListener } from '@hono/node-server';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { Hono } from 'hono';
import Koa from 'koa';
import inject from 'light-my-request';
import { addCacheContexts, cacheMiddleware } from '../src/frameworks/express.js';
import { addCacheContexts as fastifyAddCacheContexts, cachegrain } from '../src/frameworks/fastify.js';
import { addCacheContexts as honoAddCacheContexts, cacheMiddleware as honoCacheMiddleware } from '../src/frameworks/hono.js';
import { addCacheContexts as koaAddCacheContexts, cacheMiddleware as koaCacheMiddleware } from '../src/frameworks/koa.js';
import { LocMemCache } from '../src/index.js';

const require = createRequire(import.meta.url);
export const PAGE = Buffer.from(`<!doctype html><title>Page</title>${'<p>Some cached paragraph of a page.</p>'.repeat(50)}`);
const HTML = 'text/html; charset=utf-8';
/** The validator the views send, so that a conditional request can match the stored page. */
export const ETAG = '"page-1"';

export const STACKS = ['node-http', 'express', 'fastify', 'koa', 'hono'] as const;
export type Stack = (typeof STACKS)[number];
/** Ours is the page cache; the other sides are the anchors it is measured against. */
export const SIDES = ['ceiling', 'ours', 'apicache', 'route-cache'] as const;
export type Side = (typeof SIDES)[number];

/**
 * What a row asks: the plain page; a page whose view says it varies on the theme cookie (stored once
 * per theme, asked with a session cookie beside it); the plain page asked again with the ETag it
 * carries, answered 304.
 */
export const KINDS = {
  plain: { path: '/page', headers: {} as Record<string, string>, status: 200 },
  contexts: { path: '/themed', headers: { cookie: 'theme=dark; session=4f1c2a' } as Record<string, string>, status: 200 },
  conditional: { path: '/page', headers: { 'if-none-match': ETAG } as Record<string, string>, status: 304 },
};
export type Kind = keyof typeof KINDS;

/** A response as the injection gives it. */
export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export interface BenchApp {
  /** The app as a request listener, for a server. */
  listener: RequestListener;
  /** One request of the kind through the framework's own injection. */
  inject(kind: Kind): Promise<Reply>;
}

/** The headers a hit of each kind sends (besides Date, Age and those of the framework's own), for the ceilings to send as well. */
function prebuilt(kind: Kind): Record<string, string> {
  const expires = new Date(Date.now() + 600_000).toUTCString();
  const cached = { 'Cache-Control': 'max-age=600', Expires: expires, ETag: ETAG, Age: '0', 'X-Cache': 'HIT' };
  if (kind === 'conditional') return cached;
  const page = { 'Content-Type': HTML, 'Content-Length': String(PAGE.length), ...cached };
  return kind === 'contexts' ? { ...page, Vary: 'Cookie' } : page;
}
const PREBUILT = { plain: prebuilt('plain'), contexts: prebuilt('contexts'), conditional: prebuilt('conditional') };

/** The kind a ceiling is asked, from the request: what it sends is chosen before the framework does anything else. */
function kindOf(url: string | undefined, ifNoneMatch: string | undefined): Kind {
  if (url === KINDS.contexts.path) return 'contexts';
  return ifNoneMatch === ETAG ? 'conditional' : 'plain';
}
const bodyOf = (kind: Kind) => (kind === 'conditional' ? undefined : PAGE);

const cache = (name: string) => new LocMemCache({ location: `bench-http-${name}`, options: { maxEntries: 10_000 } });

/** The view of node:http and Express: the page, with its validator, and on /themed the context it varies on. */
function view(req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.url === KINDS.contexts.path) addCacheContexts(res, 'cookie:theme');
  res.setHeader('Content-Type', HTML);
  res.setHeader('ETag', ETAG);
  res.end(PAGE);
}

function nodeInjection(listener: RequestListener): BenchApp['inject'] {
  return async (kind) => {
    const reply = await inject(listener, { method: 'GET', url: KINDS[kind].path, headers: KINDS[kind].headers });
    return { status: reply.statusCode, headers: asStrings(reply.headers), body: reply.rawPayload };
  };
}

function asStrings(headers: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), String(value)]));
}

function nodeApp(listener: RequestListener): BenchApp {
  return { listener, inject: nodeInjection(listener) };
}

/** The node:http and Express ceiling: the prebuilt response, written at once. */
const sendPrebuilt: RequestListener = (req, res) => {
  const kind = kindOf(req.url, req.headers['if-none-match']);
  res.writeHead(KINDS[kind].status, PREBUILT[kind]).end(bodyOf(kind));
};

/** A Fastify app built by `build`, ready, and the request listener Fastify builds into the server its factory is given. */
export async function fastifyListening(build: (app: FastifyInstance) => Promise<void>): Promise<{ app: FastifyInstance; listener: RequestListener }> {
  let listener: RequestListener | undefined;
  const app = Fastify({
    serverFactory: (handler) => {
      listener = handler as RequestListener;
      return http.createServer(handler);
    },
  }) as unknown as FastifyInstance;
  await build(app);
  await app.ready();
  return { app, listener: listener! };
}

async function fastifyApp(build: (app: FastifyInstance) => Promise<void>): Promise<BenchApp> {
  const { app, listener } = await fastifyListening(build);
  return {
    listener,
    inject: async (kind) => {
      const reply = await app.inject({ method: 'GET', url: KINDS[kind].path, headers: KINDS[kind].headers });
      return { status: reply.statusCode, headers: asStrings(reply.headers), body: reply.rawPayload };
    },
  };
}

function koaApp(koa: Koa): BenchApp {
  return nodeApp(koa.callback());
}

/**
 * Hono through @hono/node-server's listener, injected as node:http is: the page cache's Hono adapter
 * answers from Node's request and response, which `app.fetch(new Request(…))` alone does not give it.
 */
function honoApp(hono: Hono): BenchApp {
  return nodeApp(getRequestListener(hono.fetch));
}

/** Builds one side of a stack; apicache and route-cache exist for Express alone. */
export async function buildApp(stack: Stack, side: Side): Promise<BenchApp> {
  const name = `${stack}-${side}`;
  switch (name) {
    case 'node-http-ceiling':
      return nodeApp(sendPrebuilt);
    case 'node-http-ours': {
      const cached = cacheMiddleware({ cache: cache(name), keyPrefix: 'bare' });
      return nodeApp((req, res) => cached(req, res, () => view(req, res)));
    }
    case 'express-ceiling':
      return nodeApp(express().use(sendPrebuilt) as never);
    case 'express-ours':
      return nodeApp(express().use(cacheMiddleware({ cache: cache(name) }), view as never) as never);
    case 'express-apicache': {
      const apicache = require('apicache') as { middleware(duration: string): express.RequestHandler };
      return nodeApp(express().get('/page', apicache.middleware('10 minutes'), view as never) as never);
    }
    case 'express-route-cache': {
      const routeCache = require('route-cache') as { cacheSeconds(seconds: number): express.RequestHandler };
      return nodeApp(express().get('/page', routeCache.cacheSeconds(600), view as never) as never);
    }
    case 'fastify-ceiling':
      return fastifyApp(async (app) => {
        const send = (kind: Kind) => (_request: unknown, reply: import('fastify').FastifyReply) =>
          reply.code(KINDS[kind].status).headers(PREBUILT[kind]).send(bodyOf(kind));
        app.get('/page', (request, reply) => send(kindOf(request.url, request.headers['if-none-match']))(request, reply));
        app.get('/themed', send('contexts'));
      });
    case 'fastify-ours':
      return fastifyApp(async (app) => {
        await app.register(cachegrain, { cache: cache(name), keyPrefix: 'fastify' });
        app.get('/page', (_request, reply) => reply.type(HTML).header('ETag', ETAG).send(PAGE));
        app.get('/themed', (_request, reply) => {
          fastifyAddCacheContexts(reply, 'cookie:theme');
          return reply.type(HTML).header('ETag', ETAG).send(PAGE);
        });
      });
    case 'koa-ceiling': {
      const koa = new Koa();
      koa.use((ctx) => {
        const kind = kindOf(ctx.url, ctx.get('if-none-match') || undefined);
        ctx.status = KINDS[kind].status;
        ctx.set(PREBUILT[kind]);
        if (kind !== 'conditional') ctx.body = PAGE;
      });
      return koaApp(koa);
    }
    case 'koa-ours': {
      const koa = new Koa();
      koa.use(koaCacheMiddleware({ cache: cache(name), keyPrefix: 'koa' }));
      koa.use((ctx) => {
        if (ctx.path === KINDS.contexts.path) koaAddCacheContexts(ctx, 'cookie:theme');
        ctx.type = HTML;
        ctx.set('ETag', ETAG);
        ctx.body = PAGE;
      });
      return koaApp(koa);
    }
    case 'hono-ceiling': {
      const hono = new Hono();
      hono.get('*', (c) => {
        const kind = kindOf(c.req.path, c.req.header('if-none-match'));
        return kind === 'conditional' ? c.body(null, 304, PREBUILT[kind]) : c.body(PAGE, 200, PREBUILT[kind]);
      });
      return honoApp(hono);
    }
    case 'hono-ours': {
      const hono = new Hono();
      hono.use(honoCacheMiddleware({ cache: cache(name), keyPrefix: 'hono' }));
      hono.get('*', (c) => {
        if (c.req.path === KINDS.contexts.path) honoAddCacheContexts(c, 'cookie:theme');
        return c.body(PAGE, 200, { 'Content-Type': HTML, ETag: ETAG });
      });
      return honoApp(hono);
    }
  }
  throw new Error(`bench/http-apps: no ${side} for ${stack} (apicache and route-cache are Express's alone)`);
}

/** The kinds a side answers: apicache and route-cache are measured on the plain hit alone. */
export function kindsOf(side: Side): Kind[] {
  return side === 'apicache' || side === 'route-cache' ? ['plain'] : ['plain', 'contexts', 'conditional'];
}

/** Asks each kind once, so that the page cache holds each page (the conditional row's and the plain row's are one). */
export async function fill(app: BenchApp, side: Side): Promise<void> {
  for (const kind of kindsOf(side)) await app.inject(kind);
}
