/**
 * memcached: cachegrain's memcached backend (its own pipelined client, with serialization) against
 * the npm clients `memjs` (binary protocol) and `memcached` (text protocol, a connection pool), each
 * storing the same short string, on one memcached server this benchmark starts and stops. With
 * `--against`, the other build's cache does the same work on the same server, under a key prefix of
 * its own, in the same rounds.
 */
import { promisify } from 'node:util';
import Memcached from 'memcached';
import memjs from 'memjs';
import { MemcachedCache } from '../src/index.js';
import { startMemcached } from '../test/setup/memcached.js';
import { builds, compare, type Comparison, otherBuild, thisBuildAgain } from './harness.js';

const KEYS = 1000;
const VALUE = 'a short string value, as a page fragment id or a session flag';

/** Work a cache does in a row, made for ours and for the other build's alike. */
type Work = (cache: MemcachedCache) => (i: number) => Promise<unknown>;

export const loadsOtherBuild = true;

export async function run(): Promise<Comparison[]> {
  const server = await startMemcached();
  const cache = new MemcachedCache({ location: server.location, timeout: 3600 });
  const other = await otherBuild();
  const beside = other && {
    theirs: new other.MemcachedCache({ location: server.location, timeout: 3600, keyPrefix: 'other' }),
    again: new (await thisBuildAgain()).MemcachedCache({ location: server.location, timeout: 3600, keyPrefix: 'again' }),
  };
  const mj = memjs.Client.create(server.location, { logger: { log: () => undefined } });
  const mc = new Memcached(server.location);
  const mcGet = promisify(mc.get.bind(mc)) as (key: string) => Promise<unknown>;
  const mcSet = promisify(mc.set.bind(mc)) as (key: string, value: string, lifetime: number) => Promise<boolean>;
  const mcGetMulti = promisify(mc.getMulti.bind(mc)) as (keys: string[]) => Promise<Record<string, unknown>>;
  const keys = Array.from({ length: KEYS }, (_, i) => `key-${i}`);
  const rawKeys = keys.map((key) => `raw-${key}`);
  const batches = Array.from({ length: KEYS / 100 }, (_, b) => ({ ours: keys.slice(b * 100, b * 100 + 100), raw: rawKeys.slice(b * 100, b * 100 + 100) }));
  const both = builds(cache, beside);
  for (const each of both.each) {
    await each.setMany(Object.fromEntries(keys.map((key) => [key, VALUE])));
    if ((await each.get(keys[0]!)) !== VALUE) throw new Error('the entries were not stored');
  }
  for (const key of rawKeys) await mj.set(key, VALUE, { expires: 3600 });
  const get: Work = (c) => (i) => c.get(keys[i % KEYS]!);
  const set: Work = (c) => (i) => c.set(keys[i % KEYS]!, VALUE);
  const getMany: Work = (c) => (i) => c.getMany(batches[i % batches.length]!.ours);

  const results: Comparison[] = [];
  try {
    for (const inFlight of [1, 50]) {
      const options = { inFlight, ...both.beside(get) };
      results.push(await compare('memcached', `get, ${inFlight} in flight`, get(cache), 'memjs', (i) => mj.get(rawKeys[i % KEYS]!), options));
      results.push(await compare('memcached', `get, ${inFlight} in flight`, get(cache), 'memcached (npm)', (i) => mcGet(rawKeys[i % KEYS]!), options));
      const writes = { inFlight, ...both.beside(set) };
      results.push(
        await compare('memcached', `set, ${inFlight} in flight`, set(cache), 'memjs', (i) => mj.set(rawKeys[i % KEYS]!, VALUE, { expires: 3600 }), writes),
      );
      results.push(
        await compare('memcached', `set, ${inFlight} in flight`, set(cache), 'memcached (npm)', (i) => mcSet(rawKeys[i % KEYS]!, VALUE, 3600), writes),
      );
    }
    // memjs has no multi-get: its best is 100 gets at once on its one connection.
    results.push(
      await compare(
        'memcached',
        'getMany(100)',
        getMany(cache),
        'memjs (100 parallel gets)',
        (i) => Promise.all(batches[i % batches.length]!.raw.map((key) => mj.get(key))),
        both.beside(getMany),
      ),
    );
    results.push(
      await compare(
        'memcached',
        'getMany(100)',
        getMany(cache),
        'memcached (npm) getMulti',
        (i) => mcGetMulti(batches[i % batches.length]!.raw),
        both.beside(getMany),
      ),
    );
  } finally {
    await cache.close();
    await beside?.theirs.close();
    await beside?.again.close();
    mj.close();
    mc.end();
    await server.stop();
  }
  return results;
}
