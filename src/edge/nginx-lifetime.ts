/**
 * nginx's cache-purge module purges a page by its URL alone: a page carrying any other
 * tag would stay there past an invalidation of that tag. Where the cache a page is stored in purges
 * an nginx, such a page tells nginx how long it may keep it in `X-Accel-Expires`, a header nginx
 * reads and never passes on: not at all by default, or the staleness the site accepted.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { headerText, secondsOf } from '../headers/header-values.js';
import { taggedUrl } from './edge-requests.js';
import type { EdgePurgeConfig } from './purge-options.js';
import { nginxKeepsTaggedFor } from './purge-config.js';

/** Sets `X-Accel-Expires` on a page with `tags` where `edges` names an nginx and a tag of them is not a `url:` tag. */
export function limitNginxLifetime(res: ServerResponse, tags: readonly string[], edges: readonly EdgePurgeConfig[]): void {
  const keepFor = nginxKeepsTaggedFor(edges);
  if (keepFor === undefined || tags.every((tag) => taggedUrl(tag) !== undefined)) return;
  // The header overrules Cache-Control in nginx: never longer than the page's own lifetime there.
  const cacheControl = headerText(res, 'cache-control');
  const ownLifetime = secondsOf(cacheControl, 's-maxage') ?? secondsOf(cacheControl, 'max-age') ?? keepFor;
  res.setHeader('X-Accel-Expires', String(Math.min(keepFor, ownLifetime)));
}

/**
 * Sets `X-Accel-Expires: 0` on a response to a request whose `Cachegrain-Context` (set by the edge in
 * front) names a context value that an nginx among `edges` is not told to purge (not in its
 * `contexts`): a value listed in nginx's configuration and not in the edge's would leave a copy
 * no purge names. A request's own, after the page's headers are stored, on a miss and a hit alike.
 */
export function keepNoUnpurgedContext(req: IncomingMessage, res: ServerResponse, edges: readonly EdgePurgeConfig[]): void {
  const context = req.headers['cachegrain-context'];
  if (typeof context !== 'string' || context.split(';').every((pair) => pair.trim().endsWith('='))) return;
  if (edges.some((edge) => edge.edge === 'nginx' && !(edge.contexts ?? []).includes(context))) res.setHeader('X-Accel-Expires', '0');
}
