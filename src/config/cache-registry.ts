/**
 * Configuration: `configureCaches` takes the aliases, `caches.get(alias)` builds each
 * cache on first use and hands back the same instance afterwards, `cache` is the default alias.
 * Backends given as 'module#Export' are loaded with require(), which also loads ES modules on the
 * Node versions cachegrain supports, so that `caches.get` stays synchronous.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { type BaseCache, type CacheLogger, type CacheParams, INVALIDATE_OPTIONS, type InvalidateOptions, type ListOf } from '../cache/base-cache.js';
import { checkList } from '../store/call-options.js';
import { resetProcessMemos } from '../memos/process-memos.js';
import { CACHE_PARAMS } from '../store/cache-types.js';
import { BUILTIN_BACKENDS } from '../backends/index.js';
import { describe, InvalidCacheBackendError } from '../errors/errors.js';
import { checkOptionNames, checkOptions, closestName, didYouMean, type OptionShape, optionShape, ValueRule } from '../options/option-rules.js';
import { type KeyFunction } from '../keys/cache-keys.js';
import type { EdgePurgeConfig } from '../edge/purge-options.js';
import { purgeEdgesAfterInvalidations } from '../edge/cache-edges.js';
import { purgeConfigProblem } from '../edge/purge-config.js';
import type { DatabaseOptions } from '../backends/database/database.js';
import type { FileBasedOptions } from '../backends/filebased.js';
import type { LocMemOptions } from '../backends/locmem.js';
import type { MemcachedOptions } from '../backends/memcached.js';
import type { RedisOptions } from '../backends/redis.js';

/** A class extending BaseCache, built as `new Backend(params)`. */
export type BackendClass = new (params: CacheParams<any>) => BaseCache<any>;

/** What every alias's configuration may give, whatever its backend. */
interface CommonConfig {
  /** Backend-specific: store name, directory, table, or server addresses (a list, or `;`/`,`-separated). */
  location?: string | string[];
  /** Default timeout in seconds; `null` never expires; `0` does not keep. @default 300 */
  timeout?: number | null;
  /** @default '' */
  keyPrefix?: string;
  /** @default 1 */
  version?: number;
  /** `(key, keyPrefix, version) => string`, or a module specifier 'module#exportName' of one. */
  keyFunction?: KeyFunction | string;
  /** Where the cache reports its problems once per cause (a server down, a key memcached would refuse). @default console */
  logger?: CacheLogger;
  /** The shared caches in front of the application (Varnish, nginx, a CDN) that every `invalidateTags`, `invalidatePage` and `clear` also purges. */
  purge?: EdgePurgeConfig[];
}

/**
 * One alias's configuration: `backend` decides which `options` it takes, so a misspelt option is a
 * type error (and, for the built-in backends, an error at run time naming the closest valid one).
 */
export type CacheConfig =
  | (CommonConfig & { backend: 'locmem'; options?: LocMemOptions })
  | (CommonConfig & { backend: 'filebased'; options?: FileBasedOptions })
  | (CommonConfig & { backend: 'database'; options: DatabaseOptions })
  | (CommonConfig & { backend: 'redis'; options?: RedisOptions })
  | (CommonConfig & { backend: 'memcached'; options?: MemcachedOptions })
  | (CommonConfig & { backend: 'dummy'; options?: Record<string, unknown> })
  /** A class extending BaseCache, or a module specifier 'module-or-path#ExportName'. */
  | (CommonConfig & { backend: BackendClass | `${string}#${string}`; options?: Record<string, unknown> });

export type CachesConfig = Record<string, CacheConfig>;

