/**
 * The Hono stack of the conformance suite: a real Hono app on Node through @hono/node-server's request
 * listener, with cachegrain/hono: the site's layers as `app.use` middleware in order, the route's on
 * the one route that serves every path. Other Connect middleware runs through a bridge. The view writes
 * Node's response itself and answers RESPONSE_ALREADY_SENT, @hono/node-server's documented way to let
 * it; test/http/frameworks.test.ts covers what the Node server writes of Hono's own responses.
 */
import { getRequestListener } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';
import * as adapter from '../../src/frameworks/hono.js';
import type { Middleware } from '../../src/frameworks/express.js';
import { passesOn } from '../../src/frameworks/connect.js';
import { type Build, type LayerSpec, specOf, type Visitor, visitorIn, type VisitorReads } from './layers.js';

function middlewareOf(spec: LayerSpec): MiddlewareHandler {
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
      return honoVisitor;
  }
}

/** As Hono's authentication middleware are: `c.set('user', …)` when the cookies name a visitor. */
const honoVisitor: MiddlewareHandler = async (c, next) => {
  const user = visitorIn(getCookie(c));
  if (user !== undefined) c.set('user' as never, user as never);
  await next();
};

/** Hono's context: the user authentication set on it. */
export const HONO_READS: VisitorReads = {
  gained: 'c.var.user',
  name: (c: Context) => (c.get('user' as never) as Visitor).name,
  kind: (c: Context) => (c.get('user' as never) as Visitor | undefined)?.kind,
};

const node = (c: Context) => c.env as { incoming: Parameters<Middleware>[0]; outgoing: Parameters<Middleware>[1] };

/**
 * RESPONSE_ALREADY_SENT, or for a HEAD a full Response carrying its header: Hono answers a HEAD with
 * `new Response(null, answer)`, which @hono/node-server would write out again from a lighter one.
 */
function alreadySent(c: Context): Response {
  if (c.req.method !== 'HEAD') return RESPONSE_ALREADY_SENT.clone();
  const marker = new Response(null, { headers: RESPONSE_ALREADY_SENT.headers });
  void marker.body;
  return marker;
}

const honoOf = (middleware: Middleware): MiddlewareHandler => {
  const spec = specOf(middleware);
  if (spec !== undefined) return middlewareOf(spec);
  return async (c, next) => {
    if (await passesOn(middleware, node(c).incoming, node(c).outgoing)) await next();
    else return alreadySent(c);
  };
};

export const honoStack: Build = (middleware, view, route = []) => {
  const app = new Hono();
  for (const layer of middleware) app.use(honoOf(layer));
  const handle: MiddlewareHandler = async (c) => {
    await view(node(c).incoming, node(c).outgoing);
    return alreadySent(c);
  };
  // Hono's overloads name each handler's type in turn; a list of them is spread past them.
  (app.all as (path: string, ...handlers: MiddlewareHandler[]) => unknown)('*', ...route.map(honoOf), handle);
  return getRequestListener(app.fetch);
};
