/**
 * The edges a cache purges: the listener that purges them, added to the cache of an alias whose
 * configuration names them (its `purge` option), and found again among the cache's invalidation
 * listeners by the page cache, which sends its pages' tags in the headers those edges read and keeps
 * from them what they cannot purge.
 */
import type { BaseCache } from '../cache/base-cache.js';
import type { Integrated } from '../cache/integration.js';
import { cacheForEdges } from './cache-for-edges.js';
import type { EdgePurgeConfig } from './purge-options.js';
import { EdgePurges } from './purge-queue.js';

/** The purged edges of a cache that purges none. */
const NO_EDGES: readonly EdgePurgeConfig[] = Object.freeze([]);

/** Has every later invalidation of `cache` purge `edges` once the cache's own has landed (none: nothing to add). */
export function purgeEdgesAfterInvalidations(cache: BaseCache, edges: readonly EdgePurgeConfig[]): void {
  if (edges.length === 0) return;
  cache.addInvalidationListener(new EdgePurges(cache.alias, edges, cache, cacheForEdges(cache).counts));
}

/** The listener of `cache` that purges its edges, when it has one. */
function edgePurgesOf(cache: Integrated): EdgePurges | undefined {
  for (const listener of cacheForEdges(cache).invalidationListeners) if (listener instanceof EdgePurges) return listener;
  return undefined;
}

/** The edges in front that the invalidations of `cache` purge, as its alias's `purge` option names them. */
export function edgesPurgedBy(cache: Integrated): readonly EdgePurgeConfig[] {
  return edgePurgesOf(cache)?.edges ?? NO_EDGES;
}

/** The headers the edges `cache` purges read a page's tags from: the page cache sends its pages' tags in each (`tagHeader`). */
export function edgeTagHeadersOf(cache: Integrated): readonly string[] {
  return edgePurgesOf(cache)?.tagHeaders ?? [];
}
