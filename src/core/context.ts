/**
 * What the parts of one cache share (see `parts.ts`), with its tag versions. `BaseCache` builds it
 * once; each part (batched reads, in-process hits, getOrSet, counters, writes) takes it instead of a
 * reference back into the class's private state.
 */
import type { EventEmitter } from 'node:events';
import { CallOptions } from './call-options.js';
import type { Codec } from './codec.js';
import { MadeKeys } from './made-keys.js';
import type { CacheStats } from './observe.js';
import { Payloads } from './payloads.js';
import { Reporter } from './report.js';
import type { CacheParts, CacheSelf } from './parts.js';
import type { Seam } from './seam.js';
import type { CacheParams } from './types.js';
import { TagVersions } from '../tags/versions.js';
import { EdgePurges } from '../edge/purge-queue.js';

export interface CacheContext<P> extends CacheParts<P> {
  readonly tags: TagVersions<P>;
}

/**
 * The context of `cache`, which reaches its store through `seam` (its backend, or a layer in front
 * of it) in the form of `codec`, whose stats are `counts`, whose problems go to `params.logger`
 * (checked here), and whose invalidations purge the edges `params.purge` names.
 */
export function cacheContext<P>(
  cache: CacheSelf & EventEmitter,
  { seam, codec }: { seam: Seam<P>; codec: Codec<P> },
  params: Pick<CacheParams, 'logger' | 'purge'>,
  counts: CacheStats,
): CacheContext<P> {
  const alias = cache.alias;
  const reporter = new Reporter(alias, cache, counts, params.logger);
  const purges = params.purge?.length ? new EdgePurges(alias, params.purge, reporter, counts) : undefined;
  const payloads = new Payloads(alias, codec, seam, reporter);
  const keys = new MadeKeys<P>(cache);
  const calls = new CallOptions(alias, cache.defaultTimeout, cache);
  const parts: CacheParts<P> = { alias, cache, seam, codec, payloads, keys, calls, counts, reporter, purges };
  return { ...parts, tags: new TagVersions<P>(parts) };
}
