/**
 * cachegrain/koa: the page cache and Django's view decorators as Koa middleware. Glue only: the
 * logic is in `src/http/`, over Node's request and response (`ctx.req`, `ctx.res`). A hit is written
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
} from '../src/http/index.js';
import { passesOn } from '../src/http/connect.js';

/**
 * What the page cache reads of Koa's context: Node's request and response, whether Koa responds, and
 * the route @koa/router matched. Koa ships no types: this asks for none.
 */
export interface KoaContext {
  req: IncomingMessage;
  res: ServerResponse;
  respond?: boolean;
  _matchedRoute?: string | RegExp;
}

export type KoaMiddleware = (ctx: KoaContext, next: () => Promise<unknown>) => Promise<void>;

export type { CacheControlDirectives, ConditionalGetOptions, HoleHandlerOptions, PageCacheOptions } from '../src/http/index.js';

/** Names the route @koa/router matches for a request on its way down, by which its pages are counted. */
function nameKoaRoute(ctx: KoaContext): void {
  nameRoute(ctx.res, () => (ctx._matchedRoute === undefined ? undefined : String(ctx._matchedRoute)));
}

const named = <T extends object>(fn: T, name: string): T => Object.defineProperty(fn, 'name', { value: name });

/** The middleware of a page-cache layer: a hit is answered and Koa stands aside; a miss goes on, in the request's scope. */
function pageMiddleware(pages: PageCache, name: string): KoaMiddleware {
  return named(
    (ctx: KoaContext, next: () => Promise<unknown>) =>
      new Promise<void>((resolve, reject) => {
        pages.handle(
          ctx.req,
          ctx.res,
          (error) => {
            if (error !== undefined) return reject(error);
            nameKoaRoute(ctx);
            next().then(() => resolve(), reject);
          },
          () => {
            ctx.respond = false;
            resolve();
          },
        );
      }),
    name,
  );
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
    pages.capture(ctx.req, ctx.res);
    nameKoaRoute(ctx);
    await next();
  };
}

/** The request half of the split per-site cache: answers hits, marks misses for `updateCacheMiddleware`. */
export function fetchFromCacheMiddleware(options: PageCacheOptions = {}): KoaMiddleware {
  const pages = new PageCache(options, null, 'fetchFromCacheMiddleware');
  return named(
    (ctx: KoaContext, next: () => Promise<unknown>) =>
      new Promise<void>((resolve, reject) => {
        pages.fetchOrContinue(
          ctx.req,
          ctx.res,
          (error) => (error !== undefined ? reject(error) : next().then(() => resolve(), reject)),
          false,
          () => {
            ctx.respond = false;
            resolve();
          },
        );
      }),
    'fetchFromCacheMiddleware',
  );
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
    if (await passesOn(handler, ctx.req, ctx.res)) await next();
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

export { cacheScope, defineCacheContext, defineHole, getCacheKey, invalidatePage, learnCacheKey, pageStats, resetPageStats } from '../src/http/index.js';
export type { HoleBuilder, HoleOptions } from '../src/http/index.js';
