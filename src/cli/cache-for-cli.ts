/**
 * What the cachegrain command reaches in a cache beyond its documented API: how the store holds an
 * entry (`cachegrain inspect`). The one module of cli/ that calls `integrationOf`.
 */
import { type CacheIntegration, type Integrated, integrationOf } from '../cache/integration.js';

export type CacheForCli = Pick<CacheIntegration, 'storedEntry'>;

export function cacheForCli(cache: Integrated): CacheForCli {
  return integrationOf(cache);
}
