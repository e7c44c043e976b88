/**
 * The redis backend against raw ioredis doing the same work on the same server (one it starts):
 * get and set one at a time and 50 in flight, getMany(100) against one MGET of 100 keys (keys as
 * long as the made keys, holding the bytes the codec stores, answered as strings).
 * Both sides return the stored string; ours also pays for the codec, the key and the deadline.
 * Then tags against the same work without them: getMany(100) of tagged entries against
 * untagged ones (tags shared by groups of entries, and a tag of each entry's own, which doubles the keys read), and an invalidation of a tag 100,000 entries carry against one only one carries.
 * With `--against`, the other build's cache does the same work on the same server, under a key
 * prefix of its own, in the same rounds.
 */
import { serialize } from 'node:v8';
import { Redis } from 'ioredis';
import { bytesCodec, RedisCache } from '../src/index.js';
import { decodeStamped } from '../src/encoding/codec.js';
import { startRedisServer } from '../test/setup/redis.js';
import { type Builds, builds, compare, type Comparison, otherBuild, thisBuildAgain } from './harness.js';

/** Work a cache does in a row, made for ours and for the other build's alike. */
type Work = (cache: RedisCache) => (i: number) => Promise<unknown>;

export const loadsOtherBuild = true;

export async function run(): Promise<Comparison[]> {
  const server = await startRedisServer();
  const cache = new RedisCache({ location: server.url, keyPrefix: 'bench' });
  const other = await otherBuild();
  const beside = other && {
    theirs: new other.RedisCache({ location: server.url, keyPrefix: 'other' }),
    again: new (await thisBuildAgain()).RedisCache({ location: server.url, keyPrefix: 'again' }),
  };
  const raw = new Redis(server.url);
  try {
    const keys = Array.from({ length: 1000 }, (_, i) => `key-${i}`);
    const value = 'a short string value';
    const both = builds(cache, beside);
    for (const each of both.each) {
      await each.setMany(Object.fromEntries(keys.map((key) => [key, value])));
      if ((await each.get(keys[0]!)) !== value) throw new Error('the entries were not stored');
    }
    await raw.mset(Object.fromEntries(keys.map((key) => [`raw:${key}`, value])));
    const batches = Array.from({ length: 10 }, (_, b) => keys.slice(b * 100, b * 100 + 100));
    const get: Work = (c) => (i) => c.get(keys[i % 1000]!);
    const set: Work = (c) => (i) => c.set(keys[i % 1000]!, value);
    const getMany: Work = (c) => (i) => c.getMany(batches[i % 10]!);

    const results: Comparison[] = [];
    for (const inFlight of [1, 50]) {
      const options = { inFlight, target: 0.9 };
      results.push(
        await compare('redis', `get, ${inFlight} in flight`, get(cache), 'ioredis GET', (i) => raw.get(`raw:${keys[i % 1000]}`), {
          ...options,
          ...both.beside(get),
        }),
      );
      results.push(
        await compare('redis', `set, ${inFlight} in flight`, set(cache), 'ioredis SET EX', (i) => raw.set(`raw:${keys[i % 1000]}`, value, 'EX', 300), {
          ...options,
          ...both.beside(set),
        }),
      );
    }
    // The anchor reads what the cache reads: keys as long as its made keys, holding the bytes the
    // cache stores (a string behind its format byte and the stamp of its expiry), answered as ioredis
    // answers them, as strings. The cache answers the same replies decoded, in a Map by the caller's keys.
    const storedBatches = batches.map((batch) => batch.map((key) => `anchr${cache.makeKey(key).slice('bench'.length)}`));
    for (const [b, batch] of storedBatches.entries()) {
      if (batch.some((key, k) => key.length !== cache.makeKey(batches[b]![k]!).length)) throw new Error('the anchor keys must be as long as the made keys');
    }
    const stored = (await raw.getBuffer(cache.makeKey(keys[0]!)))!;
    await raw.mset(Object.fromEntries(storedBatches.flat().map((key) => [key, stored])));
    results.push(
      await compare(
        'redis',
        'getMany(100)',
        getMany(cache),
        'ioredis MGET of 100 (same key lengths, stored bytes)',
        (i) => raw.mget(...storedBatches[i % 10]!),
        { target: 0.95, ...both.beside(getMany) },
      ),
    );
    // Where the gap goes: the same anchors made to carry the bytes the cache stores (no targets).
    const bytes = serialize(value);
    results.push(
      await compare(
        'redis',
        'set, 1 in flight (anchor sends v8 bytes)',
        set(cache),
        'ioredis SET PX of a Buffer',
        (i) => raw.set(`raw:${keys[i % 1000]}`, bytes, 'PX', 300_000),
        both.beside(set),
      ),
    );
    results.push(
      await compare(
        'redis',
        'getMany(100) (anchor decodes too)',
        getMany(cache),
        'ioredis MGET + bytesCodec.decode',
        async (i) => {
          const found = await raw.mgetBuffer(...batches[i % 10]!.map((key) => cache.makeKey(key)));
          return found.map((payload) => (payload === null ? undefined : decodeStamped(bytesCodec, payload)));
        },
        both.beside(getMany),
      ),
    );
    results.push(...(await tagged(cache, both)));
    return results;
  } finally {
    await cache.close();
    await beside?.theirs.close();
    await beside?.again.close();
    await raw.quit();
    await server.stop();
  }
}

