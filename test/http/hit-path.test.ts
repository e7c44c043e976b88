/**
 * What a hit does on its way out: answered from a cache in this process, it leaves nothing behind on
 * the request (no scope, no framework's request held by Node's), and a layer around the page cache
 * still finds its headers at writeHead.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cacheMiddleware } from '../../src/frameworks/express.js';
import nunjucks from 'nunjucks';
import { frameworkRequest, tieFrameworkRequest } from '../../src/cacheability/framework-request.js';
import { openedScope } from '../../src/cacheability/request-scope.js';
import { installCacheTag, renderString } from '../../src/engines/nunjucks.js';
import { defineHole, forgetHole } from '../../src/http/index.js';
import { configureCaches } from '../../src/index.js';
import { listen, send, storedHit } from './client.js';

let location = 0;
let server: Awaited<ReturnType<typeof listen>> | undefined;
beforeEach(async () => {
  await configureCaches({ default: { backend: 'locmem', location: `hit-path-${++location}` } });
});
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const view = (res: ServerResponse) => {
  res.setHeader('Content-Type', 'text/plain');
  res.setHeader('Cache-Control', 'max-age=60');
  res.end('the page');
};

describe('a hit from a cache in this process', () => {
  it('is answered before the middleware returns, and opens no request scope', async () => {
    const pages = cacheMiddleware();
    const scopes: Array<{ status: string; opened: boolean }> = [];
    server = await listen((req, res) => {
      pages(req, res, () => view(res));
      scopes.push({ status: String(res.getHeader('x-cache') ?? (res.headersSent ? 'sent' : 'none')), opened: openedScope(res) !== undefined });
    });
    expect((await send(server.url, '/page')).headers['x-cache']).toBe('MISS');
    const hit = await storedHit(server.url, '/page');
    expect(hit.text).toBe('the page');
    expect(hit.headers['cache-control']).toBe('max-age=60');
    // The miss rendered in a scope; the hit was sent by the time the middleware returned, with none.
    expect(scopes[0]).toEqual({ status: 'MISS', opened: true });
    expect(scopes.at(-1)!.opened).toBe(false);
    expect(scopes.at(-1)!.status).not.toBe('MISS');
  });

  it("lets go of the framework's request, which Node's request would hold until its connection's next one, unless holes are still to fill from it", async () => {
    const env = installCacheTag(new nunjucks.Environment(null, { autoescape: true }));
    const builtFor: unknown[] = [];
    // A builder that answers later: its hole is still to fill once the hit has been answered.
    defineHole('greeting', async (request: object) => {
      builtFor.push(request);
      await Promise.resolve();
      return 'hi';
    });
    const pages = cacheMiddleware();
    const asked: Array<{ req: IncomingMessage; framework: object }> = [];
    server = await listen((req, res) => {
      // As Koa, Fastify and Hono's adapters tie their own request (`ctx`, `request`, `c`) to Node's.
      const framework = { framework: true };
      tieFrameworkRequest(req, framework);
      asked.push({ req, framework });
      pages(req, res, () => {
        if (req.url === '/page') return view(res);
        void renderString(env, '<p>{% hole "greeting" %}</p>', {}).then((html) => {
          res.setHeader('Cache-Control', 'max-age=60');
          res.end(html);
        });
      });
    });
    try {
      for (const path of ['/page', '/holes']) {
        expect((await send(server.url, path)).headers['x-cache']).toBe('MISS');
        // The miss keeps it: its page is keyed and stored after the response went out.
        expect(frameworkRequest(asked.at(-1)!.req)).toBe(asked.at(-1)!.framework);
        expect((await storedHit(server.url, path)).text).toBe(path === '/page' ? 'the page' : '<p>hi</p>');
      }
      const [plainHit, holesHit] = [asked.findLast(({ req }) => req.url === '/page')!, asked.at(-1)!];
      expect(frameworkRequest(plainHit.req)).toBe(plainHit.req);
      expect(frameworkRequest(holesHit.req)).toBe(holesHit.framework);
      // Every hole was built from the framework's request, the hit's as the miss's.
      expect(builtFor.at(-1)).toBe(holesHit.framework);
      expect(builtFor.every((request) => (request as { framework?: boolean }).framework === true)).toBe(true);
    } finally {
      forgetHole('greeting');
    }
  });

  it('still puts its headers on the response before a wrapped writeHead runs, as its MISS had them', async () => {
    const pages = cacheMiddleware();
    const seenAtWriteHead: Array<Record<string, unknown>> = [];
    server = await listen((req, res) => {
      // A layer in front that watches the headers go out, as on-headers does (compression, sessions, loggers).
      const writeHead = res.writeHead;
      res.writeHead = function (this: ServerResponse, ...args: Parameters<typeof writeHead>) {
        seenAtWriteHead.push({ cache: res.getHeader('x-cache'), type: res.getHeader('content-type'), age: res.getHeader('age') });
        res.setHeader('X-Seen', 'yes');
        return writeHead.apply(this, args);
      } as typeof writeHead;
      pages(req, res, () => view(res));
    });
    await send(server.url, '/page');
    const hit = await storedHit(server.url, '/page');
    expect(hit.headers['x-seen']).toBe('yes');
    expect(seenAtWriteHead[0]).toEqual({ cache: 'MISS', type: 'text/plain', age: undefined });
    expect(seenAtWriteHead.at(-1)).toEqual({ cache: 'HIT', type: 'text/plain', age: expect.stringMatching(/^\d+$/) as unknown });
  });

  it('answers a revalidation with a 304 that keeps only what RFC 9110 lets it, with Age and its own header', async () => {
    const pages = cacheMiddleware();
    server = await listen((req, res) =>
      pages(req, res, () => {
        res.setHeader('ETag', '"v1"');
        res.setHeader('Last-Modified', 'Fri, 01 Jan 2021 00:00:00 GMT');
        res.setHeader('Content-Language', 'en');
        view(res);
      }),
    );
    await send(server.url, '/page');
    await storedHit(server.url, '/page');
    const revalidations: Array<Record<string, string>> = [{ 'If-None-Match': 'W/"v1"' }, { 'If-Modified-Since': 'Sat, 02 Jan 2021 00:00:00 GMT' }];
    for (const headers of revalidations) {
      const reply = await send(server.url, '/page', { headers });
      expect(reply.status).toBe(304);
      expect(reply.text).toBe('');
      expect(reply.headers).toMatchObject({ etag: '"v1"', 'cache-control': 'max-age=60', 'x-cache': 'HIT', age: expect.stringMatching(/^\d+$/) as unknown });
      expect(reply.headers['content-language']).toBeUndefined();
      expect(reply.headers['content-type']).toBeUndefined();
    }
    // A precondition that fails sends the page, and one that cannot hold a 412 with none of its headers.
    expect((await send(server.url, '/page', { headers: { 'If-Modified-Since': 'Thu, 31 Dec 2020 00:00:00 GMT' } })).status).toBe(200);
    const failed = await send(server.url, '/page', { headers: { 'If-Match': '"v2"' } });
    expect(failed.status).toBe(412);
    expect(failed.headers.etag).toBeUndefined();
  });
});
