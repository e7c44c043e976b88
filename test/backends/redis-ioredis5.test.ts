/**
 * The redis backend on ioredis 5, in an application that has ioredis 5 installed: a cache in another
 * process whose main module sits in an application folder where `ioredis` is version 5 (the working
 * directory, this project, has version 6). It shares one Redis with a cache of this process on
 * ioredis 6, as two releases of an application do during a rolling deploy.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisCache } from '../../src/index.js';
import { eventually } from '../setup/eventually.js';
import { CACHE_PEER, CachePeer } from './fixtures/peer.js';

const REDIS = process.env.CACHEGRAIN_TEST_REDIS_URL;
if (!REDIS) throw new Error('CACHEGRAIN_TEST_REDIS_URL is not set: the vitest global setup starts redis-server (Debian package redis-server)');

const ioredis5 = dirname(createRequire(import.meta.url).resolve('ioredis5/package.json'));
const application = mkdtempSync(join(tmpdir(), 'cachegrain-ioredis5-'));
const keyPrefix = `ioredis5-${process.pid}`;
const l1 = { maxEntries: 100, timeout: 300 };

describe('the redis backend on ioredis 5', () => {
  let peer: CachePeer;
  let here: RedisCache;

  beforeAll(async () => {
    mkdirSync(join(application, 'node_modules'));
    symlinkSync(ioredis5, join(application, 'node_modules', 'ioredis'));
    const main = join(application, 'main.mjs');
    writeFileSync(main, `await import(${JSON.stringify(pathToFileURL(CACHE_PEER).href)});\n`);
    peer = new CachePeer({ backend: 'redis', location: REDIS, keyPrefix, options: { l1 } }, main);
    await peer.ready;
    here = new RedisCache({ location: REDIS, keyPrefix, options: { l1 } });
  });

  afterAll(async () => {
    await peer?.close();
    await here?.close();
    rmSync(application, { recursive: true, force: true });
  });

  const call = (method: string, ...args: unknown[]) => peer.ask('call', { method, args });

  it("is loaded from the application's folder, not from the working directory", async () => {
    const versions: string[] = await peer.ask('ioredisVersions');
    expect(versions.map((version) => version.split('.')[0])).toEqual(['5']);
  });

  it('stores, reads, counts and removes through an ioredis 5 client', async () => {
    expect(await call('clear')).toBe(null);
    await call('set', 'a', 'one', 60);
    expect(await call('get', 'a')).toBe('one');
    expect(await call('add', 'a', 'other', 60)).toBe(false);
    expect(await call('add', 'b', { n: 2 }, 60)).toBe(true);
    expect(await call('setMany', { c: 3, d: [4] }, 60)).toEqual([]);
    expect(await call('getMany', ['a', 'b', 'c', 'd', 'missing'])).toEqual([
      ['a', 'one'],
      ['b', { n: 2 }],
      ['c', 3],
      ['d', [4]],
    ]);
    expect(await call('incr', 'c', 5)).toBe(8);
    expect(await call('decr', 'c')).toBe(7);
    expect(await call('touch', 'a', 120)).toBe(true);
    expect(await call('hasKey', 'b')).toBe(true);
    expect(await call('delete', 'b')).toBe(true);
    expect(await call('get', 'b', 'gone')).toBe('gone');
    expect(await call('getOrSet', 'e', 'made', 60)).toBe('made');
    // What ioredis 5 wrote, ioredis 6 reads the same.
    expect([...(await here.getMany(['a', 'c', 'd', 'e']))]).toEqual([
      ['a', 'one'],
      ['c', 7],
      ['d', [4]],
      ['e', 'made'],
    ]);
    expect(await call('clear')).toBe(null);
    expect(await here.get('a')).toBe(undefined);
  });

  it('drops an L1 copy when the other process writes, over pub/sub in both directions', async () => {
    await here.set('shared', 'first', 60);
    expect(await call('get', 'shared')).toBe('first');
    expect(await here.get('shared')).toBe('first');
    await here.set('shared', 'second', 60);
    await eventually(async () => expect(await call('get', 'shared')).toBe('second'));
    await call('set', 'shared', 'third', 60);
    await eventually(async () => expect(await here.get('shared')).toBe('third'));
    expect(await peer.ask('errors')).toEqual([]);
  });
});
