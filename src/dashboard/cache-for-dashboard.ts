/**
 * What the dashboard reaches in a cache beyond its documented API: how many entries its store holds.
 * The one module of dashboard/ that calls `integrationOf`.
 */
import { type CacheIntegration, type Integrated, integrationOf } from '../cache/integration.js';

export type CacheForDashboard = Pick<CacheIntegration, 'countEntries'>;

export function cacheForDashboard(cache: Integrated): CacheForDashboard {
  return integrationOf(cache);
}
