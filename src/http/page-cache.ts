/**
 * The page cache (Django's `middleware/cache.py`) over Node's request and response:
 * `fetch` answers from the cache with prebuilt headers and body, `capture` stores what the view sends.
 * Concurrent misses of one page wait for one render and are handed its page, never its store; the
 * response that rendered it ends once it is stored (Django stores, then returns). The view runs in a
 * request scope, so a cache that is down costs the request one timeout, not one per call, and the
 * tags of the fragments it renders reach the stored page. Every page carries the tags `url:<path>` and `url://<host><path>`: their
 * versions, read with the header list, are what the page is stamped with, so an invalidation during a
 * render drops it too.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MaybePromise } from '../cache/base-cache.js';
import { integrationOf } from '../cache/integration.js';
import { inRequestScope } from '../cacheability/request-scope.js';
import { judgeFreshnessHere } from './conditional.js';
import { resolveCache } from './page-keys.js';
import { type PageCacheOptions, PageLayer } from './page-settings.js';
import { PageRequest } from './page-request.js';
import { captureResponse } from './page-store.js';

export { DEFAULT_LOCK_TIMEOUT_MS, PAGE_CACHE_OPTIONS, type PageCacheOptions } from './page-settings.js';
export { DEFAULT_MAX_BODY_BYTES, DEFAULT_SECONDS } from './policy.js';
export type { StoredPage } from './hit.js';
export { pageStats, resetPageStats } from './page-stats.js';

const NOTHING = (): void => undefined;

export class PageCache {
  private readonly layer: PageLayer;

  /**
   * `pageTimeout` is a route's own timeout (cachePage), which wins over the response's max-age;
   * `what` names the layer in errors (`cachePage: options.seconds must be…`).
   */
  constructor(options: PageCacheOptions, pageTimeout: number | null, what: string) {
    this.layer = new PageLayer(options, pageTimeout, what);
  }

  /**
   * Both phases, as one middleware: answers a hit, else watches the response and calls `next`.
   * `answered` is called once the cache has answered (`next` is then never called): a framework
   * that sends responses itself stands aside there (Fastify's `reply.hijack()`, Koa's `ctx.respond = false`).
   */
  handle(req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void, answered?: () => void): void {
    this.fetchOrContinue(req, res, next, true, answered);
  }

  /**
   * The request phase as middleware: answers a hit (then calls `answered`), else starts the response
   * phase (`captureOnMiss`, when this layer has both) and calls `next` in the request's scope. A hit on
   * a cache in this process is answered before this returns.
   */
  fetchOrContinue(req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void, captureOnMiss = false, answered: () => void = NOTHING): void {
    const cache = resolveCache(this.layer.cacheOption);
    // A cache on a server is read in the request's scope too, so that a lookup that waited for a
    // dead server is the request's only wait; a cache in this process cannot keep anyone waiting.
    if (integrationOf(cache).waitsOnServers) {
      inRequestScope(res, () => this.fetch(req, res).then((hit) => (hit ? answered() : this.continueAfterMiss(req, res, next, captureOnMiss)), next));
      return;
    }
    let hit: MaybePromise<boolean>;
    try {
      hit = new PageRequest(this.layer, req, res, cache).lookup();
    } catch (error) {
      next(error);
      return;
    }
    if (hit === true) answered();
    else if (hit === false) this.continueAfterMiss(req, res, next, captureOnMiss);
    else hit.then((found) => (found ? answered() : this.continueAfterMiss(req, res, next, captureOnMiss)), next);
  }

  private continueAfterMiss(req: IncomingMessage, res: ServerResponse, next: () => void, capture: boolean): void {
    // A hit answers preconditions as preconditionStatus reads them; so must a framework on a miss.
    judgeFreshnessHere(req, res);
    if (capture) this.capture(req, res);
    // In the request's scope, so that the view's cache calls share the request's budget and its fragments' tags reach the page.
    inRequestScope(res, next);
  }

  /**
   * The request phase: answers from the cache (or from a concurrent render of the same page) and
   * resolves true, or resolves false after marking a GET for the response phase.
   */
  fetch(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    try {
      return Promise.resolve(new PageRequest(this.layer, req, res, resolveCache(this.layer.cacheOption)).lookup());
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** The response phase: stores the response if the request phase asked for it and the rules allow. */
  capture(req: IncomingMessage, res: ServerResponse): void {
    captureResponse(this.layer, req, res);
  }
}
