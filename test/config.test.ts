import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nunjucks from 'nunjucks';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { installCacheTag, renderString } from '../src/engines/nunjucks.js';
import {
  BaseCache,
  cache,
  caches,
  configureCaches,
  DummyCache,
  type Entry,
  FileBasedCache,
  InvalidCacheBackendError,
  invalidateTags,
  LocMemCache,
} from '../src/index.js';

const filesRoot = mkdtempSync(join(tmpdir(), 'cachegrain-config-'));
const filesLocation = join(filesRoot, 'files');
afterAll(() => rmSync(filesRoot, { recursive: true, force: true }));
const LIBERAL = `${process.cwd()}/fixtures/backends/liberal.mjs`;

afterEach(async () => {
  await configureCaches({ default: { backend: 'locmem' } });
});

/** A custom backend: the six primitives, the base does the rest. */
class MapCache extends BaseCache<unknown> {
  static closed = 0;
  private readonly map = new Map<string, Entry<unknown> & { expiresAt: number | null }>();
  constructor(params = {}) {
    super(params, { encode: (v) => structuredClone(v), decode: (p) => structuredClone(p) });
  }
  protected read(keys: string[]) {
    const found = new Map<string, Entry<unknown>>();
    for (const key of keys) {
      const entry = this.map.get(key);
      if (entry && !this.isExpired(entry.expiresAt)) found.set(key, entry);
    }
    return found;
  }
  protected write(entries: Array<[string, unknown]>, expiresAt: number | null) {
    for (const [key, payload] of entries) this.map.set(key, { payload, expiresAt });
    return [];
  }
  protected insert(key: string, payload: unknown, expiresAt: number | null) {
    if (this.read([key]).size > 0) return false;
    this.map.set(key, { payload, expiresAt });
    return true;
  }
  protected remove(keys: string[]) {
    return keys.filter((key) => this.read([key]).size > 0 && this.map.delete(key)).length;
  }
  protected retime(key: string, expiresAt: number | null) {
    const entry = this.read([key]).get(key) as { expiresAt: number | null } | undefined;
    if (entry) entry.expiresAt = expiresAt;
    return entry !== undefined;
  }
  protected removeAll() {
    this.map.clear();
  }
  protected override disconnect() {
    MapCache.closed++;
  }
}

