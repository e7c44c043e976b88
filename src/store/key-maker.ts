/**
 * A cache's key maker: each key as the cache stores it (its made key, as `makeKey` makes it: prefix,
 * version and key function applied), checked, and remembered. Making and checking a key costs about
 * as much as the rest of an in-process get, so the usual ones (a string key, the default version,
 * one memcached would take) are made once. Each remembers the entry a store in this process last
 * answered for it, so that a read or write of the key uses that entry again without looking the key
 * up a second time (see `LocalStore`).
 */
import type { InProcessEntry } from './in-process-contract.js';
import { abbreviatedKey, type CacheKey, type KeyFunction, memcachedKeyProblems } from '../keys/cache-keys.js';
import { CacheKeyWarning } from '../errors/errors.js';
import { BoundedMemo } from '../memos/bounded-memo.js';

/**
 * How many made keys each cache remembers: a hot set of 100,000 keys, with room to spare. A memo
 * smaller than the hot set starts afresh again and again, and then costs more than it saves.
 */
export const MADE_KEYS_REMEMBERED = 131_072;
/**
 * How many made keys a cache whose store is wholly in this process (locmem) remembers per entry the
 * store holds. Each remembers the entry last answered for it, which stays in memory after the store
 * culls it: sized by the keys asked for rather than by the store, a page cache asked for ever new
 * URLs (random query strings) kept two keys per URL up to `MADE_KEYS_REMEMBERED`, tens of MB, most
 * of them for entries long culled. Two per entry leave room for keys looked up and not found.
 */
export const MADE_KEYS_PER_STORED_ENTRY = 2;
/** Tag versions and locks live under this version of their keys, whatever the cache's. */
export const TAG_KEY_VERSION = 0;
/** What the user keys of tag versions and of the tag horizon begin with (see `BackendContract.cullProofKeyStart`). */
export const TAG_KEYS = 'cachegrain.tag';
/** How many shapes of bad key each cache remembers having warned about. */
const WARNED_SHAPES_REMEMBERED = 1_000;

/** A made key with the entry a store in this process last answered for it. */
export interface MadeKey<P> {
  readonly made: string;
  entry: InProcessEntry<P> | undefined;
}

/** What making a key asks of its cache: its own key function, check and default version. */
export interface KeyMaking {
  readonly version: number;
  makeKey(key: CacheKey, version?: number): string;
  validateKey(key: string): void;
}

/**
 * How many keys a list holds at least for its batch to be remembered: a few keys are looked up
 * about as fast as their list, and short lists (a render level's) are mostly built afresh each time.
 */
const BATCH_REMEMBERED_FROM = 8;

/** A batch of keys with their made keys, both kept as made: neither is ever changed. */
export interface MadeBatch {
  readonly keys: readonly CacheKey[];
  readonly made: readonly string[];
  /** Whether the same list of keys asked again answers this same batch (what a reader may keep with it). */
  readonly remembered: boolean;
}

/** Whether `keys` holds the same keys as `batch`, in the same order. */
function sameKeys(batch: readonly CacheKey[], keys: readonly CacheKey[]): boolean {
  if (batch.length !== keys.length) return false;
  for (let i = 0; i < keys.length; i++) if (batch[i] !== keys[i]) return false;
  return true;
}

export class KeyMaker<P> {
  private readonly known = new BoundedMemo<MadeKey<P>>(MADE_KEYS_REMEMBERED);
  /**
   * Batches of string keys of the default version made, by the caller's list: a page or a job asks
   * for the same lists again and again. Held weakly: a list dropped by its caller goes with its batch.
   */
  private readonly batches = new WeakMap<readonly CacheKey[], MadeBatch>();
  /** The kinds of key warned about (see `warnOnce`). */
  private readonly warnedShapes = new BoundedMemo<true>(WARNED_SHAPES_REMEMBERED);

  constructor(private readonly cache: KeyMaking) {}

  /** How many made keys it remembers at most. */
  get remembered(): number {
    return this.known.capacity;
  }

  /** Made keys will remember the entries of a store in this process that holds up to `capacity` entries: as many as it holds, no more (see `MADE_KEYS_PER_STORED_ENTRY`). */
  holdEntriesOf(capacity: number): void {
    this.known.limitTo(Math.min(MADE_KEYS_REMEMBERED, MADE_KEYS_PER_STORED_ENTRY * capacity));
  }

  /** Made and validated; for the default version, made keys that passed are remembered. */
  made(key: CacheKey, version?: number): string {
    return this.node(key, version).made;
  }

  /**
   * `keys` (copied: the caller may change its list while the read is under way) with their made
   * keys, for a batched read; a list of string keys of the default version is made once while it
   * holds the same keys.
   */
  madeBatch(keys: Iterable<CacheKey>, version: number | undefined): MadeBatch {
    const list = Array.isArray(keys) ? (keys as readonly CacheKey[]) : undefined;
    const known = list === undefined ? undefined : this.batches.get(list);
    if (known !== undefined && this.remembers('', version) && sameKeys(known.keys, list!)) return known;
    const copied: CacheKey[] = [];
    const made: string[] = [];
    let remembered = this.remembers('', version);
    for (const key of keys) {
      copied.push(key);
      made.push(this.made(key, version));
      if (typeof key !== 'string') remembered = false;
    }
    remembered &&= list !== undefined && list.length >= BATCH_REMEMBERED_FROM;
    const batch = { keys: copied, made, remembered };
    if (remembered) this.batches.set(list!, batch);
    return batch;
  }

  /** `key`'s made key with the entry last found under it in this process, remembered as `made` says. */
  node(key: CacheKey, version: number | undefined): MadeKey<P> {
    const known = this.remembers(key, version) ? this.known.get(key as string) : undefined;
    return known !== undefined ? known : this.makeNode(key, version);
  }

  /** Whether a made key of `key` is one to remember: a string key at the cache's own version. */
  private remembers(key: CacheKey, version: number | undefined): boolean {
    return typeof key === 'string' && (version === undefined || version === this.cache.version);
  }

  private makeNode(key: CacheKey, version: number | undefined): MadeKey<P> {
    const made = this.cache.makeKey(key, version);
    this.cache.validateKey(made);
    const node: MadeKey<P> = { made, entry: undefined };
    if (this.remembers(key, version) && memcachedKeyProblems(made).length === 0) this.known.set(key as string, node);
    return node;
  }

  /**
   * Warns (as a `CacheKeyWarning`) about made keys memcached would refuse: once per shape of key,
   * since a site makes the same bad key on every request; a shape is the problem and the key with
   * its digits and its tail past 100 characters left out (`page:1:…` for every id).
   */
  warnOnce(key: string): void {
    const problems = memcachedKeyProblems(key);
    if (problems.length === 0) return;
    const shape = `${problems.length}:${key.slice(0, 100).replace(/[0-9]+/g, '#')}`;
    if (this.warnedShapes.get(shape) === true) return;
    this.warnedShapes.set(shape, true);
    for (const problem of memcachedKeyProblems(key, abbreviatedKey(key))) process.emitWarning(problem, CacheKeyWarning);
  }
}

/**
 * What every made key whose user key begins with `start` begins with, when the key function puts
 * the user key last (the default does); else undefined.
 */
export function madeKeyStart(keyFunction: KeyFunction, keyPrefix: string, start: string, version: number): string | undefined {
  const made = keyFunction(start, keyPrefix, version);
  const probe = '.x';
  return made !== '' && keyFunction(start + probe, keyPrefix, version) === made + probe ? made : undefined;
}
