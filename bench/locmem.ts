/** locmem against raw lru-cache called through an async function: the limit for an async API. */
import { LRUCache } from 'lru-cache';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { LocMemCache } from '../src/index.js';
import { channelName } from '../src/observation/observation.js';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { enableOpenTelemetry, type OpenTelemetryOptions } from '../src/opentelemetry/index.js';
import { compare, type Comparison, type Surroundings } from './harness.js';

/**
 * The units, each run in a process of its own: the hot sets (the shape: 32-character keys,
 * each call awaited), and the rest (1,000 short keys, values that are copied, what counting and
 * channels cost).
 */
export const units = ['hot-sets', 'small'] as const;

export async function run(unit?: string): Promise<Comparison[]> {
  if (unit === 'hot-sets') return [...(await distinctKeys(10_000)), ...(await distinctKeys(100_000))];
  if (unit === 'small') return small();
  throw new Error(`bench/locmem: runs one unit of ${units.join(', ')}, not ${String(unit)}`);
}

async function small(): Promise<Comparison[]> {
  const cache = new LocMemCache({ location: 'bench', options: { maxEntries: 10_000 } });
  const raw = new LRUCache<string, NonNullable<unknown>>({ max: 10_000 });
  const rawGet = async (key: string) => raw.get(key);
  const rawSet = async (key: string, value: NonNullable<unknown>) => void raw.set(key, value);
  const keys = Array.from({ length: 1000 }, (_, i) => `key-${i}`);
  const object = { id: 42, name: 'A small object', tags: ['a', 'b', 'c'], nested: { ok: true, n: 3.5 } };
  for (const key of keys) {
    await cache.set(key, 'a short string value');
    raw.set(key, 'a short string value');
    await cache.set(`obj-${key}`, object);
    raw.set(`obj-${key}`, structuredClone(object));
  }
  // A value holding bytes: each read copies them out of the stored payload, as structuredClone does.
  const withBytes = { id: 7, body: Buffer.alloc(4096, 120) };
  for (const key of keys) {
    await cache.set(`bytes-${key}`, withBytes);
    raw.set(`bytes-${key}`, structuredClone(withBytes));
  }
  const results: Comparison[] = [];
  results.push(
    await compare(
      'locmem',
      'get, short string',
      (i) => cache.get(keys[i % 1000]!),
      'async lru-cache',
      (i) => rawGet(keys[i % 1000]!),
      { target: 0.5 },
    ),
  );
  results.push(
    await compare(
      'locmem',
      'set, short string',
      (i) => cache.set(keys[i % 1000]!, 'another short string'),
      'async lru-cache',
      (i) => rawSet(keys[i % 1000]!, 'another short string'),
      { target: 0.5 },
    ),
  );
  // What seeing the cache work costs on the hot path. The idle channel: get as published,
  // nobody subscribed, against what get does without its channel (its own answer, as a promise). The
  // counts: get against a cache whose hit and miss counting is taken out (the counting methods
  // without their increments).
  const answerGet = (LocMemCache.prototype as unknown as { answerGet(key: string, missing: undefined, options: undefined): unknown }).answerGet;
  results.push(
    await compare(
      'locmem',
      'get, channel idle (nobody subscribed)',
      (i) => cache.get(keys[i % 1000]!),
      'get without its channel',
      (i) => {
        try {
          return Promise.resolve(answerGet.call(cache, keys[i % 1000]!, undefined, undefined));
        } catch (error) {
          return Promise.reject(error);
        }
      },
      { target: 0.95 },
    ),
  );
  const uncounted = new LocMemCache({ location: 'bench', options: { maxEntries: 10_000 } });
  // The cache's reads count where they judge an entry (its tagged reads' countedValue): this one's judge without counting.
  Object.assign((uncounted as unknown as { batches: object }).batches, {
    countedValue(
      this: { tags: { unstamped(payload: unknown): unknown }; host: { payloads: { readable(made: string, payload: unknown, shared: boolean): unknown } } },
      made: string,
      entry: { payload: unknown } | undefined,
      shared: boolean,
      missing: unknown,
    ) {
      if (entry === undefined) return missing;
      const own = this.tags.unstamped(entry.payload);
      return own === undefined ? missing : this.host.payloads.readable(made, own, shared);
    },
  });
  const stored = await cache.get(keys[0]!);
  if (stored === undefined || (await uncounted.get(keys[0]!)) !== stored || uncounted.stats().hits !== 0)
    throw new Error('the uncounted cache must read as get does, without counting');
  results.push(
    await compare(
      'locmem',
      'get, stats counted',
      (i) => cache.get(keys[i % 1000]!),
      'get, not counted',
      (i) => uncounted.get(keys[i % 1000]!),
      { target: 0.95 },
    ),
  );
  // The raw anchor copies with structuredClone on read, as a cache that hands out copies must.
  results.push(
    await compare(
      'locmem',
      'get, small object',
      (i) => cache.get(`obj-${keys[i % 1000]}`),
      'async lru-cache + structuredClone',
      (i) => rawGet(`obj-${keys[i % 1000]}`).then((v) => structuredClone(v)),
    ),
  );
  results.push(
    await compare(
      'locmem',
      'set, small object',
      (i) => cache.set(`obj-${keys[i % 1000]}`, object),
      'async lru-cache + structuredClone',
      (i) => rawSet(`obj-${keys[i % 1000]}`, structuredClone(object)),
    ),
  );
  results.push(
    await compare(
      'locmem',
      'get, small object (raw anchor, no copy)',
      (i) => cache.get(`obj-${keys[i % 1000]}`),
      'async lru-cache',
      (i) => rawGet(`obj-${keys[i % 1000]}`),
    ),
  );
  results.push(
    await compare(
      'locmem',
      'get, object with a 4 KB Buffer',
      (i) => cache.get(`bytes-${keys[i % 1000]}`),
      'async lru-cache + structuredClone',
      (i) => rawGet(`bytes-${keys[i % 1000]}`).then((v) => structuredClone(v)),
    ),
  );
  // Metrics exporters subscribe for good: a get while something listens, against the same get while nothing does.
  const listener = (): void => undefined;
  results.push(
    await compare(
      'locmem',
      'get, a subscriber on cachegrain:get',
      (i) => cache.get(keys[i % 1000]!),
      'get, nobody subscribed',
      (i) => cache.get(keys[i % 1000]!),
      {
        target: 0.5,
        whileOurs: { enter: () => subscribe(channelName('get'), listener), leave: () => unsubscribe(channelName('get'), listener) },
      },
    ),
  );
  results.push(...(await openTelemetry(cache, keys)));
  return results;
}

