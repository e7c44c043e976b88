/**
 * The SQLite side of the database backend: better-sqlite3, synchronous, every statement prepared
 * once per table. Key lists travel as one JSON parameter (`IN (SELECT value FROM json_each(?))`),
 * so a batch of any size is one prepared statement that still searches the primary key.
 */
import { dirname, resolve } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { pathKind } from '../paths.js';
import { requirePeer } from '../peer.js';
import { quote, type Row, type TableStore } from './table.js';

type Database = BetterSqlite3.Database;
type Statement = BetterSqlite3.Statement;

/** Opens `sqlite:` URLs: `sqlite:///abs/file.db`, `sqlite:relative.db`, `sqlite::memory:`. */
export function openSqlite(url: string): Database {
  const path = sqlitePath(url);
  const Driver = requirePeer<typeof BetterSqlite3>('better-sqlite3', 'The database backend on sqlite:');
  const db = new Driver(path);
  if (path !== ':memory:') {
    // Readers never wait for the writer, and a cache can afford to lose the last writes on a crash.
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
  }
  return db;
}

/**
 * Why a `sqlite:` URL names no database file better-sqlite3 could open or create, or undefined: its
 * path is empty, is a folder, or lies in a folder that does not exist.
 */
export function sqliteUrlProblem(url: string): string | undefined {
  const path = url.slice('sqlite:'.length).replace(/^\/\//, '');
  if (path === '') return `a sqlite: URL needs a file path or :memory: (got '${url}')`;
  if (path === ':memory:') return undefined;
  const file = resolve(path);
  if (pathKind(file) === 'folder') return `'${url}' names a folder, not a database file`;
  if (pathKind(dirname(file)) !== 'folder') {
    return `the folder of '${url}' does not exist (${dirname(file)}): a sqlite: URL names a file in an existing folder, as sqlite:///var/cache/site.db`;
  }
  return undefined;
}

export function sqlitePath(url: string): string {
  const rest = url.slice('sqlite:'.length);
  const path = rest.startsWith('//') ? rest.slice(2) : rest;
  if (path === '') throw new TypeError(`a sqlite: URL needs a file path or :memory: (got '${url}')`);
  return path;
}

/** Whether a value is a better-sqlite3 Database. */
export function isSqliteDatabase(client: unknown): client is Database {
  const candidate = client as Partial<Database> | null;
  return typeof candidate?.prepare === 'function' && typeof candidate.transaction === 'function' && typeof candidate.pragma === 'function';
}

export function sqliteTableSql(table: string): string[] {
  const quoted = quote(table);
  return [
    `CREATE TABLE ${quoted} ("cache_key" varchar(255) NOT NULL PRIMARY KEY, "value" blob NOT NULL, "expires" real NOT NULL)`,
    `CREATE INDEX ${quote(`${table}_expires`)} ON ${quoted} ("expires")`,
  ];
}

export class SqliteTable implements TableStore {
  readonly async = false;
  readonly server: string;
  private statements: ReturnType<typeof prepare> | undefined;

  constructor(
    private readonly db: Database,
    private readonly table: string,
  ) {
    this.server = `sqlite:${db.name}`;
  }

  exists(): boolean {
    return this.db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(this.table) !== undefined;
  }

  createTableSql(): string[] {
    return sqliteTableSql(this.table);
  }

  createTable(): 'created' | 'exists' {
    if (this.exists()) return 'exists';
    this.db
      .transaction(() => {
        for (const sql of this.createTableSql()) this.db.exec(sql);
      })
      .immediate();
    return 'created';
  }

  select(keys: string[], now: number): Row[] {
    return this.prepared().select.all(JSON.stringify(keys), now) as Row[];
  }

  selectOne(key: string, now: number): Row | undefined {
    return this.prepared().selectOne.get(key, now) as Row | undefined;
  }

  has(key: string, now: number): boolean {
    return this.prepared().has.get(key, now) !== undefined;
  }

  upsert(entries: Array<[string, Buffer]>, expires: number): number {
    const { upsert } = this.prepared();
    if (entries.length === 1) upsert.run(entries[0]![0], entries[0]![1], expires);
    else this.db.transaction(() => entries.forEach(([key, value]) => upsert.run(key, value, expires)))();
    return entries.length;
  }

  insertUnlessLive(key: string, value: Buffer, expires: number, now: number): boolean {
    return this.prepared().insertUnlessLive.run(key, value, expires, now).changes > 0;
  }

  delete(keys: string[], now: number): number {
    const removed = this.prepared().delete.all(JSON.stringify(keys)) as Array<{ expires: number }>;
    return removed.filter((row) => row.expires > now).length;
  }

  retime(key: string, expires: number, now: number): boolean {
    return this.prepared().retime.run(expires, key, now).changes > 0;
  }

  deleteAll(): void {
    this.prepared().deleteAll.run();
  }

  deleteExpired(now: number): void {
    this.prepared().deleteExpired.run(now);
  }

  count(): number {
    return (this.prepared().count.get() as { n: number }).n;
  }

  deleteSoonestExpiring(count: number, keptKeyStart: string): void {
    this.prepared().deleteSoonest.run({ kept: keptKeyStart, count });
  }

  close(): void {
    this.statements = undefined;
  }

  private prepared(): ReturnType<typeof prepare> {
    if (this.statements === undefined) {
      try {
        this.statements = prepare(this.db, this.table);
      } catch (error) {
        throw new Error(`table "${this.table}" in ${this.server}: ${(error as Error).message}`, { cause: error });
      }
    }
    return this.statements;
  }
}

function prepare(db: Database, table: string) {
  const t = quote(table);
  const statements = {
    select: `SELECT "cache_key" AS key, "value" AS value, "expires" AS expires FROM ${t} WHERE "cache_key" IN (SELECT value FROM json_each(?)) AND "expires" > ?`,
    selectOne: `SELECT "cache_key" AS key, "value" AS value, "expires" AS expires FROM ${t} WHERE "cache_key" = ? AND "expires" > ?`,
    has: `SELECT 1 FROM ${t} WHERE "cache_key" = ? AND "expires" > ?`,
    upsert: `INSERT INTO ${t} ("cache_key", "value", "expires") VALUES (?, ?, ?) ON CONFLICT ("cache_key") DO UPDATE SET "value" = excluded."value", "expires" = excluded."expires"`,
    insertUnlessLive: `INSERT INTO ${t} ("cache_key", "value", "expires") VALUES (?, ?, ?) ON CONFLICT ("cache_key") DO UPDATE SET "value" = excluded."value", "expires" = excluded."expires" WHERE ${t}."expires" <= ?`,
    delete: `DELETE FROM ${t} WHERE "cache_key" IN (SELECT value FROM json_each(?)) RETURNING "expires"`,
    retime: `UPDATE ${t} SET "expires" = ? WHERE "cache_key" = ? AND "expires" > ?`,
    deleteAll: `DELETE FROM ${t}`,
    deleteExpired: `DELETE FROM ${t} WHERE "expires" <= ?`,
    count: `SELECT count(*) AS n FROM ${t}`,
    deleteSoonest: `DELETE FROM ${t} WHERE "cache_key" IN (SELECT "cache_key" FROM ${t} WHERE @kept = '' OR substr("cache_key", 1, length(@kept)) <> @kept ORDER BY "expires" LIMIT @count)`,
  };
  return Object.fromEntries(Object.entries(statements).map(([name, sql]) => [name, db.prepare(sql)])) as Record<keyof typeof statements, Statement>;
}
