/** The built-in backends by their `backend` name. */
import type { BaseCache, CacheParams } from '../cache/base-cache.js';
import { DatabaseCache } from './database/database.js';
import { DummyCache } from './dummy.js';
import { FileBasedCache } from './filebased.js';
import { LocMemCache } from './locmem.js';
import { MemcachedCache } from './memcached.js';
import { RedisCache } from './redis.js';

export const BUILTIN_BACKENDS: Record<string, new (params: CacheParams<any>) => BaseCache<any>> = {
  locmem: LocMemCache,
  filebased: FileBasedCache,
  dummy: DummyCache,
  database: DatabaseCache,
  redis: RedisCache,
  memcached: MemcachedCache,
};

export { DatabaseCache, DummyCache, FileBasedCache, LocMemCache, MemcachedCache, RedisCache };
