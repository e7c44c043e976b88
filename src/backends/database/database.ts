/**
 * database: one SQL table per cache, in SQLite (better-sqlite3, embedded) or PostgreSQL (pg). The
 * cache logic lives here once; each dialect's SQL sits behind `TableStore` (table.ts). `expires` is
 * epoch seconds as a double, +Infinity for "never", so "live" is always the one test `expires > now`.
 * Reads go to `readConnection` when given, except the reads a write depends on (incr, incrVersion).
 */
import { type CacheParams, type Entry, type MaybePromise } from '../../cache/base-cache.js';
import { bytesCodec } from '../../encoding/codec.js';
import { CULLING_OPTIONS, cullCount, type CullingOptions, cullingOptions } from '../culling.js';
import { describe, InvalidCacheKeyError } from '../../errors/errors.js';
import { MUST_BE, optionShape } from '../../options/option-rules.js';
import { SERVER_OPTIONS, ServerCache, type ServerOptions } from '../server.js';
import { describePgClient, describePostgresUrl, isPgQueryable, openPostgres, type PgQueryable, PostgresTable, postgresUrlProblem } from './postgres.js';
import { isSqliteDatabase, openSqlite, SqliteTable, sqliteUrlProblem } from './sqlite.js';
import type { Row, TableStore } from './table.js';

/**
 * A connection: a URL (`sqlite:///abs/path.db`, `sqlite:relative.db`, `sqlite::memory:`,
 * `postgres://user@host:5432/db`), or a client you opened yourself: a better-sqlite3 `Database`,
 * or a pg `Pool` or `Client`. Clients you pass in are never closed by the cache.
 */
export type DatabaseConnection = string | object;

export interface DatabaseOptions extends ServerOptions, CullingOptions {
  /** Where the table lives, and where every write goes. Caches naming the same URL share one connection (or pool) per process. */
  connection: DatabaseConnection;
  /** Where reads (get, getMany, hasKey) go, e.g. a replica. @default options.connection */
  readConnection?: DatabaseConnection;
  /** Create the table (and its index) on first use when it is missing, on the primary connection only. @default true */
  createTable?: boolean;
}

/** The longest key the `cache_key varchar(255)` column holds, in characters. */
export const MAX_KEY_CHARACTERS = 255;
/** `run`'s fallback for reads that serve incr and incrVersion: they write what they read, so never a faked miss. */
const STRICT = Symbol('strict');
/**
 * PostgreSQL cuts identifiers short at 63 bytes, and the index is named `<table>_expires`: longer
 * names would collide. The same limit on SQLite keeps a cache portable.
 */
const MAX_TABLE_NAME_BYTES = 63 - '_expires'.length;

export class DatabaseCache extends ServerCache<Buffer> {
  static override readonly optionNames = optionShape<DatabaseOptions>({
    ...SERVER_OPTIONS,
    ...CULLING_OPTIONS,
    connection: true,
    readConnection: true,
    createTable: MUST_BE.boolean,
  });
  /** The table name (the `location`). */
  readonly table: string;
  private readonly culling: Required<CullingOptions>;
  private readonly primary: TableStore;
  private readonly replica: TableStore;
  private readonly releases: Array<() => Promise<void>> = [];
  private readonly createMissingTable: boolean;
  private tableReady: Promise<unknown> | boolean = false;
  /** At least the table's row count, as far as this process knows; undefined until first counted. */
  private rowsBound: number | undefined;
  private writesSinceCount = 0;
  private pendingCull: Promise<void> | undefined;
  /** Other processes write too: count for real at least this often, whatever rowsBound says. */
  private readonly recountEvery: number;

  constructor(params: CacheParams<DatabaseOptions>) {
    super(params, bytesCodec);
    // The table name as given: quoted as an identifier, any name works (a comma or a space included).
    this.table = tableOf(params) as string;
    const options = (params.options ?? {}) as Partial<DatabaseOptions>;
    this.culling = cullingOptions(this.alias, options);
    this.recountEvery = Math.max(1, Math.ceil(this.culling.maxEntries / 10));
    this.createMissingTable = options.createTable ?? true;
    this.primary = this.connect(options.connection!);
    this.replica = options.readConnection === undefined ? this.primary : this.connect(options.readConnection);
  }

  /** One table name, and each connection a sqlite: URL naming a file in an existing folder, a postgres:// URL, or a client. */
  static override locationProblem(params: CacheParams<DatabaseOptions>): string | undefined {
    const table = tableOf(params);
    if (typeof table !== 'string' || table === '' || table.includes('\0') || Buffer.byteLength(table) > MAX_TABLE_NAME_BYTES) {
      return (
        `the database backend's location must be one table name: a non-empty string without NUL characters, ` +
        `at most ${MAX_TABLE_NAME_BYTES} bytes in UTF-8 (got ${describe(params.location)})`
      );
    }
    const { connection, readConnection } = params.options ?? ({} as Partial<DatabaseOptions>);
    if (connection === undefined) return 'options.connection is required: a sqlite: or postgres:// URL, a better-sqlite3 Database, or a pg Pool or Client';
    return connectionProblem(connection, 'connection') ?? (readConnection === undefined ? undefined : connectionProblem(readConnection, 'readConnection'));
  }

