/**
 * The Fastify stack of the conformance suite: a real Fastify app with cachegrain/fastify. The site's
 * layers are the plugin (for the first `cacheMiddleware`) and the adapter's hooks, in order; the route's
 * `cachePage` is its route config. Other Connect middleware runs in a hook, as Fastify sites run it.
 * The view writes Node's response itself behind `reply.hijack()`, Fastify's documented way to let a
 * handler do so; test/http/frameworks.test.ts covers what Fastify's own `reply.send` writes.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyPluginCallback } from 'fastify';
import * as adapter from '../../src/frameworks/fastify.js';
import type { Middleware } from '../../src/frameworks/express.js';
import { passesOn } from '../../src/frameworks/connect.js';
import { type Build, failed, type LayerSpec, parseCookies, specOf, visitorIn, type VisitorReads } from './layers.js';

/** The adapter's hook for a layer the tests made. */
function hookOf(spec: LayerSpec): adapter.Hook {
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
      return fastifyVisitor;
  }
}

/** As @fastify/cookie and authentication are: `request.cookies`, and `request.user` when the cookies name a visitor. */
const fastifyVisitor: adapter.Hook = (request, _reply, done) => {
  const cookies = parseCookies(request.headers.cookie);
  Object.assign(request, { cookies, user: visitorIn(cookies) ?? null });
  done();
};

/** Fastify's request, as @fastify/cookie and authentication decorate it. */
export const FASTIFY_READS: VisitorReads = {
  gained: 'request.cookies',
  name: (request: { cookies: Record<string, string> | null }) => request.cookies!.visitor!,
  kind: (request: { cookies: Record<string, string> | null }) => request.cookies?.kind,
};

/** Connect middleware as a Fastify hook: on when it passes the request on, out of Fastify's way when it answered. */
const connectHook =
  (middleware: Middleware): adapter.Hook =>
  (request, reply, done) => {
    passesOn(middleware, request.raw, reply.raw).then(
      (passed) => (passed ? done() : reply.hijack()),
      (error: Error) => done(error),
    );
  };

const hookFor = (middleware: Middleware): adapter.Hook => {
  const spec = specOf(middleware);
  return spec === undefined ? connectHook(middleware) : hookOf(spec);
};

/** Registered in order, each reaching the whole app: Fastify runs its hooks in the order they were added. */
const everywhere = (plugin: FastifyPluginCallback): FastifyPluginCallback => Object.assign(plugin, { [Symbol.for('skip-override')]: true });

export const fastifyStack: Build = (middleware, view, route = []) => {
  let handle: (req: IncomingMessage, res: ServerResponse) => void = () => undefined;
  const app: FastifyInstance = Fastify({
    exposeHeadRoutes: false,
    serverFactory: (handler) => {
      handle = handler;
      return http.createServer(handler);
    },
  });
  // Bodies are the view's to read, as they come.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));
  // As @fastify/cookie does: every request has the property, null until its hook runs.
  if (middleware.some((layer) => specOf(layer)?.kind === 'visitor')) {
    app.decorateRequest('cookies', null);
    app.decorateRequest('user', null);
  }
  // The first site cache is the plugin, registered where it stands among the others, as a site registers it.
  const siteAt = middleware.findIndex((layer) => specOf(layer)?.kind === 'cacheMiddleware');
  if (siteAt === -1) void app.register(adapter.cachegrain, { site: false });
  for (const [i, layer] of middleware.entries()) {
    const spec = specOf(layer);
    if (i === siteAt && spec?.kind === 'cacheMiddleware') void app.register(adapter.cachegrain, spec.options);
    else void app.register(everywhere((fastify, _options, done) => (fastify.addHook('onRequest', hookFor(layer)), done())));
  }
  const [routeFirst, ...routeOthers] = route;
  const routeSpec = routeFirst === undefined ? undefined : specOf(routeFirst);
  void app.register(
    everywhere((fastify, _options, done) => {
      fastify.route({
        method: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'],
        url: '/*',
        config: routeSpec?.kind === 'cachePage' ? { cachePage: { seconds: routeSpec.timeout, ...routeSpec.options } } : {},
        onRequest: (routeSpec?.kind === 'cachePage' ? routeOthers : route).map(hookFor),
        handler: async (request, reply) => {
          reply.hijack();
          try {
            await view(request.raw, reply.raw);
          } catch (error) {
            // Fastify sends no error page for a hijacked reply: the view's failure is answered here.
            if (!reply.raw.headersSent) failed(error, reply.raw);
            else reply.raw.destroy();
          }
        },
      });
      done();
    }),
  );
  const ready = app.ready();
  return (req, res) => void ready.then(() => handle(req, res));
};
