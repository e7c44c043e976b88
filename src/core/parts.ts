/**
 * What the parts of one cache share, below the tags: the cache's own face as they see it, its seam,
 * codec, payloads, made keys, call options, counts and reporting. The parts depend on these
 * interfaces, never on the class that assembles them, so the core reads from the bottom up.
 */
import type { Flights, Refreshes, Release } from '../flight/index.js';
import type { CallOptions } from './call-options.js';
import type { Codec } from './codec.js';
import type { KeyMaking, MadeKeys } from './made-keys.js';
import type { MaybePromise } from './maybe.js';
import type { CacheStats } from './observe.js';
import type { Payloads } from './payloads.js';
import type { Reporter } from './report.js';
import type { EdgePurges } from '../edge/purge-queue.js';
import type { Seam } from './seam.js';
import type { TagSnapshot } from './types.js';

/** What the parts call on the cache itself: its settings, its clock (which tests replace), and the calls they build on. */
export interface CacheSelf extends KeyMaking {
  readonly alias: string;
  readonly defaultTimeout: number | null;
  /** Work in flight and refreshes behind, one engine for every level. */
  readonly flights: Flights;
  readonly refreshes: Refreshes;
  /** Whether its server is known to be down now (a breaker open): writes would only fail. */
  readonly unreachable: boolean;
  /** Whether a server's failure answers as a miss or a no-op (`failOpen`) rather than rejecting the call. */
  readonly failsOpen: boolean;
  now(): number;
  readTagSnapshot(tags: readonly string[]): MaybePromise<TagSnapshot>;
  acquireLock(name: string, seconds: number): Promise<Release | undefined>;
  reportError(error: Error, cause?: string): void;
}

export interface CacheParts<P> {
  readonly alias: string;
  readonly cache: CacheSelf;
  readonly seam: Seam<P>;
  readonly codec: Codec<P>;
  readonly payloads: Payloads<P>;
  readonly keys: MadeKeys<P>;
  readonly calls: CallOptions;
  readonly counts: CacheStats;
  readonly reporter: Reporter;
  /** The edges in front that its invalidations purge (the `purge` option), when it names any. */
  readonly purges: EdgePurges | undefined;
}
