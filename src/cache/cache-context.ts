/**
 * What the parts of one cache share (see `cache-parts.ts`), with its tag versions. `BaseCache` builds it
 * once; each part (batched reads, in-process hits, getOrSet, counters, writes) takes it instead of a
 * reference back into the class's private state.
 */
import type { EventEmitter } from 'node:events';
import { CallOptions } from '../common/call-options.js';
import type { Codec } from '../common/codec.js';
import { MadeKeys } from '../common/made-keys.js';
import type { CacheStats } from '../common/observation.js';
import { Payloads } from '../common/payloads.js';
import { Reporter } from '../common/reporting.js';
import type { CacheParts, CacheSelf } from './cache-parts.js';
import type { Seam } from './backend-contract.js';
import type { CacheParams } from '../common/cache-types.js';
import { TagVersions } from '../tags/versions.js';
import { EdgePurges } from '../edge/purge-queue.js';

export interface CacheContext<P> extends CacheParts<P> {
  readonly tags: TagVersions<P>;
}

/**
 * The context of `cache`, whose stats are `counts`, whose problems go to `params.logger` (checked
 * here), and whose invalidations purge the edges `params.purge` names.
 */
export function cacheContext<P>(
  cache: CacheSelf & EventEmitter,
  codec: Codec<P>,
  params: Pick<CacheParams, 'logger' | 'purge'>,
  counts: CacheStats,
): CacheContext<P> {
  const alias = cache.alias;
  const reporter = new Reporter(alias, cache, counts, params.logger);
  const purges = params.purge?.length ? new EdgePurges(alias, params.purge, reporter, counts) : undefined;
  // The cache is its own seam: what an L1 installs over the instance's primitives, every part calls.
  const seam = cache as unknown as Seam<P>;
  const payloads = new Payloads(alias, codec, seam, reporter);
  const keys = new MadeKeys<P>(cache);
  const calls = new CallOptions(alias, cache.defaultTimeout, cache);
  const parts: CacheParts<P> = { alias, cache, seam, codec, payloads, keys, calls, counts, reporter, purges };
  return { ...parts, tags: new TagVersions<P>(parts) };
}
