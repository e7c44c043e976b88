/**
 * The page cache's one way to report a failure behind a response: through the cache's own reporting
 * (`reportError`: an `error` event when someone listens, else the cache's logger once per cause),
 * counted once in its `stats().errors`. Nothing here writes to the console.
 */
import type { BaseCache } from '../cache/base-cache.js';
import { CacheServerError } from '../errors/errors.js';

/** Reports `what` went wrong (with the error that made it, if any): a server's failure stays a CacheServerError, as it was counted where it happened. */
export function reportPageFailure(cache: BaseCache, what: string, error?: unknown): void {
  if (error === undefined) return cache.reportError(new Error(`page cache: ${what}`));
  const cause = error instanceof Error ? error : new Error(String(error));
  // The cache names itself once, in front of the whole message.
  const own = `cache '${cache.alias}': `;
  const message = `page cache: ${what}: ${cause.message.startsWith(own) ? cause.message.slice(own.length) : cause.message}`;
  cache.reportError(cause instanceof CacheServerError ? new CacheServerError(message, cause.server, cause) : new Error(message, { cause }));
}
