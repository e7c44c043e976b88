/**
 * The contract between the database backend and its dialects: the rows they return and the SQL
 * each one runs over one table. The dialects depend on this file alone, never on the backend.
 */
import type { MaybePromise } from '../../cache/base-cache.js';

/** One row as the dialects return it. */
export interface Row {
  key: string;
  value: Buffer;
  /** Epoch seconds; +Infinity for never. */
  expires: number;
}

/** The SQL of one dialect, over one table. Sync for SQLite, async for PostgreSQL. */
export interface TableStore {
  /** Whether calls return promises (a server: guarded by timeoutMs/failOpen). */
  readonly async: boolean;
  /** Names the database in errors (never with a password). */
  readonly server: string;
  exists(): MaybePromise<boolean>;
  createTableSql(): string[];
  createTable(): MaybePromise<'created' | 'exists'>;
  select(keys: string[], now: number): MaybePromise<Row[]>;
  selectOne(key: string, now: number): MaybePromise<Row | undefined>;
  has(key: string, now: number): MaybePromise<boolean>;
  /** Stores every entry; answers how many rows may be new (an upper bound). */
  upsert(entries: Array<[string, Buffer]>, expires: number): MaybePromise<number>;
  /** Inserts, or replaces an expired row, atomically; answers whether it stored. */
  insertUnlessLive(key: string, value: Buffer, expires: number, now: number): MaybePromise<boolean>;
  /** Deletes the keys; answers how many of them were live. */
  delete(keys: string[], now: number): MaybePromise<number>;
  retime(key: string, expires: number, now: number): MaybePromise<boolean>;
  deleteAll(): MaybePromise<void>;
  deleteExpired(now: number): MaybePromise<void>;
  count(): MaybePromise<number>;
  /** Deletes the `count` rows closest to expiring, leaving every row whose key begins with `keptKeyStart` (unless it is ''). */
  deleteSoonestExpiring(count: number, keptKeyStart: string): MaybePromise<void>;
  close(): void;
}

/** A double-quoted SQL identifier. */
export function quote(identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`;
}
