/**
 * cachegrain/hono: the page cache and Django's view decorators as Hono middleware, on Node through
 * `@hono/node-server`, whose bindings carry Node's request and response (`c.env.incoming`,
 * `c.env.outgoing`). Glue only: the logic is in `src/pages/` and `src/headers/`. A hit is written to Node's response
 * and the middleware answers that it was sent; a miss goes on down the middleware, in the request's
 * scope, and what the Node server then writes of Hono's response is stored when the rules allow.
 *
 *   app.use(cacheMiddleware({ seconds: 600 }));                   // every route
 *   app.get('/news', cachePage(60), (c) => c.html(page));         // one route, 60 s
 */
// Node's types (Buffer, node:http, node:diagnostics_channel…) appear in these declarations: a consumer need not name them in `types`.
/// <reference types="node" preserve="true" />
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context, MiddlewareHandler } from 'hono';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import {
  addCacheContexts as addPageContexts,
  addCacheTags as addPageTags,
  markUncacheable as markPageUncacheable,
  type CacheControlDirectives,
  cacheControlDecorator,
  type ConditionalGetOptions,
  conditionalGetDecorator,
  holeHandler as connectHoleHandler,
  type HoleHandlerOptions,
  nameRoute,
  neverCacheDecorator,
  PageCache,
  type PageCacheOptions,
  type ResponseDecorator,
  varyOnCookieDecorator,
  varyOnHeadersDecorator,
} from '../http/index.js';
import { defineCacheContext as defineAnyCacheContext, defineHole as defineAnyHole, type DefineCacheContext, type DefineHole } from '../http/index.js';
import { passesOn } from './connect.js';
import { tieFrameworkRequest } from '../cacheability/framework-request.js';

export type { CacheControlDirectives, ConditionalGetOptions, HoleHandlerOptions, PageCacheOptions } from '../http/index.js';

/** Where Hono's middleware puts the visitor: `c.set('user', …)`, read as `c.var.user`. */
const HONO_VISITOR_PLACES = (c: Context) => [['c.var', c.var as object]] as const;

/**
 * Node's request and response under Hono, or a clear error where Hono does not run on Node. The
 * request is tied to Hono's context: cache contexts and holes get `c`, and what middleware sets
 * with `c.set` (`c.get('user')`) is watched from a page's lookup on.
 */
function nodeOf(c: Context, what: string): { req: IncomingMessage; res: ServerResponse } {
  const env = c.env as { incoming?: IncomingMessage; outgoing?: ServerResponse } | undefined;
  if (env?.incoming === undefined || env.outgoing === undefined || !('writeHead' in env.outgoing)) {
    throw new Error(
      `${what}: Hono must run on Node through @hono/node-server (serve(), or getRequestListener()): c.env.incoming and c.env.outgoing are missing`,
    );
  }
  tieFrameworkRequest(env.incoming, c, HONO_VISITOR_PLACES);
  return { req: env.incoming, res: env.outgoing };
}

/**
 * A response the Node server sends nothing for: the cache has written the whole answer to Node's
 * response. The server's own marker names its header. Hono copies the answer of a middleware with
 * the global Response, which is @hono/node-server's lighter one once the server runs: for a HEAD
 * (`new Response(null, answer)`), for `c.header()` after the cache answered, or over a response
 * already begun. A lighter copy the server writes out, a second head on a response already sent,
 * unless what it copies has become a full Response: then the copy is a full one too, carrying the
 * marker header. Reading a lighter Response's body makes it full.
 */
const ALREADY_SENT_HEADERS = Object.fromEntries(RESPONSE_ALREADY_SENT.headers);
function alreadySent(): Response {
  const marker = new Response(null, { headers: ALREADY_SENT_HEADERS });
  void marker.body;
  return marker;
}

/**
 * The one marker of caches that are Hono's first handler, where no middleware is around them to
 * change it (Hono's copies leave it as it is); made anew should the global Response be replaced.
 */
let firstHandlerMarker: Response | undefined;

