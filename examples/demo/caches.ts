/**
 * The demo's whole cache configuration. On a fresh machine it runs on the embedded default: an
 * in-memory cache for pages and fragments, and a file cache for the catalogue's slow queries.
 * Environment variables point any of them at a server instead:
 *   CACHE_URL=redis://127.0.0.1:6379/0        the default cache (pages, counters)
 *   FRAGMENT_CACHE_URL=memcached://127.0.0.1:11211   template fragments
 *   QUERY_CACHE_URL=postgres://localhost/demo         query results
 * Each accepts redis://, rediss://, memcached://host:port[,host:port], postgres://, sqlite:path.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CacheConfig, CachesConfig } from 'cachegrain';

/** A cache configuration from a URL, or `fallback` when the variable is not set. */
export function cacheFromUrl(url: string | undefined, fallback: CacheConfig, timeout: number | null): CacheConfig {
  if (!url) return { ...fallback, timeout };
  const scheme = url.slice(0, url.indexOf(':'));
  const options = { failOpen: true, timeoutMs: 250 };
  switch (scheme) {
    case 'redis':
    case 'rediss':
      return { backend: 'redis', location: url, timeout, options };
    case 'memcached':
      return { backend: 'memcached', location: url.slice('memcached://'.length), timeout, options };
    case 'postgres':
    case 'postgresql':
    case 'sqlite':
      return { backend: 'database', location: 'demo_cache', timeout, options: { ...options, connection: url, createTable: true } };
    default:
      throw new Error(`Unsupported cache URL scheme '${scheme}' in ${url} (use redis://, memcached://, postgres:// or sqlite:)`);
  }
}

/** The demo's aliases: `default` (pages, counters), `template_fragments`, `queries`. */
export function demoCaches(env: NodeJS.ProcessEnv = process.env): CachesConfig {
  return {
    default: cacheFromUrl(env.CACHE_URL, { backend: 'locmem', location: 'demo-pages', options: { maxEntries: 2000 } }, 600),
    template_fragments: cacheFromUrl(env.FRAGMENT_CACHE_URL, { backend: 'locmem', location: 'demo-fragments', options: { maxEntries: 5000 } }, 300),
    queries: cacheFromUrl(env.QUERY_CACHE_URL, { backend: 'filebased', location: join(env.DEMO_CACHE_DIR ?? tmpdir(), 'cachegrain-demo-queries') }, 120),
  };
}
