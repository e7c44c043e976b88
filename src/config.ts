/**
 * Configuration: `configureCaches` takes the aliases, `caches.get(alias)` builds each
 * cache on first use and hands back the same instance afterwards, `cache` is the default alias.
 * Backends given as 'module#Export' are loaded with require(), which also loads ES modules on the
 * Node versions cachegrain supports, so that `caches.get` stays synchronous.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { type BaseCache, type CacheLogger, type CacheParams, INVALIDATE_OPTIONS, type InvalidateOptions } from './core/base.js';
import { BUILTIN_BACKENDS } from './backends/index.js';
import { InvalidCacheBackendError } from './core/errors.js';
import { checkOptionNames, checkOptions, type OptionShape, optionShape } from './options.js';
import type { KeyFunction } from './core/keys.js';
import type { DatabaseOptions } from './backends/database/database.js';
import type { FileBasedOptions } from './backends/filebased.js';
import type { LocMemOptions } from './backends/locmem.js';
import type { MemcachedOptions } from './backends/memcached.js';
import type { RedisOptions } from './backends/redis.js';

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

/** Every field an alias's configuration may give. */
const CACHE_CONFIG_FIELDS = optionShape<CommonConfig & { backend: unknown; options?: unknown }>({
  backend: true,
  location: true,
  timeout: true,
  keyPrefix: true,
  version: true,
  keyFunction: true,
  logger: true,
  options: true,
});

const DEFAULT_CONFIG: CachesConfig = { default: { backend: 'locmem' } };

// Module specifiers resolve the way an import in the application's own code would.
const requireFromApp = createRequire(pathToFileURL(`${process.cwd()}/`).href);

class CacheHandler {
  private config: CachesConfig = DEFAULT_CONFIG;
  private readonly instances = new Map<string, BaseCache>();
  /**
   * Counts the times the instances were let go (`configureCaches`, `closeAll`): whoever keeps an
   * instance got from `get` may keep it while this stays the same.
   * @internal
   */
  generation = 0;

  /** Replaces the configuration; the instances it replaces are closed (the promise settles then). */
  configure(config: CachesConfig): Promise<void> {
    if (config === null || typeof config !== 'object') throw new TypeError('configureCaches needs an object of aliases');
    if (!Object.hasOwn(config, 'default')) {
      throw new InvalidCacheBackendError("You must define a 'default' cache in configureCaches()", { alias: 'default' });
    }
    for (const [alias, entry] of Object.entries(config)) checkBackend(alias, entry);
    const replaced = [...this.instances.values()];
    this.config = { ...config };
    this.instances.clear();
    this.generation++;
    return closeQuietly(replaced);
  }

  /** The instance for an alias, the same object on every call. */
  get<C extends BaseCache = BaseCache>(alias: string): C {
    let instance = this.instances.get(alias);
    if (instance === undefined) {
      if (!Object.hasOwn(this.config, alias)) {
        throw new InvalidCacheBackendError(`The cache alias '${alias}' is not configured (configured: ${Object.keys(this.config).join(', ')})`, { alias });
      }
      instance = build(alias, this.config[alias]!);
      this.instances.set(alias, instance);
    }
    return instance as C;
  }

  /** Whether an alias is configured. */
  has(alias: string): boolean {
    return Object.hasOwn(this.config, alias);
  }

  /** Every configured cache (building those not yet used). */
  all(): BaseCache[] {
    return Object.keys(this.config).map((alias) => this.get(alias));
  }

  /** Closes every cache built so far; they are built afresh on next use. */
  closeAll(): Promise<void> {
    const open = [...this.instances.values()];
    this.instances.clear();
    this.generation++;
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
export async function invalidateTags(tags: Iterable<string>, options?: InvalidateOptions): Promise<void> {
  checkOptions(options, INVALIDATE_OPTIONS, 'invalidateTags');
  const list = [...tags];
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
 * Refuses an unknown backend, and field or option names (nested ones too) the backend does not take,
 * before anything is replaced.
 */
function checkBackend(alias: string, entry: CacheConfig): void {
  const unknownField = entry === null || typeof entry !== 'object' ? undefined : checkOptionNames(entry, CACHE_CONFIG_FIELDS, '');
  if (unknownField !== undefined) throw new TypeError(`cache '${alias}': ${unknownField}`);
  const backend = entry?.backend;
  let known: readonly string[] | OptionShape | undefined;
  if (typeof backend === 'function') {
    known = (backend as { optionNames?: readonly string[] | OptionShape }).optionNames;
  } else if (typeof backend === 'string' && Object.hasOwn(BUILTIN_BACKENDS, backend)) {
    known = (BUILTIN_BACKENDS[backend] as { optionNames?: readonly string[] | OptionShape }).optionNames;
  } else if (typeof backend !== 'string' || !backend.includes('#')) {
    throw new InvalidCacheBackendError(
      `Unknown backend ${typeof backend === 'string' ? `'${backend}'` : String(backend)} for cache '${alias}': ` +
        `use one of ${Object.keys(BUILTIN_BACKENDS).join(', ')}, a class extending BaseCache, or 'module#ExportName'`,
      { alias, backend: String(backend) },
    );
  }
  const options = entry.options;
  const unknownOption = known === undefined || options === null || typeof options !== 'object' ? undefined : checkOptionNames(options, known);
  if (unknownOption !== undefined) throw new TypeError(`cache '${alias}': ${unknownOption}`);
}

function build(alias: string, entry: CacheConfig): BaseCache {
  const Backend = resolveBackend(alias, entry.backend);
  const keyFunction = typeof entry.keyFunction === 'string' ? loadExport(alias, entry.keyFunction, 'keyFunction') : entry.keyFunction;
  return new Backend({ ...entry, alias, keyFunction: keyFunction as KeyFunction | undefined });
}

function resolveBackend(alias: string, backend: string | BackendClass): BackendClass {
  if (typeof backend === 'function') return backend;
  if (Object.hasOwn(BUILTIN_BACKENDS, backend)) return BUILTIN_BACKENDS[backend]!;
  const loaded = loadExport(alias, backend, 'backend');
  // Duck-typed rather than instanceof: a module may extend another copy of cachegrain's BaseCache.
  if (typeof loaded !== 'function' || typeof loaded.prototype?.getMany !== 'function' || typeof loaded.prototype?.makeKey !== 'function') {
    throw new InvalidCacheBackendError(`Backend '${backend}' for cache '${alias}' is not a class extending BaseCache`, { alias, backend });
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