/** Every field an alias's configuration may give, with the rule its value keeps (a cache's own, but for `keyFunction`). */
const CACHE_CONFIG_FIELDS = optionShape<CommonConfig & { backend: unknown; options?: unknown }>({
  backend: true,
  location: CACHE_PARAMS.location,
  timeout: CACHE_PARAMS.timeout,
  keyPrefix: CACHE_PARAMS.keyPrefix,
  version: CACHE_PARAMS.version,
  keyFunction: new ValueRule(
    "a function (key, keyPrefix, version) => string or a 'module#exportName' of one",
    (value) => typeof value === 'function' || (typeof value === 'string' && value.includes('#')),
  ),
  logger: CACHE_PARAMS.logger,
  options: CACHE_PARAMS.options,
  // Checked as a whole (`purgeConfigProblem`), naming the edge.
  purge: true,
});

/** An alias's configuration once checked: the class that builds it, what it is built with, and the edges its invalidations purge. */
interface Resolved {
  Backend: BackendClass;
  params: CacheParams<any>;
  purge: readonly EdgePurgeConfig[];
}

const DEFAULT_CONFIG: CachesConfig = { default: { backend: 'locmem' } };

// Module specifiers resolve the way an import in the application's own code would.
const requireFromApp = createRequire(pathToFileURL(`${process.cwd()}/`).href);

class CacheHandler {
  private config = new Map(Object.entries(DEFAULT_CONFIG).map(([alias, entry]) => [alias, resolve(alias, entry)]));
  private readonly instances = new Map<string, BaseCache>();
  /** Whether `configureCaches` has run: until then only the default cache is known, and other aliases may yet come. */
  configured = false;
  /** The cache of fragment tags without `using=`, kept until the instances are let go (every render asks). */
  private fragmentDefault: BaseCache | undefined;

  /**
   * Replaces the configuration; the instances it replaces are closed (the promise settles then). Every
   * alias is checked, and its backend and key function loaded, first: a bad one replaces nothing.
   */
  configure(config: CachesConfig): Promise<void> {
    if (config === null || typeof config !== 'object') throw new TypeError('configureCaches needs an object of aliases');
    if (!Object.hasOwn(config, 'default')) {
      throw new InvalidCacheBackendError("You must define a 'default' cache in configureCaches()", { alias: 'default' });
    }
    const resolved = new Map(Object.entries(config).map(([alias, entry]) => [alias, resolve(alias, entry)]));
    const replaced = [...this.instances.values()];
    this.config = resolved;
    this.configured = true;
    this.instances.clear();
    this.fragmentDefault = undefined;
    return closeQuietly(replaced);
  }

  /** The instance for an alias, the same object on every call: built on first use, with the listener that purges the edges its `purge` option names. */
  get<C extends BaseCache = BaseCache>(alias: string): C {
    let instance = this.instances.get(alias);
    if (instance === undefined) {
      const resolved = this.config.get(alias);
      if (resolved === undefined) throw this.notConfigured(alias);
      instance = new resolved.Backend(resolved.params);
      purgeEdgesAfterInvalidations(instance, resolved.purge);
      this.instances.set(alias, instance);
    }
    return instance as C;
  }

  /** The cache fragment tags without `using=` store in: `template_fragments` where it is configured, else `default`. */
  fragmentCache(): BaseCache {
    return (this.fragmentDefault ??= this.get(this.config.has('template_fragments') ? 'template_fragments' : 'default'));
  }

  /** Whether an alias is configured. */
  has(alias: string): boolean {
    return this.config.has(alias);
  }

  /** Whether an alias is configured with edges to purge (its `purge` option), without building its cache. */
  purgesEdges(alias: string): boolean {
    return (this.config.get(alias)?.purge.length ?? 0) > 0;
  }

  /**
   * Refuses an alias given to `what` (`cacheMiddleware: options.cache`) that is not configured, where
   * it is given, once the caches are configured: until then it may yet come, and its first use
   * (`get`) refuses it with the same words.
   */
  checkAlias(alias: string, what: string): void {
    if (!this.configured || this.config.has(alias)) return;
    const error = this.notConfigured(alias);
    throw new InvalidCacheBackendError(`${what} names '${alias}': ${error.message}`, { alias, cause: error });
  }

