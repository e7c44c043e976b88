/**
 * What the template digests reach in a cache beyond its documented API: its work behind its callers,
 * which writing a deploy's record of templates is counted in. The one module of digests/ that calls
 * `integrationOf`.
 */
import { type CacheIntegration, type Integrated, integrationOf } from '../cache/integration.js';

export type CacheForDigests = Pick<CacheIntegration, 'behind'>;

export function cacheForDigests(cache: Integrated): CacheForDigests {
  return integrationOf(cache);
}
