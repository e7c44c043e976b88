/**
 * The PostgreSQL side of the database backend: node-postgres, one named (so server-side prepared)
 * statement per query shape, key lists as one array parameter (`= ANY($1)`). Upserts report which
 * rows were new (`xmax = 0`), so culling counts the table only when it may be full.
 */
import { createHash } from 'node:crypto';
import type { Pool, PoolConfig, QueryResultRow } from 'pg';
import { requirePeer } from '../peer.js';
import { quote, type Row, type TableStore } from './table.js';

/** What the backend needs of a pg Pool or Client. */
export interface PgQueryable {
  query<R extends QueryResultRow = QueryResultRow>(config: {
    name?: string;
    text: string;
    values?: unknown[];
  }): Promise<{ rows: R[]; rowCount: number | null }>;
  end?(): Promise<void>;
}

/** Why a `postgres://` URL cannot be parsed, naming it without its password; undefined when it can. */
export function postgresUrlProblem(url: string): string | undefined {
  if (URL.canParse(url)) return undefined;
  return `'${url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@')}' is not a URL, as postgres://user@127.0.0.1:5432/site`;
}

/** Opens a pool for a `postgres://` URL; `connectionTimeoutMs` bounds the wait for a connection. */
export function openPostgres(url: string, connectionTimeoutMs: number): Pool {
  const pg = requirePeer<typeof import('pg')>('pg', 'The database backend on postgres://');
  const config: PoolConfig = { connectionString: url, connectionTimeoutMillis: Math.ceil(connectionTimeoutMs) };
  const pool = new pg.Pool(config);
  // An idle client whose server went away emits 'error' on the pool, which would otherwise crash the
  // process; the pool drops that client and the next command reports the failure where it belongs.
  pool.on('error', () => undefined);
  return pool;
}

/** Whether a value looks like a pg Pool or Client. */
export function isPgQueryable(client: unknown): client is PgQueryable {
  const candidate = client as { query?: unknown; prepare?: unknown } | null;
  return typeof candidate?.query === 'function' && candidate.prepare === undefined;
}

/** A URL fit for error messages: no password. */
export function describePostgresUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = '';
    return parsed.toString();
  } catch {
    return 'postgres (unparsable URL)';
  }
}

/** Names a pg client from its own settings, for error messages. */
export function describePgClient(client: object): string {
  const settings = ((client as { options?: object }).options ?? client) as { connectionString?: string; host?: string; port?: number; database?: string };
  if (settings.connectionString) return describePostgresUrl(settings.connectionString);
  return `postgres://${settings.host ?? 'localhost'}:${settings.port ?? 5432}/${settings.database ?? ''}`;
}

export function postgresTableSql(table: string): string[] {
  const quoted = quote(table);
  return [
    `CREATE TABLE ${quoted} ("cache_key" varchar(255) NOT NULL PRIMARY KEY, "value" bytea NOT NULL, "expires" double precision NOT NULL)`,
    `CREATE INDEX ${quote(`${table}_expires`)} ON ${quoted} ("expires")`,
  ];
}

export class PostgresTable implements TableStore {
  readonly async = true;
  private readonly sql: ReturnType<typeof statements>;

  constructor(
    private readonly client: PgQueryable,
    private readonly table: string,
    readonly server: string,
  ) {
    this.sql = statements(table);
  }

  async exists(): Promise<boolean> {
    const { rows } = await this.client.query<{ found: string | null }>({ text: 'SELECT to_regclass($1) AS found', values: [quote(this.table)] });
    return rows[0]?.found != null;
  }

  createTableSql(): string[] {
    return postgresTableSql(this.table);
  }

  async createTable(): Promise<'created' | 'exists'> {
    if (await this.exists()) return 'exists';
    // One multi-statement query runs as one transaction: the table never exists without its index.
    try {
      await this.client.query({ text: this.createTableSql().join('; ') });
    } catch (error) {
      // Another process created it between the check and now.
      if (['42P07', '23505'].includes((error as { code?: string }).code ?? '')) return 'exists';
      throw error;
    }
    return 'created';
  }

  async select(keys: string[], now: number): Promise<Row[]> {
    return (await this.run<Row>('select', [keys, now])).rows;
  }

  async selectOne(key: string, now: number): Promise<Row | undefined> {
    return (await this.run<Row>('selectOne', [key, now])).rows[0];
  }