describe('configureCaches / caches', () => {
  it('gives an in-memory default with no configuration', async () => {
    expect(caches.get('default')).toBeInstanceOf(LocMemCache);
    await cache.set('k', 'v');
    expect(await caches.get('default').get('k')).toBe('v');
  });

  it('returns the same instance for an alias on every call', () => {
    configureCaches({ default: { backend: 'locmem' }, other: { backend: 'dummy' } });
    expect(caches.get('other')).toBe(caches.get('other'));
    expect(caches.get('other')).toBeInstanceOf(DummyCache);
    expect(caches.all()).toHaveLength(2);
  });

  it('passes every field to the backend', () => {
    const keyFunction = (key: string, prefix: string, version: number) => `${prefix}/${version}/${key}`;
    configureCaches({
      default: { backend: 'locmem', location: 'cfg', timeout: 60, keyPrefix: 'site', version: 3, keyFunction, options: { maxEntries: 5 } },
      files: { backend: 'filebased', location: filesLocation },
    });
    const c = caches.get('default');
    expect([c.alias, c.defaultTimeout, c.keyPrefix, c.version, c.location]).toEqual(['default', 60, 'site', 3, ['cfg']]);
    expect(c.makeKey('k')).toBe('site/3/k');
    expect((caches.get('files') as FileBasedCache).directory).toBe(filesLocation);
  });

  it('splits a ;- or ,-separated location like a list', () => {
    configureCaches({ default: { backend: MapCache, location: 'a:1; b:2,c:3' } });
    expect(caches.get('default').location).toEqual(['a:1', 'b:2', 'c:3']);
  });

  it('throws InvalidCacheBackendError naming an alias that is not configured', () => {
    expect(() => caches.get('nonexistent')).toThrow(InvalidCacheBackendError);
    expect(() => caches.get('nonexistent')).toThrow("The cache alias 'nonexistent' is not configured (configured: default)");
    try {
      caches.get('nonexistent');
    } catch (error) {
      expect((error as InvalidCacheBackendError).alias).toBe('nonexistent');
    }
  });

  it('throws InvalidCacheBackendError naming an unknown backend, and keeps the configuration it had', async () => {
    configureCaches({ default: { backend: 'locmem', location: 'kept' } });
    await cache.set('still', 'here');
    expect(() => configureCaches({ default: { backend: 'redsi' as never } })).toThrow(InvalidCacheBackendError);
    expect(() => configureCaches({ default: { backend: 'locmem' }, x: { backend: 'redsi' as never } })).toThrow(/Unknown backend 'redsi' for cache 'x'/);
    expect(await cache.get('still')).toBe('here');
  });

  it('requires a default alias', () => {
    expect(() => configureCaches({ other: { backend: 'locmem' } })).toThrow(/'default' cache/);
  });

  it('refuses a bad option value of a backend in configureCaches, naming alias and option', () => {
    expect(() => configureCaches({ default: { backend: 'locmem' }, small: { backend: 'locmem', options: { maxEntries: -5 } } })).toThrow(
      "cache 'small': options.maxEntries must be a non-negative integer (got -5)",
    );
    expect(caches.has('small')).toBe(false);
    expect(caches.get('default')).toBeInstanceOf(LocMemCache);
  });

  it('refuses an option name a built-in backend does not take, naming the closest, and keeps the configuration it had', async () => {
    configureCaches({ default: { backend: 'locmem', location: 'kept-options' } });
    await cache.set('still', 'here');
    const unknown = (backend: string, options: Record<string, unknown>) => () =>
      configureCaches({ default: { backend: 'locmem' }, x: { backend, options } as never });
    expect(unknown('locmem', { maxEntires: 5 })).toThrow("cache 'x': unknown option 'options.maxEntires' (did you mean 'options.maxEntries'?)");
    expect(unknown('filebased', { cullFrequncy: 2 })).toThrow("cache 'x': unknown option 'options.cullFrequncy' (did you mean 'options.cullFrequency'?)");
    expect(unknown('database', { connection: 'sqlite::memory:', readconnection: 'x' })).toThrow(
      "unknown option 'options.readconnection' (did you mean 'options.readConnection'?)",
    );
    expect(unknown('redis', { timeoutMS: 10 })).toThrow("unknown option 'options.timeoutMS' (did you mean 'options.timeoutMs'?)");
    expect(unknown('memcached', { failopen: true })).toThrow("unknown option 'options.failopen' (did you mean 'options.failOpen'?)");
    expect(unknown('redis', { l1: { maxEntrys: 5 } })).toThrow("cache 'x': unknown option 'options.l1.maxEntrys' (did you mean 'options.l1.maxEntries'?)");
    expect(unknown('memcached', { l1: { bsu: 'redis://x' } })).toThrow("cache 'x': unknown option 'options.l1.bsu' (did you mean 'options.l1.bus'?)");
    expect(unknown('memcached', { verbose: true })).toThrow(/unknown option 'options\.verbose'; the options are 'options\.timeoutMs', /);
    expect(unknown('dummy', { anything: 1 })).not.toThrow();
    configureCaches({ default: { backend: 'locmem', location: 'kept-options' } });
    expect(await cache.get('still')).toBe('here');
  });

  it('checks option names for a custom backend that lists them, and takes any for one that does not', () => {
    class Listed extends MapCache {
      static override readonly optionNames = ['depth'];
    }
    expect(() => configureCaches({ default: { backend: Listed, options: { dept: 1 } } })).toThrow(
      "cache 'default': unknown option 'options.dept' (did you mean 'options.depth'?)",
    );
    expect(() => new Listed({ options: { dept: 1 } })).toThrow("cache 'default': unknown option 'options.dept'");
    expect(() => configureCaches({ default: { backend: MapCache, options: { dept: 1 } } })).not.toThrow();
  });

  it('invalidateTags from cachegrain invalidates the tags in every configured cache', async () => {
    configureCaches({ default: { backend: 'locmem', location: 'tags-a' }, other: { backend: 'locmem', location: 'tags-b' }, off: { backend: 'dummy' } });
    await cache.set('k', 1, { tags: ['item:3'] });
    await caches.get('other').set('k', 2, { tags: ['item:3'] });
    await caches.get('other').set('kept', 3, { tags: ['item:4'] });
    await invalidateTags(['item:3']);
    expect(await cache.get('k')).toBeUndefined();
    expect(await caches.get('other').get('k')).toBeUndefined();
    expect(await caches.get('other').get('kept')).toBe(3);
  });

  it('accepts a class extending BaseCache as a custom backend', async () => {
    configureCaches({ default: { backend: MapCache, timeout: 10 } });
    const custom = caches.get('default');
    expect(custom).toBeInstanceOf(MapCache);
    await custom.set('n', 1);
    expect(await custom.incr('n', 4)).toBe(5);
    expect(await custom.getOrSet('g', () => 'made')).toBe('made');
    expect(await custom.incrVersion('n')).toBe(2);
    expect(await custom.get('n', undefined, { version: 2 })).toBe(5);
  });

  it("keeps a custom backend's untagged fragments though its codec cannot stamp, and names the codec for a tagged one", async () => {
    configureCaches({ default: { backend: MapCache } });
    const templates = installCacheTag(new nunjucks.Environment());
    let renders = 0;
    const page = "{% cache 60 'plain' %}p{{ count() }}{% endcache %}";
    for (let i = 0; i < 2; i++) expect(await renderString(templates, page, { count: () => ++renders })).toBe('p1');
    await expect(renderString(templates, "{% cache 60 'tagged' tags='a' %}t{% endcache %}", {})).rejects.toThrow(
      "cache 'default': this backend's codec cannot store tags, stale windows or contexts",
    );
  });

  it("stores a custom backend's setMany with an empty tag list though its codec cannot stamp, and names the codec for a tagged one", async () => {
    configureCaches({ default: { backend: MapCache } });
    const custom = caches.get('default');
    expect(await custom.setMany({ a: 1, b: 2 }, { timeout: 60, tags: [] })).toEqual([]);
    expect(Object.fromEntries(await custom.getMany(['a', 'b']))).toEqual({ a: 1, b: 2 });
    await expect(custom.setMany({ c: 3 }, { tags: ['t'] })).rejects.toThrow(
      "cache 'default': this backend's codec cannot store tags, stale windows or contexts",
    );
    expect(await custom.get('c')).toBeUndefined();
  });

  it("loads a backend and a key function given as 'module#Export'", async () => {
    configureCaches({ default: { backend: `${LIBERAL}#LiberalCache`, location: 'liberal', keyFunction: `${LIBERAL}#upperKeys` } });
    const liberal = caches.get('default');
    expect(liberal.constructor.name).toBe('LiberalCache');
    expect(liberal.makeKey('abc')).toBe('|1|ABC');
    const warnings: Error[] = [];
    const listen = (warning: Error) => warnings.push(warning);
    process.on('warning', listen);
    await liberal.set('key with spaces', 'ok');
    await new Promise((resolve) => setImmediate(resolve));
    process.off('warning', listen);
    expect(warnings).toEqual([]);
    expect(await liberal.get('key with spaces')).toBe('ok');
  });

  it('uses the default export when the specifier names none', () => {
    configureCaches({ default: { backend: `${LIBERAL}#default` } });
    expect(caches.get('default').constructor.name).toBe('LiberalCache');
  });

  it('names the specifier when a module or export cannot be found, in configureCaches', () => {
    const configure = (backend: string) => () => configureCaches({ default: { backend: 'locmem' }, x: { backend: backend as `${string}#${string}` } });
    expect(configure('./no/such/module.js#Thing')).toThrow(/Could not find backend '\.\/no\/such\/module\.js#Thing' for cache 'x'/);
    expect(configure(`${LIBERAL}#Nope`)).toThrow(/the module has no export 'Nope'/);
    expect(configure(`${LIBERAL}#upperKeys`)).toThrow(/is not a class extending BaseCache/);
  });

  it('closes the instances a new configuration replaces', async () => {
    MapCache.closed = 0;
    configureCaches({ default: { backend: MapCache } });
    const first = caches.get('default');
    await configureCaches({ default: { backend: MapCache } });
    expect(MapCache.closed).toBe(1);
    expect(caches.get('default')).not.toBe(first);
  });

  it('reports a replaced cache that fails to close as its own error, and still takes the new configuration', async () => {
    class FailingClose extends MapCache {
      protected override disconnect(): never {
        throw new Error('the socket is gone');
      }
    }
    configureCaches({ default: { backend: FailingClose } });
    const replaced = caches.get('default');
    const heard: Error[] = [];
    replaced.on('error', (error: Error) => heard.push(error));
    await configureCaches({ default: { backend: 'dummy' } });
    expect(heard.map((error) => error.message)).toEqual(['closing the replaced cache failed: the socket is gone']);
    expect((heard[0]!.cause as Error).message).toBe('the socket is gone');
    expect(caches.get('default')).toBeInstanceOf(DummyCache);
  });

  it('closeAll closes every built cache, which is built afresh on next use', async () => {
    MapCache.closed = 0;
    configureCaches({ default: { backend: MapCache }, b: { backend: MapCache }, unused: { backend: MapCache } });
    const before = caches.get('default');
    caches.get('b');
    await caches.closeAll();
    expect(MapCache.closed).toBe(2);
    expect(caches.get('default')).not.toBe(before);
  });

  it('cache follows the default alias across reconfiguration', async () => {
    configureCaches({ default: { backend: 'dummy' } });
    await cache.set('k', 1);
    expect(await cache.get('k')).toBeUndefined();
    configureCaches({ default: { backend: 'locmem', location: 'follow' } });
    await cache.set('k', 1);
    expect(await cache.get('k')).toBe(1);
    expect(cache.alias).toBe('default');
  });
});

