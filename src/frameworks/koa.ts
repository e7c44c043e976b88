/**
 * cachegrain/koa: the page cache and Django's view decorators as Koa middleware. Glue only: the
 * logic is in `src/pages/` and `src/headers/`, over Node's request and response (`ctx.req`, `ctx.res`). A hit is written
 * there and Koa stands aside (`ctx.respond = false`); a miss goes on down the middleware, in the
 * request's scope, and what Koa then writes is stored when the rules allow.
 *
 *   app.use(cacheMiddleware({ seconds: 600 }));                   // every route
 *   router.get('/news', cachePage(60), handler);                  // one route, 60 s
 */
// Node's types (Buffer, node:http, node:diagnostics_channel…) appear in these declarations: a consumer need not name them in `types`.
/// <reference types="node" preserve="true" />
import type { IncomingMessage, ServerResponse } from 'node:http';
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

/**
 * What the page cache reads of Koa's context: Node's request and response, whether Koa responds, and
 * the route @koa/router matched; and what cache contexts and holes, which get the context, read the
 * visitor from. Koa ships no types: this asks for none.
 */
export interface KoaContext {
  req: IncomingMessage;
  res: ServerResponse;
  respond?: boolean;
  _matchedRoute?: string | RegExp;
  /** Koa's cookies: `ctx.cookies.get('theme')`. */
  cookies: { get(name: string, options?: { signed?: boolean }): string | undefined };
  /** What middleware passes on for the views: `ctx.state.user` (koa-passport and the like). */
  state: Record<string, any>;
  /** The session, where koa-session (or the like) is installed. */
  session?: Record<string, any> | null;
}

export type KoaMiddleware = (ctx: KoaContext, next: () => Promise<unknown>) => Promise<void>;

export type { CacheControlDirectives, ConditionalGetOptions, HoleHandlerOptions, PageCacheOptions } from '../http/index.js';

/** Names the route @koa/router matches for a request on its way down, by which its pages are counted. */
function nameKoaRoute(ctx: KoaContext): void {
  nameRoute(ctx.res, () => (ctx._matchedRoute === undefined ? undefined : String(ctx._matchedRoute)));
}

const named = <T extends object>(fn: T, name: string): T => Object.defineProperty(fn, 'name', { value: name });

/** Where Koa's middleware puts the visitor: on the context, or in `ctx.state` (`ctx.state.user`). */
const KOA_VISITOR_PLACES = (ctx: KoaContext) =>
  [
    ['ctx', ctx],
    ['ctx.state', ctx.state],
  ] as const;

/**
 * Node's request of a Koa context, tied to it: cache contexts and holes get the context, and what
 * middleware puts on it or in `ctx.state` (`ctx.state.user`) is watched from a page's lookup on.
 */
function nodeRequest(ctx: KoaContext): IncomingMessage {
  tieFrameworkRequest(ctx.req, ctx, KOA_VISITOR_PLACES);
  return ctx.req;
}

/** A request phase of the page cache: answers (then calls `answered`), or calls `onward` for the rest of the app. */
type RequestPhase = (req: IncomingMessage, res: ServerResponse, onward: (error?: unknown) => void, answered: () => void) => void;

const ANSWERED = Symbol('answered');
/** What a middleware answered at once returns: one promise, settled, for every such answer. */
const DONE: Promise<void> = Promise.resolve();
const NOTHING = (): void => undefined;

/**
 * Runs `phase` for `ctx` and, on a miss, the rest of the middleware in the request's scope (after
 * naming the route, with `nameOnMiss`). A hit on a cache in this process is answered before the phase
 * returns: then there is nothing to wait for and no promise is made, one settled promise serves them
 * all; else the promise settles with the hit or with the rest of the middleware.
 */
function passThrough(ctx: KoaContext, next: () => Promise<unknown>, phase: RequestPhase, nameOnMiss: boolean): Promise<void> {
  let outcome: Promise<void> | typeof ANSWERED | undefined;
  let settleLater: ((outcome: Promise<void> | undefined) => void) | undefined;
  const settle = (result: Promise<void> | undefined) => (settleLater === undefined ? (outcome = result ?? ANSWERED) : settleLater(result));
  phase(
    nodeRequest(ctx),
    ctx.res,
    (error) => {
      if (error !== undefined) return settle(Promise.reject(error));
      if (nameOnMiss) nameKoaRoute(ctx);
      settle(next().then(NOTHING));
    },
    () => {
      ctx.respond = false;
      settle(undefined);
    },
  );
  if (outcome === ANSWERED) return DONE;
  return outcome ?? new Promise<void>((resolve) => (settleLater = resolve));
}

/** A page-cache layer as middleware: a hit is answered and Koa stands aside; a miss goes on, in the request's scope. */
function phaseMiddleware(phase: RequestPhase, name: string, nameOnMiss: boolean): KoaMiddleware {
  return named((ctx: KoaContext, next: () => Promise<unknown>) => passThrough(ctx, next, phase, nameOnMiss), name);
}

/** The middleware of a page-cache layer: both phases. */
function pageMiddleware(pages: PageCache, name: string): KoaMiddleware {
  return phaseMiddleware((req, res, onward, answered) => pages.handle(req, res, onward, answered), name, true);
}

