/**
 * What the fragments reach in a cache beyond its documented API: the key as the cache stores it, the
 * fresh entries a store in this process holds (kept, and answered again without a read), the flights a
 * fragment's render is shared through and the refreshes of stale fragments. The one module of
 * fragments/ that calls `integrationOf`.
 */
import { type CacheIntegration, type Integrated, integrationOf } from '../cache/integration.js';

export type CacheForFragments = Pick<CacheIntegration, 'storedKey' | 'peekFreshToKeep' | 'flights' | 'refreshes'>;

export function cacheForFragments(cache: Integrated): CacheForFragments {
  return integrationOf(cache);
}