/** Tags: reading tagged entries, and invalidating a tag, whatever the number of entries carrying it. */
async function tagged(cache: RedisCache, both: Builds<RedisCache>): Promise<Comparison[]> {
  const value = 'a short string value';
  const results: Comparison[] = [];
  const keys = Array.from({ length: 1000 }, (_, i) => `tagged-${i}`);
  const own = keys.map((key) => `${key}-own`);
  const batchesOf = (list: string[]) => Array.from({ length: 10 }, (_, b) => list.slice(b * 100, b * 100 + 100));
  const [shared, owned, plain] = [batchesOf(keys), batchesOf(own), batchesOf(keys.map((key) => key.replace('tagged-', 'key-')))];
  for (const each of both.each) {
    for (const [i, key] of keys.entries()) {
      // Tags shared as a site shares them (a group of ten, the whole catalogue): 11 versions read with a batch of 100.
      await each.set(key, value, { tags: [`group:${Math.floor(i / 10)}`, 'catalogue'] });
      // One tag of its own besides the group's: 110 versions read with a batch of 100, twice the keys of the untagged read.
      await each.set(own[i]!, value, { tags: [`item:${i}`, `group:${Math.floor(i / 10)}`] });
    }
    for (const batch of [shared[0]!, owned[0]!]) {
      const sample = await each.getMany(batch);
      if (sample.size !== 100) throw new Error(`the tagged entries did not read back (${sample.size} of 100)`);
    }
  }
  const { beside } = both;
  const getMany =
    (batches: string[][]): Work =>
    (c) =>
    (i) =>
      c.getMany(batches[i % 10]!);
  results.push(
    await compare('redis', 'getMany(100), 2 shared tags each', getMany(shared)(cache), 'getMany(100) untagged', getMany(plain)(cache), {
      target: 0.8,
      ...beside(getMany(shared)),
    }),
  );
  results.push(
    await compare(
      'redis',
      'getMany(100), 2 tags each, one its own',
      getMany(owned)(cache),
      'getMany(100) untagged',
      getMany(plain)(cache),
      beside(getMany(owned)),
    ),
  );

  // 100,000 entries carry 'crowded'; one carries 'lonely'. Invalidating either is one write.
  const crowd = Array.from({ length: 100_000 }, (_, i) => `crowd-${i}`);
  for (const each of both.each) {
    await each.set('lonely-entry', value, { tags: ['lonely'] });
    for (let start = 0; start < crowd.length; start += 1000) {
      await each.setMany(Object.fromEntries(crowd.slice(start, start + 1000).map((key) => [key, value])), { timeout: 600, tags: ['crowded'] });
    }
    if ((await each.get(crowd[99_999]!)) !== value) throw new Error('the 100,000 tagged entries were not stored');
  }
  const invalidate: Work = (c) => () => c.invalidateTags(['crowded']);
  results.push(
    await compare('redis', 'invalidateTags, tag on 100,000 entries', invalidate(cache), 'tag on 1 entry', () => cache.invalidateTags(['lonely']), {
      target: 0.8,
      ...beside(invalidate),
    }),
  );
  for (const each of both.each) {
    if ((await each.get(crowd[0]!)) !== undefined) throw new Error('invalidating the tag left its entries readable');
  }
  return results;
}
