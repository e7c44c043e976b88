/**
 * database against its raw driver running the same prepared SELECT / INSERT … ON CONFLICT: SQLite
 * (better-sqlite3 on a WAL file) and PostgreSQL (pg, a PostgreSQL started for the run on loopback).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Sqlite from 'better-sqlite3';
import pg from 'pg';
import { bytesCodec, DatabaseCache } from '../src/index.js';
import { startPostgres } from '../test/setup/postgres.js';
import { compare, type Comparison } from './harness.js';

const KEYS = Array.from({ length: 1000 }, (_, i) => `:1:key-${i}`);
const VALUE = 'a short string value';
const PAYLOAD = bytesCodec.encode(VALUE);
const now = () => Date.now() / 1000;

const SELECT = `SELECT "cache_key" AS key, "value" AS value, "expires" AS expires FROM "raw" WHERE "cache_key" = $1 AND "expires" > $2`;
const UPSERT = `INSERT INTO "raw" ("cache_key", "value", "expires") VALUES ($1, $2, $3) ON CONFLICT ("cache_key") DO UPDATE SET "value" = excluded."value", "expires" = excluded."expires"`;

export async function run(): Promise<Comparison[]> {
  const results: Comparison[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'cachegrain-bench-db-'));
  const postgres = await startPostgres();
  try {
    results.push(...(await sqlite(join(dir, 'bench.db'))));
    results.push(...(await postgresql(postgres.url)));
  } finally {
    await postgres.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}

async function sqlite(file: string): Promise<Comparison[]> {
  const cache = new DatabaseCache({ location: 'bench', options: { connection: `sqlite://${file}`, maxEntries: 100_000 } });
  const culled = new DatabaseCache({ location: 'bench_culled', options: { connection: `sqlite://${file}`, maxEntries: 300 } });
  const raw = new Sqlite(file);
  raw.exec(`CREATE TABLE "raw" ("cache_key" varchar(255) NOT NULL PRIMARY KEY, "value" blob NOT NULL, "expires" real NOT NULL)`);
  raw.exec(`CREATE INDEX "raw_expires" ON "raw" ("expires")`);
  const select = raw.prepare(SELECT.replace(/\$\d/g, '?'));
  const upsert = raw.prepare(UPSERT.replace(/\$\d/g, '?'));
  // The anchor is called through an async function, as any async cache API must be.
  const rawGet = async (key: string) => bytesCodec.decode((select.get(key, now()) as { value: Buffer }).value);
  const rawSet = async (key: string) => void upsert.run(key, bytesCodec.encode(VALUE), now() + 300);
  for (const key of KEYS) {
    await cache.set(key.slice(3), VALUE);
    upsert.run(key, PAYLOAD, now() + 3600);
  }
  const results = [
    await compare(
      'database',
      'sqlite get, short string',
      (i) => cache.get(`key-${i % 1000}`),
      'better-sqlite3 prepared SELECT',
      (i) => rawGet(KEYS[i % 1000]!),
    ),
    await compare(
      'database',
      'sqlite set, short string',
      (i) => cache.set(`key-${i % 1000}`, VALUE),
      'better-sqlite3 prepared upsert',
      (i) => rawSet(KEYS[i % 1000]!),
    ),
    await compare(
      'database',
      'sqlite set, culling (maxEntries 300)',
      (i) => culled.set(`key-${i % 1000}`, VALUE),
      'better-sqlite3 prepared upsert',
      (i) => rawSet(KEYS[i % 1000]!),
    ),
  ];
  await cache.close();
  await culled.close();
  raw.close();
  return results;
}

async function postgresql(url: string): Promise<Comparison[]> {
  const cache = new DatabaseCache({ location: 'bench', options: { connection: url, maxEntries: 100_000 } });
  const pool = new pg.Pool({ connectionString: url });
  pool.on('error', () => undefined); // the server is stopped right after the run; idle clients may notice first
  await pool.query(`CREATE TABLE "raw" ("cache_key" varchar(255) NOT NULL PRIMARY KEY, "value" bytea NOT NULL, "expires" double precision NOT NULL)`);
  await pool.query(`CREATE INDEX "raw_expires" ON "raw" ("expires")`);
  const rawGet = async (key: string) => {
    const { rows } = await pool.query({ name: 'raw_select', text: SELECT, values: [key, now()] });
    return bytesCodec.decode(rows[0].value);
  };
  const rawSet = (key: string) => pool.query({ name: 'raw_upsert', text: UPSERT, values: [key, bytesCodec.encode(VALUE), now() + 300] });
  for (const key of KEYS) {
    await cache.set(key.slice(3), VALUE);
    await rawSet(key);
  }
  const results = [
    await compare(
      'database',
      'postgres get, short string',
      (i) => cache.get(`key-${i % 1000}`),
      'pg prepared SELECT',
      (i) => rawGet(KEYS[i % 1000]!),
    ),
    await compare(
      'database',
      'postgres set, short string',
      (i) => cache.set(`key-${i % 1000}`, VALUE),
      'pg prepared upsert',
      (i) => rawSet(KEYS[i % 1000]!),
    ),
    await compare(
      'database',
      'postgres get, 16 in flight',
      (i) => cache.get(`key-${i % 1000}`),
      'pg prepared SELECT',
      (i) => rawGet(KEYS[i % 1000]!),
      { inFlight: 16 },
    ),
  ];
  await cache.close();
  await pool.end();
  return results;
}