describe('bad input keeps everything else', () => {
  it('a refused value leaves other entries and the cache working', async () => {
    configureCaches({ default: { backend: 'locmem', location: 'bad-input' } });
    await cache.set('good', { ok: true });
    await expect(cache.set('bad', undefined)).rejects.toThrow(
      "cache 'default': cannot store the value for key ':1:bad': undefined cannot be stored (store null instead)",
    );
    await expect(cache.set({} as never, 1)).rejects.toThrow('cache key must be a string or a number (got {})');
    expect(await cache.get('good')).toEqual({ ok: true });
    await cache.set('after', 2);
    expect(await cache.get('after')).toBe(2);
  });

  it('names the cache in a bad timeout or version', () => {
    expect(() => new LocMemCache({ alias: 'mem', timeout: 'soon' as never })).toThrow(
      "cache 'mem': timeout must be a finite number of seconds or null (got 'soon')",
    );
    expect(() => new LocMemCache({ alias: 'mem', version: 1.5 })).toThrow("cache 'mem': version must be an integer (got 1.5)");
  });
});

describe('configureCaches checks every value before it replaces anything', () => {
  /** The error configureCaches throws for one alias 'x' configured as `entry`, the default kept working. */
  async function refusal(entry: unknown): Promise<Error> {
    await configureCaches({ default: { backend: 'locmem', location: 'kept' } });
    await cache.set('keep', 'still here');
    let error: Error | undefined;
    try {
      await configureCaches({ default: { backend: 'locmem', location: 'kept' }, x: entry as never });
    } catch (thrown) {
      error = thrown as Error;
    }
    expect(error, 'configureCaches resolved').toBeDefined();
    expect(caches.has('x')).toBe(false);
    expect(await cache.get('keep')).toBe('still here');
    return error!;
  }

  it.each([
    [{ backend: 'locmem', timeout: '60' }, "cache 'x': timeout must be a finite number of seconds or null (got '60')"],
    [{ backend: 'locmem', options: { maxEntries: '1000' } }, "cache 'x': options.maxEntries must be a non-negative integer (got '1000')"],
    // A server backend's values too, nested ones included: refused here rather than when the cache is first used.
    [
      { backend: 'redis', location: 'redis://127.0.0.1:1', options: { timeoutMs: 0 } },
      "cache 'x': options.timeoutMs must be a positive number of milliseconds (got 0)",
    ],
    [{ backend: 'redis', location: 'redis://127.0.0.1:1', options: { cluster: 'yes' } }, "cache 'x': options.cluster must be a boolean (got 'yes')"],
    [
      { backend: 'memcached', location: '127.0.0.1:1', options: { retryDelayMs: -1 } },
      "cache 'x': options.retryDelayMs must be a non-negative number of milliseconds (got -1)",
    ],
    [
      { backend: 'memcached', location: '127.0.0.1:1', options: { l1: { maxEntries: 0 } } },
      "cache 'x': options.l1.maxEntries must be a positive integer (got 0)",
    ],
    [
      { backend: 'memcached', location: '127.0.0.1:1', options: { l1: null } },
      "cache 'x': options.l1 must be an object such as { maxEntries: 10000, timeout: 30 } (got null)",
    ],
    [
      { backend: 'database', location: 't', options: { connection: 'sqlite::memory:', createTable: 'yes' } },
      "cache 'x': options.createTable must be a boolean (got 'yes')",
    ],
    [{ backend: 'locmem', keyPrefix: 5 }, "cache 'x': keyPrefix must be a string (got 5)"],
    [{ backend: 'locmem', version: 'v2' }, "cache 'x': version must be an integer (got 'v2')"],
    [{ backend: 'locmem', logger: {} }, "cache 'x': logger must have a warn(message) method, as console does (got {})"],
    [{ backend: 'locmem', location: 42 }, "cache 'x': location must be a string or a list of strings (got 42)"],
    [
      { backend: 'locmem', keyFunction: 7 },
      "cache 'x': keyFunction must be a function (key, keyPrefix, version) => string or a 'module#exportName' of one (got 7)",
    ],
  ])('refuses %j with a TypeError naming the alias and the setting', async (entry, message) => {
    const error = await refusal(entry);
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe(message);
  });

  it('refuses a module specifier that does not load, and a class that is no cache, before anything is replaced', async () => {
    const missing = await refusal({ backend: './nothere.cjs#X' });
    expect(missing).toBeInstanceOf(InvalidCacheBackendError);
    expect(missing.message).toMatch(/^Could not find backend '\.\/nothere\.cjs#X' for cache 'x': /);
    expect((missing as InvalidCacheBackendError).alias).toBe('x');
    const notACache = await refusal({ backend: class NotACache {} });
    expect(notACache).toBeInstanceOf(InvalidCacheBackendError);
    expect(notACache.message).toBe("Backend class NotACache for cache 'x' is not a class extending BaseCache");
    const missingKeyFunction = await refusal({ backend: 'locmem', keyFunction: './nothere.cjs#make' });
    expect(missingKeyFunction.message).toMatch(/^Could not find keyFunction '\.\/nothere\.cjs#make' for cache 'x': /);
  });

  it('a cache built directly checks its settings with the same words', () => {
    expect(() => new LocMemCache({ alias: 'd', timeout: '60' as never })).toThrow("cache 'd': timeout must be a finite number of seconds or null (got '60')");
    expect(() => new LocMemCache({ alias: 'd', location: 42 as never })).toThrow("cache 'd': location must be a string or a list of strings (got 42)");
  });
});