  async has(key: string, now: number): Promise<boolean> {
    return (await this.run('has', [key, now])).rows.length > 0;
  }

  async upsert(entries: Array<[string, Buffer]>, expires: number): Promise<number> {
    const result =
      entries.length === 1
        ? await this.run<{ inserted: boolean }>('upsert', [entries[0]![0], entries[0]![1], expires])
        : await this.run<{ inserted: boolean }>('upsertMany', [entries.map(([key]) => key), entries.map(([, value]) => value), expires]);
    return result.rows.filter((row) => row.inserted).length;
  }

  async insertUnlessLive(key: string, value: Buffer, expires: number, now: number): Promise<boolean> {
    return ((await this.run('insertUnlessLive', [key, value, expires, now])).rowCount ?? 0) > 0;
  }

  async delete(keys: string[], now: number): Promise<number> {
    const { rows } = await this.run<{ expires: number }>('delete', [keys]);
    return rows.filter((row) => row.expires > now).length;
  }

  async retime(key: string, expires: number, now: number): Promise<boolean> {
    return ((await this.run('retime', [expires, key, now])).rowCount ?? 0) > 0;
  }

  async deleteAll(): Promise<void> {
    await this.run('deleteAll', []);
  }

  async deleteExpired(now: number): Promise<void> {
    await this.run('deleteExpired', [now]);
  }

  async count(): Promise<number> {
    return Number((await this.run<{ n: string }>('count', [])).rows[0]!.n);
  }

  async deleteSoonestExpiring(count: number, keptKeyStart: string): Promise<void> {
    await this.run('deleteSoonest', [count, keptKeyStart]);
  }

  close(): void {}

  private run<R extends QueryResultRow = QueryResultRow>(name: keyof ReturnType<typeof statements>, values: unknown[]) {
    return this.client.query<R>({ ...this.sql[name], values });
  }
}

function statements(table: string) {
  const t = quote(table);
  const texts = {
    select: `SELECT "cache_key" AS key, "value" AS value, "expires" AS expires FROM ${t} WHERE "cache_key" = ANY($1::varchar[]) AND "expires" > $2`,
    selectOne: `SELECT "cache_key" AS key, "value" AS value, "expires" AS expires FROM ${t} WHERE "cache_key" = $1 AND "expires" > $2`,
    has: `SELECT 1 FROM ${t} WHERE "cache_key" = $1 AND "expires" > $2`,
    upsert: `INSERT INTO ${t} ("cache_key", "value", "expires") VALUES ($1, $2, $3) ON CONFLICT ("cache_key") DO UPDATE SET "value" = excluded."value", "expires" = excluded."expires" RETURNING (xmax = 0) AS inserted`,
    upsertMany: `INSERT INTO ${t} ("cache_key", "value", "expires") SELECT k, v, $3 FROM unnest($1::varchar[], $2::bytea[]) AS u(k, v) ON CONFLICT ("cache_key") DO UPDATE SET "value" = excluded."value", "expires" = excluded."expires" RETURNING (xmax = 0) AS inserted`,
    insertUnlessLive: `INSERT INTO ${t} ("cache_key", "value", "expires") VALUES ($1, $2, $3) ON CONFLICT ("cache_key") DO UPDATE SET "value" = excluded."value", "expires" = excluded."expires" WHERE ${t}."expires" <= $4`,
    delete: `DELETE FROM ${t} WHERE "cache_key" = ANY($1::varchar[]) RETURNING "expires"`,
    retime: `UPDATE ${t} SET "expires" = $1 WHERE "cache_key" = $2 AND "expires" > $3`,
    deleteAll: `DELETE FROM ${t}`,
    deleteExpired: `DELETE FROM ${t} WHERE "expires" <= $1`,
    count: `SELECT count(*) AS n FROM ${t}`,
    deleteSoonest: `DELETE FROM ${t} WHERE "cache_key" IN (SELECT "cache_key" FROM ${t} WHERE $2::text = '' OR left("cache_key", length($2::text)) <> $2::text ORDER BY "expires" LIMIT $1)`,
  };
  // Named statements are prepared once per connection; the name must be unique per text.
  const named = (text: string) => ({ name: `cachegrain_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`, text });
  return Object.fromEntries(Object.entries(texts).map(([name, text]) => [name, named(text)])) as Record<keyof typeof texts, { name: string; text: string }>;
}
