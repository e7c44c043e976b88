/**
 * The primitives of a backend as the parts of a cache call them (`BackendPrimitives`), below every
 * layer that calls them: the tags, the payloads, the L1. `BackendContract` (`cache/backend-contract.ts`)
 * declares them as the protected methods a backend implements; the cache hands itself to its parts as this.
 */
import type { MaybePromise } from './maybe-promise.js';
import type { Entry } from './cache-types.js';

/**
 * A made key `write` could not store: the key alone when the caller is not to hear why (a failOpen
 * fallback), or with the cause, which `set` rejects with (`setMany` answers the key either way).
 */
export type WriteFailure = string | { key: string; error: Error };

/** The primitives of a backend, as `BaseCache` declares them. */
export interface BackendPrimitives<P> {
  read(keys: string[], withExpiry: boolean): MaybePromise<Map<string, Entry<P>>>;
  readPayloads(keys: string[]): MaybePromise<ReadonlyArray<P | undefined>>;
  readOne(key: string): MaybePromise<Entry<P> | undefined>;
  peekOne(key: string): MaybePromise<Entry<P> | undefined>;
  contains(key: string): MaybePromise<boolean>;
  readForUpdate(keys: string[]): MaybePromise<Map<string, Entry<P>>>;
  write(entries: Array<[string, P]>, expiresAt: number | null): MaybePromise<WriteFailure[]>;
  writeOne(key: string, payload: P, expiresAt: number | null): MaybePromise<void>;
  insert(key: string, payload: P, expiresAt: number | null): MaybePromise<boolean>;
  remove(keys: string[]): MaybePromise<number>;
  retime(key: string, expiresAt: number | null): MaybePromise<boolean>;
  extendExpiry?(keys: string[], expiresAt: number | null): MaybePromise<void>;
  removeAll(): MaybePromise<void>;
  incrBy?(key: string, delta: number): MaybePromise<number | undefined>;
  disconnect?(): MaybePromise<void>;
}

/** The payloads of `found` (a `read`'s answer) in the order of `keys`, undefined where a key was missing. */
export function payloadsInOrder<P>(keys: readonly string[], found: ReadonlyMap<string, Entry<P>>): Array<P | undefined> {
  const payloads = new Array<P | undefined>(keys.length);
  for (let i = 0; i < keys.length; i++) payloads[i] = found.get(keys[i]!)?.payload;
  return payloads;
}

/** The made key of a write failure. */
export function failedKey(failure: WriteFailure): string {
  return typeof failure === 'string' ? failure : failure.key;
}

/** Throws the cause of the first write failure that carries one: a write the server refused. */
export function throwRefusal(failed: WriteFailure[]): void {
  for (const failure of failed) if (typeof failure !== 'string') throw failure.error;
}
