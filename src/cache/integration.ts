/**
 * What the page cache, the fragments, the dashboard, `cachegrain inspect` and the parts of the cache
 * itself reach in a cache beyond the API the manual documents: reads shared among readers that never
 * mutate them and hits held from memory, the key as the cache stores it, how the store holds an
 * entry, how its calls and writes land, its invalidation listeners and counts, and its flights,
 * refreshes and work behind. Reached through `integrationOf(cache)`, under a key the package does
 * not export, so that `cache.` offers an application the documented API only.
 */
import type { Flights, Refreshes, WorkBehind } from '../flight/index.js';
import type { CacheKey } from '../keys/cache-keys.js';
import type { HeldString } from '../store/in-process-contract.js';
import type { MaybePromise } from '../store/maybe-promise.js';
import type { CacheStats } from '../observation/observation.js';
import type { CachedEntry, RenderEntry, StoredEntry, TagSnapshot, TimeoutArg, VersionOption } from '../store/cache-types.js';
import type { InvalidationListener } from './invalidation-listeners.js';

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
   * Does now what a write stamped as of `snapshot` (`tagsAsOf`) would do with the snapshot's tag
   * versions before it stores (see `TagVersions.readyAhead`), for a write that will store until about
   * `storedExpiry` (epoch seconds; null: never expires): called as a render begins, it leaves the
   * render's store nothing to wait for but its own write, where the render adds no tags. Resolves
   * once done, failed or not: the store waits for it before it sends anything, so that a server gone
   * silent meanwhile costs the request one deadline, not one for each call in flight.
   */
  readyTagsAhead(snapshot: TagSnapshot, storedExpiry: number | null): Promise<void>;
  /**
   * Reads now the versions of `tags` that `asOf` lacks, for a write stamped as of `asOf` that will
   * store until about `storedExpiry`, and does what `readyTagsAhead` does with them: answers their
   * snapshot, for `joinTagSnapshots`. Rejects where the read failed.
   */
  readTagsAhead(asOf: TagSnapshot, tags: readonly string[], storedExpiry: number | null): Promise<TagSnapshot>;
  /** One snapshot of the tags of all `snapshots`, as of the first one's generation, for a write's `tagsAsOf`: what was done ahead for each holds for it. */
  joinTagSnapshots(snapshots: readonly TagSnapshot[]): TagSnapshot;
  /**
   * A write for values whose readers never mutate them, read back through `readShared` (the page
   * cache's pages and header lists): the page cache's own, so published as no `set` of the
   * application's; a store in this process keeps the value as it is, and a reader that gets a copy
   * (`get`) gets one made then. The caller hands the value over and never changes it again.
   */
  setHeld(key: CacheKey, value: unknown, options?: TimeoutArg): Promise<void>;
  /**
   * The key as this cache stores it (prefix, version, key function), checked as every read and write
   * checks it: for a caller that looks the same key up again and again and keeps what this answers.
   */
  storedKey(key: CacheKey): string;
  /**
   * The fresh entry under a key as `storedKey` made it, when a store in this process holds it (a
   * fragment's hit while the engine renders): a fresh string comes as a `HeldString`, which the
   * caller keeps and asks its `keeper` for next time instead of reading the store (a tagged one with
   * the entries of its tags' versions). Undefined otherwise: the caller then reads it the usual way.
   */
  peekFreshToKeep(made: string): HeldString | CachedEntry<unknown> | undefined;
  /** How the store holds the entry under `key`, for `cachegrain inspect` (see `StoredEntry`); undefined when nothing is stored under the key. */
  storedEntry(key: CacheKey, options?: VersionOption): Promise<StoredEntry | undefined>;
  /** How many entries the store holds, where the backend can tell cheaply (undefined where it cannot: a shared server). */
  countEntries(): Promise<number | undefined>;
  /** Whether a server's failure answers as a miss or a no-op rather than rejecting (a server backend's `failOpen`). */
  readonly failsOpen: boolean;
  /**
   * Whether every read and write is done before anything else in the process runs (a store wholly
   * in this process): no one need wait to see a write, and a lookup needs no promise between its
   * reads. A file or a server answers later.
   */
  readonly answersAtOnce: boolean;
  /** Who it tells of its invalidations, in order (`addInvalidationListener`): the edges' purges are found among them. */
  readonly invalidationListeners: readonly InvalidationListener[];
  /** What `stats()` answers a copy of: a listener counts there what it does for this cache (the edges' `purgesSent`, `purgesFailed`). */
  readonly counts: CacheStats;
  /** Work of this cache that runs behind its callers once they were answered (what `settled` waits for). */
  readonly behind: WorkBehind;
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

/** A cache, as `integrationOf` reads it. */
export type Integrated = { readonly [INTEGRATION]: CacheIntegration };

/**
 * What the layers above reach in `cache` beyond its documented API. Each layer calls it in one module
 * of its own, which hands that layer only what it uses (`cacheForPages`, `cacheForFragments`, …).
 */
export function integrationOf(cache: Integrated): CacheIntegration {
  return cache[INTEGRATION];
}