  // ---- Table management (createcachetable) --------------------------------------------------

  /** The statements that create this cache's table and its index. */
  createTableSql(): string[] {
    return this.primary.createTableSql();
  }

  /** Whether the table exists on the primary connection. */
  async tableExists(): Promise<boolean> {
    return this.primary.exists();
  }

  /** Creates the table and its index on the primary connection unless the table exists. */
  async createTable(): Promise<'created' | 'exists'> {
    const outcome = await this.primary.createTable();
    this.tableReady = true;
    return outcome;
  }

  /** Names the primary database (for messages): `sqlite:<path>` or a postgres URL without password. */
  get server(): string {
    return this.primary.server;
  }

  protected override get readsCarryExpiry(): boolean {
    return true;
  }

  // ---- Primitives ---------------------------------------------------------------------------

  protected async read(keys: string[]): Promise<Map<string, Entry<Buffer>>> {
    const rows = await this.run(this.replica, [], () => this.replica.select(keys, this.now()));
    return new Map(rows.map((row) => [row.key, entryOf(row)]));
  }

  /**
   * Reads behind incr and incrVersion, which write what they read: from the primary (a lagging
   * replica would lose updates), and never a faked miss.
   */
  protected override async readForUpdate(keys: string[]): Promise<Map<string, Entry<Buffer>>> {
    const rows = await this.run(this.primary, STRICT, () => this.primary.select(keys, this.now()));
    return new Map(rows.map((row) => [row.key, entryOf(row)]));
  }

  protected override async readOne(key: string): Promise<Entry<Buffer> | undefined> {
    const row = await this.run(this.replica, undefined, () => this.replica.selectOne(key, this.now()));
    return row === undefined ? undefined : entryOf(row);
  }

  protected override contains(key: string): Promise<boolean> {
    return this.run(this.replica, false, () => this.replica.has(key, this.now()));
  }

  protected async write(entries: Array<[string, Buffer]>, expiresAt: number | null): Promise<string[]> {
    // A key given twice would make one upsert touch a row twice, which PostgreSQL refuses; the last wins.
    const unique = entries.length === 1 ? entries : [...new Map(entries)];
    for (const [key] of unique) this.checkKeyLength(key);
    return this.run(
      this.primary,
      unique.map(([key]) => key),
      async () => {
        await this.makeRoom();
        this.rowsBound! += await this.primary.upsert(unique, expiresAt ?? Infinity);
        return [];
      },
    );
  }

  protected async insert(key: string, payload: Buffer, expiresAt: number | null): Promise<boolean> {
    this.checkKeyLength(key);
    return this.run(this.primary, false, async () => {
      await this.makeRoom();
      const stored = await this.primary.insertUnlessLive(key, payload, expiresAt ?? Infinity, this.now());
      if (stored) this.rowsBound! += 1;
      return stored;
    });
  }

  protected remove(keys: string[]): Promise<number> {
    return this.run(this.primary, 0, () => this.primary.delete(keys, this.now()));
  }

  protected retime(key: string, expiresAt: number | null): Promise<boolean> {
    return this.run(this.primary, false, () => this.primary.retime(key, expiresAt ?? Infinity, this.now()));
  }

  protected removeAll(): Promise<void> {
    return this.run(this.primary, undefined, async () => {
      await this.primary.deleteAll();
      this.rowsBound = 0;
    });
  }

  protected override async disconnect(): Promise<void> {
    this.primary.close();
    this.replica.close();
    await Promise.all(this.releases.splice(0).map((release) => release()));
  }

  // ---- Internals ----------------------------------------------------------------------------

  /**
   * Runs one store call: PostgreSQL's under the deadline and failOpen (ServerCache.guard), SQLite's
   * directly, since an embedded database has no server to wait for and no timer could interrupt it.
   */
  private async run<T>(store: TableStore, fallback: T | typeof STRICT, command: () => MaybePromise<T>): Promise<T> {
    if (!store.async) {
      this.refuseIfClosed();
      if (store === this.primary && this.tableReady !== true) this.ensureTableSync();
      return command();
    }
    const guarded = async () => {
      if (store === this.primary && this.tableReady !== true) await this.ensureTable();
      return command();
    };
    return fallback === STRICT ? this.guardStrict(store.server, guarded) : this.guard(store.server, fallback, guarded);
  }

  private ensureTableSync(): void {
    if (this.createMissingTable) this.primary.createTable();
    this.tableReady = true;
  }

