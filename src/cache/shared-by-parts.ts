/**
 * What the parts of one cache share: the cache's own face as they see it, its backend's primitives,
 * codec, payloads, made keys, call options, counts and reporting, and its tag versions. `BaseCache`
 * builds them once (`sharedByParts`); each part (batched reads, in-process hits, getOrSet, counters,
 * writes) takes them instead of a reference back into the class's private state. The parts depend on
 * these interfaces, never on the class that assembles them, so the cache reads from the bottom up;
 * the tags, below the cache, declare what they need of it (`TagHost`), which these extend.
 */
import type { EventEmitter } from 'node:events';
import type { BackendPrimitives } from '../store/backend-primitives.js';
import { CallOptions } from '../store/call-options.js';
import type { CacheParams, TagSnapshot } from '../store/cache-types.js';
import type { Codec } from '../encoding/codec.js';
import { type KeyMaking, KeyMaker } from '../store/key-maker.js';
import type { MaybePromise } from '../store/maybe-promise.js';
import type { CacheStats } from '../observation/observation.js';
import { Payloads } from '../encoding/payloads.js';
import { Reporter } from '../observation/reporting.js';
import type { Release } from '../flight/index.js';
import { type CacheIntegration, type INTEGRATION, integrationOf } from './integration.js';
import { InvalidationListeners } from './invalidation-listeners.js';
import type { TagHost } from '../tags/tag-host.js';
import { TagVersions } from '../tags/versions.js';

/** What the parts call on the cache itself: its settings, its clock (which tests replace), and the calls they build on. */
export interface CacheSelf extends KeyMaking {
  readonly alias: string;
  readonly defaultTimeout: number | null;
  /** Its work in flight and refreshes behind, one engine for every level, among what integrations reach. */
  readonly [INTEGRATION]: CacheIntegration;
  /** Whether its server is known to be down now (a breaker open): writes would only fail. */
  readonly unreachable: boolean;
  now(): number;
  readTagSnapshot(tags: readonly string[]): MaybePromise<TagSnapshot>;
  acquireLock(name: string, seconds: number): Promise<Release | undefined>;
  reportError(error: Error, cause?: string): void;
}

/**
 * The parts' shared view of the cache: what the tags need of it (`TagHost`), with the cache's own
 * face, its reporting, the listeners it tells of its invalidations, and its tag versions.
 */
export interface SharedByParts<P> extends TagHost<P> {
  readonly cache: CacheSelf;
  readonly reporter: Reporter;
  /** Who it tells of its invalidations once they have landed (`addInvalidationListener`). */
  readonly listeners: InvalidationListeners;
  readonly tags: TagVersions<P>;
}

/**
 * The parts of `cache` over `primitives` and `codec` (its entries carrying their expiry where
 * `stampsExpiry`), whose stats are `counts` and whose problems go to `params.logger` (checked here).
 */
export function sharedByParts<P>(
  cache: CacheSelf & EventEmitter,
  { primitives, codec, stampsExpiry }: { primitives: BackendPrimitives<P>; codec: Codec<P>; stampsExpiry: boolean },
  params: Pick<CacheParams, 'logger'>,
  counts: CacheStats,
): SharedByParts<P> {
  const alias = cache.alias;
  const reporter = new Reporter(alias, cache, counts, params.logger);
  const payloads = new Payloads(alias, codec, primitives, reporter);
  const keys = new KeyMaker<P>(cache);
  const calls = new CallOptions(alias, cache.defaultTimeout, cache);
  const shared: Omit<SharedByParts<P>, 'tags'> = {
    alias,
    cache,
    // Read when a call fails, not now: a server backend sets its `failOpen` once this constructor ran.
    get failsOpen() {
      return integrationOf(cache).failsOpen;
    },
    primitives,
    codec,
    stampsExpiry,
    payloads,
    keys,
    calls,
    counts,
    reporter,
    listeners: new InvalidationListeners(alias, reporter),
  };
  return Object.assign(shared, { tags: new TagVersions<P>(shared) });
}
