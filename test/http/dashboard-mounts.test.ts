/**
 * What mounting the dashboard on Fastify, Koa and Hono asks of each, over real HTTP: on Fastify, the
 * urlencoded forms reach the dashboard through a parser of its own context, which the rest of the app
 * does not get, and a parser the app already has does as well; a mount given a wrong option is
 * refused naming it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import Koa from 'koa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as onFastify from '../../src/frameworks/fastify.js';
import * as onHono from '../../src/frameworks/hono.js';
import * as onKoa from '../../src/frameworks/koa.js';
import { caches, configureCaches } from '../../src/index.js';

const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' };

beforeAll(() => configureCaches({ default: { backend: 'locmem', location: 'dashboard-mounts' } }));
afterAll(() => caches.closeAll());

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

/** A Fastify app with the dashboard at /_cache and a form route of its own at /contact, listening. */
async function fastifySite(configure: (fastify: FastifyInstance) => void = () => undefined): Promise<string> {
  app = Fastify();
  configure(app);
  await app.register(onFastify.cacheDashboard, { prefix: '/_cache', actions: true });
  app.post('/contact', async (request) => ({ got: request.body }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

/** Invalidates a tag through the dashboard's form at `base`, as its page's form posts it. */
async function invalidateThroughForm(base: string): Promise<Response> {
  const token = /name="token" value="([^"]+)"/.exec(await (await fetch(`${base}/_cache/`)).text())![1]!;
  return fetch(`${base}/_cache/invalidate-tags`, { method: 'POST', headers: FORM, body: `token=${token}&alias=default&tags=news`, redirect: 'manual' });
}

describe('cacheDashboard on Fastify', () => {
  it("takes its forms' urlencoded bodies, and leaves the rest of the app without a parser for them", async () => {
    const base = await fastifySite();
    await caches.get('default').set('news-page', 'cached', { tags: ['news'] });
    const posted = await invalidateThroughForm(base);
    expect(posted.status).toBe(303);
    expect(posted.headers.get('location')).toBe(`/_cache/?done=${encodeURIComponent("Invalidated tags news in cache 'default'.")}`);
    expect(await caches.get('default').get('news-page')).toBeUndefined();
    const elsewhere = await fetch(`${base}/contact`, { method: 'POST', headers: FORM, body: 'name=ada' });
    expect(elsewhere.status).toBe(415);
  });

  it('reads its forms through a parser the app already has for them', async () => {
    const base = await fastifySite((fastify) =>
      fastify.addContentTypeParser(FORM['Content-Type'], { parseAs: 'string' }, (_request, body, done) =>
        done(null, Object.fromEntries(new URLSearchParams(body as string))),
      ),
    );
    await caches.get('default').set('news-page', 'cached', { tags: ['news'] });
    expect((await invalidateThroughForm(base)).status).toBe(303);
    expect(await caches.get('default').get('news-page')).toBeUndefined();
    expect(await (await fetch(`${base}/contact`, { method: 'POST', headers: FORM, body: 'name=ada' })).json()).toEqual({ got: { name: 'ada' } });
  });

  it('passes a path under its prefix that is not its own to Fastify, which answers 404', async () => {
    const base = await fastifySite();
    expect((await fetch(`${base}/_cache/elsewhere`)).status).toBe(404);
  });

  it('refuses a wrong option, and a registration without a prefix, when the app starts', async () => {
    app = Fastify();
    await expect(app.register(onFastify.cacheDashboard, { prefix: '/_cache', action: true } as never)).rejects.toThrow(
      "cacheDashboard: unknown option 'options.action' (did you mean 'options.actions'?)",
    );
    app = Fastify();
    await expect(app.register(onFastify.cacheDashboard, { actions: true })).rejects.toThrow(
      "cacheDashboard: register it under a prefix of its own, as app.register(cacheDashboard, { prefix: '/_cache' })",
    );
  });
});

describe('cacheDashboard on Koa and Hono', () => {
  it('Koa: reads its forms through a body parser in front, which has read the body already', async () => {
    const koa = new Koa();
    // As a Koa body parser does: the body read, its fields on ctx.request.body.
    koa.use(async (ctx, next) => {
      if (ctx.is('urlencoded')) {
        const chunks: Buffer[] = [];
        for await (const chunk of ctx.req) chunks.push(chunk as Buffer);
        (ctx.request as { body?: unknown }).body = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString()));
      }
      await next();
    });
    koa.use(onKoa.cacheDashboard({ path: '/_cache', actions: true }));
    const server: Server = createServer(koa.callback());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      await caches.get('default').set('news-page', 'cached', { tags: ['news'] });
      expect((await invalidateThroughForm(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)).status).toBe(303);
      expect(await caches.get('default').get('news-page')).toBeUndefined();
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('Koa: needs the path it answers under, and refuses a wrong option naming the closest one', () => {
    expect(() => onKoa.cacheDashboard({ actions: true } as never)).toThrow(
      "cacheDashboard: options.path is missing: give the path it answers under, as { path: '/_cache' }",
    );
    expect(() => onKoa.cacheDashboard({ path: '_cache' })).toThrow("cacheDashboard: options.path must be a path starting with '/' (got '_cache')");
    expect(() => onKoa.cacheDashboard({ path: '/_cache', titel: 'x' } as never)).toThrow(
      "cacheDashboard: unknown option 'options.titel' (did you mean 'options.title'?)",
    );
  });

  it('Hono: refuses a wrong option naming the closest one, and takes no path: app.route names it', () => {
    expect(() => onHono.cacheDashboard({ path: '/_cache' } as never)).toThrow("cacheDashboard: unknown option 'options.path'");
    expect(() => onHono.cacheDashboard({ tops: 5 } as never)).toThrow("cacheDashboard: unknown option 'options.tops' (did you mean 'options.top'?)");
  });
});