/** The `i`th key of a hot set: 32 characters, as an application's keys run (a kind, an id, a part). */
function hotKey(i: number): string {
  const key = `product:${String(i).padStart(8, '0')}:details:summary`;
  if (key.length !== 32) throw new Error(`bench/locmem: hot keys are 32 characters, not ${key.length} (${key})`);
  return key;
}

/**
 * What OpenTelemetry costs a get: with the API installed and the bridge enabled but no SDK
 * registered (the API's no-op providers), against the same get with the bridge off; and with an SDK
 * recording metrics and spans (nothing exported), for a reader to see what turning it on costs.
 */
async function openTelemetry(cache: LocMemCache, keys: string[]): Promise<Comparison[]> {
  let stop: (() => void) | undefined;
  const bridge = (options?: OpenTelemetryOptions): Surroundings => ({
    enter: () => (stop = enableOpenTelemetry(options)),
    leave: () => stop?.(),
  });
  const sdk = { meterProvider: new MeterProvider(), tracerProvider: new BasicTracerProvider() };
  return [
    await compare(
      'locmem',
      'get, @opentelemetry/api installed and the bridge enabled but no SDK registered',
      (i) => cache.get(keys[i % 1000]!),
      'get, bridge not enabled',
      (i) => cache.get(keys[i % 1000]!),
      { target: 0.95, whileOurs: bridge() },
    ),
    await compare(
      'locmem',
      'get, the bridge enabled with an SDK (metrics and spans, nothing exported)',
      (i) => cache.get(keys[i % 1000]!),
      'get, bridge not enabled',
      (i) => cache.get(keys[i % 1000]!),
      { whileOurs: bridge(sdk) },
    ),
  ];
}

/**
 * get and set over a hot set of `count` distinct keys of 32 characters, each read or written in
 * turn and awaited, in a cache that holds them all: every memo on the way must hold that many, or
 * cost nothing when it cannot. The anchor awaits lru-cache behind an async function the same way.
 */
async function distinctKeys(count: number): Promise<Comparison[]> {
  const cache = new LocMemCache({ location: `bench-${count}`, options: { maxEntries: count } });
  const raw = new LRUCache<string, NonNullable<unknown>>({ max: count });
  const rawGet = async (key: string) => raw.get(key);
  const rawSet = async (key: string, value: NonNullable<unknown>) => void raw.set(key, value);
  const keys = Array.from({ length: count }, (_, i) => hotKey(i));
  for (const key of keys) {
    await cache.set(key, 'a short string value');
    raw.set(key, 'a short string value');
  }
  const label = count.toLocaleString('en-US');
  const results = [
    await compare(
      'locmem',
      `get, ${label} distinct keys of 32 characters`,
      (i) => cache.get(keys[i % count]!),
      'async lru-cache',
      (i) => rawGet(keys[i % count]!),
      { target: 0.5 },
    ),
    await compare(
      'locmem',
      `set, ${label} distinct keys of 32 characters`,
      (i) => cache.set(keys[i % count]!, 'another short string'),
      'async lru-cache',
      (i) => rawSet(keys[i % count]!, 'another short string'),
      { target: 0.5 },
    ),
  ];
  await cache.clear();
  return results;
}