/** The marker for the request of `c`: fresh, as the middleware around the cache may change its headers, unless there is none. */
function alreadySentFor(c: Context): Response {
  if (c.req.routeIndex !== 0) return alreadySent();
  if (firstHandlerMarker?.constructor !== Response) firstHandlerMarker = alreadySent();
  return firstHandlerMarker;
}

/** Names the route Hono matches for a request on its way down, by which its pages are counted (a catch-all names none). */
function nameHonoRoute(c: Context, res: ServerResponse): void {
  nameRoute(res, () => {
    const route = c.req.routePath;
    return route === '*' || route === '/*' ? undefined : route;
  });
}

const named = <T extends object>(fn: T, name: string): T => Object.defineProperty(fn, 'name', { value: name });

/** A request phase of the page cache: answers (then calls `answered`), or calls `onward` for the rest of the app. */
type RequestPhase = (req: IncomingMessage, res: ServerResponse, onward: (error?: unknown) => void, answered: () => void) => void;

/** What a page-cache middleware returns: the marker once the cache sent the page, else nothing (the app answered). */
type Answer = Response | undefined;

const NOTHING = (): undefined => undefined;

/**
 * Runs the request phase and, on a miss, the rest of the app in the request's scope. A hit on a
 * cache in this process is answered before the phase returns, and its marker is returned at once,
 * no promise made; else a promise of the marker or of the rest of the app.
 */
function passThrough(c: Context, next: () => Promise<void>, phase: RequestPhase, what: string): Answer | Promise<Answer> {
  const { req, res } = nodeOf(c, what);
  let outcome: Answer | Promise<Answer>;
  let settleLater: ((outcome: Answer | Promise<Answer>) => void) | undefined;
  const settle = (result: Answer | Promise<Answer>) => (settleLater === undefined ? (outcome = result) : settleLater(result));
  phase(
    req,
    res,
    (error) => {
      if (error !== undefined) return settle(Promise.reject(error));
      nameHonoRoute(c, res);
      settle(next().then(NOTHING));
    },
    () => settle(alreadySentFor(c)),
  );
  return outcome ?? new Promise<Answer>((resolve) => (settleLater = resolve));
}

/** A hit answered at once is answered in the same turn: Hono awaits whatever a middleware returns. */
const phaseMiddleware = (phase: RequestPhase, name: string): MiddlewareHandler =>
  named(((c: Context, next: () => Promise<void>) => passThrough(c, next, phase, name)) as MiddlewareHandler, name);

const pageMiddleware = (pages: PageCache, name: string): MiddlewareHandler =>
  phaseMiddleware((req, res, onward, answered) => pages.handle(req, res, onward, answered), name);

/** The per-site cache: `app.use(cacheMiddleware({ seconds: 600 }))`, before the routes. */
export function cacheMiddleware(options: PageCacheOptions = {}): MiddlewareHandler {
  return pageMiddleware(new PageCache(options, null, 'cacheMiddleware'), 'cacheMiddleware');
}

/** Caches one route for `timeout` seconds, whatever max-age the response names: `app.get(path, cachePage(60), handler)`. */
export function cachePage(timeout: number, options: Omit<PageCacheOptions, 'seconds'> = {}): MiddlewareHandler {
  return pageMiddleware(new PageCache(options, timeout, 'cachePage'), 'cachePage');
}

/** The response half of the split per-site cache: the first middleware, `fetchFromCacheMiddleware` the last. */
export function updateCacheMiddleware(options: PageCacheOptions = {}): MiddlewareHandler {
  const pages = new PageCache(options, null, 'updateCacheMiddleware');
  return named(async (c: Context, next: () => Promise<void>) => {
    const { req, res } = nodeOf(c, 'updateCacheMiddleware');
    pages.capture(req, res);
    nameHonoRoute(c, res);
    await next();
  }, 'updateCacheMiddleware');
}

