// Compiles under --strict with node16 and bundler resolution: the typed surface a user sees.
import { caches, configureCaches, type CacheConfig } from 'cachegrain';
import { cachePage } from 'cachegrain/express';
import { installCacheTag } from 'cachegrain/nunjucks';

const config: Record<string, CacheConfig> = {
  default: { backend: 'locmem', options: { maxEntries: 500 } },
  shared: { backend: 'redis', location: 'redis://127.0.0.1:6379', options: { timeoutMs: 200, failOpen: true, client: { connectTimeout: 500 } } },
  rows: { backend: 'database', location: 'cache_table', options: { connection: 'sqlite::memory:' } },
};
export async function main(): Promise<string> {
  await configureCaches(config);
  const fallback: string = await caches.get('default').get('k', 'fallback');
  return fallback + String(typeof cachePage(60)) + String(typeof installCacheTag);
}
