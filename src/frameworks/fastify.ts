/**
 * cachegrain/fastify: the page cache and Django's view decorators for Fastify, as a plugin and as
 * hooks. Glue only: the logic is in `src/pages/` and `src/headers/`, over Node's request and response (`request.raw`,
 * `reply.raw`). A hit is written there and Fastify stands aside (`reply.hijack()`); a miss goes on
 * through Fastify, its response watched as Fastify writes it and stored when the rules allow.
 *
 *   await app.register(cachegrain, { seconds: 600 });                   // every route
 *   app.get('/news', { config: { cachePage: 60 } }, handler);           // one route, 60 s
 */
// Node's types (Buffer, node:http, node:diagnostics_channel…) appear in these declarations: a consumer need not name them in `types`.
/// <reference types="node" preserve="true" />
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyPluginCallback, FastifyReply, FastifyRequest, HookHandlerDoneFunction, RouteOptions } from 'fastify';
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
import { CACHE_PAGE_OPTIONS, PAGE_CACHE_OPTIONS } from '../pages/page-settings.js';
import { checkOptions, checkValue, MUST_BE } from '../options/option-rules.js';
import { describe } from '../errors/errors.js';
import { caches } from '../config/cache-registry.js';
import { REGISTER_OPTIONS } from './fastify-dashboard.js';

/** An `onRequest` hook, as Fastify calls it. */
export type Hook = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void;

/** A route's own page cache, as its config names it: seconds, or seconds and the options of `cachePage`. */
export type CachePageConfig = number | ({ seconds: number } & Omit<PageCacheOptions, 'seconds'>);

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Caches the route's pages for this many seconds, whatever max-age the response names (Django's `cache_page`). */
    cachePage?: CachePageConfig;
  }
}

/** Options of the plugin: the site-wide cache's, and whether there is one. */
export interface CachegrainPluginOptions extends PageCacheOptions {
  /** Caches the GET responses of every route (Django's per-site cache); `false` caches only the routes whose config names `cachePage`. @default true */
  site?: boolean;
  /**
   * Closes the configured caches (`caches.closeAll()`) when the app closes, so that a process that
   * closes its app ends by itself; give `false` when something that outlives the app shares them
   * (another app in the process, a worker's own code). @default true
   */
  closeCaches?: boolean;
}

export type { CacheControlDirectives, ConditionalGetOptions, HoleHandlerOptions, PageCacheOptions } from '../http/index.js';

/** Names the route pattern of a request on its way through (`/items/:id`), by which its pages are counted. */
function nameFastifyRoute(request: FastifyRequest, reply: FastifyReply): void {
  const route = request.routeOptions.url;
  nameRoute(reply.raw, () => route);
}

/**
 * Node's request of a Fastify request, tied to it: cache contexts and holes get Fastify's request,
 * where `@fastify/cookie`, `@fastify/session` and authentication put the visitor.
 */
function nodeRequest(request: FastifyRequest): IncomingMessage {
  tieFrameworkRequest(request.raw, request);
  return request.raw;
}

/** The hook of a page-cache layer: a hit is answered and Fastify stands aside; a miss goes on, in the request's scope. */
function pageHook(pages: PageCache, name: string): Hook {
  return Object.defineProperty(
    (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
      pages.handle(
        nodeRequest(request),
        reply.raw,
        (error) => {
          nameFastifyRoute(request, reply);
          done(error as Error | undefined);
        },
        () => reply.hijack(),
      );
    },
    'name',
    { value: name },
  );
}

/** The per-site cache as a hook: `app.addHook('onRequest', cacheMiddleware({ seconds: 600 }))`. */
export function cacheMiddleware(options: PageCacheOptions = {}): Hook {
  return pageHook(new PageCache(options, null, 'cacheMiddleware'), 'cacheMiddleware');
}

