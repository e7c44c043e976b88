/**
 * One small site on each framework the dashboard mounts on, built as its README recipe says: a page
 * cache on the alias 'pages' in front of `/items/:id` and `/themed/:id`, the dashboard with its forms
 * at `/_cache` and without them at `/watch`, both behind the site's own authentication (a `staff=yes`
 * cookie), which answers anyone else 403 before the dashboard sees the request.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import Router from '@koa/router';
import express from 'express';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { Hono, type MiddlewareHandler } from 'hono';
import Koa from 'koa';
import * as onExpress from '../../src/frameworks/express.js';
import * as onFastify from '../../src/frameworks/fastify.js';
import * as onHono from '../../src/frameworks/hono.js';
import * as onKoa from '../../src/frameworks/koa.js';
import { dashboardHandler } from '../../src/http/index.js';

/** The site's pages, rendered by the test's templates. */
export interface SitePages {
  item(id: string): Promise<string>;
  themed(cookie: string | undefined): Promise<string>;
}

export interface DashboardSite {
  base: string;
  close(): Promise<void>;
}

/** A framework's site, and the name its page cache counts a path's pages under. */
export interface DashboardMount {
  name: string;
  start(pages: SitePages): Promise<DashboardSite>;
  routeOf(path: string): string;
}

export const TITLE = 'Test caches';
const PAGES = { cache: 'pages', seconds: 60 };
const STAFF_ONLY = 'staff only';
const isStaff = (cookie: string | undefined) => /(^|;\s*)staff=yes(;|$)/.test(cookie ?? '');
const asRoute = (path: string) => path.replace(/\/\w+$/, '/:id');

async function listening(server: Server): Promise<DashboardSite> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        // Every request of the tests has been answered; the browser may still hold a connection it opened ahead of one.
        server.closeAllConnections();
      }),
  };
}

/** As Connect authentication middleware is. */
const requireStaff = (req: IncomingMessage, res: ServerResponse, next: () => void) =>
  isStaff(req.headers.cookie) ? next() : void res.writeHead(403, { 'Content-Type': 'text/plain' }).end(STAFF_ONLY);

const expressSite: DashboardMount = {
  name: 'Express',
  routeOf: asRoute,
  start(pages) {
    const app = express();
    // The browser asks for one; answered before the page cache, it leaves the counts to the test's traffic.
    app.get('/favicon.ico', (_req, res) => void res.status(204).end());
    app.use('/_cache', requireStaff, onExpress.cacheDashboard({ actions: true, title: TITLE }));
    app.use('/watch', requireStaff, onExpress.cacheDashboard());
    app.use(onExpress.cacheMiddleware(PAGES));
    app.get('/items/:id', async (req, res) => void res.type('html').send(await pages.item(req.params.id)));
    app.get('/themed/:id', async (req, res) => void res.type('html').send(await pages.themed(req.headers.cookie)));
    return listening(createServer(app));
  },
};

const nodeSite: DashboardMount = {
  name: 'node:http',
  // With no router, the page cache counts pages by their path.
  routeOf: (path) => path,
  start(pages) {
    const dashboard = dashboardHandler({ path: '/_cache', actions: true, title: TITLE });
    const watch = dashboardHandler({ path: '/watch' });
    const cached = onExpress.cacheMiddleware(PAGES);
    const view = (req: IncomingMessage, res: ServerResponse) => {
      const [, kind, id = ''] = /^\/(items|themed)\/(\w+)$/.exec(req.url ?? '') ?? [];
      if (kind === undefined) return void res.writeHead(404).end();
      void (kind === 'items' ? pages.item(id) : pages.themed(req.headers.cookie)).then((html) =>
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(html),
      );
    };
    return listening(
      createServer((req, res) => {
        if (req.url === '/favicon.ico') return void res.writeHead(204).end();
        const guarded = /^\/(_cache|watch)(\/|\?|$)/.test(req.url ?? '');
        const rest = () => dashboard(req, res, () => watch(req, res, () => cached(req, res, () => view(req, res))));
        return guarded ? requireStaff(req, res, rest) : rest();
      }),
    );
  },
};

const fastifySite: DashboardMount = {
  name: 'Fastify',
  routeOf: asRoute,
  async start(pages) {
    const app = Fastify();
    // A hook before the page cache's: its hooks run on every route of the app, whenever the route was declared.
    app.addHook('onRequest', async (request, reply) => {
      if (request.url === '/favicon.ico') return reply.code(204).send();
    });
    const requireStaffHook = async (request: FastifyRequest, reply: FastifyReply) => {
      if (!isStaff(request.headers.cookie)) return reply.code(403).type('text/plain').send(STAFF_ONLY);
    };
    for (const [prefix, options] of [
      ['/_cache', { actions: true, title: TITLE }],
      ['/watch', {}],
    ] as const) {
      await app.register(
        async (staff) => {
          staff.addHook('onRequest', requireStaffHook);
          await staff.register(onFastify.cacheDashboard, options);
        },
        { prefix },
      );
    }
    await app.register(onFastify.cachegrain, PAGES);
    app.get<{ Params: { id: string } }>('/items/:id', async (request, reply) => reply.type('text/html').send(await pages.item(request.params.id)));
    app.get('/themed/:id', async (request, reply) => reply.type('text/html').send(await pages.themed(request.headers.cookie)));
    await app.ready();
    return listening(app.server);
  },
};

const koaSite: DashboardMount = {
  name: 'Koa',
  routeOf: asRoute,
  start(pages) {
    const app = new Koa();
    const router = new Router();
    app.use(async (ctx, next) => {
      if (ctx.path === '/favicon.ico') ctx.status = 204;
      else if (/^\/(_cache|watch)(\/|$)/.test(ctx.path) && !isStaff(ctx.get('Cookie'))) ctx.throw(403, STAFF_ONLY);
      else await next();
    });
    app.use(onKoa.cacheDashboard({ path: '/_cache', actions: true, title: TITLE }));
    app.use(onKoa.cacheDashboard({ path: '/watch' }));
    app.use(onKoa.cacheMiddleware(PAGES));
    router.get('/items/:id', async (ctx) => {
      ctx.type = 'html';
      ctx.body = await pages.item(ctx.params.id!);
    });
    router.get('/themed/:id', async (ctx) => {
      ctx.type = 'html';
      ctx.body = await pages.themed(ctx.get('Cookie'));
    });
    app.use(router.routes());
    return listening(createServer(app.callback()));
  },
};

const honoSite: DashboardMount = {
  name: 'Hono',
  routeOf: asRoute,
  start(pages) {
    const app = new Hono();
    const requireStaffMiddleware: MiddlewareHandler = async (c, next) => (isStaff(c.req.header('Cookie')) ? next() : c.text(STAFF_ONLY, 403));
    app.get('/favicon.ico', (c) => c.body(null, 204));
    app.use('/_cache/*', requireStaffMiddleware);
    app.use('/watch/*', requireStaffMiddleware);
    app.route('/_cache', onHono.cacheDashboard({ actions: true, title: TITLE }));
    app.route('/watch', onHono.cacheDashboard());
    app.use(onHono.cacheMiddleware(PAGES));
    app.get('/items/:id', async (c) => c.html(await pages.item(c.req.param('id'))));
    app.get('/themed/:id', async (c) => c.html(await pages.themed(c.req.header('Cookie'))));
    return listening(createServer(getRequestListener(app.fetch)));
  },
};

export const DASHBOARD_MOUNTS: DashboardMount[] = [expressSite, nodeSite, fastifySite, koaSite, honoSite];
