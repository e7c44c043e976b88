/**
 * cachegrain/express: the page cache and Django's view decorators as plain `(req, res, next)`
 * middleware, for Express 4 and 5, Connect, or a bare `node:http` server. Glue only: the
 * logic is in `src/http/`. Put `cacheMiddleware` first; a hit is answered before anything after it runs.
 */
// Node's types (Buffer, node:http, node:diagnostics_channel…) appear in these declarations: a consumer need not name them in `types`.
/// <reference types="node" preserve="true" />
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  addNeverCacheHeaders,
  beforeHeaders,
  type CacheControlDirectives,
  conditionalGetResponse,
  dashboardHandler,
  type DashboardOptions,
  DEFAULT_MAX_BODY_BYTES,
  PageCache,
  type PageCacheOptions,
  patchCacheControl,
  patchVaryHeaders,
} from '../src/http/index.js';
import { isHeaderName, misspeltDirectiveMessage } from '../src/http/headers.js';
import { checkOptions, checkValue, MUST_BE, optionShape, ValueRule } from '../src/options.js';

export type Next = (error?: unknown) => void;
export type Middleware = (req: IncomingMessage, res: ServerResponse, next: Next) => void;
export type { CacheControlDirectives, DashboardOptions, PageCacheOptions } from '../src/http/index.js';

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

const DIRECTIVE_VALUE = new ValueRule('a boolean, a string or a number', (value) => ['boolean', 'string', 'number'].includes(typeof value));

/** Merges Cache-Control directives into the response (`{ maxAge: 60, public: true }`). */
export function cacheControl(directives: CacheControlDirectives): Middleware {
  if (directives === null || typeof directives !== 'object') throw new TypeError('cacheControl: directives must be an object such as { maxAge: 60 }');
  for (const [name, value] of Object.entries(directives)) {
    const misspelt = misspeltDirectiveMessage(name);
    if (misspelt !== undefined) throw new TypeError(`cacheControl: ${misspelt}`);
    checkValue(value, DIRECTIVE_VALUE, 'cacheControl', `directive ${name}`);
    if (typeof value === 'number') checkValue(value, MUST_BE.nonNegativeSeconds, 'cacheControl', `directive ${name}`);
  }
  const fixed = { ...directives };
  return function cacheControl(_req, res, next) {
    beforeHeaders(res, (response) => patchCacheControl(response, fixed));
    next();
  };
}

/** Marks the response as never to be cached by anyone. */
export function neverCache(_req: IncomingMessage, res: ServerResponse, next: Next): void {
  beforeHeaders(res, addNeverCacheHeaders);
  next();
}

/** Adds header names to the response's Vary. */
export function varyOnHeaders(...names: string[]): Middleware {
  for (const name of names) {
    if (typeof name !== 'string' || !isHeaderName(name.trim())) {
      throw new TypeError(`varyOnHeaders: ${JSON.stringify(name)} is not a header name`);
    }
  }
  const fixed = [...names];
  return function varyOnHeaders(_req, res, next) {
    beforeHeaders(res, (response) => patchVaryHeaders(response, fixed));
    next();
  };
}

/** Adds `Cookie` to the response's Vary. */
export function varyOnCookie(_req: IncomingMessage, res: ServerResponse, next: Next): void {
  beforeHeaders(res, (response) => patchVaryHeaders(response, ['Cookie']));
  next();
}

/** Options of `conditionalGet`. */
export interface ConditionalGetOptions {
  /** Bodies larger than this many bytes are sent without an ETag (never held back). @default 1048576 */
  maxBodyBytes?: number;
}

const CONDITIONAL_GET_OPTIONS = optionShape<ConditionalGetOptions>({ maxBodyBytes: MUST_BE.nonNegativeInteger });

/** Gives GET responses a strong ETag and answers 304/412 to conditional requests. */
export function conditionalGet(options: ConditionalGetOptions = {}): Middleware {
  checkOptions(options, CONDITIONAL_GET_OPTIONS, 'conditionalGet');
  const { maxBodyBytes = DEFAULT_MAX_BODY_BYTES } = options;
  return function conditionalGet(req, res, next) {
    conditionalGetResponse(req, res, maxBodyBytes);
    next();
  };
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
} from '../src/http/index.js';
export type { HoleBuilder, HoleHandlerOptions, HoleOptions } from '../src/http/index.js';

/**
 * The cache dashboard as middleware: `app.use('/_cache', requireStaff, cacheDashboard({ actions: true }))`.
 * Mount it behind your own authentication: it shows what is cached and, with `actions`, changes it.
 */
export function cacheDashboard(options: DashboardOptions = {}): Middleware {
  return dashboardHandler(options);
}