  /**
   * The edges the cache of `alias` purges (its `purge` option), read from its configuration without
   * building it; undefined until `configureCaches` has named the alias, as its configuration may yet come.
   */
  purgedEdgesOf(alias: string): readonly EdgePurgeConfig[] | undefined {
    if (!this.configured) return undefined;
    const resolved = this.config.get(alias);
    return resolved?.purge;
  }

  /** The configured alias closest to `alias`, if one is near enough to be a slip of it. */
  closestAlias(alias: string): string | undefined {
    return closestName(alias, [...this.config.keys()]);
  }

  /** The one error for an alias that is not configured, naming the closest configured one. */
  private notConfigured(alias: string): InvalidCacheBackendError {
    const configured = [...this.config.keys()].join(', ');
    return new InvalidCacheBackendError(`The cache alias '${alias}' is not configured${didYouMean(this.closestAlias(alias))} (configured: ${configured})`, {
      alias,
    });
  }

  /** Every configured cache (building those not yet used). */
  all(): BaseCache[] {
    return [...this.config.keys()].map((alias) => this.get(alias));
  }

  /**
   * Settles once every cache built so far has settled (`settled()` of each): the pages stored after
   * their responses, the refreshes behind and the edge purges have landed. Never rejects.
   */
  settled(): Promise<void> {
    return Promise.all([...this.instances.values()].map((instance) => instance.settled())).then(() => undefined);
  }

  /**
   * Empties every configured cache (building those not yet used), each once what it was writing
   * behind its callers has landed, so that none of it lands after: a test starts from nothing. The
   * process's memos of pure derivations are emptied too: that changes no result, only memory.
   */
  async clearAll(): Promise<void> {
    resetProcessMemos();
    await Promise.all(
      this.all().map(async (instance) => {
        await instance.settled();
        await instance.clear();
      }),
    );
  }

  /** Closes every cache built so far; they are built afresh on next use. */
  closeAll(): Promise<void> {
    const open = [...this.instances.values()];
    this.instances.clear();
    this.fragmentDefault = undefined;
    return Promise.all(open.map((instance) => instance.close())).then(() => undefined);
  }
}

export const caches = new CacheHandler();

/** Sets the aliases. Returns a promise that settles once replaced caches are closed. */
export function configureCaches(config: CachesConfig): Promise<void> {
  return caches.configure(config);
}

/**
 * Invalidates the tags in every configured cache, building those not used yet: an entry,
 * fragment or page written with one of them before this call reads as a miss from then on (with
 * `soft`, as stale where it may be served stale).
 */
export async function invalidateTags(tags: ListOf<string>, options?: InvalidateOptions): Promise<void> {
  checkOptions(options, INVALIDATE_OPTIONS, 'invalidateTags');
  const list = [...checkList(tags, 'invalidateTags', 'tags', 'strings')];
  await Promise.all(caches.all().map((each) => each.invalidateTags(list, options)));
}

/** The `default` alias, looked up on every use so that reconfiguring takes effect. */
export const cache: BaseCache = new Proxy({} as BaseCache, {
  get(_target, property) {
    const instance = caches.get('default');
    const value = Reflect.get(instance, property, instance);
    return typeof value === 'function' ? value.bind(instance) : value;
  },
});

/**
 * Checks one alias's configuration as its cache's constructor would (names and values of its fields
 * and of its backend's options, nested ones too) and loads what it names by module, so that
 * `configureCaches` refuses a bad one before anything is replaced. Each error names the alias and the setting.
 */
