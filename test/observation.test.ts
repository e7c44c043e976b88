/**
 * How a cache's operations are observed: each public operation is the class's own method, which
 * goes through one observation function, so that what a subscriber hears is one message per call
 * a caller made, on the channel of the operation the caller called.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import { BaseCache, CACHE_OPERATIONS, type CacheEvent, type CacheKey, channelName, LocMemCache } from '../src/index.js';

/** Every message published on an operation's channel while `calls` runs, in order. */
async function heard(calls: () => Promise<unknown>): Promise<Array<Pick<CacheEvent, 'operation' | 'key' | 'outcome'>>> {
  const events: CacheEvent[] = [];
  const listen = (message: unknown) => events.push(message as CacheEvent);
  for (const operation of CACHE_OPERATIONS) subscribe(channelName(operation), listen);
  try {
    await calls();
  } finally {
    for (const operation of CACHE_OPERATIONS) unsubscribe(channelName(operation), listen);
  }
  return events.map(({ operation, key, outcome }) => ({ operation, key, outcome }));
}

const opened: BaseCache[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((cache) => cache.close()));
});

function locmem(location: string): LocMemCache {
  const cache = new LocMemCache({ location });
  opened.push(cache);
  return cache;
}

describe('the operations of a cache', () => {
  it.each(CACHE_OPERATIONS)('%s is the class own method, named after it, not one written over the prototype', (operation) => {
    const method = Object.getOwnPropertyDescriptor(BaseCache.prototype, operation)?.value as (...args: unknown[]) => unknown;
    expect(method.name).toBe(operation);
    expect(locmem(`own-${operation}`)[operation]).toBe(method);
  });
});

describe('an operation that another builds on', () => {
  it('decr is heard once, on cachegrain:decr, not also as the incr it adds with', async () => {
    const cache = locmem('decr-once');
    await cache.set('stock', 10);
    expect(await heard(() => cache.decr('stock', 3))).toEqual([{ operation: 'decr', key: 'stock', outcome: 'ok' }]);
    expect(await cache.get('stock')).toBe(7);
  });

  it('decrVersion is heard once, on cachegrain:decrVersion, not also as an incrVersion', async () => {
    const cache = locmem('decr-version-once');
    await cache.set('answer', 42, { version: 2 });
    expect(await heard(() => cache.decrVersion('answer', 1, { version: 2 }))).toEqual([{ operation: 'decrVersion', key: 'answer', outcome: 'ok' }]);
    expect(await cache.get('answer', undefined, { version: 1 })).toBe(42);
  });

  it('a failing decr is heard once, as a decr that failed', async () => {
    const cache = locmem('decr-missing');
    expect(await heard(() => cache.decr('missing').catch(() => undefined))).toEqual([{ operation: 'decr', key: 'missing', outcome: 'error' }]);
  });
});

describe('a subclass that overrides an operation', () => {
  class Audited extends LocMemCache {
    readonly asked: CacheKey[] = [];

    override get<T = unknown>(key: CacheKey, defaultValue?: T, options?: { version?: number }): Promise<T | undefined> {
      this.asked.push(key);
      return super.get(key, defaultValue, options);
    }
  }

  it('is heard once per call, as its caller called it, with what it answered', async () => {
    const cache = new Audited({ location: 'audited' });
    opened.push(cache);
    await cache.set('user:1', 'Ada');
    const events = await heard(async () => {
      expect(await cache.get('user:1')).toBe('Ada');
      expect(await cache.get('user:2', 'nobody')).toBe('nobody');
    });
    expect(events).toEqual([
      { operation: 'get', key: 'user:1', outcome: 'hit' },
      { operation: 'get', key: 'user:2', outcome: 'miss' },
    ]);
    expect(cache.asked).toEqual(['user:1', 'user:2']);
  });
});