/** Caches one route for `timeout` seconds, whatever max-age the response names: `app.get(path, { onRequest: cachePage(60) }, handler)`. */
export function cachePage(timeout: number, options: Omit<PageCacheOptions, 'seconds'> = {}): Hook {
  return pageHook(new PageCache(options, timeout, 'cachePage'), 'cachePage');
}

/** The response half of the split per-site cache: the first `onRequest` hook, `fetchFromCacheMiddleware` the last. */
export function updateCacheMiddleware(options: PageCacheOptions = {}): Hook {
  const pages = new PageCache(options, null, 'updateCacheMiddleware');
  return function updateCacheMiddleware(request, reply, done) {
    pages.capture(nodeRequest(request), reply.raw);
    nameFastifyRoute(request, reply);
    done();
  };
}

/** The request half of the split per-site cache: answers hits, marks misses for `updateCacheMiddleware`. */
export function fetchFromCacheMiddleware(options: PageCacheOptions = {}): Hook {
  const pages = new PageCache(options, null, 'fetchFromCacheMiddleware');
  return function fetchFromCacheMiddleware(request, reply, done) {
    pages.fetchOrContinue(nodeRequest(request), reply.raw, done as (error?: unknown) => void, false, () => reply.hijack());
  };
}

/** A decorator's change as a hook. */
const asHook = (decorate: ResponseDecorator, name: string): Hook =>
  Object.defineProperty(
    (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
      decorate(request.raw, reply.raw);
      done();
    },
    'name',
    { value: name },
  );

/** Merges Cache-Control directives into the response (`{ maxAge: 60, public: true }`). */
export const cacheControl = (directives: CacheControlDirectives): Hook => asHook(cacheControlDecorator(directives), 'cacheControl');
/** Marks the response as never to be cached by anyone. */
export const neverCache: Hook = asHook(neverCacheDecorator, 'neverCache');
/** Adds header names to the response's Vary. */
export const varyOnHeaders = (...names: string[]): Hook => asHook(varyOnHeadersDecorator(names), 'varyOnHeaders');
/** Adds `Cookie` to the response's Vary. */
export const varyOnCookie: Hook = asHook(varyOnCookieDecorator, 'varyOnCookie');
/** Gives GET responses a strong ETag and answers 304/412 to conditional requests. */
export const conditionalGet = (options: ConditionalGetOptions = {}): Hook => asHook(conditionalGetDecorator(options), 'conditionalGet');

/** Answers the signed hole URLs of pages cached with `holes: 'esi'`: `app.addHook('onRequest', holeHandler({ secret }))`. */
export function holeHandler(options: HoleHandlerOptions = {}): Hook {
  const handler = connectHoleHandler(options);
  return function holeHandler(request, reply, done) {
    passesOn(handler, nodeRequest(request), reply.raw).then(
      (passed) => (passed ? done() : reply.hijack()),
      (error: Error) => done(error),
    );
  };
}

/** The plugin's options: the site-wide cache's, and its own. */
const PLUGIN_OPTIONS = { ...PAGE_CACHE_OPTIONS, site: MUST_BE.boolean, closeCaches: MUST_BE.boolean };

/** The names a route's `cachePage` config object takes: its seconds, named as the plugin names them, and `cachePage`'s options. */
const ROUTE_CACHE_PAGE_OPTIONS = { seconds: MUST_BE.seconds, ...CACHE_PAGE_OPTIONS };

/** A route's `cachePage` config as a hook, checked as the route is declared. */
function routeHook(config: CachePageConfig, route: RouteOptions): Hook {
  const where = `cachePage of ${String(route.method)} ${route.url}`;
  if (typeof config === 'number') {
    checkValue(config, MUST_BE.seconds, where, 'seconds');
    return cachePage(config);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new TypeError(`${where}: give the seconds to cache its pages, or { seconds, ...options } (got ${describe(config)})`);
  }
  // `timeout` is `cachePage`'s argument, but no name the plugin takes: the one name for the seconds is `seconds`.
  if (Object.hasOwn(config, 'timeout')) throw new TypeError(`${where}: unknown option 'timeout' (did you mean 'seconds'?), as the plugin names it`);
  // Checked as one object, so that misspelt seconds are named as such rather than missing.
  checkOptions(config, ROUTE_CACHE_PAGE_OPTIONS, where, '');
  const { seconds, ...options } = config;
  if (seconds === undefined) throw new TypeError(`${where}: seconds are missing: give the seconds to cache its pages, { seconds, ...options }`);
  return cachePage(seconds, options);
}

