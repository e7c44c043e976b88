/**
 * What the parts of one cache share: the cache itself (its public methods and its clock, which
 * tests replace), its seam, codec, payloads, made keys, call options, counts, reporting and tags.
 * `BaseCache` builds it once; each part (tags, batched reads, in-process hits, getOrSet, counters)
 * takes it instead of a reference back into the class's private state.
 */
import type { BaseCache } from './base.js';
import type { CallOptions } from './call-options.js';
import type { Codec } from './codec.js';
import type { MadeKeys } from './made-keys.js';
import type { CacheStats } from './observe.js';
import type { Payloads } from './payloads.js';
import type { Reporter } from './report.js';
import type { Seam } from './seam.js';
import type { TagVersions } from '../tags/versions.js';

export interface CacheContext<P> {
  readonly alias: string;
  readonly cache: BaseCache<P>;
  readonly seam: Seam<P>;
  readonly codec: Codec<P>;
  readonly payloads: Payloads<P>;
  readonly keys: MadeKeys<P>;
  readonly calls: CallOptions;
  readonly counts: CacheStats;
  readonly reporter: Reporter;
  readonly tags: TagVersions<P>;
}
