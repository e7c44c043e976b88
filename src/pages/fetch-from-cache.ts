/**
 * The fetch phase (Django's `FetchFromCacheMiddleware`): one request's lookup in one page-cache
 * layer, as one object carrying the URL's keys, the tag versions read with them, the variant and a
 * fallback page. The reference lookup (`lookUpPage`) reads top to bottom: the refresh token, the
 * header list and the path's tag versions, the variant's page, then the answer (a HIT, a STALE with
 * its refresh behind, a 304 or a HEAD, sent by `sendStoredPage`) or the miss. Beside it, `lookUpAtOnce` takes
 * the same steps on a cache wholly in this process, with no promise between them, so that a hit
 * there is sent within the request's own event. A miss renders once per page in the process (a
 * `Flight` of the cache's, led by the request) and, under `lock`, once across processes; it is
 * handed to the response phase as a `PageMiss`.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { BaseCache, CachedEntry, MaybePromise, TagSnapshot } from '../cache/base-cache.js';
import { type Locks, lockOrWait, type Release } from '../flight/index.js';
import { openedScope, ScopeSlot, scopeOf } from '../cacheability/request-scope.js';
import { templatesUnchanged } from '../digests/index.js';
import { cacheForPages } from './cache-for-pages.js';
import { type HitLabel, sendStoredPage, type StoredPage } from './hit.js';
import { absoluteUrl, EMPTY_MD5, type LearnedHeaders, pageKeyFor, requestPath, variantHash, variesOnNothing } from './page-keys.js';
import { countOnce, routeOf } from './page-stats.js';
import { traced, tracing } from '../observation/observation.js';
import type { PageLayer } from './page-settings.js';
import type { UrlKeys } from './url-keys.js';
import { type PageFlight, PageMiss, type RenderedPage } from './page-miss.js';
import { carriesRefreshHeader, refreshBehind, refreshTokenKey } from './page-refresh.js';
import { reportPageFailure } from './page-failures.js';
import { SeenAtLookup } from './seen-at-lookup.js';
import { TagsAhead } from './tags-ahead.js';
import { requestRefusal } from './policy.js';

export class PageLookup {
  /** Whether the request is a refresh this cache (or a process sharing it) asked for: it renders whatever is stored. */
  private isRefresh = false;
  private keys!: UrlKeys;
  /** The versions of the page's `url:` tags and the cache's generation, read before the render (see `MissedLookup`). */
  private snapshot!: TagSnapshot;
  /** The hash of the request's values of the headers its URL's pages vary on; `?` while they are not known. */
  private variant = '?';
  /** The key of the variant's page, once its variant is known. */
  private pageKey = '';
  /** The page's identity among renders: key prefix, URL hash and variant. */
  private renderKey = '';
  /** A page past its stale window but inside `staleIfError`: sent instead of a failed render. */
  private fallback: StoredPage | undefined;
  /** The cross-process render lock (`lock`), once this request took it. */
  private renderLock: Release | undefined;
  /** The contexts the URL's pages were known to vary on at lookup. */
  private learnedContexts: readonly string[] = [];
  /** The URL's header list as the lookup read it (undefined: none), for the store of the page it misses (see `MissedLookup`). */
  private learnedList: LearnedHeaders | undefined;
  /** Whether `learnedList` is still the list to store by: not after a wait on the render lock. */
  private listCurrent = false;
  /** The page the lookup served (its route is the one it was stored under): undefined while it served none. */
  private found: StoredPage | undefined;
  /** How it served `found`. */
  private foundAs: HitLabel = 'HIT';
  /**
   * The request's method and headers, read once: a framework that re-prototypes its requests
   * (Express) gives each one a shape of its own, on which every read of a property misses V8's caches.
   */
  readonly method: string;
  readonly headers: IncomingHttpHeaders;

  constructor(
    readonly layer: PageLayer,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly cache: BaseCache,
  ) {
    this.method = req.method ?? 'GET';
    this.headers = req.headers;
  }

  /**
   * Answers from the cache (or from a concurrent render of the same page): true once the response is
   * sent. Else false, after handing the miss to the capture phase (see `PageMiss`). A cache wholly
   * in this process is looked up at once (`lookUpAtOnce`), any other by the reference (`lookUpPage`).
   */
  run(): MaybePromise<boolean> {
    const refused = requestRefusal(this.req, this.layer.requestPolicies);
    if (refused !== undefined) {
      countOnce(this, 'bypass', routeOf(this.req, this.res));
      return this.layer.markBypass(this.res, refused);
    }
    const atOnce = cacheForPages(this.cache).answersAtOnce;
    const tracer = tracing.tracer;
    if (tracer === undefined) return atOnce ? this.lookUpAtOnce() : this.lookUpPage();
    const span = tracer.pageLookup(this.cache.alias, this.method);
    return traced(
      span,
      () => (atOnce ? this.lookUpAtOnce() : this.lookUpPage()),
      () => {
        if (this.found !== undefined) span.route(this.found.route ?? requestPath(this.req));
        return this.found === undefined || this.foundAs === 'MISS' ? 'miss' : this.foundAs === 'HIT' ? 'hit' : 'stale';
      },
    );
  }

  /**
   * The reference lookup, read top to bottom (Django's `process_request`): a refresh this cache
   * asked for renders whatever is stored; the URL's header list and its path's tag versions are read
   * together (one round trip, one timeout at most); with no header list the URL has no page yet; the
   * request's variant names the page, which is served fresh (HIT) or stale (STALE, refreshed
   * behind), else rendered (see `answer`).
   */
  private async lookUpPage(): Promise<boolean> {
    const shared = cacheForPages(this.cache);
    const tokenKey = refreshTokenKey(this.headers);
    if (tokenKey !== undefined) this.isRefresh = (await this.read(shared.readShared<boolean>, tokenKey)) === true;
    const keys = (this.keys = this.layer.urls.keysOf(this.req, this.headers));
    const [learned, snapshot] = await Promise.all([this.read(shared.readShared<LearnedHeaders>, keys.headerKey), this.cache.readTagSnapshot(keys.urlTags)]);
    const pageKey = this.pageKeyOf(learned, snapshot);
    if (pageKey === undefined) return this.joinOrLead();
    return this.answer(await this.read(shared.readSharedEntry<StoredPage>, pageKey, snapshot));
  }

  /**
   * The reference lookup's steps on a cache wholly in this process, whose every read answers at once
   * (`answersAtOnce`): the same reads in the same order, with no promise between them, so that a hit
   * is sent within the request's own event. It answers what the reference answers (the page cache's
   * cases run on both: test/http/page-cache.test.ts).
   */
  private lookUpAtOnce(): MaybePromise<boolean> {
    const shared = cacheForPages(this.cache);
    const tokenKey = refreshTokenKey(this.headers);
    if (tokenKey !== undefined) this.isRefresh = this.atOnce(this.read(shared.readShared<boolean>, tokenKey)) === true;
    const keys = (this.keys = this.layer.urls.keysOf(this.req, this.headers));
    const learned = this.atOnce(this.read(shared.readShared<LearnedHeaders>, keys.headerKey));
    const snapshot = this.atOnce(this.cache.readTagSnapshot(keys.urlTags));
    const pageKey = this.pageKeyOf(learned, snapshot);
    if (pageKey === undefined) return this.joinOrLead();
    return this.answer(this.atOnce(this.read(shared.readSharedEntry<StoredPage>, pageKey, snapshot)));
  }

  /** A read's answer on a cache that answers at once: a promise there breaks the store's word (`answersAtOnce`). */
  private atOnce<T>(answer: MaybePromise<T>): T {
    if (answer instanceof Promise) throw new Error(`cache '${this.cache.alias}': a store that answers at once answered a read of a page later`);
    return answer;
  }

  /** One of the lookup's reads of its cache, `read(key, known)`, traced as a `get` of it when a tracer is plugged in. */
  private read<T>(read: (key: string, known?: TagSnapshot) => MaybePromise<T | undefined>, key: string, known?: TagSnapshot): MaybePromise<T | undefined> {
    const tracer = tracing.tracer;
    if (tracer === undefined) return read(key, known);
    return traced(
      tracer.operation('get', this.cache.alias),
      () => read(key, known),
      (found) => (found === undefined ? 'miss' : (found as Partial<CachedEntry<unknown>>).state === 'stale' ? 'stale' : 'hit'),
    );
  }

  /**
   * The key of the request's page from its URL's header list (`learned`) and its path's tag versions,
   * kept for the render; undefined where the page is rendered whatever is stored: no header list (no
   * page of the URL yet), or a refresh. (A path whose tag was never invalidated has no version, and
   * may well have pages.)
   */
  private pageKeyOf(learned: LearnedHeaders | undefined, snapshot: TagSnapshot): string | undefined {
    this.snapshot = snapshot;
    this.learnedList = learned;
    this.listCurrent = true;
    if (learned === undefined) return undefined;
    this.learnedContexts = learned.contexts ?? [];
    const variant = variesOnNothing(learned) ? undefined : this.keys.variants.of(this.req, learned);
    this.variant = variant === undefined ? EMPTY_MD5 : variant.hash;
    if (this.isRefresh) return undefined;
    return (this.pageKey = variant === undefined ? this.keys.unvariedPageKey : variant.pageKey);
  }

  /** Serves the page found for the variant, or goes on to render it (also when its templates changed since it was stored). */
  private answer(entry: CachedEntry<StoredPage> | undefined): MaybePromise<boolean> {
    if (entry === undefined || !templatesUnchanged(entry.value)) return this.joinOrLead();
    if (entry.state === 'fresh') return this.answerWith(entry.value, 'HIT');
    if (entry.state === 'stale') {
      this.answerWith(entry.value, 'STALE');
      if (!carriesRefreshHeader(this.req)) refreshBehind(this.cache, this.req, this.pageKey);
      return true;
    }
    // Past its stale window: rendered afresh, and sent instead of a render that fails.
    this.fallback = entry.value;
    return this.joinOrLead();
  }

  /** Sends `page`, found as `label` says, for this request: the lookup is answered. */
  private answerWith(page: StoredPage, label: HitLabel): true {
    this.found = page;
    this.foundAs = label;
    sendStoredPage(this, this.layer.representationOf(page, this.req, this.res, this.headers), label);
    return true;
  }

  /**
   * A miss: waits for a concurrent render of the same variant and serves its page, or leads the
   * render of it. HEAD is answered from the GET entry only: a miss runs the view, is judged as its
   * GET would be (the same headers, BYPASS and its reason), and stores nothing.
   */
  private joinOrLead(): MaybePromise<boolean> {
    if (this.method !== 'GET') {
      this.handOver(false, undefined);
      return false;
    }
    this.renderKey = `${this.layer.keyPrefix}\u0000${this.keys.urlHash}\u0000${this.variant}`;
    // Only a render that began as of every invalidation this lookup read of is shared (see `Flight.answers`).
    const running = cacheForPages(this.cache).flights.find<RenderedPage | undefined>('page', this.renderKey, this.snapshot.generation);
    // A request never waits on its own render (a site cache in front of a route's cache).
    if (running !== undefined && running.leader !== this.req) return running.outcome.then((rendered) => this.answerWithRender(rendered));
    if (this.layer.lock && running === undefined && !this.isRefresh) return this.leadUnderLock();
    return this.lead();
  }

  /**
   * Serves another request's render if it is this request's variant, as a MISS: the page came from
   * that render, not from the cache. Else renders.
   */
  private answerWithRender(rendered: RenderedPage | undefined): boolean {
    const page = rendered !== undefined && variantHash(this.req, rendered.varies) === rendered.variant ? rendered.page : undefined;
    if (page === undefined) return this.lead();
    this.layer.explain(this.res, 'the page of a concurrent render of this URL');
    return this.answerWith(page, 'MISS');
  }

  /**
   * `lock`: leads the render when this process takes the page's render lock; else waits for the
   * holder's page and serves it, or renders itself when the lock is let go without one, or after
   * `lockTimeoutMs`.
   */
  private async leadUnderLock(): Promise<boolean> {
    // The lookup that missed may have come before another process stored the page and let go of the lock.
    const waited = await lockOrWait(this.reportingLocks(), `render:${this.renderKey}`, this.layer.lockTimeoutMs, () => this.storedPage());
    // Another process may have learned the URL's list meanwhile: the store reads it again.
    this.listCurrent = false;
    if (waited.is === 'found') return this.answerWith(waited.value, 'HIT');
    if (waited.is === 'held') this.renderLock = waited.release;
    return this.lead();
  }

  /** The cache's locks, each release reporting its own failure: the page goes out whether or not its lock lets go. */
  private reportingLocks(): Locks {
    const { cache } = this;
    const failed = (error: unknown) => reportPageFailure(cache, `releasing the render lock of ${absoluteUrl(this.req)} failed`, error);
    return {
      async acquireLock(name, seconds) {
        const release = await cache.acquireLock(name, seconds);
        return release && (() => release().catch(failed));
      },
    };
  }

  /** The fresh stored page for the request, if there is one now. */
  private async storedPage(): Promise<StoredPage | undefined> {
    const learned = await cacheForPages(this.cache).readShared<LearnedHeaders>(this.keys.headerKey);
    if (learned === undefined) return undefined;
    const pageKey = pageKeyFor(this.layer.keyPrefix, 'GET', this.keys.urlHash, variantHash(this.req, learned));
    const entry = await cacheForPages(this.cache).readSharedEntry<StoredPage>(pageKey);
    return entry?.state === 'fresh' && templatesUnchanged(entry.value) ? entry.value : undefined;
  }

  /**
   * Leads the render unless someone else leads it now, and hands the miss to the response phase. On
   * a server, what the page's store will do with its tags' versions is done while the view renders
   * (see `TagsAhead`), for a page kept as long as the layer keeps pages: the store then only writes.
   */
  private lead(): false {
    const pages = cacheForPages(this.cache);
    const generation = this.snapshot.generation;
    const flight =
      pages.flights.find('page', this.renderKey, generation) === undefined
        ? pages.flights.lead<RenderedPage | undefined>('page', this.renderKey, this.req, generation)
        : undefined;
    const tagsAhead = pages.waitsOnServers ? new TagsAhead(this.cache, this.snapshot, this.layer.storedExpiryFrom(this.cache.now())) : undefined;
    if (tagsAhead !== undefined) scopeOf(this.res).cacheability.watch(tagsAhead);
    const miss = this.handOver(true, flight, tagsAhead);
    this.res.once('close', () => miss.ended());
    return false;
  }

  /**
   * Hands the miss to the response phase of the layers storing where this one does, and marks it.
   * `stores`: false for HEAD, which stores nothing (nor falls back on a stale page).
   */
  private handOver(stores: boolean, flight: PageFlight | undefined, tagsAhead?: TagsAhead): PageMiss {
    const miss = PageMiss.handOver({
      layer: this.layer,
      req: this.req,
      res: this.res,
      cache: this.cache,
      urlTags: this.keys.urlTags,
      snapshot: this.snapshot,
      headerList: this.listCurrent ? { key: this.keys.headerKey, learned: this.learnedList } : undefined,
      tagsAhead,
      fallback: stores ? this.fallback : undefined,
      stores,
      seen: stores ? SeenAtLookup.take(this.req, this.learnedContexts) : undefined,
      flight,
      renderLock: this.renderLock,
    });
    this.layer.markMiss(this.res);
    return miss;
  }
}