/**
 * The plugin: the site-wide cache (unless `site: false`) in front of every route, and the page cache
 * of each route whose config names `cachePage`. Register it before the routes it serves.
 */
export const cachegrain: FastifyPluginCallback<CachegrainPluginOptions> = (fastify, options, done) => {
  // A callback plugin hands its error to done: thrown, it would escape Fastify's boot.
  try {
    const { site = true, closeCaches = true, ...given } = options;
    const pageOptions = Object.fromEntries(Object.entries(given).filter(([name]) => !REGISTER_OPTIONS.includes(name))) as PageCacheOptions;
    checkOptions({ ...pageOptions, site, closeCaches }, PLUGIN_OPTIONS, 'cachegrain');
    if (site) fastify.addHook('onRequest', pageHook(new PageCache(pageOptions, null, 'cachegrain'), 'cachegrain'));
    // The caches' connections would keep the process alive after the app is gone.
    if (closeCaches) fastify.addHook('onClose', () => caches.closeAll());
  } catch (error) {
    done(error as Error);
    return;
  }
  fastify.addHook('onRoute', (route) => {
    const config = route.config?.cachePage;
    if (config === undefined) return;
    const own = route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest];
    // First of the route's hooks: a hit runs none of them, as it runs no handler.
    route.onRequest = [routeHook(config, route), ...own] as RouteOptions['onRequest'];
  });
  done();
};
// Hooks and route declarations of the plugin reach the whole app, as fastify-plugin would make them.
Object.assign(cachegrain, { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: 'cachegrain' });
export default cachegrain;

/** Node's response of a Fastify reply. */
const nodeResponse = (reply: FastifyReply | ServerResponse): ServerResponse =>
  typeof reply === 'object' && reply !== null && 'raw' in reply ? reply.raw : reply;

/** Adds tags to the page being rendered for `reply` (or Node's response): `invalidateTags` of any of them drops it. */
export const addCacheTags = (reply: FastifyReply | ServerResponse, ...tags: string[]): void => addPageTags(nodeResponse(reply), ...tags);

/** Adds cache contexts to the page being rendered for `reply` (or Node's response): one page is stored per value of them. */
export const addCacheContexts = (reply: FastifyReply | ServerResponse, ...contexts: string[]): void => addPageContexts(nodeResponse(reply), ...contexts);

/** Makes the page being rendered for `reply` (or Node's response) uncacheable, saying why. */
export const markUncacheable = (reply: FastifyReply | ServerResponse, why: string): void => markPageUncacheable(nodeResponse(reply), why);

/**
 * Names a hole: `builder(request, ...args)` makes its HTML on every render of a page that holds it,
 * hit or miss, from Fastify's request (`request.cookies`, `request.session`, `request.user`).
 */
export const defineHole: DefineHole<FastifyRequest> = defineAnyHole;

/** Names an application's cache context: `fn(request)` answers its value from Fastify's request (`request.cookies`, `request.user`). */
export const defineCacheContext: DefineCacheContext<FastifyRequest> = defineAnyCacheContext;

export { cacheScope, getCacheKey, invalidatePage, learnCacheKey, pageStats, resetPageStats } from '../http/index.js';
export type { HoleBuilder, HoleOptions } from '../http/index.js';
export { cacheDashboard } from './fastify-dashboard.js';
export type { DashboardOptions } from '../http/index.js';
