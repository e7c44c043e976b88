/**
 * What the page cache, the fragments and the parts of the cache itself reach in a cache beyond the
 * API README documents: reads shared among readers that never mutate them, the key as the cache
 * stores it, whether its calls wait on a server, and its flights and refreshes. Reached through `integrationOf(cache)`, under a key the package does not export,
 * so that `cache.` offers an application the documented API only.
 */
import type { Flights, Refreshes } from '../flight/index.js';
import type { CacheKey } from '../common/cache-keys.js';
import type { MaybePromise } from '../common/maybe-promise.js';
import type { RenderEntry, TagSnapshot } from '../common/cache-types.js';

export const INTEGRATION: unique symbol = Symbol('cachegrain.integration');

export interface CacheIntegration {
  /**
   * A read for callers that never mutate what they read (the page cache's stored responses): readers
   * of one entry of a store in this process share one decoded value, answered synchronously (no turn
   * of the event loop); a store elsewhere answers with a promise. Fresh entries only.
   */
  readShared<T = unknown>(key: CacheKey): MaybePromise<T | undefined>;
  /**
   * `readShared` for an entry that may be stale: its shared value, its tags and how it stands. Tags
   * found in `known` (read in the same lookup) are not read again.
   */
  readSharedEntry<T = unknown>(key: CacheKey, known?: TagSnapshot): MaybePromise<RenderEntry<T> | undefined>;
  /**
   * The key as this cache stores it (prefix, version, key function), checked as every read and write
   * checks it: for a caller that looks the same key up again and again and keeps what this answers.
   */
  storedKey(key: CacheKey): string;
  /**
   * Whether its calls wait on a server, each under a deadline that the request's budget cuts: the page
   * cache looks such a cache up in the request's scope, so that a lookup that waited for a dead server
   * is the request's only wait. A cache in this process keeps no one waiting.
   */
  readonly waitsOnServers: boolean;
  /** Work in flight on this cache in this process, at every level (getOrSet, fragments, pages): one per key. */
  readonly flights: Flights;
  /** Stale entries of this cache being computed again behind their callers, at every level. */
  readonly refreshes: Refreshes;
}

/** What the page cache and the fragments reach in `cache` beyond its documented API. */
export function integrationOf(cache: { readonly [INTEGRATION]: CacheIntegration }): CacheIntegration {
  return cache[INTEGRATION];
}
