/**
 * HEAD through the page cache as each framework's users write their sites: a HEAD
 * is answered from the GET entry with the header fields its GET would get (RFC 9110 §9.3.2), so a page
 * whose holes are filled per visitor declares the filled page's length, or none where the framework
 * drops the body before the page cache sees it; and the connection it came on serves the next request.
 */
import { once } from 'node:events';
import http, { type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import Koa from 'koa';
import nunjucks from 'nunjucks';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import * as expressCache from '../../src/frameworks/express.js';
import * as fastifyCache from '../../src/frameworks/fastify.js';
import * as honoCache from '../../src/frameworks/hono.js';
import * as koaCache from '../../src/frameworks/koa.js';
import { installCacheTag, renderString } from '../../src/engines/nunjucks.js';
import { defineHole, forgetHole } from '../../src/http/index.js';
import { caches, configureCaches } from '../../src/index.js';
import { eventually } from '../setup/eventually.js';
import { cookieHeaderOf } from './layers.js';

const env = installCacheTag(new nunjucks.Environment(null, { autoescape: true }));
const visitorOf = (request: object) => /visitor=(\w+)/.exec(cookieHeaderOf(request) ?? '')?.[1] ?? 'guest';
const SOURCES: Record<string, string> = { '/holes': '<p>{% hole "who" %}</p>', '/plain': '<p>the same for everyone</p>' };
const html = (path: string) => renderString(env, SOURCES[path]!, {});
/** The body a GET of `path` sends `visitor`. */
const bodyFor = (path: string, visitor: string) => (path === '/holes' ? `<p>hi ${visitor}</p>` : '<p>the same for everyone</p>');

interface Site {
  url: string;
  close(): Promise<void>;
}

const address = (server: Server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
const closing = (server: Server) => () => new Promise<void>((resolve) => server.close(() => resolve()));

async function listening(server: Server): Promise<Site> {
  if (!server.listening) await once(server, 'listening');
  return { url: address(server), close: closing(server) };
}

/** Each framework's site: the page cache on every route, and the page sent as the framework sends text. */
const SITES: Array<[string, () => Promise<Site>]> = [
  [
    'Express',
    async () => {
      const app = express();
      app.use(expressCache.cacheMiddleware({ seconds: 600 }));
      app.get(['/holes', '/plain'], (req, res, next) => void html(req.path).then((page) => res.send(page), next));
      return listening(app.listen(0, '127.0.0.1'));
    },
  ],
  [
    'node:http',
    async () => {
      const pages = expressCache.cacheMiddleware({ seconds: 600 });
      const server = http.createServer((req, res) =>
        pages(req, res, () => {
          res.setHeader('Content-Type', 'text/html; charset=utf-8');
          void html(req.url!).then((page) => res.end(page));
        }),
      );
      return listening(server.listen(0, '127.0.0.1'));
    },
  ],
  [
    'Fastify',
    async () => {
      const app = Fastify();
      await app.register(fastifyCache.cachegrain, { seconds: 600 });
      for (const path of ['/holes', '/plain']) app.get(path, async (_request, reply) => reply.type('text/html').send(await html(path)));
      await app.listen({ port: 0, host: '127.0.0.1' });
      return { url: address(app.server), close: () => app.close() };
    },
  ],
  [
    'Koa',
    async () => {
      const app = new Koa();
      app.use(koaCache.cacheMiddleware({ seconds: 600 }));
      app.use(async (ctx) => {
        ctx.type = 'html';
        ctx.body = await html(ctx.path);
      });
      return listening(app.listen(0, '127.0.0.1'));
    },
  ],
  [
    'Hono',
    async () => {
      const app = new Hono();
      app.use(honoCache.cacheMiddleware({ seconds: 600 }));
      app.get('*', (c) => c.html(html(c.req.path)));
      return listening(serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server);
    },
  ],
];

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** Requests over one kept-alive connection, as a browser or a monitor sends them one after another. */
function overOneConnection(base: string) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const request = (method: string, path: string, visitor: string) =>
    new Promise<Answer>((resolve, reject) => {
      const sent = http.request(`${base}${path}`, { method, agent, headers: { Cookie: `visitor=${visitor}` } }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, body }));
        response.on('error', reject);
      });
      sent.on('error', reject);
      sent.end();
    });
  return { request, close: () => agent.destroy() };
}

let site: Site | undefined;
let serial = 0;

beforeEach(async () => {
  await configureCaches({ default: { backend: 'locmem', location: `head-${++serial}` } });
  defineHole('who', (req) => `hi ${visitorOf(req)}`);
});
afterEach(async () => {
  forgetHole('who');
  vi.restoreAllMocks();
  await site?.close();
  site = undefined;
});
afterAll(() => caches.closeAll());

describe.each(SITES)('HEAD on %s', (_name, start) => {
  it.each(['/plain', '/holes'])('gets the header fields its GET would get, Content-Length included, and leaves the connection serving (%s)', async (path) => {
    const logged = vi.spyOn(console, 'error');
    site = await start();
    const client = overOneConnection(site.url);
    try {
      const length = (visitor: string) => String(Buffer.byteLength(bodyFor(path, visitor)));
      const firstHead = await client.request('HEAD', path, 'cy');
      expect([firstHead.status, firstHead.headers['x-cache'], firstHead.body]).toEqual([200, 'MISS', '']);
      // A framework that answers HEAD without its body leaves the filled length unknown: none is sent then.
      expect([undefined, length('cy')]).toContain(firstHead.headers['content-length']);
      const get = await client.request('GET', path, 'ann');
      expect([get.body, get.headers['content-length']]).toEqual([bodyFor(path, 'ann'), length('ann')]);
      await eventually(async () => expect((await client.request('GET', path, 'ann')).headers['x-cache']).toBe('HIT'));
      const head = await client.request('HEAD', path, 'beatrice');
      expect([head.status, head.headers['x-cache'], head.headers['content-length'], head.body]).toEqual([200, 'HIT', length('beatrice'), '']);
      for (const visitor of ['dee', 'ed']) {
        const after = await client.request('GET', path, visitor);
        expect([after.status, after.headers['x-cache'], after.body]).toEqual([200, 'HIT', bodyFor(path, visitor)]);
      }
      expect(logged).not.toHaveBeenCalled();
    } finally {
      client.close();
    }
  });
});
