/**
 * What the page cache reaches in a cache beyond its documented API: shared reads of pages and header
 * lists and the held writes that store them, their tag versions read and readied while a render runs, the
 * flights a render is shared through, the refreshes of stale pages, the work behind a response,
 * whether the cache's calls wait on a server and whether it answers at once. The one module of pages/ that calls `integrationOf`.
 */
import { type CacheIntegration, type Integrated, integrationOf } from '../cache/integration.js';

export type CacheForPages = Pick<
  CacheIntegration,
  | 'readShared'
  | 'readSharedEntry'
  | 'readyTagsAhead'
  | 'readTagsAhead'
  | 'joinTagSnapshots'
  | 'setHeld'
  | 'flights'
  | 'refreshes'
  | 'behind'
  | 'waitsOnServers'
  | 'answersAtOnce'
>;

export function cacheForPages(cache: Integrated): CacheForPages {
  return integrationOf(cache);
}
