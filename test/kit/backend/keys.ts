/** The conformance kit: keys memcached would refuse, warned about or refused. */
import { describe, expect, it } from 'vitest';
import { type BaseCache, InvalidCacheKeyError } from '../../../src/index.js';
import type { BackendTraits } from './kit.js';

export function describeKeyValidation(getCache: () => BaseCache, traits: BackendTraits): void {
  describe('keys memcached would refuse', () => {
    const longKey = 'a'.repeat(251);
    const cases = [
      {
        key: longKey,
        message: `Cache key will cause errors if used with memcached: ':1:${longKey}' (longer than 250)`,
        warning: `Cache key will cause errors if used with memcached: ':1:${longKey.slice(0, 97)}…[254 characters]' (longer than 250)`,
      },
      { key: 'key with spaces', message: "Cache key contains characters that will cause errors if used with memcached: ':1:key with spaces'" },
      { key: 'tab\there', message: "Cache key contains characters that will cause errors if used with memcached: ':1:tab\there'" },
    ];
    if (traits.strictKeys) {
      for (const { key, message } of cases) {
        it(`throws InvalidCacheKeyError for ${JSON.stringify(key.slice(0, 20))}`, async () => {
          const cache = getCache();
          for (const operation of keyOperations(key)) {
            const call = operation(cache);
            await expect(call).rejects.toThrow(InvalidCacheKeyError);
            await expect(call).rejects.toThrow(message);
          }
        });
      }
      return;
    }
    for (const { key, message, warning } of cases) {
      it(`warns with CacheKeyWarning for ${JSON.stringify(key.slice(0, 20))} from every operation, once per shape of key`, async () => {
        for (const operation of keyOperations(key)) {
          const cache = await remake(getCache());
          try {
            const warnings = await collectWarnings(async () => {
              await operation(cache).catch(() => undefined);
              await operation(cache).catch(() => undefined);
            });
            expect(warnings).toEqual([{ name: 'CacheKeyWarning', message: warning ?? message }]);
          } finally {
            await cache.close();
          }
        }
      });
    }
    it('shows at most 100 characters of a key, and warns once for keys that differ only in their digits', async () => {
      const cache = await remake(getCache());
      const huge = 'x'.repeat(10 * 1024 * 1024);
      const warnings = await collectWarnings(async () => {
        for (let id = 0; id < 50; id++) await cache.set(`page ${id}`, 1).catch(() => undefined);
        await cache.set(huge, 1).catch(() => undefined);
        await cache.set(huge, 1).catch(() => undefined);
      }).finally(() => cache.close());
      expect(warnings.map((each) => each.message)).toEqual([
        "Cache key contains characters that will cause errors if used with memcached: ':1:page 0'",
        `Cache key will cause errors if used with memcached: ':1:${'x'.repeat(97)}…[10485763 characters]' (longer than 250)`,
      ]);
    });
    it('counts code points, not UTF-16 units, against the 250 limit', async () => {
      const cache = getCache();
      const key = '😀'.repeat(247); // ':1:' + 247 code points = 250 code points, 497 UTF-16 units
      const warnings = await collectWarnings(() => cache.set(key, 1).catch(() => undefined));
      expect(warnings).toEqual([]);
    });
    it('emits no warning for ordinary keys', async () => {
      const cache = getCache();
      expect(await collectWarnings(() => cache.set('ordinary-key_1.2', 1))).toEqual([]);
    });
  });
}

/** A cache like `cache` that has warned about nothing yet. */
async function remake(cache: BaseCache): Promise<BaseCache> {
  const Backend = cache.constructor as new (params: object) => BaseCache;
  return new Backend({ alias: cache.alias, location: cache.location, keyPrefix: cache.keyPrefix, options: cache.options });
}

function keyOperations(key: string): Array<(cache: BaseCache) => Promise<unknown>> {
  return [
    (c) => c.get(key),
    (c) => c.set(key, 1),
    (c) => c.add(key, 1),
    (c) => c.getOrSet(key, 1),
    (c) => c.getMany([key]),
    (c) => c.setMany({ [key]: 1 }),
    (c) => c.delete(key),
    (c) => c.deleteMany([key]),
    (c) => c.touch(key),
    (c) => c.hasKey(key),
    (c) => c.incr(key),
    (c) => c.incrVersion(key),
  ];
}

async function collectWarnings(action: () => Promise<unknown>): Promise<Array<{ name: string; message: string }>> {
  const seen: Array<{ name: string; message: string }> = [];
  const listener = (warning: Error) => seen.push({ name: warning.name, message: warning.message });
  process.on('warning', listener);
  try {
    await action();
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('warning', listener);
  }
  return seen;
}
