/**
 * cachegrain/express: the page cache and Django's view decorators as plain `(req, res, next)`
 * middleware, for Express 4 and 5, Connect, or a bare `node:http` server. Glue only: the
 * logic is in `src/pages/` and `src/headers/`. Mount `cacheMiddleware` after the middleware that finds the visitor (cookie
 * parsing, the session, authentication) and before the rest: a hit is answered before anything after it runs.
 */
// Node's types (Buffer, node:http, node:diagnostics_channel…) appear in these declarations: a consumer need not name them in `types`.
/// <reference types="node" preserve="true" />
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type CacheControlDirectives,
  cacheControlDecorator,
  type ConditionalGetOptions,
  conditionalGetDecorator,
  dashboardHandler,
  type DashboardOptions,
  neverCacheDecorator,
  PageCache,
  type PageCacheOptions,
  type ResponseDecorator,
  varyOnCookieDecorator,
  varyOnHeadersDecorator,
} from '../http/index.js';
import { DASHBOARD_OPTIONS } from '../dashboard/dashboard.js';
import { checkOptions } from '../options/option-rules.js';

export type Next = (error?: unknown) => void;
export type Middleware = (req: IncomingMessage, res: ServerResponse, next: Next) => void;
export type { CacheControlDirectives, ConditionalGetOptions, DashboardOptions, PageCacheOptions } from '../http/index.js';

/** The per-site cache: answers hits, stores GET responses the rules allow. */
export function cacheMiddleware(options: PageCacheOptions = {}): Middleware {
  const pages = new PageCache(options, null, 'cacheMiddleware');
  return function cacheMiddleware(req, res, next) {
    void pages.handle(req, res, next);
  };
}

/** The response half of the split per-site cache: put it first, `fetchFromCacheMiddleware` last. */
export function updateCacheMiddleware(options: PageCacheOptions = {}): Middleware {
  const pages = new PageCache(options, null, 'updateCacheMiddleware');
  return function updateCacheMiddleware(req, res, next) {
    pages.capture(req, res);
    next();
  };
}

/** The request half of the split per-site cache: answers hits, marks misses for `updateCacheMiddleware`. */
export function fetchFromCacheMiddleware(options: PageCacheOptions = {}): Middleware {
  const pages = new PageCache(options, null, 'fetchFromCacheMiddleware');
  return function fetchFromCacheMiddleware(req, res, next) {
    pages.fetchOrContinue(req, res, next);
  };
}

/** Caches one route for `timeout` seconds, whatever max-age the response names. */
export function cachePage(timeout: number, options: Omit<PageCacheOptions, 'seconds'> = {}): Middleware {
  const pages = new PageCache(options, timeout, 'cachePage');
  return function cachePage(req, res, next) {
    void pages.handle(req, res, next);
  };
}

/** A decorator's change as middleware: applied, then on to the next. */
const asMiddleware = (decorate: ResponseDecorator, name: string): Middleware =>
  Object.defineProperty(
    (req: IncomingMessage, res: ServerResponse, next: Next) => {
      decorate(req, res);
      next();
    },
    'name',
    { value: name },
  );

/** Merges Cache-Control directives into the response (`{ maxAge: 60, public: true }`). */
export function cacheControl(directives: CacheControlDirectives): Middleware {
  return asMiddleware(cacheControlDecorator(directives), 'cacheControl');
}

/** Marks the response as never to be cached by anyone. */
export const neverCache: Middleware = asMiddleware(neverCacheDecorator, 'neverCache');

/** Adds header names to the response's Vary. */
export function varyOnHeaders(...names: string[]): Middleware {
  return asMiddleware(varyOnHeadersDecorator(names), 'varyOnHeaders');
}

/** Adds `Cookie` to the response's Vary. */
export const varyOnCookie: Middleware = asMiddleware(varyOnCookieDecorator, 'varyOnCookie');

/** Gives GET responses a strong ETag and answers 304/412 to conditional requests. */
export function conditionalGet(options: ConditionalGetOptions = {}): Middleware {
  return asMiddleware(conditionalGetDecorator(options), 'conditionalGet');
}

export {
  addCacheContexts,
  addCacheTags,
  cacheScope,
  defineCacheContext,
  defineHole,
  getCacheKey,
  holeHandler,
  invalidatePage,
  learnCacheKey,
  markUncacheable,
  pageStats,
  resetPageStats,
} from '../http/index.js';
export type { HoleBuilder, HoleHandlerOptions, HoleOptions } from '../http/index.js';

/**
 * The cache dashboard as middleware: `app.use('/_cache', requireStaff, cacheDashboard({ actions: true }))`.
 * Mount it behind your own authentication: it shows what is cached and, with `actions`, changes it.
 */
export function cacheDashboard(options: DashboardOptions = {}): Middleware {
  // Express takes the path it is mounted at off the URL: the handler's own `path` is no option here.
  checkOptions(options, DASHBOARD_OPTIONS, 'cacheDashboard');
  return dashboardHandler(options);
}
