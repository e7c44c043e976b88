/**
 * The page cache (Django's `middleware/cache.py`) over Node's request and response, in three phases
 * a request meets in this order:
 *
 * 1. **Fetch** (`fetch-from-cache.ts`, Django's `FetchFromCacheMiddleware`), before the view: the
 *    URL's keys, the header list and the path's tag versions read together, the variant's page, and
 *    the answer from it, with prebuilt headers and body: a HIT, a STALE (refreshed behind), a 304, or
 *    a HEAD answered from the GET's page. Concurrent misses of one page wait for one render and are
 *    handed its page, never its store. A miss is handed on (`page-miss.ts`), marked MISS.
 * 2. **Capture** (`capture-miss.ts`), installed before the view runs: watches the response of the
 *    miss however the view writes it, delivers its holes, and sends a stale page for a failed render.
 * 3. **Update** (`update-cache.ts`, Django's `UpdateCacheMiddleware`), from inside the capture: at the
 *    head, whether the page may be kept and the headers it goes out with (max-age, tags for the edge);
 *    at the view's end, the store. The response that rendered the page ends once it is stored
 *    (Django stores, then returns): the request its client sends next finds the page.
 *
 * The split middleware run the halves apart (update outermost, fetch innermost, as Django orders
 * them): the capture may be installed before the lookup runs, so it finds the miss in the request's
 * scope when the head goes out. A HIT runs no view and none of the middleware after the page cache,
 * and writes nothing on its request: its stored headers go on the response before `writeHead`, so
 * the layers around the page cache change it as they changed the MISS that stored it. The view runs
 * in a request scope, so a cache that is down costs the request one timeout, not one per call, and
 * the tags of the fragments it renders reach the stored page. Every page carries the tags
 * `url:<path>` and `url://<host><path>`: their versions, read with the header list, are what the
 * page is stamped with, so an invalidation during a render drops it too.
 *
 * A hit, read from where the request arrives, in six files: the framework's middleware
 * (`frameworks/express.ts`) calls `handle` here; `fetch-from-cache.ts` looks the page up (`lookUpPage`,
 * the reference, top to bottom); `url-keys.ts` gives the URL's keys and the request's variant; the
 * cache answers the header list, the path's tag versions and the page (`cache/base-cache.ts`, its
 * shared reads); and `hit.ts` sends the stored page.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BaseCache, MaybePromise } from '../cache/base-cache.js';
import { cacheForPages } from './cache-for-pages.js';
import { releaseFrameworkRequest } from '../cacheability/framework-request.js';
import { inRequestScope } from '../cacheability/request-scope.js';
import { judgeFreshnessHere } from '../headers/conditional.js';
import { type PageCacheOptions, PageLayer } from './page-settings.js';
import { captureMiss } from './capture-miss.js';
import { PageLookup } from './fetch-from-cache.js';
import { servesStreamScript } from './stream-script-file.js';

export { DEFAULT_LOCK_TIMEOUT_MS, PAGE_CACHE_OPTIONS, type PageCacheOptions } from './page-settings.js';
export { DEFAULT_SECONDS } from './policy.js';
export { DEFAULT_MAX_BODY_BYTES } from '../headers/capture.js';
export type { StoredPage } from './hit.js';
export { pageStats, resetPageStats } from './page-stats.js';

const NOTHING = (): void => undefined;

/** A hit is answered: the framework's request is let go unless something still reads it (holes to fill, a page stored around it), then the framework told. */
function hitAnswered(req: IncomingMessage, answered: () => void): void {
  releaseFrameworkRequest(req);
  answered();
}

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
   * Every phase, as one middleware: answers a hit, else captures the response and calls `next`.
   * `answered` is called once the cache has answered (`next` is then never called): a framework
   * that sends responses itself stands aside there (Fastify's `reply.hijack()`, Koa's `ctx.respond = false`).
   */
  handle(req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void, answered?: () => void): void {
    this.fetchOrContinue(req, res, next, true, answered);
  }

  /**
   * The fetch phase as middleware: answers a hit (then calls `answered`), and the holes' script under
   * `holes: 'stream'`, else captures the response
   * (`captureOnMiss`, when this layer runs every phase) and calls `next` in the request's scope. A hit
   * on a cache in this process is answered before this returns.
   */
  fetchOrContinue(req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void, captureOnMiss = false, answered: () => void = NOTHING): void {
    // The pages of a layer streaming holes load the holes' script: the layer serves it, wherever it is mounted.
    if (this.layer.holeDelivery.mode === 'stream' && servesStreamScript(req, res)) return hitAnswered(req, answered);
    let cache: BaseCache;
    try {
      cache = this.layer.meetCache();
    } catch (error) {
      next(error);
      return;
    }
    // A cache on a server is read in the request's scope too, so that a lookup that waited for a
    // dead server is the request's only wait; a cache in this process cannot keep anyone waiting.
    if (cacheForPages(cache).waitsOnServers) {
      inRequestScope(res, () =>
        this.fetch(req, res).then((hit) => (hit ? hitAnswered(req, answered) : this.continueAfterMiss(req, res, next, captureOnMiss)), next),
      );
      return;
    }
    let hit: MaybePromise<boolean>;
    try {
      hit = new PageLookup(this.layer, req, res, cache).run();
    } catch (error) {
      next(error);
      return;
    }
    if (hit === true) hitAnswered(req, answered);
    else if (hit === false) this.continueAfterMiss(req, res, next, captureOnMiss);
    else hit.then((found) => (found ? hitAnswered(req, answered) : this.continueAfterMiss(req, res, next, captureOnMiss)), next);
  }

  private continueAfterMiss(req: IncomingMessage, res: ServerResponse, next: () => void, capture: boolean): void {
    // A hit answers preconditions as preconditionStatus reads them; so must a framework on a miss.
    judgeFreshnessHere(req, res);
    if (capture) captureMiss(this.layer, req, res);
    // In the request's scope, so that the view's cache calls share the request's budget and its fragments' tags reach the page.
    inRequestScope(res, next);
  }

  /**
   * The fetch phase: answers from the cache (or from a concurrent render of the same page) and
   * resolves true, or resolves false after handing the miss to the capture phase.
   */
  fetch(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    try {
      return Promise.resolve(new PageLookup(this.layer, req, res, this.layer.meetCache()).run());
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** The capture and update phases: store the response if the fetch phase missed and the rules allow. Throws what `meetCache` refuses. */
  capture(req: IncomingMessage, res: ServerResponse): void {
    this.layer.meetCache();
    captureMiss(this.layer, req, res);
  }
}
