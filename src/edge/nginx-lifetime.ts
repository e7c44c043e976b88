/**
 * nginx's cache-purge module purges a page by its URL alone (SPEC §17): a page carrying any other
 * tag would stay there past an invalidation of that tag. Where the cache a page is stored in purges
 * an nginx, such a page tells nginx how long it may keep it in `X-Accel-Expires`, a header nginx
 * reads and never passes on: not at all by default, or the staleness the site accepted.
 */
import type { ServerResponse } from 'node:http';
import { headerText, secondsOf } from '../http/headers.js';
import { taggedUrl } from './edge-requests.js';
import { type EdgePurgeConfig, nginxKeepsTaggedFor } from './purge-config.js';

/** Sets `X-Accel-Expires` on a page with `tags` where `edges` names an nginx and a tag of them is not a `url:` tag. */
export function limitNginxLifetime(res: ServerResponse, tags: readonly string[], edges: readonly EdgePurgeConfig[]): void {
  const keepFor = nginxKeepsTaggedFor(edges);
  if (keepFor === undefined || tags.every((tag) => taggedUrl(tag) !== undefined)) return;
  // The header overrules Cache-Control in nginx: never longer than the page's own lifetime there.
  const cacheControl = headerText(res, 'cache-control');
  const ownLifetime = secondsOf(cacheControl, 's-maxage') ?? secondsOf(cacheControl, 'max-age') ?? keepFor;
  res.setHeader('X-Accel-Expires', String(Math.min(keepFor, ownLifetime)));
}
