/**
 * Every options object a user passes is checked when it is given: a misspelt name is a
 * TypeError naming it and the closest valid name, never an option silently left at its default.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Eta } from 'eta';
import Handlebars from 'handlebars';
import nunjucks from 'nunjucks';
import { afterEach, describe, expect, it } from 'vitest';
import { cachePlugin } from '../src/engines/eta.js';
import {
  cacheControl,
  cacheDashboard,
  cacheMiddleware,
  cachePage,
  conditionalGet,
  fetchFromCacheMiddleware,
  updateCacheMiddleware,
} from '../src/frameworks/express.js';
import { expressEngine as handlebarsExpressEngine, installCacheHelper } from '../src/engines/handlebars.js';
import { installCacheTag } from '../src/engines/nunjucks.js';
import { cache, caches, configureCaches, invalidateTags } from '../src/index.js';
import { defineCacheContext, getCacheKey, invalidatePage, learnCacheKey } from '../src/http/index.js';
import { errorOf } from './setup/error-of.js';
import { cacheControlSent, cacheStatesSent } from './setup/cache-control-sent.js';

afterEach(async () => {
  await configureCaches({ default: { backend: 'locmem' } });
});

const PAGE_KEY_LIST = "'options.cache', 'options.keyPrefix'";
const request = { method: 'GET', url: '/x', headers: { host: 'example.com' } } as unknown as IncomingMessage;
const response = { getHeader: () => undefined } as unknown as ServerResponse;

/** The message of what `call` throws, or of the promise it returns rejecting. */
async function messageOf(call: () => unknown): Promise<string> {
  try {
    await call();
  } catch (error) {
    expect(error).toBeInstanceOf(TypeError);
    return (error as Error).message;
  }
  throw new Error('nothing was thrown');
}

const PAGE_CACHE_OPTIONS = [
  'cache',
  'keyPrefix',
  'seconds',
  'statusHeader',
  'debug',
  'maxBodyBytes',
  'staleWhileRevalidate',
  'staleIfError',
  'tagHeader',
  'lock',
  'lockTimeoutMs',
  'browserMaxAge',
  'holes',
  'holesInOrder',
  'policies',
  'secret',
  'compress',
];
const listed = (names: string[], where = 'options.') => names.map((name) => `'${where}${name}'`).join(', ');
const PAGE_CACHE_LIST = listed(PAGE_CACHE_OPTIONS);
const CACHE_PAGE_LIST = listed(PAGE_CACHE_OPTIONS.filter((name) => name !== 'seconds'));

