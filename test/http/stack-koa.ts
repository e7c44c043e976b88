/**
 * The Koa stack of the conformance suite: a real Koa app with cachegrain/koa, the site's layers as
 * `app.use` middleware in order, the route's on a @koa/router route that serves every path. Other
 * Connect middleware runs through a bridge, as Koa sites run it. The view writes Node's response
 * itself with `ctx.respond = false`, Koa's documented way to let it; test/http/frameworks.test.ts covers what
 * Koa's own `ctx.body` writes.
 */
import Router from '@koa/router';
import Koa from 'koa';
import * as adapter from '../../src/frameworks/koa.js';
import type { Middleware } from '../../src/frameworks/express.js';
import { passesOn } from '../../src/frameworks/connect.js';
import { type Build, type LayerSpec, specOf, type Visitor, type VisitorReads } from './layers.js';

function middlewareOf(spec: LayerSpec): adapter.KoaMiddleware {
  switch (spec.kind) {
    case 'cacheMiddleware':
      return adapter.cacheMiddleware(spec.options);
    case 'updateCacheMiddleware':
      return adapter.updateCacheMiddleware(spec.options);
    case 'fetchFromCacheMiddleware':
      return adapter.fetchFromCacheMiddleware(spec.options);
    case 'cachePage':
      return adapter.cachePage(spec.timeout, spec.options);
    case 'cacheControl':
      return adapter.cacheControl(spec.directives);
    case 'neverCache':
      return adapter.neverCache;
    case 'varyOnHeaders':
      return adapter.varyOnHeaders(...spec.names);
    case 'varyOnCookie':
      return adapter.varyOnCookie;
    case 'conditionalGet':
      return adapter.conditionalGet(spec.options);
    case 'visitor':
      return koaVisitor;
  }
}

/** As koa-passport is: `ctx.state.user` when Koa's cookies name a visitor. */
const koaVisitor: adapter.KoaMiddleware = async (ctx, next) => {
  const visitor = ctx.cookies.get('visitor');
  if (visitor !== undefined) ctx.state.user = { name: visitor, kind: ctx.cookies.get('kind') } satisfies Visitor;
  await next();
};

/** Koa's context: the user authentication put in `ctx.state`. */
export const KOA_READS: VisitorReads = {
  gained: 'ctx.state.user',
  name: (ctx: adapter.KoaContext) => (ctx.state.user as Visitor).name,
  kind: (ctx: adapter.KoaContext) => (ctx.state.user as Visitor | undefined)?.kind,
};

const koaOf = (middleware: Middleware): adapter.KoaMiddleware => {
  const spec = specOf(middleware);
  if (spec !== undefined) return middlewareOf(spec);
  return async (ctx, next) => {
    if (await passesOn(middleware, ctx.req, ctx.res)) await next();
    else ctx.respond = false;
  };
};

export const koaStack: Build = (middleware, view, route = []) => {
  const app = new Koa();
  // Koa's own error page, quietly: the tests look at what reaches the client.
  app.silent = true;
  for (const layer of middleware) app.use(koaOf(layer) as Koa.Middleware);
  const router = new Router();
  router.all(/.*/, ...(route.map(koaOf) as never[]), async (ctx) => {
    ctx.respond = false;
    // Koa starts every response as a 404 until a body is set; a view on Node's response starts at 200.
    ctx.res.statusCode = 200;
    await view(ctx.req, ctx.res);
  });
  app.use(router.routes());
  return app.callback();
};
