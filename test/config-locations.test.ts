/**
 * `configureCaches` checks where each alias keeps its entries before it replaces
 * anything: a malformed location is refused naming the alias, the value and the form expected, and
 * the configuration it had keeps answering. Nothing here opens a connection: the check is the shape.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cache, type CacheConfig, caches, configureCaches, MemcachedCache, RedisCache } from '../src/index.js';

const root = mkdtempSync(join(tmpdir(), 'cachegrain-locations-'));
const aFile = join(root, 'a-file');
afterAll(async () => {
  await configureCaches({ default: { backend: 'locmem' } });
  rmSync(root, { recursive: true, force: true });
});

beforeAll(() => {
  writeFileSync(aFile, 'not a folder');
  mkdirSync(join(root, 'a-folder'));
});

/** Each malformed location, and the message that refuses it after `cache '<alias>': `. */
const MALFORMED: Array<[CacheConfig, string]> = [
  [
    { backend: 'redis', location: 'redis//127.0.0.1:6379' },
    "location must be redis:// or rediss:// URLs, as redis://127.0.0.1:6379/0 (got 'redis//127.0.0.1:6379')",
  ],
  [
    { backend: 'redis', location: ['rediss://127.0.0.1:6379', 'redis:/127.0.0.1:6380'] },
    "location must be redis:// or rediss:// URLs, as redis://127.0.0.1:6379/0 (got 'redis:/127.0.0.1:6380')",
  ],
  [
    { backend: 'redis', location: 'redis://127.0.0.1:6379;http://user:secret@127.0.0.1:6380' },
    "location must be redis:// or rediss:// URLs, as redis://127.0.0.1:6379/0 (got 'http://user:***@127.0.0.1:6380')",
  ],
  [
    { backend: 'redis', location: 'redis://127.0.0.1:7000/2', options: { cluster: true } },
    "a Redis Cluster has only database 0 (got 'redis://127.0.0.1:7000/2')",
  ],
  [
    { backend: 'memcached', location: '127.0.0.1:11211,memcached//127.0.0.1:11212' },
    "location 'memcached//127.0.0.1:11212' is not host:port or unix:/path, as 127.0.0.1:11211",
  ],
  [
    { backend: 'memcached', location: 'memcached://127.0.0.1:11211' },
    "location 'memcached://127.0.0.1:11211' is not host:port or unix:/path, as 127.0.0.1:11211",
  ],
  [{ backend: 'memcached', location: ['127.0.0.1:99999'] }, "location '127.0.0.1:99999' is not host:port or unix:/path, as 127.0.0.1:11211"],
  [
    { backend: 'database', location: 'cache_table', options: { connection: 'postgres://site:secret@127.0.0.1:54x2/site' } },
    "options.connection 'postgres://site:***@127.0.0.1:54x2/site' is not a URL, as postgres://user@127.0.0.1:5432/site",
  ],
  [
    { backend: 'database', location: 'cache_table', options: { connection: 'sqlite::memory:', readConnection: 'postgress://127.0.0.1/site' } },
    "options.readConnection must start with sqlite: or postgres:// (got 'postgress://127.0.0.1/site')",
  ],
  [
    { backend: 'database', location: 'cache_table', options: { connection: `sqlite://${join(root, 'missing', 'cache.db')}` } },
    `options.connection the folder of 'sqlite://${join(root, 'missing', 'cache.db')}' does not exist (${join(root, 'missing')}): ` +
      'a sqlite: URL names a file in an existing folder, as sqlite:///var/cache/site.db',
  ],
  [
    { backend: 'database', location: 'cache_table', options: { connection: `sqlite://${join(root, 'a-folder')}` } },
    `options.connection '${`sqlite://${join(root, 'a-folder')}`}' names a folder, not a database file`,
  ],
  [
    { backend: 'database', location: 'cache_table', options: { connection: 'sqlite:' } },
    "options.connection a sqlite: URL needs a file path or :memory: (got 'sqlite:')",
  ],
  [{ backend: 'filebased', location: aFile }, `location must be a folder to keep the files in, but '${aFile}' is a file (got '${aFile}')`],
  [
    { backend: 'filebased', location: join(aFile, 'cache') },
    `location must be a folder to keep the files in, but '${aFile}' is a file (got '${join(aFile, 'cache')}')`,
  ],
  [
    { backend: 'filebased', location: [join(root, 'one'), join(root, 'two')] },
    `the filebased backend's location must be one folder to keep its files in (got '${join(root, 'one')}', '${join(root, 'two')}')`,
  ],
];

describe('configureCaches and a malformed location', () => {
  it('refuses it before replacing anything, naming the alias, the value and the form expected; the old configuration keeps answering', async () => {
    await configureCaches({ default: { backend: 'locmem', location: 'locations-kept' } });
    const before = caches.get('default');
    await cache.set('kept', 'still here');
    for (const [config, message] of MALFORMED) {
      expect(() => configureCaches({ default: config }), message).toThrow(`cache 'default': ${message}`);
      expect(() => configureCaches({ default: { backend: 'locmem' }, sessions: config }), message).toThrow(`cache 'sessions': ${message}`);
      expect(caches.get('default')).toBe(before);
      expect(caches.has('sessions')).toBe(false);
    }
    expect(await cache.get('kept')).toBe('still here');
  });

  it('refuses the same location in the words of the constructor, for a cache built directly', () => {
    expect(() => new RedisCache({ alias: 'r', location: 'redis//127.0.0.1:6379' })).toThrow(
      "cache 'r': location must be redis:// or rediss:// URLs, as redis://127.0.0.1:6379/0 (got 'redis//127.0.0.1:6379')",
    );
    expect(() => new MemcachedCache({ alias: 'mc', location: 'memcached://127.0.0.1:11211' })).toThrow(
      "cache 'mc': location 'memcached://127.0.0.1:11211' is not host:port or unix:/path, as 127.0.0.1:11211",
    );
  });

  it('takes every well-formed location', async () => {
    const wellFormed: Record<string, CacheConfig> = {
      default: { backend: 'redis', location: 'redis://user:secret@127.0.0.1:6379/1;rediss://replica.example:6380' },
      cluster: { backend: 'redis', location: ['redis://127.0.0.1:7000', 'redis://127.0.0.1:7001/0'], options: { cluster: true } },
      mc: { backend: 'memcached', location: '127.0.0.1:11211, [::1]:11212; unix:/tmp/memcached.sock' },
      pg: { backend: 'database', location: 'cache_table', options: { connection: 'postgres://site@127.0.0.1:5432/site' } },
      lite: { backend: 'database', location: 'cache_table', options: { connection: `sqlite://${join(root, 'cache.db')}`, readConnection: 'sqlite::memory:' } },
      files: { backend: 'filebased', location: join(root, 'not-yet', 'made') },
      folder: { backend: 'filebased', location: join(root, 'a-folder') },
    };
    await configureCaches(wellFormed);
    expect([...Object.keys(wellFormed)].every((alias) => caches.has(alias))).toBe(true);
  });
});
