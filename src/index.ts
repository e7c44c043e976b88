/** cachegrain: Django's cache framework for Node.js. The low-level API, configuration and backends. */
// Node's types (Buffer, node:http, node:diagnostics_channel…) appear in these declarations: a consumer need not name them in `types`.
/// <reference types="node" preserve="true" />
export { BaseCache, DEFAULT_TIMEOUT, splitLocation } from './base.js';
export type {
  CachedEntry,
  CacheParams,
  Entry,
  EntryState,
  InvalidateOptions,
  MaybePromise,
  StoredEntry,
  TimeoutArg,
  VersionOption,
  WriteFailure,
  WriteOptions,
} from './base.js';
export { caches, cache, configureCaches, invalidateTags } from './config.js';
export type { BackendClass, CacheConfig, CachesConfig } from './config.js';
export { bytesCodec, memoryCodec, textOrBytesCodec } from './codec.js';
export type { Codec, MemoryPayload, EntryStamp } from './codec.js';
export { cullCount, cullingOptions } from './culling.js';
export { CACHE_OPERATIONS, channelName } from './observe.js';
export type { CacheEvent, CacheOperation, CacheOutcome, CacheStats, HitCounts } from './observe.js';
export { fragmentStats, resetFragmentStats } from './fragments/index.js';
export type { CullingOptions } from './culling.js';
export { CacheKeyWarning, CacheServerError, InvalidCacheBackendError, InvalidCacheKeyError, KeyNotFoundError } from './errors.js';
export { defaultKeyFunction, memcachedKeyProblems } from './keys.js';
export type { CacheKey, KeyFunction } from './keys.js';
export * from './backends/index.js';
export { ServerCache, DEFAULT_TIMEOUT_MS } from './backends/server.js';
export type { ServerHealth, ServerOptions } from './backends/server.js';
export type { L1Options } from './backends/l1.js';
export { L1Tier } from './backends/l1.js';
export type { DatabaseConnection, DatabaseOptions } from './backends/database/database.js';
export type { RedisOptions } from './backends/redis.js';
export type { MemcachedOptions } from './backends/memcached.js';
export { FragmentRenderError, makeTemplateFragmentKey, TemplateSyntaxError } from './fragments/index.js';
