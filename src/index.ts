/** cachegrain: Django's cache framework for Node.js. The low-level API, configuration and backends. */
// Node's types (Buffer, node:http, node:diagnostics_channel…) appear in these declarations: a consumer need not name them in `types`.
/// <reference types="node" preserve="true" />
export { BaseCache } from './cache/base-cache.js';
export type {
  CachedEntry,
  CacheParams,
  ClearOptions,
  EdgeWaitOptions,
  Entry,
  EntryState,
  InvalidateOptions,
  InvalidationEvent,
  InvalidationListener,
  ListOf,
  MaybePromise,
  StoredEntry,
  TagsInvalidatedEvent,
  TimeoutArg,
  TouchArg,
  TouchOptions,
  VersionOption,
  WriteFailure,
  WriteOptions,
} from './cache/base-cache.js';
export type {
  HeldString,
  HeldStringKeeper,
  InProcessEntry,
  InProcessRecency,
  InProcessStanding,
  InProcessStore,
  LocalStore,
} from './store/in-process-contract.js';
export { caches, cache, configureCaches, invalidateTags } from './config/cache-registry.js';
export type { BackendClass, CacheConfig, CachesConfig } from './config/cache-registry.js';
export { bytesCodec } from './encoding/codec.js';
export type { Codec, MemoryPayload } from './encoding/codec.js';
export type { EntryStamp } from './encoding/stamps.js';
export { CACHE_OPERATIONS, channelName } from './observation/observation.js';
export type { CacheEvent, CacheOperation, CacheOutcome, CacheStats, HitCounts } from './observation/observation.js';
export { fragmentStats } from './fragments/index.js';
export { CacheKeyWarning, CacheServerError, InvalidCacheBackendError, InvalidCacheKeyError, KeyNotFoundError } from './errors/errors.js';
export type { CacheKey, KeyFunction } from './keys/cache-keys.js';
export { DatabaseCache, DummyCache, FileBasedCache, LocMemCache, MemcachedCache, RedisCache } from './backends/index.js';
export { ServerCache } from './backends/server.js';
export type { ServerHealth, ServerOptions } from './backends/server.js';
export type { ServerRecovery } from './observation/reporting.js';
export type { L1Options } from './l1/l1-settings.js';
export type { DatabaseConnection, DatabaseOptions } from './backends/database/database.js';
export type { RedisClientOptions, RedisOptions } from './backends/redis.js';
export type { MemcachedOptions } from './backends/memcached.js';
export { FragmentRenderError, makeTemplateFragmentKey, TemplateSyntaxError } from './fragments/index.js';
export { HoleError } from './holes/index.js';
export { EdgePurgeError, EdgeWaitError } from './edge/purge-queue.js';
export type { CloudflarePurge, EdgePurgeConfig, FastlyPurge, HttpHookPurge, NginxPurge, VarnishPurge } from './edge/purge-options.js';
export type { DependencyNode, DigestProblem, TemplateDigestReport } from './digests/index.js';
