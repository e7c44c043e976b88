/**
 * What the parts of one cache share: the cache itself (its public methods and its clock, which
 * tests replace), its seam, codec, payloads, made keys, call options, counts, reporting and tags.
 * `BaseCache` builds it once; each part (tags, batched reads, in-process hits, getOrSet, counters)
 * takes it instead of a reference back into the class's private state.
 */
import type { BaseCache } from './base.js';
import { CallOptions } from './call-options.js';
import type { Codec } from './codec.js';
import { MadeKeys } from './made-keys.js';
import type { CacheStats } from './observe.js';
import { Payloads } from './payloads.js';
import { Reporter } from './report.js';
import type { Seam } from './seam.js';
import { TagVersions } from '../tags/versions.js';

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

/** The context of `cache`, whose stats are `counts` and whose problems go to `logger` (checked here). */
export function cacheContext<P>(cache: BaseCache<P>, codec: Codec<P>, logger: unknown, counts: CacheStats): CacheContext<P> {
  const alias = cache.alias;
  const reporter = new Reporter(alias, cache, counts, logger);
  // The cache is its own seam: what an L1 installs over the instance's primitives, every part calls.
  const seam = cache as unknown as Seam<P>;
  const payloads = new Payloads(alias, codec, seam, reporter);
  const keys = new MadeKeys<P>(cache);
  const calls = new CallOptions(alias, cache.defaultTimeout, cache);
  const parts = { alias, cache, seam, codec, payloads, keys, calls, counts, reporter };
  return { ...parts, tags: new TagVersions<P>(parts) };
}
