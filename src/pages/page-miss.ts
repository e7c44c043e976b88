/**
 * A lookup that missed, as the fetch phase hands it to the capture and update phases of the same
 * response: what storing the page needs from the lookup (the cache, the URL's tags and their
 * versions read before the render, a fallback page), and the render it leads, settled once. The
 * split middleware are two objects that meet only in the request, so the miss waits in the request's
 * scope, one per store, for the response phase to find it.
 */
import { cacheForPages } from './cache-for-pages.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BaseCache, TagSnapshot } from '../cache/base-cache.js';
import type { Flight, Release } from '../flight/index.js';
import { keepScopeFor, openedScope, ScopeSlot, scopeOf } from '../cacheability/request-scope.js';
import { RENDER_GENERATIONS } from '../fragments/index.js';
import type { StoredPage } from './hit.js';
import type { PageLayer } from './page-settings.js';
import type { SeenAtLookup } from './seen-at-lookup.js';
import type { HeaderListRead } from './page-keys.js';
import type { TagsAhead } from './tags-ahead.js';
import type { MaybePromise } from '../store/maybe-promise.js';

/** A page as the leading render sent it, with what a waiter needs to tell whether it is its variant. */
export interface RenderedPage {
  page: StoredPage;
  /** The request headers and contexts the page varies on, and the leader's hash of its values of them. */
  varies: { headers: readonly string[]; contexts?: readonly string[] };
  variant: string;
}

/** A page render: it lands with the page, or with undefined when it ended without one others may share. */
export type PageFlight = Flight<RenderedPage | undefined>;

/** What the lookup found out before it missed, and the render it leads. */
export interface MissedLookup {
  layer: PageLayer;
  req: IncomingMessage;
  res: ServerResponse;
  cache: BaseCache;
  /** The `url:` tags every page of the request's URL carries. */
  urlTags: readonly string[];
  /**
   * The versions of the page's `url:` tags and the cache's generation, read before the render: the
   * page is stored stamped with them, and not stored if a tag it carries was invalidated since.
   */
  snapshot: TagSnapshot;
  /** The URL's header list as the lookup read it, for its store; undefined when the store must read it again. */
  headerList: HeaderListRead | undefined;
  /** What the store will do with tag versions, done while the view renders, on a cache whose calls wait on a server. */
  tagsAhead: TagsAhead | undefined;
  /** A page past its stale window but inside `staleIfError`: sent instead of a failed render. */
  fallback: StoredPage | undefined;
  /** False for HEAD: its response gets the headers its GET would get, and nothing is stored. */
  stores: boolean;
  /** What the lookup saw of the request, for a render it hands over: compared when its page is stored. */
  seen: SeenAtLookup | undefined;
  /** The render this request leads, if it leads one. */
  flight: PageFlight | undefined;
  /** The cross-process render lock (`lock`), held until the page is stored or will not be. */
  renderLock: Release | undefined;
}

/**
 * The misses of a request's page-cache lookups, one per store (cache and key prefix): a layer's
 * capture and update phases find what its fetch phase handed over here, as the split middleware are
 * two objects that meet only in the request.
 */
const PAGE_MISSES = new ScopeSlot<PageMiss[]>(() => []);

export class PageMiss {
  readonly layer: PageLayer;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly cache: BaseCache;
  readonly urlTags: readonly string[];
  readonly snapshot: TagSnapshot;
  readonly headerList: HeaderListRead | undefined;
  private readonly tagsAhead: TagsAhead | undefined;
  readonly fallback: StoredPage | undefined;
  readonly stores: boolean;
  private readonly seen: SeenAtLookup | undefined;
  private readonly flight: PageFlight | undefined;
  private renderLock: Release | undefined;
  /** The store of the page this request rendered, once it began. */
  private storing: Promise<void> | undefined;

  /** The request's method, as the page statistics count it (see `LookedUp`). */
  get method(): string {
    return this.req.method ?? 'GET';
  }

  /**
   * Hands `lookup` to the response phase of the layers storing where its layer does (replacing the
   * miss of a layer further out that stores there too), and keeps the cache's generation read at
   * lookup, before the view runs: a hit renders nothing, so only a miss's scope holds it.
   */
  static handOver(lookup: MissedLookup): PageMiss {
    const miss = new PageMiss(lookup);
    const scope = scopeOf(lookup.res);
    const generation = lookup.snapshot.generation;
    const generations = scope.get(RENDER_GENERATIONS);
    if (generation !== undefined && !generations.has(lookup.cache)) generations.set(lookup.cache, generation);
    const misses = scope.get(PAGE_MISSES);
    const same = misses.findIndex((other) => other.layer.storesWith(lookup.layer));
    if (same === -1) misses.push(miss);
    else misses[same] = miss;
    return miss;
  }

  /** The miss of `layer`'s store for the request `res` answers, if its lookup missed. */
  static of(res: ServerResponse, layer: PageLayer): PageMiss | undefined {
    return openedScope(res)
      ?.get(PAGE_MISSES)
      .find((miss) => miss.layer.storesWith(layer));
  }

  private constructor(lookup: MissedLookup) {
    this.layer = lookup.layer;
    this.req = lookup.req;
    this.res = lookup.res;
    this.cache = lookup.cache;
    this.urlTags = lookup.urlTags;
    this.snapshot = lookup.snapshot;
    this.headerList = lookup.headerList;
    this.tagsAhead = lookup.tagsAhead;
    this.fallback = lookup.fallback;
    this.stores = lookup.stores;
    this.seen = lookup.seen;
    this.flight = lookup.flight;
    this.renderLock = lookup.renderLock;
  }

  /**
   * The tag versions to stamp the page with, once what was done with them while the view rendered is
   * (see `TagsAhead`): the store sends nothing before.
   */
  tagsAsOf(): MaybePromise<TagSnapshot> {
    return this.tagsAhead?.asOf() ?? this.snapshot;
  }

  /**
   * Whether the page rendered for the request, varying on `contexts` and holding holes or not, may
   * be stored: it read nothing that middleware after the lookup set (see `SeenAtLookup`).
   */
  mayStore(contexts: readonly string[], holes: boolean): boolean {
    return this.seen?.mayStore(this.layer, this.req, contexts, holes) ?? true;
  }

  /** Ends the render this request leads, with its page (shared with those waiting) or without one. */
  settle(rendered?: RenderedPage): void {
    this.flight?.land(rendered);
  }

  /**
   * The page this request rendered is being stored: its render lock is let go once it is, the cache's
   * `settled()` waits for it, and the request's scope is kept for it (the store reads the render's tags there).
   */
  storingWith(store: Promise<void>): void {
    this.storing = store;
    cacheForPages(this.cache).behind.add(store);
    keepScopeFor(this.res, store);
  }

  /**
   * The response closed, however it ended: the render settles (if nothing settled it sooner), and the
   * render lock is let go, once the page is stored when it is being stored.
   */
  ended(): void {
    this.settle();
    const release = this.renderLock;
    if (release === undefined) return;
    this.renderLock = undefined;
    if (this.storing === undefined) void release();
    else void this.storing.finally(release);
  }
}