describe('an options object with a misspelt name', () => {
  const cases: Array<[string, () => unknown, string]> = [
    [
      'a top-level field of a cache',
      () => configureCaches({ default: { backend: 'locmem', timout: 60 } as never }),
      "cache 'default': unknown option 'timout' (did you mean 'timeout'?); the options are " +
        "'backend', 'location', 'timeout', 'keyPrefix', 'version', 'keyFunction', 'logger', 'options', 'purge'",
    ],
    [
      'options.l1 of a cache',
      () => configureCaches({ default: { backend: 'redis', options: { l1: { maxEntires: 5 } as never } } }),
      "cache 'default': unknown option 'options.l1.maxEntires' (did you mean 'options.l1.maxEntries'?); " +
        "the options are 'options.l1.maxEntries', 'options.l1.timeout', 'options.l1.bus'",
    ],
    [
      'cacheMiddleware',
      () => cacheMiddleware({ second: 60 } as never),
      `cacheMiddleware: unknown option 'options.second' (did you mean 'options.seconds'?); the options are ${PAGE_CACHE_LIST}`,
    ],
    [
      'cacheMiddleware, stale-while-revalidate',
      () => cacheMiddleware({ staleWhileRevalidte: 60 } as never),
      `cacheMiddleware: unknown option 'options.staleWhileRevalidte' (did you mean 'options.staleWhileRevalidate'?); the options are ${PAGE_CACHE_LIST}`,
    ],
    [
      'updateCacheMiddleware',
      () => updateCacheMiddleware({ keyprefix: 'a' } as never),
      `updateCacheMiddleware: unknown option 'options.keyprefix' (did you mean 'options.keyPrefix'?); the options are ${PAGE_CACHE_LIST}`,
    ],
    [
      'fetchFromCacheMiddleware',
      () => fetchFromCacheMiddleware({ chache: 'default' } as never),
      `fetchFromCacheMiddleware: unknown option 'options.chache' (did you mean 'options.cache'?); the options are ${PAGE_CACHE_LIST}`,
    ],
    [
      'cachePage',
      () => cachePage(300, { keyPrefx: 'a' } as never),
      `cachePage: unknown option 'options.keyPrefx' (did you mean 'options.keyPrefix'?); the options are ${CACHE_PAGE_LIST}`,
    ],
    [
      'cachePage, which takes its seconds as its first argument',
      () => cachePage(300, { seconds: 60 } as never),
      `cachePage: unknown option 'options.seconds'; the options are ${CACHE_PAGE_LIST}`,
    ],
    ['cacheControl', () => cacheControl({ maxAgee: 60 }), "cacheControl: unknown directive 'maxAgee' (did you mean 'maxAge'?)"],
    ['cacheControl, s-maxage', () => cacheControl({ sMaxAge: 60 }), "cacheControl: unknown directive 'sMaxAge' (did you mean 'sMaxage'?)"],
    [
      'conditionalGet',
      () => conditionalGet({ maxBodyByte: 10 } as never),
      "conditionalGet: unknown option 'options.maxBodyByte' (did you mean 'options.maxBodyBytes'?); the options are 'options.maxBodyBytes'",
    ],
    [
      'cacheDashboard',
      () => cacheDashboard({ action: true } as never),
      "cacheDashboard: unknown option 'options.action' (did you mean 'options.actions'?); the options are " +
        "'options.caches', 'options.actions', 'options.title', 'options.top'",
    ],
    [
      'installCacheTag (nunjucks)',
      () => installCacheTag(new nunjucks.Environment(), { tagname: 'c' } as never),
      "installCacheTag: unknown option 'options.tagname' (did you mean 'options.tagName'?); the options are 'options.tagName', 'options.digests'",
    ],
    [
      'installCacheHelper (handlebars)',
      () => installCacheHelper(Handlebars.create(), { helpername: 'c' } as never),
      "installCacheHelper: unknown option 'options.helpername' (did you mean 'options.helperName'?); the options are 'options.helperName', 'options.digests'",
    ],
    [
      'expressEngine (handlebars)',
      () => handlebarsExpressEngine(Handlebars.create(), { partialDir: 'views' } as never),
      "expressEngine: unknown option 'options.partialDir' (did you mean 'options.partialsDir'?); the options are 'options.partialsDir'",
    ],
    [
      'cachePlugin (eta)',
      () => new Eta({ plugins: [cachePlugin({ tagNmae: 'c' } as never)] }),
      "cachePlugin: unknown option 'options.tagNmae' (did you mean 'options.tagName'?); the options are 'options.tagName', 'options.digests'",
    ],
    [
      "a cache's invalidateTags",
      () => cache.invalidateTags(['a'], { sfot: true } as never),
      "cache 'default': invalidateTags: unknown option 'options.sfot' (did you mean 'options.soft'?); the options are 'options.soft', 'options.waitForEdges'",
    ],
    [
      'invalidateTags of every cache',
      () => invalidateTags(['a'], { sfot: true } as never),
      "invalidateTags: unknown option 'options.sfot' (did you mean 'options.soft'?); the options are 'options.soft', 'options.waitForEdges'",
    ],
  ];
  it.each(cases)('%s is a TypeError naming it and the closest valid name', async (_what, call, message) => {
    expect(await messageOf(call)).toBe(message);
  });

  it.each([
    ['actions', { actions: 'yes' }, "cacheDashboard: options.actions must be a boolean (got 'yes')"],
    ['caches', { caches: 'default' }, "cacheDashboard: options.caches must be a list of cache aliases (got 'default')"],
    ['title', { title: 3 }, 'cacheDashboard: options.title must be a string (got 3)'],
    ['top', { top: -1 }, 'cacheDashboard: options.top must be a non-negative integer (got -1)'],
  ])('cacheDashboard refuses a bad value of options.%s, naming it', async (_name, options, message) => {
    expect(await messageOf(() => cacheDashboard(options as never))).toBe(message);
  });

  const WRITE_LIST = listed(['timeout', 'version', 'tags', 'staleWhileRevalidate', 'staleIfError', 'tagsAsOf']);
  const VERSION_LIST = "'options.version'";
  const TOUCH_LIST = listed(['timeout', 'version']);
  const calls: Array<[string, () => unknown, string]> = [
    [
      'set',
      () => cache.set('k', 1, { timout: 60 } as never),
      `cache 'default': set: unknown option 'options.timout' (did you mean 'options.timeout'?); the options are ${WRITE_LIST}`,
    ],
    [
      'add',
      () => cache.add('k', 1, { tgas: ['a'] } as never),
      `cache 'default': add: unknown option 'options.tgas' (did you mean 'options.tags'?); the options are ${WRITE_LIST}`,
    ],
    [
      'getOrSet',
      () => cache.getOrSet('k', () => 1, { staleWhileRevalidte: 5 } as never),
      `cache 'default': getOrSet: unknown option 'options.staleWhileRevalidte' (did you mean 'options.staleWhileRevalidate'?); the options are ${WRITE_LIST}`,
    ],
    [
      'setMany',
      () => cache.setMany({ k: 1 }, { verison: 2 } as never),
      `cache 'default': setMany: unknown option 'options.verison' (did you mean 'options.version'?); the options are ${WRITE_LIST}`,
    ],
    [
      'touch',
      () => cache.touch('k', { timeot: 5 } as never),
      `cache 'default': touch: unknown option 'options.timeot' (did you mean 'options.timeout'?); the options are ${TOUCH_LIST}`,
    ],
    [
      'touch given tags (an entry keeps its own)',
      () => cache.touch('k', { timeout: 5, tags: ['a'] } as never),
      `cache 'default': touch: unknown option 'options.tags'; the options are ${TOUCH_LIST}`,
    ],
    [
      'touch given a stale window (an entry keeps its own)',
      () => cache.touch('k', { staleWhileRevalidate: 5 } as never),
      `cache 'default': touch: unknown option 'options.staleWhileRevalidate'; the options are ${TOUCH_LIST}`,
    ],
    [
      'get',
      () => cache.get('k', undefined, { verison: 2 } as never),
      `cache 'default': get: unknown option 'options.verison' (did you mean 'options.version'?); the options are ${VERSION_LIST}`,
    ],
    [
      'getMany',
      () => cache.getMany(['k'], { verion: 2 } as never),
      `cache 'default': getMany: unknown option 'options.verion' (did you mean 'options.version'?); the options are ${VERSION_LIST}`,
    ],
    ['delete', () => cache.delete('k', { timeout: 2 } as never), `cache 'default': delete: unknown option 'options.timeout'; the options are ${VERSION_LIST}`],
    [
      'hasKey',
      () => cache.hasKey('k', { vrsion: 2 } as never),
      `cache 'default': hasKey: unknown option 'options.vrsion' (did you mean 'options.version'?); the options are ${VERSION_LIST}`,
    ],
  ];
  it.each(calls)("%s's options object is checked as every other one is, naming the method", async (_method, call, message) => {
    expect(await messageOf(call)).toBe(message);
  });

  it('checks a read or write whose options are all known as before, and stores nothing for a refused write', async () => {
    await cache.set('known', 'v', { timeout: 60, version: 2, tags: ['t'] });
    expect(await cache.get('known', undefined, { version: 2 })).toBe('v');
    await expect(cache.set('refused', 'v', { timeout: 60, tagz: ['t'] } as never)).rejects.toThrow(TypeError);
    expect(await cache.hasKey('refused')).toBe(false);
  });

  it('takes every name the page cache documents, browserMaxAge included', async () => {
    const every = Object.fromEntries(PAGE_CACHE_OPTIONS.map((name) => [name, undefined]));
    const { seconds: _seconds, ...ofCachePage } = every;
    // Each built with every name caches a page: the first request renders it, the second is served it.
    for (const middleware of [cacheMiddleware(every), cachePage(300, ofCachePage)]) {
      expect(await cacheStatesSent(middleware, 2)).toEqual(['MISS', 'HIT']);
    }
  });

  it('lets cacheControl send a directive that is no slip of a known one, in any spelling of a known one', async () => {
    const header = await cacheControlSent(cacheControl({ 'x-edge-ttl': 5, max_age: 60, s_maxage: 30, mustRevalidate: true }));
    expect(header.split(', ').sort()).toEqual(['max-age=60', 'must-revalidate', 's-maxage=30', 'x-edge-ttl=5']);
  });

  it('leaves the configuration as it was when a nested option is misspelt: caches.get answers the old instances', async () => {
    configureCaches({ default: { backend: 'locmem', location: 'kept-l1' }, other: { backend: 'locmem', location: 'kept-other' } });
    const before = caches.get('default');
    await cache.set('still', 'here');
    expect(() => configureCaches({ default: { backend: 'redis', location: 'redis://127.0.0.1:1', options: { l1: { maxEntires: 5 } as never } } })).toThrow(
      TypeError,
    );
    expect(caches.get('default')).toBe(before);
    expect(caches.has('other')).toBe(true);
    expect(await cache.get('still')).toBe('here');
  });

  it.each([
    [
      'defineCacheContext',
      () => defineCacheContext('z.typo', () => '', { vari: 'Cookie' } as never),
      "defineCacheContext('z.typo'): unknown option 'options.vari' (did you mean 'options.vary'?); the options are 'options.vary'",
    ],
    [
      'invalidatePage',
      () => invalidatePage('/x', { cahce: 'pages' } as never),
      `invalidatePage: unknown option 'options.cahce' (did you mean 'options.cache'?); the options are 'options.cache', 'options.waitForEdges'`,
    ],
    [
      'invalidatePage given a keyPrefix (its tags name a URL whatever the prefix)',
      () => invalidatePage('/x', { keyPrefix: 'site' } as never),
      "invalidatePage: unknown option 'options.keyPrefix'; the options are 'options.cache', 'options.waitForEdges'",
    ],
    [
      'getCacheKey',
      () => getCacheKey(request, { keyPrefx: 'a' } as never),
      `getCacheKey: unknown option 'options.keyPrefx' (did you mean 'options.keyPrefix'?); the options are ${PAGE_KEY_LIST}, 'options.method'`,
    ],
    [
      'learnCacheKey',
      () => learnCacheKey(request, response, { timout: 5 } as never),
      `learnCacheKey: unknown option 'options.timout' (did you mean 'options.timeout'?); the options are ${PAGE_KEY_LIST}, 'options.timeout'`,
    ],
  ])('%s checks its options object too', async (_name, call, message) => {
    const error = await errorOf(call);
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe(message);
  });

  it.each([
    [{ maxAge: 'x' }, "cacheControl: directive maxAge must be a non-negative number of seconds (got 'x')"],
    [{ 's-maxage': '60' }, "cacheControl: directive s-maxage must be a non-negative number of seconds (got '60')"],
    [{ staleWhileRevalidate: true }, 'cacheControl: directive staleWhileRevalidate must be a non-negative number of seconds (got true)'],
    [{ public: 'yes' }, "cacheControl: directive public must be a boolean (got 'yes')"],
    [{ noStore: 1 }, 'cacheControl: directive noStore must be a boolean (got 1)'],
    [{ noCache: 5 }, 'cacheControl: directive noCache must be a boolean or header field names (got 5)'],
  ])('cacheControl(%j) is refused: a number directive takes a number of seconds, a flag a boolean', (directives, message) => {
    expect(() => cacheControl(directives as never)).toThrow(new TypeError(message));
  });

  it('cacheControl still takes field names for noCache and private, and false to remove a directive', async () => {
    const header = await cacheControlSent(cacheControl({ noCache: 'Set-Cookie', private: 'Authorization', maxAge: 0, public: false }), 'public, max-age=600');
    expect(header.split(', ').sort()).toEqual(['max-age=0', 'no-cache=Set-Cookie', 'private=Authorization']);
  });

  it("does not look inside options.client, the server client's own options", () => {
    expect(() =>
      configureCaches({ default: { backend: 'redis', location: 'redis://127.0.0.1:1', options: { client: { lazyConnect: true, anyName: 1 } as never } } }),
    ).not.toThrow();
  });
});
