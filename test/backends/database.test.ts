import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Sqlite from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CacheParams, CacheServerError, DatabaseCache, type DatabaseOptions, InvalidCacheKeyError } from '../../src/index.js';
import { describeBackend } from '../kit/backend.js';
import { closedPort } from '../setup/closed-port.js';
import { type PostgresInstance, startPostgres } from '../setup/postgres.js';

const root = mkdtempSync(join(tmpdir(), 'cachegrain-database-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const postgresUrl =
  process.env.CACHEGRAIN_TEST_POSTGRES_URL ??
  (() => {
    throw new Error('CACHEGRAIN_TEST_POSTGRES_URL is not set: run the tests through vitest, whose setup starts PostgreSQL (apt-get install -y postgresql)');
  })();
const repo = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

/** A database cache on `connection`, with `overrides.options` merged over the connection. */
function database(connection: DatabaseOptions['connection'], overrides: Partial<CacheParams<any>> = {}, location = 'cache_table'): DatabaseCache {
  return new DatabaseCache({ location, ...overrides, options: { connection, ...overrides.options } });
}

const culling = { 3: 29, 0: 19 } as const;
describeBackend('database-sqlite (file)', { make: (overrides) => database(`sqlite://${root}/conformance.db`, overrides), traits: { culling, closes: true } });
describeBackend('database-sqlite (memory)', { make: (overrides) => database('sqlite::memory:', overrides), traits: { culling, closes: true } });
describeBackend('database-postgres', {
  make: (overrides) => database(postgresUrl, overrides, 'conformance'),
  makeDown: async (options) => database(`postgres://nobody@127.0.0.1:${await closedPort()}/none`, { options }),
  traits: { culling },
});
// Django's own test table name: a space in it, quoted as an identifier in both dialects.
describeBackend('database-sqlite (my cache table)', {
  make: (overrides) => database(`sqlite://${root}/spaced.db`, overrides, 'my cache table'),
  traits: { culling },
});
describeBackend('database-postgres (my cache table)', { make: (overrides) => database(postgresUrl, overrides, 'my cache table'), traits: { culling } });

/** A clock the cache reads instead of the real one. */
function onClock<C extends DatabaseCache>(cache: C, start = 1_800_000_000): { cache: C; advance: (seconds: number) => void } {
  let now = start;
  cache.now = () => now;
  return { cache, advance: (seconds) => (now += seconds) };
}

describe('database: add is atomic', () => {
  it('lets exactly one of many PostgreSQL connections win each key, including over expired rows', async () => {
    const pools = Array.from({ length: 6 }, () => new pg.Pool({ connectionString: postgresUrl, max: 3 }));
    const writers = pools.map((pool) => database(pool, {}, 'atomic_add'));
    await writers[0]!.clear();
    const keys = Array.from({ length: 30 }, (_, i) => `k${i}`);
    // Half the keys hold a row that expired long ago: add must replace it, once.
    const stale = database(postgresUrl, {}, 'atomic_add');
    stale.now = () => Date.now() / 1000 - 3600;
    for (const key of keys.slice(0, 15)) await stale.set(key, 'stale', 10);
    const results = await Promise.all(writers.flatMap((writer, w) => keys.map(async (key) => ((await writer.add(key, w)) ? key : undefined))));
    const won = results.filter((key) => key !== undefined);
    expect(won.sort()).toEqual([...keys].sort());
    for (const key of keys) expect(await stale.get(key, undefined)).not.toBe('stale');
    await Promise.all([...writers, stale].map((cache) => cache.close()));
    await Promise.all(pools.map((pool) => pool.end()));
  });

  it('lets exactly one of several processes win each key on one SQLite file', async () => {
    const file = join(root, 'atomic.db');
    const stale = database(`sqlite://${file}`);
    stale.now = () => Date.now() / 1000 - 3600;
    for (let i = 0; i < 100; i++) await stale.set(`k${i}`, 'stale', 10);
    await stale.close();
    const script = `
      import { DatabaseCache } from ${JSON.stringify(join(repo, 'src/index.ts'))};
      const cache = new DatabaseCache({ location: 'cache_table', options: { connection: ${JSON.stringify(`sqlite://${file}`)} } });
      const won = [];
      for (let i = 0; i < 200; i++) if (await cache.add('k' + i, process.pid)) won.push('k' + i);
      console.log(JSON.stringify(won));
    `;
    const outputs = await Promise.all(
      Array.from({ length: 4 }, () => run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repo })),
    );
    const won = outputs.flatMap(({ stdout }) => JSON.parse(stdout) as string[]);
    expect(won).toHaveLength(200);
    expect(new Set(won).size).toBe(200);
  });
});

describe('database: culling', () => {
  for (const [name, connection] of [
    ['sqlite', `sqlite://${join(root, 'cull.db')}`],
    ['postgres', postgresUrl],
  ] as const) {
    it(`removes expired rows before live ones (${name})`, async () => {
      const { cache, advance } = onClock(database(connection, { options: { maxEntries: 10 } }, 'cull_expired'));
      await cache.clear();
      for (let i = 0; i < 9; i++) await cache.set(`old${i}`, i, 5);
      advance(10);
      for (let i = 0; i < 6; i++) await cache.set(`new${i}`, i, 60);
      expect((await cache.getMany(Array.from({ length: 6 }, (_, i) => `new${i}`))).size).toBe(6);
      expect(await rowCount(connection, 'cull_expired')).toBe(6);
      await cache.close();
    });

    it(`culls the rows closest to expiring first, "never" last (${name})`, async () => {
      const { cache } = onClock(database(connection, { options: { maxEntries: 6, cullFrequency: 3 } }, 'cull_order'));
      await cache.clear();
      await cache.set('forever', 1, null);
      for (const [key, timeout] of [
        ['t10', 10],
        ['t20', 20],
        ['t30', 30],
        ['t40', 40],
        ['t50', 50],
      ] as const)
        await cache.set(key, 1, timeout);
      await cache.set('t60', 1, 60);
      const left = await cache.getMany(['forever', 't10', 't20', 't30', 't40', 't50', 't60']);
      expect([...left.keys()]).toEqual(['forever', 't30', 't40', 't50', 't60']);
      await cache.close();
    });
  }

  it('does not count the table on every write while it is far from full', async () => {
    const statements: string[] = [];
    const db = new Sqlite(join(root, 'counting.db'), { verbose: (sql) => statements.push(String(sql)) });
    const cache = database(db, { options: { maxEntries: 1000 } }, 'counting');
    await cache.clear();
    statements.length = 0;
    for (let i = 0; i < 300; i++) await cache.set(`k${i}`, i);
    const counts = statements.filter((sql) => /count\(\*\)/i.test(sql)).length;
    // One count every maxEntries / 10 writes, so that other processes' rows are seen too.
    expect(counts).toBe(3);
    await cache.close();
    db.close();
  });

  it('sees rows written by others when it recounts, every maxEntries / 10 writes', async () => {
    const file = join(root, 'shared-cull.db');
    const mine = database(`sqlite://${file}`, { options: { maxEntries: 50 } }, 'shared');
    const theirs = database(new Sqlite(file), { options: { maxEntries: 1_000_000 } }, 'shared');
    await mine.clear();
    await mine.set('mine1', 1);
    for (let i = 0; i < 100; i++) await theirs.set(`theirs${i}`, i);
    for (const key of ['mine2', 'mine3', 'mine4']) await mine.set(key, 1);
    expect(await rowCount(`sqlite://${file}`, 'shared')).toBe(104);
    // The fifth write since the last count recounts: 104 rows, a third of them culled, then the write.
    await mine.set('mine5', 5);
    expect(await rowCount(`sqlite://${file}`, 'shared')).toBe(104 - 34 + 1);
    await mine.close();
    await theirs.close();
  });
});

describe('database: readConnection', () => {
  it('sends reads to the read database and writes to the primary (sqlite)', async () => {
    const primaryUrl = `sqlite://${join(root, 'primary.db')}`;
    const replicaUrl = `sqlite://${join(root, 'replica.db')}`;
    await checkRouting(primaryUrl, replicaUrl);
  });

  it('sends reads to the read database and writes to the primary (postgres)', async () => {
    const admin = new pg.Client({ connectionString: postgresUrl });
    await admin.connect();
    await admin.query('DROP DATABASE IF EXISTS cachegrain_read');
    await admin.query('CREATE DATABASE cachegrain_read');
    await admin.end();
    await checkRouting(postgresUrl, postgresUrl.replace(/\/cachegrain$/, '/cachegrain_read'));
  });

  async function checkRouting(primaryUrl: string, replicaUrl: string): Promise<void> {
    const routed = database(primaryUrl, { options: { readConnection: replicaUrl } }, 'routed');
    const primary = database(primaryUrl, {}, 'routed');
    const replica = database(replicaUrl, {}, 'routed');
    await primary.clear();
    await replica.clear();
    await routed.set('written', 'to the primary');
    expect(await primary.get('written')).toBe('to the primary');
    expect(await routed.get('written')).toBeUndefined();
    expect(await routed.hasKey('written')).toBe(false);
    await replica.setMany({ written: 'from the replica', other: 2 });
    expect(await routed.get('written')).toBe('from the replica');
    expect(Object.fromEntries(await routed.getMany(['written', 'other']))).toEqual({ written: 'from the replica', other: 2 });
    expect(await routed.hasKey('other')).toBe(true);
    // incr writes what it reads, so it reads the primary: the replica's copy must not leak in.
    await primary.set('n', 10);
    await replica.set('n', 500);
    expect(await routed.incr('n')).toBe(11);
    expect(await primary.get('n')).toBe(11);
    expect(await routed.delete('other')).toBe(false);
    expect(await replica.get('other')).toBe(2);
    await Promise.all([routed, primary, replica].map((cache) => cache.close()));
  }
});

describe('database: getMany', () => {
  it('is one query on SQLite', async () => {
    const statements: string[] = [];
    const db = new Sqlite(join(root, 'getmany.db'), { verbose: (sql) => statements.push(String(sql)) });
    const cache = database(db, {}, 'getmany');
    await cache.setMany({ a: 1, b: 2, c: 3 });
    statements.length = 0;
    expect(Object.fromEntries(await cache.getMany(['a', 'b', 'c', 'missing']))).toEqual({ a: 1, b: 2, c: 3 });
    expect(statements).toHaveLength(1);
    expect(statements[0]).toMatch(/^SELECT/);
    await cache.close();
    db.close();
  });

  it('is one query on PostgreSQL', async () => {
    const pool = new pg.Pool({ connectionString: postgresUrl });
    const queries: string[] = [];
    const counting = { query: (config: { text: string }) => (queries.push(config.text), pool.query(config as never)) };
    const cache = database(counting, {}, 'getmany');
    await cache.setMany({ a: 1, b: 2, c: 3 });
    queries.length = 0;
    expect(Object.fromEntries(await cache.getMany(['a', 'b', 'c', 'missing']))).toEqual({ a: 1, b: 2, c: 3 });
    expect(queries).toHaveLength(1);
    expect(queries[0]).toMatch(/^SELECT .* = ANY\(\$1/);
    await cache.close();
    await pool.end();
  });
});

describe('database: configuration errors', () => {
  it('refuses a location that is not one table name, naming the cache and the value', () => {
    for (const bad of ['a'.repeat(56), 'é'.repeat(28), '', 'nul\0byte']) {
      expect(() => new DatabaseCache({ alias: 'db', location: bad, options: { connection: 'sqlite::memory:' } })).toThrow(TypeError);
    }
    expect(() => new DatabaseCache({ alias: 'db', location: '', options: { connection: 'sqlite::memory:' } })).toThrow(
      "cache 'db': the database backend's location must be one table name",
    );
    expect(() => new DatabaseCache({ alias: 'db', location: ['one', 'two'], options: { connection: 'sqlite::memory:' } })).toThrow(/'db'.*table name/);
  });

  it('takes any table name, quoted as an identifier, on SQLite and PostgreSQL', async () => {
    for (const table of ['my cache table', 'drop table x;', 'a"b', "it's", 'x,y', '1starts_with_digit', 'a'.repeat(55)]) {
      for (const connection of ['sqlite::memory:', `sqlite://${join(root, 'names.db')}`, postgresUrl]) {
        const cache = database(connection, { alias: 'named' }, table);
        await cache.set('k', table);
        expect(await cache.get('k')).toBe(table);
        expect(await cache.tableExists()).toBe(true);
        expect(await cache.add('k', 'other')).toBe(false);
        expect(await cache.incr('n', 1).catch((error: Error) => error.name)).toBe('KeyNotFoundError');
        await cache.clear();
        expect(await cache.get('k')).toBeUndefined();
        await cache.close();
      }
    }
  });

  it('needs a connection it understands', () => {
    expect(() => new DatabaseCache({ alias: 'db', location: 't' })).toThrow("cache 'db': options.connection is required");
    expect(() => new DatabaseCache({ alias: 'db', location: 't', options: { connection: 'mysql://x/y' } })).toThrow(
      "cache 'db': options.connection must start with sqlite: or postgres:// (got 'mysql://x/y')",
    );
    expect(() => new DatabaseCache({ alias: 'db', location: 't', options: { connection: 'sqlite::memory:', readConnection: {} } })).toThrow(
      /options\.readConnection must be a sqlite: or postgres:\/\/ URL/,
    );
    expect(() => new DatabaseCache({ alias: 'db', location: 't', options: { connection: 'sqlite::memory:', createTable: 'yes' as never } })).toThrow(
      "cache 'db': options.createTable must be a boolean (got 'yes')",
    );
  });

  it('names the missing table when createTable is off (sqlite and postgres)', async () => {
    const sqlite = database(`sqlite://${join(root, 'empty.db')}`, { options: { createTable: false } }, 'absent');
    await expect(sqlite.get('k')).rejects.toThrow(/table "absent" in sqlite:.*empty\.db: no such table: absent/);
    await sqlite.close();
    const postgres = database(postgresUrl, { alias: 'pg', options: { createTable: false } }, 'absent');
    await expect(postgres.set('k', 1)).rejects.toThrow(
      /cache 'pg': server postgres:\/\/postgres@127\.0\.0\.1:\d+\/cachegrain failed: relation "absent" does not exist/,
    );
    await postgres.close();
  });

  it('refuses to store a key longer than 255 characters, naming it', async () => {
    const cache = database('sqlite::memory:', { alias: 'db' }, 'long_keys');
    const key = 'k'.repeat(260);
    await expect(cache.set(key, 1)).rejects.toThrow(InvalidCacheKeyError);
    await expect(cache.add(key, 1)).rejects.toThrow(`Cache key is longer than 255 characters, the database backend's limit (cache 'db'): ':1:${key}'`);
    expect(await cache.get(key)).toBeUndefined();
    await cache.close();
  });
});

describe('cachegrain createcachetable', () => {
  let dir: string;
  let sqliteFile: string;
  let admin: pg.Client;

  beforeAll(async () => {
    dir = mkdtempSync(join(root, 'cli-'));
    sqliteFile = join(dir, 'cli.db');
    writeFileSync(
      join(dir, 'cachegrain.config.mjs'),
      `export default {
        default: { backend: 'locmem' },
        lite: { backend: 'database', location: 'cli_lite', options: { connection: ${JSON.stringify(`sqlite://${sqliteFile}`)} } },
        pg: { backend: 'database', location: 'cli_pg', options: { connection: ${JSON.stringify(postgresUrl)} } },
        pg2: { backend: 'database', location: 'cli_pg', keyPrefix: 'other', options: { connection: ${JSON.stringify(postgresUrl)} } },
      };\n`,
    );
    admin = new pg.Client({ connectionString: postgresUrl });
    await admin.connect();
    await admin.query('DROP TABLE IF EXISTS cli_pg');
  });
  afterAll(() => admin.end());

  const cachegrain = (args: string[], cwd = dir) => run(process.execPath, [join(repo, 'bin/cachegrain.js'), ...args], { cwd });
  const sqliteTables = () => {
    const db = new Sqlite(sqliteFile);
    const names = db.prepare(`SELECT name FROM sqlite_master WHERE tbl_name = 'cli_lite' ORDER BY name`).pluck().all();
    db.close();
    return names;
  };
  const pgTableExists = async () => (await admin.query(`SELECT to_regclass('cli_pg') AS t`)).rows[0].t !== null;

  it('prints the SQL with --dry-run and creates nothing', async () => {
    const { stdout } = await cachegrain(['createcachetable', '--dry-run', '--config', join(dir, 'cachegrain.config.mjs')]);
    expect(stdout).toBe(
      [
        `-- cache 'lite' (database, table 'cli_lite' on sqlite:${sqliteFile}), if the table does not exist yet:`,
        `CREATE TABLE "cli_lite" ("cache_key" varchar(255) NOT NULL PRIMARY KEY, "value" blob NOT NULL, "expires" real NOT NULL);`,
        `CREATE INDEX "cli_lite_expires" ON "cli_lite" ("expires");`,
        `-- cache 'pg' (database, table 'cli_pg' on ${postgresUrl}), if the table does not exist yet:`,
        `CREATE TABLE "cli_pg" ("cache_key" varchar(255) NOT NULL PRIMARY KEY, "value" bytea NOT NULL, "expires" double precision NOT NULL);`,
        `CREATE INDEX "cli_pg_expires" ON "cli_pg" ("expires");`,
        '',
      ].join('\n'),
    );
    expect(sqliteTables()).toEqual([]);
    expect(await pgTableExists()).toBe(false);
  });

  it('creates the missing tables with their index, found through the default file name', async () => {
    const { stdout } = await cachegrain(['createcachetable']);
    expect(stdout).toBe("Cache table 'cli_lite' created.\nCache table 'cli_pg' created.\n");
    expect(sqliteTables()).toEqual(['cli_lite', 'cli_lite_expires', 'sqlite_autoindex_cli_lite_1']);
    expect(await pgTableExists()).toBe(true);
    const indexes = await admin.query(`SELECT indexname FROM pg_indexes WHERE tablename = 'cli_pg' ORDER BY indexname`);
    expect(indexes.rows.map((row) => row.indexname)).toEqual(['cli_pg_expires', 'cli_pg_pkey']);
  });

  it('says when a table already exists', async () => {
    const { stdout } = await cachegrain(['createcachetable']);
    expect(stdout).toBe("Cache table 'cli_lite' already exists.\nCache table 'cli_pg' already exists.\n");
  });

  it('fails naming the configuration it could not find, and unknown arguments', async () => {
    const missing = cachegrain(['createcachetable', '--config', 'nope.js']);
    await expect(missing).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining(`the configuration file ${join(dir, 'nope.js')} does not exist`) });
    const empty = mkdtempSync(join(root, 'cli-empty-'));
    await expect(cachegrain(['createcachetable'], empty)).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('cachegrain.config.js') });
    await expect(cachegrain(['createcachetable', '--force'])).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining("unknown option '--force'"),
    });
  });
});

describe('database: PostgreSQL going away', () => {
  let server: PostgresInstance;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(() => server.destroy());

  it('answers misses with failOpen without waiting for timeoutMs, reports the error, and recovers on restart', async () => {
    // Longer than the test may last: a call that waited for it would fail the test by its own timeout.
    const timeoutMs = 3_600_000;
    const cache = database(server.url, { options: { failOpen: true, timeoutMs } }, 'fault');
    const errors: Error[] = [];
    cache.on('error', (error) => errors.push(error));
    await cache.set('k', 'before');
    expect(await cache.get('k')).toBe('before');
    await server.stop();
    const calls: Array<[string, () => Promise<unknown>, unknown]> = [
      ['get', () => cache.get('k'), undefined],
      ['add', () => cache.add('other', 1), false],
      ['setMany', () => cache.setMany({ a: 1 }), ['a']],
    ];
    // A stopped server refuses the connection: each call is answered by that, not by the deadline.
    for (const [name, call, expected] of calls) expect(await call(), name).toEqual(expected);
    // One event per cause of the outage, not one per call.
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(new Set(errors.map((error) => error.message)).size).toBe(errors.length);
    expect(errors[0]).toBeInstanceOf(CacheServerError);
    expect(errors[0]!.message).toContain(`cache 'default': server ${server.url}`);
    await server.start();
    await expect.poll(() => cache.get('k'), { timeout: 20_000, interval: 100 }).toBe('before');
    await cache.close();
  });

  it('rejects promptly with an error naming the server when failOpen is off', async () => {
    const cache = database(server.url, { alias: 'strict', options: { timeoutMs: 500 } }, 'fault');
    await cache.set('k', 'v');
    await server.stop();
    const failure = cache.get('k');
    await expect(failure).rejects.toThrow(CacheServerError);
    await expect(failure).rejects.toThrow(`cache 'strict': server ${server.url}`);
    await server.start();
    await expect.poll(() => cache.get('k'), { timeout: 20_000, interval: 100 }).toBe('v');
    await cache.close();
  });
});

/** Counts a table's rows, live or not, straight from the database. */
async function rowCount(connection: string, table: string): Promise<number> {
  if (connection.startsWith('postgres')) {
    const client = new pg.Client({ connectionString: connection });
    await client.connect();
    const { rows } = await client.query(`SELECT count(*)::int AS n FROM "${table}"`);
    await client.end();
    return rows[0].n;
  }
  const db = new Sqlite(connection.replace(/^sqlite:\/\//, ''));
  const count = (db.prepare(`SELECT count(*) AS n FROM "${table}"`).get() as { n: number }).n;
  db.close();
  return count;
}
