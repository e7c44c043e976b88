// An application of the cache and the page cache alone: installed with nothing but Node's types, no
// server client and no engine, it compiles under --strict without skipLibCheck.
import { cache, configureCaches, type RedisOptions } from 'cachegrain';
import { defineCacheContext, type PageCacheOptions } from 'cachegrain/http';

await configureCaches({ default: { backend: 'locmem', options: { maxEntries: 1000 } } });
await cache.set('greeting', 'hello', 60);
export const greeting: string | undefined = await cache.get<string>('greeting');
defineCacheContext('user.level', (req) => (req.headers['x-level'] === 'staff' ? 'staff' : 'visitor'));
export const pages: PageCacheOptions = { seconds: 60, debug: true };
export const redis: RedisOptions = { client: { connectTimeout: 500 } };