/** The per-site cache: `app.use(cacheMiddleware({ seconds: 600 }))`, before the router. */
export function cacheMiddleware(options: PageCacheOptions = {}): KoaMiddleware {
  return pageMiddleware(new PageCache(options, null, 'cacheMiddleware'), 'cacheMiddleware');
}

/** Caches one route for `timeout` seconds, whatever max-age the response names: `router.get(path, cachePage(60), handler)`. */
export function cachePage(timeout: number, options: Omit<PageCacheOptions, 'seconds'> = {}): KoaMiddleware {
  return pageMiddleware(new PageCache(options, timeout, 'cachePage'), 'cachePage');
}

/** The response half of the split per-site cache: the first middleware, `fetchFromCacheMiddleware` the last. */
export function updateCacheMiddleware(options: PageCacheOptions = {}): KoaMiddleware {
  const pages = new PageCache(options, null, 'updateCacheMiddleware');
  return async function updateCacheMiddleware(ctx, next) {
    pages.capture(nodeRequest(ctx), ctx.res);
    nameKoaRoute(ctx);
    await next();
  };
}

/** The request half of the split per-site cache: answers hits, marks misses for `updateCacheMiddleware`. */
export function fetchFromCacheMiddleware(options: PageCacheOptions = {}): KoaMiddleware {
  const pages = new PageCache(options, null, 'fetchFromCacheMiddleware');
  return phaseMiddleware((req, res, onward, answered) => pages.fetchOrContinue(req, res, onward, false, answered), 'fetchFromCacheMiddleware', false);
}

/** A decorator's change as middleware. */
const asMiddleware = (decorate: ResponseDecorator, name: string): KoaMiddleware =>
  named(async (ctx: KoaContext, next: () => Promise<unknown>) => {
    decorate(ctx.req, ctx.res);
    await next();
  }, name);

/** Merges Cache-Control directives into the response (`{ maxAge: 60, public: true }`). */
export const cacheControl = (directives: CacheControlDirectives): KoaMiddleware => asMiddleware(cacheControlDecorator(directives), 'cacheControl');
/** Marks the response as never to be cached by anyone. */
export const neverCache: KoaMiddleware = asMiddleware(neverCacheDecorator, 'neverCache');
/** Adds header names to the response's Vary. */
export const varyOnHeaders = (...names: string[]): KoaMiddleware => asMiddleware(varyOnHeadersDecorator(names), 'varyOnHeaders');
/** Adds `Cookie` to the response's Vary. */
export const varyOnCookie: KoaMiddleware = asMiddleware(varyOnCookieDecorator, 'varyOnCookie');
/** Gives GET responses a strong ETag and answers 304/412 to conditional requests. */
export const conditionalGet = (options: ConditionalGetOptions = {}): KoaMiddleware => asMiddleware(conditionalGetDecorator(options), 'conditionalGet');

/** Answers the signed hole URLs of pages cached with `holes: 'esi'`: `app.use(holeHandler({ secret }))`. */
export function holeHandler(options: HoleHandlerOptions = {}): KoaMiddleware {
  const handler = connectHoleHandler(options);
  return async function holeHandler(ctx, next) {
    if (await passesOn(handler, nodeRequest(ctx), ctx.res)) await next();
    else ctx.respond = false;
  };
}

/** Node's response of a Koa context. */
const nodeResponse = (ctx: KoaContext | ServerResponse): ServerResponse => (typeof ctx === 'object' && ctx !== null && 'res' in ctx ? ctx.res : ctx);

/** Adds tags to the page being rendered for `ctx` (or Node's response): `invalidateTags` of any of them drops it. */
export const addCacheTags = (ctx: KoaContext | ServerResponse, ...tags: string[]): void => addPageTags(nodeResponse(ctx), ...tags);

/** Adds cache contexts to the page being rendered for `ctx` (or Node's response): one page is stored per value of them. */
export const addCacheContexts = (ctx: KoaContext | ServerResponse, ...contexts: string[]): void => addPageContexts(nodeResponse(ctx), ...contexts);

/** Makes the page being rendered for `ctx` (or Node's response) uncacheable, saying why. */
export const markUncacheable = (ctx: KoaContext | ServerResponse, why: string): void => markPageUncacheable(nodeResponse(ctx), why);

/**
 * Names a hole: `builder(ctx, ...args)` makes its HTML on every render of a page that holds it, hit
 * or miss, from Koa's context (`ctx.cookies.get(name)`, `ctx.session`, `ctx.state.user`).
 */
export const defineHole: DefineHole<KoaContext> = defineAnyHole;

/** Names an application's cache context: `fn(ctx)` answers its value from Koa's context (`ctx.cookies`, `ctx.state.user`). */
export const defineCacheContext: DefineCacheContext<KoaContext> = defineAnyCacheContext;

export { cacheScope, getCacheKey, invalidatePage, learnCacheKey, pageStats, resetPageStats } from '../http/index.js';
export type { HoleBuilder, HoleOptions } from '../http/index.js';
export { cacheDashboard } from './koa-dashboard.js';
export type { KoaDashboardContext, KoaDashboardOptions } from './koa-dashboard.js';
