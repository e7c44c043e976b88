/**
 * memcached: cachegrain's memcached backend (its own pipelined client, with serialization) against
 * the npm clients `memjs` (binary protocol) and `memcached` (text protocol, a connection pool), each
 * storing the same short string, on one memcached server this benchmark starts and stops.
 */
import { promisify } from 'node:util';
import Memcached from 'memcached';
import memjs from 'memjs';
import { MemcachedCache } from '../src/index.js';
import { startMemcached } from '../test/setup/memcached.js';
import { compare, type Comparison } from './harness.js';

const KEYS = 1000;
const VALUE = 'a short string value, as a page fragment id or a session flag';

export async function run(): Promise<Comparison[]> {
  const server = await startMemcached();
  const cache = new MemcachedCache({ location: server.location, timeout: 3600 });
  const mj = memjs.Client.create(server.location, { logger: { log: () => undefined } });
  const mc = new Memcached(server.location);
  const mcGet = promisify(mc.get.bind(mc)) as (key: string) => Promise<unknown>;
  const mcSet = promisify(mc.set.bind(mc)) as (key: string, value: string, lifetime: number) => Promise<boolean>;
  const mcGetMulti = promisify(mc.getMulti.bind(mc)) as (keys: string[]) => Promise<Record<string, unknown>>;
  const keys = Array.from({ length: KEYS }, (_, i) => `key-${i}`);
  const rawKeys = keys.map((key) => `raw-${key}`);
  const batches = Array.from({ length: KEYS / 100 }, (_, b) => ({ ours: keys.slice(b * 100, b * 100 + 100), raw: rawKeys.slice(b * 100, b * 100 + 100) }));
  await cache.setMany(Object.fromEntries(keys.map((key) => [key, VALUE])));
  for (const key of rawKeys) await mj.set(key, VALUE, { expires: 3600 });

  const results: Comparison[] = [];
  try {
    for (const inFlight of [1, 50]) {
      const options = { inFlight };
      results.push(
        await compare(
          'memcached',
          `get, ${inFlight} in flight`,
          (i) => cache.get(keys[i % KEYS]!),
          'memjs',
          (i) => mj.get(rawKeys[i % KEYS]!),
          options,
        ),
      );
      results.push(
        await compare(
          'memcached',
          `get, ${inFlight} in flight`,
          (i) => cache.get(keys[i % KEYS]!),
          'memcached (npm)',
          (i) => mcGet(rawKeys[i % KEYS]!),
          options,
        ),
      );
      results.push(
        await compare(
          'memcached',
          `set, ${inFlight} in flight`,
          (i) => cache.set(keys[i % KEYS]!, VALUE),
          'memjs',
          (i) => mj.set(rawKeys[i % KEYS]!, VALUE, { expires: 3600 }),
          options,
        ),
      );
      results.push(
        await compare(
          'memcached',
          `set, ${inFlight} in flight`,
          (i) => cache.set(keys[i % KEYS]!, VALUE),
          'memcached (npm)',
          (i) => mcSet(rawKeys[i % KEYS]!, VALUE, 3600),
          options,
        ),
      );
    }
    // memjs has no multi-get: its best is 100 gets at once on its one connection.
    results.push(
      await compare(
        'memcached',
        'getMany(100)',
        (i) => cache.getMany(batches[i % batches.length]!.ours),
        'memjs (100 parallel gets)',
        (i) => Promise.all(batches[i % batches.length]!.raw.map((key) => mj.get(key))),
      ),
    );
    results.push(
      await compare(
        'memcached',
        'getMany(100)',
        (i) => cache.getMany(batches[i % batches.length]!.ours),
        'memcached (npm) getMulti',
        (i) => mcGetMulti(batches[i % batches.length]!.raw),
      ),
    );
  } finally {
    await cache.close();
    mj.close();
    mc.end();
    await server.stop();
  }
  return results;
}
