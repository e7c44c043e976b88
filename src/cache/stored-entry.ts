/**
 * How the store holds one entry, for `cachegrain inspect`: read through the cache's parts as any
 * read is, and described without decoding its value.
 */
import type { StoredEntry, VersionOption } from '../store/cache-types.js';
import type { CacheKey } from '../keys/cache-keys.js';
import type { SharedByParts } from './shared-by-parts.js';

/** How the store of the cache `parts` belong to holds the entry under `key` (see `StoredEntry`); undefined when nothing is stored under it. */
export async function storedEntryIn<P>(shared: SharedByParts<P>, key: CacheKey, options?: VersionOption): Promise<StoredEntry | undefined> {
  const made = shared.keys.made(key, shared.calls.versionOf(options, 'storedEntry'));
  const entry = (await shared.primitives.read([made], true)).get(made);
  if (entry === undefined) return undefined;
  const { payload } = entry;
  const bytes = Buffer.isBuffer(payload) ? payload.length : typeof payload === 'string' ? Buffer.byteLength(payload) : undefined;
  // Only an entry with a stale window has a freshness that ends before the backend drops it.
  const stamp = shared.codec.unstamp?.(payload)?.stamp;
  const stale = stamp !== undefined && ((stamp.staleWhileRevalidate ?? 0) > 0 || (stamp.staleIfError ?? 0) > 0);
  return { expiresAt: entry.expiresAt, freshUntil: stale ? stamp.freshUntil : undefined, bytes };
}