/** The request half of the split per-site cache: answers hits, marks misses for `updateCacheMiddleware`. */
export function fetchFromCacheMiddleware(options: PageCacheOptions = {}): MiddlewareHandler {
  const pages = new PageCache(options, null, 'fetchFromCacheMiddleware');
  return phaseMiddleware((req, res, onward, answered) => pages.fetchOrContinue(req, res, onward, false, answered), 'fetchFromCacheMiddleware');
}

/** A decorator's change as middleware. */
const asMiddleware = (decorate: ResponseDecorator, name: string): MiddlewareHandler =>
  named(async (c: Context, next: () => Promise<void>) => {
    const { req, res } = nodeOf(c, name);
    decorate(req, res);
    await next();
  }, name);

/** Merges Cache-Control directives into the response (`{ maxAge: 60, public: true }`). */
export const cacheControl = (directives: CacheControlDirectives): MiddlewareHandler => asMiddleware(cacheControlDecorator(directives), 'cacheControl');
/** Marks the response as never to be cached by anyone. */
export const neverCache: MiddlewareHandler = asMiddleware(neverCacheDecorator, 'neverCache');
/** Adds header names to the response's Vary. */
export const varyOnHeaders = (...names: string[]): MiddlewareHandler => asMiddleware(varyOnHeadersDecorator(names), 'varyOnHeaders');
/** Adds `Cookie` to the response's Vary. */
export const varyOnCookie: MiddlewareHandler = asMiddleware(varyOnCookieDecorator, 'varyOnCookie');
/** Gives GET responses a strong ETag and answers 304/412 to conditional requests. */
export const conditionalGet = (options: ConditionalGetOptions = {}): MiddlewareHandler => asMiddleware(conditionalGetDecorator(options), 'conditionalGet');

/** Answers the signed hole URLs of pages cached with `holes: 'esi'`: `app.use(holeHandler({ secret }))`. */
export function holeHandler(options: HoleHandlerOptions = {}): MiddlewareHandler {
  const handler = connectHoleHandler(options);
  return named(async (c: Context, next: () => Promise<void>) => {
    const { req, res } = nodeOf(c, 'holeHandler');
    if (await passesOn(handler, req, res)) await next();
    else return alreadySentFor(c);
  }, 'holeHandler');
}

/** Node's response of a Hono context, on @hono/node-server. */
const nodeResponse = (c: Context | ServerResponse, caller: string): ServerResponse =>
  typeof c === 'object' && c !== null && 'env' in c ? nodeOf(c, caller).res : c;

/** Adds tags to the page being rendered for `c` (or Node's response): `invalidateTags` of any of them drops it. */
export const addCacheTags = (c: Context | ServerResponse, ...tags: string[]): void => addPageTags(nodeResponse(c, 'addCacheTags'), ...tags);

/** Adds cache contexts to the page being rendered for `c` (or Node's response): one page is stored per value of them. */
export const addCacheContexts = (c: Context | ServerResponse, ...contexts: string[]): void => addPageContexts(nodeResponse(c, 'addCacheContexts'), ...contexts);

/** Makes the page being rendered for `c` (or Node's response) uncacheable, saying why. */
export const markUncacheable = (c: Context | ServerResponse, why: string): void => markPageUncacheable(nodeResponse(c, 'markUncacheable'), why);

/**
 * Names a hole: `builder(c, ...args)` makes its HTML on every render of a page that holds it, hit or
 * miss, from Hono's context (`getCookie(c, name)`, `c.get('user')`).
 */
export const defineHole: DefineHole<Context> = defineAnyHole;

/** Names an application's cache context: `fn(c)` answers its value from Hono's context (`getCookie(c, name)`, `c.get('user')`). */
export const defineCacheContext: DefineCacheContext<Context> = defineAnyCacheContext;

export { cacheScope, getCacheKey, invalidatePage, learnCacheKey, pageStats, resetPageStats } from '../http/index.js';
export type { HoleBuilder, HoleOptions } from '../http/index.js';
export { cacheDashboard } from './hono-dashboard.js';
export type { DashboardOptions } from '../http/index.js';