  private ensureTable(): Promise<unknown> {
    if (!this.createMissingTable) {
      this.tableReady = true;
      return Promise.resolve();
    }
    if (this.tableReady === false) {
      const creating = Promise.resolve(this.primary.createTable()).then(
        () => (this.tableReady = true),
        (error) => {
          // A server that was down at first use: try again next time.
          this.tableReady = false;
          throw error;
        },
      );
      this.tableReady = creating;
    }
    return this.tableReady as Promise<unknown>;
  }

  /**
   * Culls before a write, as Django does, but counts the table only when it may be full: when this
   * process's bound on the row count reaches maxEntries, or every `recountEvery` writes (others write
   * too). Expired rows go first, then the rows closest to expiring (the `expires` index serves both).
   */
  private async makeRoom(): Promise<void> {
    this.writesSinceCount++;
    if (this.rowsBound !== undefined && this.rowsBound < this.culling.maxEntries && this.writesSinceCount < this.recountEvery) return;
    // Concurrent writes share one cull: each running its own would remove a third several times over.
    this.pendingCull ??= this.cull().finally(() => (this.pendingCull = undefined));
    await this.pendingCull;
  }

  /** The rows of its table, expired ones not yet culled included. */
  protected override async countEntries(): Promise<number> {
    return this.primary.count();
  }

  private async cull(): Promise<void> {
    await this.primary.deleteExpired(this.now());
    const count = await this.primary.count();
    const excess = cullCount(count, this.culling);
    // Tag versions stay (`survivesCulls`); with cullFrequency 0 every other row goes.
    if (excess > 0) await this.primary.deleteSoonestExpiring(excess, this.cullProofKeyStart ?? '');
    this.rowsBound = count - excess;
    this.writesSinceCount = 0;
  }

  private checkKeyLength(key: string): void {
    if (key.length > MAX_KEY_CHARACTERS && [...key].length > MAX_KEY_CHARACTERS) {
      throw new InvalidCacheKeyError(
        `Cache key is longer than ${MAX_KEY_CHARACTERS} characters, the database backend's limit (cache '${this.alias}'): '${key}'`,
        key,
      );
    }
  }

  private connect(connection: DatabaseConnection): TableStore {
    if (typeof connection === 'string') {
      if (connection.startsWith('sqlite:')) {
        const { client, release } = acquire(
          connection,
          () => openSqlite(connection),
          (db) => db.close(),
        );
        this.releases.push(release);
        return new SqliteTable(client, this.table);
      }
      // A postgres:// URL: `locationProblem` refused any other before the cache was built.
      const { client, release } = acquire(
        connection,
        () => openPostgres(connection, this.timeoutMs),
        (pool) => pool.end(),
      );
      this.releases.push(release);
      return new PostgresTable(client as unknown as PgQueryable, this.table, describePostgresUrl(connection));
    }
    // A client: `locationProblem` refused anything else.
    if (isSqliteDatabase(connection)) return new SqliteTable(connection, this.table);
    return new PostgresTable(connection as PgQueryable, this.table, describePgClient(connection as object));
  }
}

/** The table name a location gives (a list of one is one), or what was given instead. */
function tableOf(params: CacheParams<object>): unknown {
  return Array.isArray(params.location) && params.location.length === 1 ? params.location[0] : params.location;
}

function connectionProblem(connection: DatabaseConnection, option: string): string | undefined {
  if (typeof connection === 'string') {
    const problem = connection.startsWith('sqlite:')
      ? sqliteUrlProblem(connection)
      : /^postgres(ql)?:\/\//.test(connection)
        ? postgresUrlProblem(connection)
        : `must start with sqlite: or postgres:// (got ${describe(connection)})`;
    return problem === undefined ? undefined : `options.${option} ${problem}`;
  }
  if (isSqliteDatabase(connection) || isPgQueryable(connection)) return undefined;
  return `options.${option} must be a sqlite: or postgres:// URL, a better-sqlite3 Database, or a pg Pool or Client (got ${describe(connection)})`;
}

function entryOf(row: Row): Entry<Buffer> {
  return { payload: row.value, expiresAt: row.expires === Infinity ? null : row.expires };
}

// Connections opened from URLs, shared by every cache naming the same URL and closed with the last.
const shared = new Map<string, { client: unknown; users: number; close: () => unknown }>();

function acquire<C>(url: string, open: () => C, close: (client: C) => unknown): { client: C; release: () => Promise<void> } {
  let entry = shared.get(url);
  if (entry === undefined) {
    const client = open();
    entry = { client, users: 0, close: () => close(client) };
    shared.set(url, entry);
  }
  entry.users++;
  const held = entry;
  let released = false;
  return {
    client: held.client as C,
    release: async () => {
      if (released) return;
      released = true;
      if (--held.users > 0) return;
      shared.delete(url);
      await held.close();
    },
  };
}