function resolve(alias: string, entry: CacheConfig): Resolved {
  const problem = entry === null || typeof entry !== 'object' ? undefined : checkOptionNames(entry, CACHE_CONFIG_FIELDS, '');
  if (problem !== undefined) throw new TypeError(`cache '${alias}': ${problem}`);
  const purgeProblem = purgeConfigProblem(entry.purge);
  if (purgeProblem !== undefined) throw new TypeError(`cache '${alias}': ${purgeProblem}`);
  const Backend = resolveBackend(alias, entry?.backend);
  const known = (Backend as { optionNames?: readonly string[] | OptionShape }).optionNames;
  const unknownOption = known === undefined || entry.options === undefined ? undefined : checkOptionNames(entry.options, known);
  if (unknownOption !== undefined) throw new TypeError(`cache '${alias}': ${unknownOption}`);
  // Asked of the class that declares it: a subclass of a backend may make its location and options
  // in its constructor (its own check runs there). Optional: a backend may extend another copy of
  // cachegrain's BaseCache, without it.
  const declared = Object.hasOwn(Backend, 'locationProblem') ? (Backend as { locationProblem?: (params: CacheParams<any>) => string | undefined }) : undefined;
  const misplaced = declared?.locationProblem?.({ location: entry.location, options: entry.options });
  if (misplaced !== undefined) throw new TypeError(`cache '${alias}': ${misplaced}`);
  let keyFunction = entry.keyFunction;
  if (typeof keyFunction === 'string') {
    const loaded = loadExport(alias, keyFunction, 'keyFunction');
    if (typeof loaded !== 'function') throw new TypeError(`cache '${alias}': keyFunction '${keyFunction}' is not a function (got ${describe(loaded)})`);
    keyFunction = loaded as KeyFunction;
  }
  const { purge = [], ...params } = entry;
  return { Backend, params: { ...params, alias, keyFunction }, purge };
}

function resolveBackend(alias: string, backend: unknown): BackendClass {
  if (typeof backend === 'string' && Object.hasOwn(BUILTIN_BACKENDS, backend)) return BUILTIN_BACKENDS[backend]!;
  if (typeof backend !== 'function' && (typeof backend !== 'string' || !backend.includes('#'))) {
    throw new InvalidCacheBackendError(
      `Unknown backend ${typeof backend === 'string' ? `'${backend}'` : String(backend)} for cache '${alias}': ` +
        `use one of ${Object.keys(BUILTIN_BACKENDS).join(', ')}, a class extending BaseCache, or 'module#ExportName'`,
      { alias, backend: String(backend) },
    );
  }
  const loaded = typeof backend === 'string' ? loadExport(alias, backend, 'backend') : backend;
  // Duck-typed rather than instanceof: a module may extend another copy of cachegrain's BaseCache.
  if (typeof loaded !== 'function' || typeof loaded.prototype?.getMany !== 'function' || typeof loaded.prototype?.makeKey !== 'function') {
    const named = typeof backend === 'string' ? `'${backend}'` : `class ${(backend as { name?: string }).name || '(anonymous)'}`;
    throw new InvalidCacheBackendError(`Backend ${named} for cache '${alias}' is not a class extending BaseCache`, { alias, backend: String(named) });
  }
  return loaded as BackendClass;
}

/** Loads 'module-or-path#ExportName' (the export defaults to `default`). */
function loadExport(alias: string, specifier: string, what: string): unknown {
  const [modulePath, exportName = 'default'] = specifier.split('#');
  let loaded: Record<string, unknown>;
  try {
    loaded = requireFromApp(modulePath!);
  } catch (error) {
    throw new InvalidCacheBackendError(`Could not find ${what} '${specifier}' for cache '${alias}': ${(error as Error).message}`, {
      alias,
      backend: specifier,
      cause: error,
    });
  }
  if (!(exportName in loaded)) {
    throw new InvalidCacheBackendError(`Could not find ${what} '${specifier}' for cache '${alias}': the module has no export '${exportName}'`, {
      alias,
      backend: specifier,
    });
  }
  return loaded[exportName];
}

/**
 * Closes the replaced caches. A failure does not reject the new configuration: each cache reports its
 * own through `reportError` (its `error` event, else its logger), as it reports every other failure.
 */
async function closeQuietly(instances: BaseCache[]): Promise<void> {
  const results = await Promise.allSettled(instances.map((instance) => instance.close()));
  results.forEach((result, i) => {
    if (result.status === 'fulfilled') return;
    const reason: unknown = result.reason;
    const message = reason instanceof Error ? reason.message : String(reason);
    instances[i]!.reportError(new Error(`closing the replaced cache failed: ${message}`, { cause: reason }));
  });
}
