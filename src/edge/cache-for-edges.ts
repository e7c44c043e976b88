/**
 * What the edges reach in a cache beyond its documented API: the counts their purges are counted in,
 * and the invalidation listeners their purges are found among. The one module of edge/ that calls
 * `integrationOf`.
 */
import { type CacheIntegration, type Integrated, integrationOf } from '../cache/integration.js';

export type CacheForEdges = Pick<CacheIntegration, 'counts' | 'invalidationListeners'>;

export function cacheForEdges(cache: Integrated): CacheForEdges {
  return integrationOf(cache);
}
