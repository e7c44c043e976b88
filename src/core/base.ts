/**
 * BaseCache: the whole low-level cache API, written once over a handful of primitives that
 * each backend implements (Django's `BaseCache`, unstorage's driver seam). The base owns argument
 * shapes, key making and validation, versions, timeouts, serialization, copy-on-read, the getOrSet
 * single-flight, incrVersion and the incr fallback; a backend sees only made keys, payloads and
 * absolute expiries (epoch seconds, `null` = never).
 */
import { EventEmitter } from 'node:events';
import { now } from './clock.js';
import type { Codec, EntryStamp, KnownStamp, Unstamped } from './codec.js';
import { CacheKeyWarning, CacheServerError, KeyNotFoundError } from './errors.js';
import { CACHE_OPERATIONS, type CacheEvent, type CacheOperation, type CacheOutcome, type CacheStats, CHANNELS, emptyStats } from './observe.js';
import { BoundedMemo } from './memo.js';
import { md5 } from './hash.js';
import { randomBytes } from 'node:crypto';
import { Flights, LOCK_SECONDS, Refreshes } from '../flight/index.js';
import { performance } from 'node:perf_hooks';
import { checkOptionNames, type OptionShape, optionShape } from '../options.js';
import { abbreviatedKey, type CacheKey, defaultKeyFunction, describe, type KeyFunction, memcachedKeyProblems, userKeyToString } from './keys.js';

export type MaybePromise<T> = T | Promise<T>;

/**
 * A made key `write` could not store: the key alone when the caller is not to hear why (a failOpen
 * fallback), or with the cause, which `set` rejects with (`setMany` answers the key either way).
 */
export type WriteFailure = string | { key: string; error: Error };

/** A stored entry as a backend returns it. */
export interface Entry<P> {
  payload: P;
  /** Epoch seconds, `null` for never; `undefined` when the read did not ask for it. */
  expiresAt?: number | null;
}

/**
 * An entry of a store in this process (locmem, an L1) that a caller may keep and check again
 * instead of reading it again: the store sets `retired` once the entry leaves it (replaced, deleted,
 * culled, cleared) and changes `expiresAt` in place when the key is touched. A store may write a new
 * value into an entry nobody keeps (`kept` false) instead of replacing it.
 */
export interface InProcessEntry<P> extends Entry<P> {
  expiresAt: number | null;
  retired: boolean;
  kept: boolean;
  /** Until when the store vouches for the entry, when that is sooner than its expiry (an L1's `timeout`). */
  trustedUntil?: number;
}

/**
 * What a store in this process vouches for about one key: an entry it holds, or that the key has no
 * entry. `retired` turns true once that stops being so (the key is written, deleted, culled or
 * forgotten), so whoever kept an answer that stands on it knows to read again.
 */
export interface InProcessStanding {
  readonly retired: boolean;
  /**
   * Set by a caller that keeps it past the call that read it (`holdFresh`): from then on the key's
   * next write retires it, where a store would otherwise write into an entry nobody keeps.
   */
  kept?: boolean;
  /** Until when the store vouches for it, when that is sooner than forever (an L1's `timeout`). */
  readonly trustedUntil?: number;
}

/** How a store in this process learns which of its entries are in use, for culling the others first. */
export interface InProcessRecency {
  /**
   * Whether the store is full enough for the order of use to matter soon. While it is not, kept
   * entries answer without reporting their hits: nothing is culled before it fills up.
   */
  crowded: boolean;
  /** Reports a hit on a made key. */
  touch(key: string): void;
}

/** A fresh string a cache holds in this process, kept by a caller that asks for it again (`holdFresh`, `answerHeld`). */
export interface HeldString {
  readonly cache: BaseCache;
  readonly key: string;
  readonly value: string;
  readonly entry: InProcessEntry<unknown>;
  /** Until when it may be answered again: the soonest `trustedUntil` of the entries it stands on, its `freshUntil`, or Infinity. */
  readonly trustedUntil: number;
  readonly recency: InProcessRecency;
  /** The tags it was stored with, which go to whatever it is answered into. */
  readonly tags: readonly string[];
  /** The made keys of its tags' versions, and their entries as held when it was read: a new version retires one. */
  readonly tagKeys: readonly string[];
  readonly tagEntries: ReadonlyArray<InProcessStanding>;
}

/** Everything `configureCaches` knows about one alias, as handed to a backend's constructor. */
export interface CacheParams<O = Record<string, unknown>> {
  /** The alias this instance serves; used in error messages. @default 'default' */
  alias?: string;
  /** Backend-specific: a store name, a directory, a table, server addresses. */
  location?: string | string[];
  /** Default timeout in seconds; `null` never expires, `0` does not keep. @default 300 */
  timeout?: number | null;
  /** Prepended to every key by the key function. @default '' */
  keyPrefix?: string;
  /** The version used when a call does not name one. @default 1 */
  version?: number;
  /** Builds the stored key. @default `${keyPrefix}:${version}:${key}` */
  keyFunction?: KeyFunction;
  /** Where problems are reported once per cause. @default console */
  logger?: CacheLogger;
  /** Backend-specific options. */
  options?: O;
}

/** Where a cache reports what goes wrong around it: a server down, a key memcached would refuse. `console` is one. */
export interface CacheLogger {
  warn(message: string): void;
}

/** A timeout in seconds (`null` = forever), or an options object. Omitted = the cache's default. */
export type TimeoutArg = number | null | undefined | WriteOptions;
/** The options of a write. */
export interface WriteOptions {
  timeout?: number | null;
  version?: number;
  /** Invalidated together by `invalidateTags`. */
  tags?: readonly string[];
  /** Seconds past `timeout` (or past a soft invalidation) during which `getOrSet` serves the entry while one refresh runs. */
  staleWhileRevalidate?: number;
  /** Seconds past `timeout` during which `getOrSet` serves the entry when recomputing it fails. */
  staleIfError?: number;
  /**
   * Tag versions read before the value was computed (`readTagSnapshot`): the entry is stamped with
   * them, so an invalidation that came while it was computed invalidates it too.
   */
  tagsAsOf?: TagSnapshot;
}

/** Each tag's version at one moment; undefined for a tag never invalidated (or whose version expired), which is its first version. */
export type TagSnapshot = ReadonlyMap<string, string | undefined>;

/** The options of `invalidateTags`. */
export interface InvalidateOptions {
  /** Make the entries stale (served while one refresh runs, where they have a stale window) instead of gone. */
  soft?: boolean;
}

export const INVALIDATE_OPTIONS = optionShape<InvalidateOptions>({ soft: true });

/**
 * How a stored entry stands: `fresh`; `stale`, past its timeout or softly invalidated but inside its
 * `staleWhileRevalidate` window (serve it, refresh it behind); `error`, past that but inside its
 * `staleIfError` window (serve it only when recomputing it fails).
 */
export type EntryState = 'fresh' | 'stale' | 'error';

/** An entry as `getEntries` answers it: the value, its tags, and how it stands. */
export interface CachedEntry<T> {
  value: T;
  tags: readonly string[];
  state: EntryState;
}

/** What `storedEntry` answers. */
export interface StoredEntry {
  /** Epoch seconds when the backend drops the entry; `null` for never; undefined when the backend does not say. */
  expiresAt: number | null | undefined;
  /** Epoch seconds when an entry that may be served stale stops being fresh; undefined when it has no stale window. */
  freshUntil: number | undefined;
  /** The stored size in bytes, stamp included; undefined for a store that keeps values as objects. */
  bytes: number | undefined;
}

/** Turns one read entry of a batch (under made key `made`) into what the batch answers for it. */
type BuildAnswer<P, V> = (made: string, payload: P, stamp: EntryStamp | undefined, state: EntryState | undefined) => V | Unreadable;

/**
 * What a read found under a key whose payload cannot be decoded (damaged, or written in a format
 * this process does not read): the read answers a miss, once the entry's `removal` has settled.
 */
class Unreadable {
  constructor(
    readonly error: Error,
    readonly removal: MaybePromise<void>,
  ) {}
}

/** `answer`, once those of `removals` that are still under way have settled. */
function afterRemovals<T>(removals: Array<MaybePromise<void>>, answer: T): MaybePromise<T> {
  const pending = removals.filter((removal) => removal instanceof Promise);
  return pending.length === 0 ? answer : Promise.all(pending).then(() => answer);
}

/** A stored payload's value payload, its stamp if it has one, and how it stands (undefined: dead). */
interface Judged<P> {
  payload: P;
  stamp: EntryStamp | undefined;
  state: EntryState | undefined;
}

/** The stale windows of a write, in seconds; absent when it has none. */
interface StaleWindows {
  staleWhileRevalidate: number;
  staleIfError: number;
}
export interface VersionOption {
  version?: number;
}

const WRITE_OPTIONS = optionShape<WriteOptions>({ timeout: true, version: true, tags: true, staleWhileRevalidate: true, staleIfError: true, tagsAsOf: true });
const VERSION_OPTIONS = optionShape<VersionOption>({ version: true });

export const DEFAULT_TIMEOUT = 300;

const RESOLVED: Promise<void> = Promise.resolve();
const nothing = (): void => undefined;
const NO_TAGS: readonly string[] = Object.freeze([]);
const NO_ENTRIES: ReadonlyArray<InProcessEntry<never>> = Object.freeze([]);
/** Tags whose version key can hold them as they are, on every backend. */
const PLAIN_TAG = /^[A-Za-z0-9:_.\/-]{1,40}$/;

/** Whether `versions` holds (a version or its absence for) every one of `tags`. */
function knowsEvery(versions: TagSnapshot, tags: readonly string[]): boolean {
  for (let i = 0; i < tags.length; i++) if (!versions.has(tags[i]!)) return false;
  return true;
}

/** The answer as a promise: one already settled for an answer given at once. */
function promised<T>(answer: MaybePromise<T>): Promise<T> {
  if (answer instanceof Promise) return answer;
  return answer === undefined ? (RESOLVED as Promise<T>) : Promise.resolve(answer);
}

/** `next` of the value, at once when it is already there: a store in this process answers without a turn of the event loop. */
function andThen<A, B>(value: MaybePromise<A>, next: (value: A) => MaybePromise<B>): MaybePromise<B> {
  return value instanceof Promise ? value.then(next) : next(value);
}

/** Throws the cause of the first write failure that carries one: a write the server refused. */
function throwRefusal(failed: WriteFailure[]): void {
  for (const failure of failed) if (typeof failure !== 'string') throw failure.error;
}

/** The made key of a write failure. */
export function failedKey(failure: WriteFailure): string {
  return typeof failure === 'string' ? failure : failure.key;
}

/** Tag versions and locks live under this version of their keys, whatever the cache's. */
const TAG_KEY_VERSION = 0;
/** What the user keys of tag versions and of the tag horizon begin with (see `cullProofKeyStart`). */
const TAG_KEYS = 'cachegrain.tag';
/**
 * A tag's new version: random, so no clock is compared anywhere. A soft invalidation keeps the part
 * before the colon (`hard:soft`): an entry whose version differs only after it is stale, not dead.
 */
const newTagVersion = (): string => randomBytes(8).toString('hex');
const hardPart = (version: string): string => {
  const colon = version.indexOf(':');
  return colon === -1 ? version : version.slice(0, colon);
};

/** A tag's version before its first invalidation: no key holds it. */
const FIRST_VERSION = '';
/** The horizon of a cache with a tagged entry that never expires. */
const FOREVER_HORIZON = 2 ** 52;

/**
 * The horizon a write stored until `storedExpiry` needs: past it by a quarter of the entry's life,
 * rounded up to that, so that a stream of writes raises it once in that long, not on every write.
 */
function horizonAfter(storedExpiry: number | null, now: number): number {
  if (storedExpiry === null) return FOREVER_HORIZON;
  const step = Math.max(1, Math.ceil((storedExpiry - now) / 4));
  return Math.ceil((storedExpiry + step) / step) * step;
}

/** The latest stored expiry among entries to write (null: one never expires). */
function latestStoredExpiry(entries: ReadonlyArray<{ expiresAt: number | symbol | null; windows: StaleWindows | undefined }>): number | null {
  let latest = 0;
  for (const { expiresAt, windows } of entries) {
    if (typeof expiresAt === 'symbol') continue;
    const stored = storedExpiry(expiresAt, windows);
    if (stored === null) return null;
    latest = Math.max(latest, stored);
  }
  return latest;
}

/** How many made keys (and stamps of tagged entries) each cache remembers: a hot set of 100,000 keys, with room to spare. */
const MADE_KEYS_REMEMBERED = 131_072;
/** How many tags' version keys each cache remembers: a site's tags are far fewer than its keys. */
const TAG_KEYS_REMEMBERED = 10_000;

/**
 * A made key as `BaseCache` remembers it (see `madeKeys`), with the entry a store in this process
 * last answered for it: a read or write of the key uses that entry again, without looking the key up
 * a second time, while the store says it still holds the key (`usedAgain`, `writeAfter`).
 */
interface MadeKey<P> {
  readonly made: string;
  entry: InProcessEntry<P> | undefined;
}

/** Marks a timeout that has already run out (`0` or negative): nothing is kept. */
const EXPIRED = Symbol('expired');

export abstract class BaseCache<P = unknown> extends EventEmitter {
  /**
   * The option names this backend takes: a list, or a shape (`optionShape`) whose nested records
   * check nested options objects too (`options.l1`). A backend that gives them has unknown names
   * refused, with the closest valid one; one that leaves this undefined takes any (dummy, and custom backends).
   */
  static readonly optionNames?: readonly string[] | OptionShape;
  readonly alias: string;
  readonly location: string[];
  readonly defaultTimeout: number | null;
  readonly keyPrefix: string;
  readonly version: number;
  readonly keyFunction: KeyFunction;
  readonly options: Record<string, unknown>;
  protected readonly codec: Codec<P>;
  /**
   * Made keys by user key (default version, keys memcached would take), each with the entry a store in
   * this process last answered for it: making and checking a key costs about as much as the rest of
   * an in-process get, and looking the key up in the store once more again as much. Sized for a hot
   * set of 100,000 keys: a memo smaller than the hot set starts afresh again and again, and then
   * costs more than it saves.
   */
  private readonly madeKeys = new BoundedMemo<MadeKey<P>>(MADE_KEYS_REMEMBERED);
  /** Made keys of tag versions, by tag: a tagged read makes one per tag of its batch. */
  private readonly tagKeys = new BoundedMemo<string>(TAG_KEYS_REMEMBERED);
  /** The tags' made version keys, the other way round (see `isTagKey`). */
  private readonly madeTagKeys = new BoundedMemo<true>(TAG_KEYS_REMEMBERED);
  /**
   * The stamp each recently read tagged entry carried, by made key: its tags for `guessTagKeys`, and
   * not parsed again while it stays. Sized as `madeKeys`: a batch whose keys it has forgotten reads
   * their tags' versions in a second round trip.
   */
  private readonly stampsByKey = new BoundedMemo<KnownStamp>(MADE_KEYS_REMEMBERED);
  /** Decoded values for readShared, by payload; they go when the payload is overwritten or culled. */
  private readonly sharedValues = new WeakMap<object, unknown>();
  /** Whether a stored entry's payload stays the same object from read to read (an in-process store). */
  protected readonly payloadsStayInProcess: boolean = false;
  /** Work in flight on this cache in this process, at every level (getOrSet, fragments, pages): one per key. */
  readonly flights = new Flights();
  /** Stale entries of this cache being computed again behind their callers, at every level. */
  readonly refreshes: Refreshes = new Refreshes(this);
  private readonly pendingIncrs = new Map<string, Promise<number>>();
  private readonly reportedCauses = new Set<string>();
  private readonly logger: CacheLogger;
  /** The kinds of key warned about (see `validateKey`). */
  private readonly warnedKeyShapes = new Set<string>();
  /** What `stats()` reports: counted where each operation learns its outcome, once, for every backend. */
  private counts: CacheStats = emptyStats();

  constructor(params: CacheParams<object>, codec: Codec<P>) {
    super();
    this.alias = params.alias ?? 'default';
    this.location = splitLocation(params.location);
    this.defaultTimeout = params.timeout === undefined ? DEFAULT_TIMEOUT : this.checkTimeout(params.timeout, 'timeout');
    this.keyPrefix = params.keyPrefix ?? '';
    if (typeof this.keyPrefix !== 'string') throw this.typeError(`keyPrefix must be a string (got ${describe(this.keyPrefix)})`);
    this.version = params.version ?? 1;
    this.checkVersion(this.version, 'version');
    this.keyFunction = params.keyFunction ?? defaultKeyFunction;
    if (typeof this.keyFunction !== 'function') throw this.typeError('keyFunction must be a function');
    this.cullProofKeyStart = this.madeKeyStart(TAG_KEYS, TAG_KEY_VERSION);
    this.options = { ...(params.options ?? {}) } as Record<string, unknown>;
    const known = (new.target as unknown as { optionNames?: readonly string[] | OptionShape }).optionNames;
    const unknownOption = known === undefined ? undefined : checkOptionNames(this.options, known);
    if (unknownOption !== undefined) throw this.typeError(unknownOption);
    this.codec = codec;
    this.logger = params.logger ?? console;
    if (this.logger === null || typeof this.logger !== 'object' || typeof this.logger.warn !== 'function') {
      throw this.typeError(`logger must have a warn(message) method, as console does (got ${describe(params.logger)})`);
    }
  }

  // ---- The primitives a backend implements -------------------------------------------------

  /**
   * Returns the live entries among `keys` (made keys); missing and expired keys are absent.
   * With `withExpiry`, each entry's `expiresAt` must be filled in.
   */
  protected abstract read(keys: string[], withExpiry: boolean): MaybePromise<Map<string, Entry<P>>>;

  /** Stores every entry with one expiry, overwriting; returns the made keys it could not store. */
  protected abstract write(entries: Array<[string, P]>, expiresAt: number | null): MaybePromise<WriteFailure[]>;

  /**
   * `write` of one entry, for `set`: rejects with the cause of a refusal, and settles as `write` does
   * otherwise. A store in this process answers it synchronously, without building a batch.
   */
  protected writeOne(key: string, payload: P, expiresAt: number | null): MaybePromise<void> {
    return andThen(this.write([[key, payload]], expiresAt), throwRefusal);
  }

  /** Stores the entry only when no live entry holds the key; answers whether it stored it. */
  protected abstract insert(key: string, payload: P, expiresAt: number | null): MaybePromise<boolean>;

  /** Removes the keys; answers how many live entries it removed. */
  protected abstract remove(keys: string[]): MaybePromise<number>;

  /** Gives a live entry a new expiry; answers false when there was none. */
  protected abstract retime(key: string, expiresAt: number | null): MaybePromise<boolean>;

  /**
   * Optional, only where the server can do it atomically: moves the expiry of each live key to at
   * least `expiresAt` (`null`: never), never earlier; a missing key stays missing. With `incrBy`,
   * it lets tag versions expire (see `tagVersionsForWrite`); without it they live until evicted.
   */
  protected extendExpiry?(keys: string[], expiresAt: number | null): MaybePromise<void>;

  /** Removes every entry of this cache, and nothing that belongs to anyone else. */
  protected abstract removeAll(): MaybePromise<void>;

  /**
   * Optional, for a store in this process: whether `entry`, which it answered for a key before, still
   * holds that key's live value; if so the use is counted as a read counts it. Lets a read of a
   * remembered key (see `MadeKey`) skip looking the key up again.
   */
  protected usedAgain?(entry: InProcessEntry<P>): boolean;

  /**
   * Optional, with `usedAgain`: `writeOne`, answered at once, given the entry `last` answered for
   * the key before (written into, where the store still holds it and nobody keeps it); answers the
   * entry that now holds the value.
   */
  protected writeAfter?(key: string, last: InProcessEntry<P> | undefined, payload: P, expiresAt: number | null): InProcessEntry<P>;

  /** Optional: one key, for backends that can answer faster than a batch of one. */
  protected readOne(key: string): MaybePromise<Entry<P> | undefined> {
    const found = this.read([key], false);
    return found instanceof Promise ? found.then((map) => map.get(key)) : found.get(key);
  }

  /**
   * Optional: the live entry under a made key when this process holds it (a store in process, an
   * L1), answered synchronously; undefined when it has none or cannot tell without a server.
   */
  protected inProcess?(key: string): InProcessEntry<P> | undefined;

  /**
   * Optional, with `inProcess`: that no live entry holds the made key, as this process knows it
   * without a server (a store in process; an L1 that read a tag's version key and found none), as a
   * standing that retires when the key is written; undefined when this process cannot tell.
   */
  protected inProcessAbsence?(key: string): InProcessStanding | undefined;

  /** Optional, with `inProcess`: the recency of the store that answers it. */
  protected get inProcessRecency(): InProcessRecency | undefined {
    return undefined;
  }

  /** Optional: the live entry, without touching its recency (Django's has_key doesn't). @default readOne */
  protected peekOne(key: string): MaybePromise<Entry<P> | undefined> {
    return this.readOne(key);
  }

  /** Optional: whether a live entry exists, without fetching it or touching its recency. */
  protected contains(key: string): MaybePromise<boolean> {
    const found = this.readOne(key);
    return found instanceof Promise ? found.then((entry) => entry !== undefined) : found !== undefined;
  }

  /**
   * Optional, only where the store adds atomically: adds `delta` to a stored integer, keeping
   * its expiry; answers the new value, or undefined when the key is missing.
   */
  protected incrBy?(key: string, delta: number): MaybePromise<number | undefined>;

  /**
   * Optional: the read behind the `incr` fallback and `incrVersion`, which write what they read. It
   * must fill in `expiresAt`; a server backend reads from where writes go and never answers a
   * failure as a miss (a counter must not be faked as missing). @default read(keys, true)
   */
  protected readForUpdate(keys: string[]): MaybePromise<Map<string, Entry<P>>> {
    return this.read(keys, true);
  }

  /** Optional: releases connections, handles and timers. */
  protected disconnect?(): MaybePromise<void>;

  /**
   * For backends that cull (locmem, filebased, database): every made key of a tag version and of the
   * tag horizon begins with this, and a cull must leave such keys alone. A tag that lost its version
   * reads as never invalidated, so the entries its invalidations ended would be fresh again; a cull
   * that removes only entries costs misses, nothing worse. `clear` removes them all the same.
   * Undefined when the key function does not put the key last: nothing tells them apart then.
   */
  protected readonly cullProofKeyStart: string | undefined;

  /** Whether a cull must leave the made key alone (see `cullProofKeyStart`). */
  protected survivesCulls(made: string): boolean {
    return this.cullProofKeyStart !== undefined && made.startsWith(this.cullProofKeyStart);
  }

  /** The clock, in epoch seconds. Tests replace it to move time without sleeping. */
  now(): number {
    return now();
  }

  // ---- Keys ---------------------------------------------------------------------------------

  /** The stored key for a user key: `keyFunction(key, keyPrefix, version)`. */
  makeKey(key: CacheKey, version?: number): string {
    if (version === undefined) version = this.version;
    else this.checkVersion(version, 'version');
    return this.keyFunction(userKeyToString(key), this.keyPrefix, version);
  }

  /**
   * Warns (as a `CacheKeyWarning`) about made keys memcached would refuse: once per shape of key,
   * since a site makes the same bad key on every request; a shape is the problem and the key with
   * its digits and its tail past 100 characters left out (`page:1:…` for every id).
   */
  validateKey(key: string): void {
    const problems = memcachedKeyProblems(key);
    if (problems.length === 0) return;
    const shape = `${problems.length}:${key.slice(0, 100).replace(/[0-9]+/g, '#')}`;
    if (this.warnedKeyShapes.has(shape)) return;
    if (this.warnedKeyShapes.size < 1000) this.warnedKeyShapes.add(shape);
    for (const problem of memcachedKeyProblems(key, abbreviatedKey(key))) process.emitWarning(problem, CacheKeyWarning);
  }

  /**
   * What every made key whose user key begins with `start` begins with, when the key function puts
   * the user key last (the default does); else undefined.
   */
  private madeKeyStart(start: string, version: number): string | undefined {
    const made = this.keyFunction(start, this.keyPrefix, version);
    const probe = '.x';
    return made !== '' && this.keyFunction(start + probe, this.keyPrefix, version) === made + probe ? made : undefined;
  }

  /** Made and validated; for the default version, made keys that passed are remembered. */
  private key(key: CacheKey, version?: number): string {
    return this.madeKey(key, version).made;
  }

  /** `key`'s made key with the entry last found under it in this process, remembered as `key` says. */
  private madeKey(key: CacheKey, version: number | undefined): MadeKey<P> {
    const usual = typeof key === 'string' && (version === undefined || version === this.version);
    if (usual) {
      const known = this.madeKeys.get(key);
      if (known !== undefined) return known;
    }
    const made = this.makeKey(key, version);
    this.validateKey(made);
    const node: MadeKey<P> = { made, entry: undefined };
    if (usual && memcachedKeyProblems(made).length === 0) this.madeKeys.set(key, node);
    return node;
  }

  // ---- The API ------------------------------------------------------------------------------

  // get, set and getMany are the hot path: they are not `async`, so that a backend answering
  // synchronously (locmem) costs one promise per call instead of three.
  get<T = unknown>(key: CacheKey): Promise<T | undefined>;
  /** With a default, a miss answers the default, so the result has the default's type. */
  get<T>(key: CacheKey, defaultValue: T, options?: VersionOption): Promise<T>;
  get<T = unknown>(key: CacheKey, defaultValue?: T, options?: VersionOption): Promise<T | undefined>;
  get<T = unknown>(key: CacheKey, defaultValue?: T, options?: VersionOption): Promise<T | undefined> {
    try {
      return promised(this.answerGet(key, defaultValue, options));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** What `get` answers: at once from a store in this process. Throws for a bad key. */
  private answerGet<T>(key: CacheKey, defaultValue: T | undefined, options: VersionOption | undefined): MaybePromise<T | undefined> {
    const node = this.madeKey(key, this.versionOf(options, 'get'));
    const last = node.entry;
    if (last !== undefined && this.usedAgain!(last)) return this.countedValue(node.made, last, false, defaultValue);
    const found = this.readOne(node.made);
    if (found instanceof Promise) return found.then((entry) => this.countedValue(node.made, entry, false, defaultValue));
    if (this.usedAgain !== undefined) node.entry = found as InProcessEntry<P> | undefined;
    return this.countedValue(node.made, found, false, defaultValue);
  }

  /**
   * A read for callers that never mutate what they read (the page cache's stored responses): where
   * the store keeps its payloads in this process, every such reader of one entry shares one decoded
   * value, and the answer comes back synchronously, so a hit needs no turn of the event loop. A
   * store elsewhere answers with a promise. Answers fresh entries only. Throws for a bad key.
   */
  readShared<T = unknown>(key: CacheKey): MaybePromise<T | undefined> {
    const made = this.key(key);
    const found = this.readOne(made);
    if (found instanceof Promise) return found.then((entry) => this.countedValue<T | undefined>(made, entry, true, undefined));
    return this.countedValue<T | undefined>(made, found, true, undefined);
  }

  /** The value of an entry read under `made` if it is fresh and readable, else `missing`; counted as a hit or a miss. */
  private countedValue<T>(made: string, entry: Entry<P> | undefined, shared: boolean, missing: T): MaybePromise<T> {
    if (entry === undefined) {
      this.counts.misses++;
      return missing;
    }
    const own = this.unstamped(entry.payload);
    if (own instanceof Promise) return own.then((live) => this.countedLive(made, live, shared, missing));
    return this.countedLive(made, own, shared, missing);
  }

  private countedLive<T>(made: string, own: P | undefined, shared: boolean, missing: T): MaybePromise<T> {
    const value = own === undefined ? undefined : this.readable(made, own, shared);
    if (own === undefined || value instanceof Unreadable) {
      this.counts.misses++;
      return value instanceof Unreadable ? andThen(value.removal, () => missing) : missing;
    }
    this.counts.hits++;
    return value as T;
  }

  /** Counts a read that answered an entry in `state` (undefined: nothing usable). */
  private countRead(state: EntryState | undefined): void {
    if (state === 'fresh') this.counts.hits++;
    else if (state === 'stale') this.counts.staleHits++;
    else this.counts.misses++;
  }

  /**
   * What this cache did since it was made or since `resetStats()`: reads answered fresh
   * (`hits`), stale (`staleHits`) or with nothing (`misses`), entries written, deletes, and errors.
   */
  stats(): CacheStats {
    return { ...this.counts };
  }

  resetStats(): void {
    this.counts = emptyStats();
  }

  /**
   * Whether the store is known to be out of reach right now (a server cache whose every server's
   * breaker is open): writes that only fill the cache are not even prepared until it is back.
   */
  get unreachable(): boolean {
    return false;
  }

  /** How many entries the store holds, where the backend can tell cheaply (undefined where it cannot: a shared server). */
  async countEntries(): Promise<number | undefined> {
    return undefined;
  }

  /**
   * `readShared` for an entry that may be stale: its shared value, its tags and how it stands. Tags
   * found in `known` (read in the same lookup) are not read again.
   */
  readSharedEntry<T = unknown>(key: CacheKey, known?: TagSnapshot): MaybePromise<CachedEntry<T> | undefined> {
    const made = this.key(key);
    return andThen(this.readOne(made), (entry) => {
      if (entry === undefined) {
        this.counts.misses++;
        return undefined;
      }
      return andThen(this.judged(entry.payload, known), (judged) => {
        const answer = judged.state === undefined ? undefined : this.entryOf<T>(made, judged, true);
        if (answer instanceof Unreadable) {
          this.countRead(undefined);
          return andThen(answer.removal, () => undefined);
        }
        this.countRead(judged.state);
        return answer;
      });
    });
  }

  /** The current version of each tag, for a later write's `tagsAsOf`: one read, synchronous for a store in this process. */
  readTagSnapshot(tags: readonly string[]): MaybePromise<TagSnapshot> {
    return this.readTagVersions(this.checkTags(tags, 'readTagSnapshot'));
  }

  /** The value's own payload of a stored payload if the entry is fresh, else undefined. An unstamped entry answers at once. */
  private unstamped(payload: P): MaybePromise<P | undefined> {
    const stamped = this.codec.unstamp?.(payload);
    if (stamped === undefined) return payload;
    return andThen(this.statesOf([stamped.stamp]), ([state]) => (state === 'fresh' ? stamped.payload : undefined));
  }

  /** A stored payload's own payload, stamp and state. */
  private judged(payload: P, known?: TagSnapshot): MaybePromise<Judged<P>> {
    const stamped = this.codec.unstamp?.(payload);
    if (stamped === undefined) return { payload, stamp: undefined, state: 'fresh' };
    return andThen(this.statesOf([stamped.stamp], known), ([state]) => ({ payload: stamped.payload, stamp: stamped.stamp, state }));
  }

  /** The answer for an entry read under `made`, or Unreadable when its payload cannot be decoded. */
  private entryOf<T>(made: string, judged: Judged<P>, shared: boolean): CachedEntry<T> | Unreadable {
    const value = this.readable(made, judged.payload, shared);
    if (value instanceof Unreadable) return value;
    return { value: value as T, tags: judged.stamp?.tags ?? NO_TAGS, state: judged.state! };
  }

  /** How each stamped entry stands now (undefined: dead), after one read of every tag among them. */
  private statesOf(stamps: EntryStamp[], known?: TagSnapshot): MaybePromise<Array<EntryState | undefined>> {
    const tags = new Set<string>();
    for (const stamp of stamps) for (const tag of stamp.tags) if (known === undefined || !known.has(tag)) tags.add(tag);
    if (tags.size === 0) return stamps.map((stamp) => this.stateOf(stamp, known));
    return andThen(this.readTagVersions([...tags]), (versions) => {
      if (known !== undefined) for (const [tag, version] of known) versions.set(tag, version);
      return stamps.map((stamp) => this.stateOf(stamp, versions));
    });
  }

  private stateOf(stamp: EntryStamp, versions: TagSnapshot | undefined): EntryState | undefined {
    let soft = false;
    for (let i = 0; i < stamp.tags.length; i++) {
      // No version is a version: the first one, before any invalidation (or after the last one expired).
      const current = versions!.get(stamp.tags[i]!) ?? FIRST_VERSION;
      const recorded = stamp.versions[i]!;
      if (current === recorded) continue;
      if (hardPart(current) !== hardPart(recorded)) return undefined;
      soft = true;
    }
    const { freshUntil, staleWhileRevalidate = 0, staleIfError = 0 } = stamp;
    const pastFresh = freshUntil === undefined ? 0 : this.now() - freshUntil;
    if (!soft && (freshUntil === undefined || pastFresh < 0)) return 'fresh';
    const staleFor = Math.max(0, pastFresh);
    if (staleFor < staleWhileRevalidate) return 'stale';
    if (staleFor < staleIfError) return 'error';
    return undefined;
  }

  /**
   * Where a tag's version is kept: a short tag of plain characters names its key as it is (a tagged
   * read fetches one key per tag, so their length is what it sends), any other one by its md5. Read
   * on every tagged hit, so remembered (when memcached would take it, as `key` does).
   */
  private tagKey(tag: string): string {
    const known = this.tagKeys.get(tag);
    if (known !== undefined) return known;
    const made = this.key(`${TAG_KEYS}.${PLAIN_TAG.test(tag) ? tag : `#${md5(tag)}`}`, TAG_KEY_VERSION);
    if (memcachedKeyProblems(made).length === 0) this.tagKeys.set(tag, made);
    this.madeTagKeys.set(made, true);
    return made;
  }

  /** Whether a made key is where a tag's version is kept (one this process made lately): an L1 remembers that none is there. */
  protected isTagKey(made: string): boolean {
    return this.madeTagKeys.get(made) === true;
  }

  /** Where this cache keeps its tag horizon (see `tagVersionsForWrite`). */
  private get horizonKey(): string {
    return (this.madeHorizonKey ??= this.key(`${TAG_KEYS}-horizon`, TAG_KEY_VERSION));
  }
  private madeHorizonKey: string | undefined;

  /** Whether tag versions expire here: the server raises the horizon atomically and extends expiries without shortening them. */
  private get expiringTagVersions(): boolean {
    return this.incrBy !== undefined && this.extendExpiry !== undefined;
  }

  /** The current version of each tag, in one read; a tag without one maps to undefined. */
  private readTagVersions(tags: string[]): MaybePromise<Map<string, string | undefined>> {
    const made = tags.map((tag) => this.tagKey(tag));
    return andThen(this.read(made, false), (found) => this.versionsIn(tags, made, found));
  }

  /**
   * The version of each tag to stamp a write with: as of `asOf` where it has them, else current; a
   * tag without a version stamps as the first one (''). Writers never create a version, so first uses
   * do not race: only `invalidateTags` writes one. A tag whose write is out maps to null.
   *
   * Where tag versions expire (`expiringTagVersions`), the write must also keep two promises. An entry
   * stamped with a version outlives it on no account: that version's key is extended to the entry's
   * `storedExpiry` (never shortened). And once a version key expires its tag reads as first again, so
   * every entry stamped first must be gone by then: an invalidation gives its version the expiry of the
   * cache's horizon, which every write stamped first has raised to past its own expiry before checking,
   * on the server, that its tags still have no version (the horizon only grows, by atomic increments).
   * Either the check comes before the invalidation's write, and then so does the raise, which the
   * invalidation reads after its write; or the check sees the new version and the write is out.
   */
  private async tagVersionsForWrite(tags: string[], asOf: TagSnapshot | undefined, storedExpiry: number | null): Promise<Map<string, string | null>> {
    const unknown = asOf === undefined ? tags : tags.filter((tag) => !asOf.has(tag));
    const current = unknown.length === 0 ? undefined : await this.readTagVersions(unknown);
    const versions = new Map<string, string | null>();
    for (const tag of tags) versions.set(tag, (asOf !== undefined && asOf.has(tag) ? asOf.get(tag) : current!.get(tag)) ?? FIRST_VERSION);
    if (!this.expiringTagVersions) return versions;
    const versioned: string[] = [];
    const first: string[] = [];
    for (const [tag, version] of versions) (version === FIRST_VERSION ? first : versioned).push(tag);
    await Promise.all([
      versioned.length === 0
        ? undefined
        : this.extendExpiry!(
            versioned.map((tag) => this.tagKey(tag)),
            storedExpiry,
          ),
      first.length === 0 ? undefined : this.checkFirstUses(first, versions, storedExpiry),
    ]);
    return versions;
  }

  /** Raises the horizon past `storedExpiry` if it is not there yet, then marks out every tag that got a version meanwhile. */
  private async checkFirstUses(tags: string[], versions: Map<string, string | null>, storedExpiry: number | null): Promise<void> {
    const keys = tags.map((tag) => this.tagKey(tag));
    const needed = horizonAfter(storedExpiry, this.now());
    let found = await this.readForUpdate([this.horizonKey, ...keys]);
    const horizon = found.get(this.horizonKey);
    let known = horizon === undefined ? undefined : Number(this.codec.decode(horizon.payload));
    if (known === undefined || !(known >= needed)) {
      for (let attempt = 0; ; attempt++) {
        if (
          known === undefined
            ? await this.insert(this.horizonKey, this.codec.encode(needed), null)
            : (await this.incrBy!(this.horizonKey, needed - known)) !== undefined
        )
          break;
        if (attempt === 3) throw new CacheServerError(`cache '${this.alias}': the tag horizon '${this.horizonKey}' could not be raised`, '');
        // Created or dropped by someone else meanwhile: read it again.
        const again = (await this.readForUpdate([this.horizonKey])).get(this.horizonKey);
        known = again === undefined ? undefined : Number(this.codec.decode(again.payload));
      }
      found = await this.readForUpdate(keys);
    }
    tags.forEach((tag, i) => {
      if (found.has(keys[i]!)) versions.set(tag, null);
    });
  }

  /**
   * The payload to store for a write with tags or stale windows: stamped with the tags' versions and
   * when it stops being fresh. Undefined when the write must not happen (see `tagVersionsForWrite`).
   */
  private async stampedWith(
    payload: P,
    tags: readonly string[] | undefined,
    windows: StaleWindows | undefined,
    expiresAt: number | null,
    asOf?: TagSnapshot,
  ): Promise<P | undefined> {
    if ((tags === undefined || tags.length === 0) && windows === undefined) return payload;
    const list = tags === undefined ? [] : [...new Set(tags)];
    const versions = list.length === 0 ? new Map() : await this.tagVersionsForWrite(list, asOf, storedExpiry(expiresAt, windows));
    return this.stamped(payload, list, versions, windows, expiresAt);
  }

  /** `payload` stamped with `tags` at `versions`; undefined when the write is out (a version is null). */
  private stamped(
    payload: P,
    tags: readonly string[],
    versions: ReadonlyMap<string, string | null>,
    windows: StaleWindows | undefined,
    expiresAt: number | null,
  ): P | undefined {
    if (this.codec.stamp === undefined) throw this.typeError("this backend's codec cannot store tags or stale windows");
    if (tags.some((tag) => versions.get(tag) === null)) return undefined;
    const stamp: EntryStamp = { tags: [...tags], versions: tags.map((tag) => versions.get(tag) ?? FIRST_VERSION) };
    if (windows !== undefined) {
      if (expiresAt !== null) stamp.freshUntil = expiresAt;
      stamp.staleWhileRevalidate = windows.staleWhileRevalidate;
      stamp.staleIfError = windows.staleIfError;
    }
    return this.codec.stamp(payload, stamp);
  }

  /**
   * Stores entries that differ in timeout, tags or stale windows as one batch: the versions of all
   * their tags are settled once (as of `tagsAsOf`, which applies to every entry), then one write goes
   * out per expiry. Answers the keys that were not stored.
   */
  async setEach(entries: ReadonlyArray<{ key: CacheKey; value: unknown; options?: TimeoutArg }>, tagsAsOf?: TagSnapshot): Promise<CacheKey[]> {
    const prepared = entries.map(({ key, value, options }) => {
      const { expiresAt, version, tags, windows } = this.writeOptions(options, 'setEach');
      const made = this.key(key, version);
      return { key, made, payload: this.encode(value, made), expiresAt, tags: tags === undefined ? [] : [...new Set(tags)], windows };
    });
    const allTags = [...new Set(prepared.flatMap((entry) => entry.tags))];
    const versions = allTags.length === 0 ? new Map() : await this.tagVersionsForWrite(allTags, tagsAsOf, latestStoredExpiry(prepared));
    const notStored: CacheKey[] = [];
    const byExpiry = new Map<number | null, Array<[string, P]>>();
    const keyOf = new Map<string, CacheKey>();
    const expired: string[] = [];
    for (const entry of prepared) {
      const { expiresAt } = entry;
      if (typeof expiresAt === 'symbol') {
        expired.push(entry.made);
        continue;
      }
      const payload =
        entry.tags.length === 0 && entry.windows === undefined ? entry.payload : this.stamped(entry.payload, entry.tags, versions, entry.windows, expiresAt);
      if (payload === undefined) {
        notStored.push(entry.key);
        continue;
      }
      const expiry = storedExpiry(expiresAt, entry.windows);
      let batch = byExpiry.get(expiry);
      if (batch === undefined) byExpiry.set(expiry, (batch = []));
      batch.push([entry.made, payload]);
      keyOf.set(entry.made, entry.key);
    }
    const writes: Array<Promise<unknown>> = [...byExpiry].map(async ([expiry, batch]) => {
      const failed = await this.write(batch, expiry);
      this.counts.sets += batch.length - failed.length;
      for (const failure of failed) notStored.push(keyOf.get(failedKey(failure)) ?? failedKey(failure));
    });
    if (expired.length > 0) writes.push(Promise.resolve(this.remove(expired)));
    await Promise.all(writes);
    return notStored;
  }

  /**
   * Invalidates every entry written with any of `tags` before this call, in every process that shares
   * the store: each tag gets a new version, so entries that recorded the old one read as misses (or,
   * with `soft`, as stale where they have a stale window). Nothing is scanned; entries written after
   * it resolves are not affected.
   */
  async invalidateTags(tags: Iterable<string>, options?: InvalidateOptions): Promise<void> {
    const list = this.checkTags([...tags], 'invalidateTags');
    const unknownOption = options === undefined ? undefined : checkOptionNames(options, INVALIDATE_OPTIONS);
    if (unknownOption !== undefined) throw this.typeError(`invalidateTags: ${unknownOption}`);
    const soft = options?.soft ?? false;
    if (typeof soft !== 'boolean') throw this.typeError(`invalidateTags: options.soft must be a boolean (got ${describe(soft)})`);
    if (list.length === 0) return;
    // A soft version keeps the hard part readers compare first. Read, then written: a hard
    // invalidation landing in between is softened, which serves stale (and refreshes) instead of missing.
    const current = soft ? await this.readTagVersions(list) : undefined;
    const entries = list.map((tag): [string, P] => {
      const version = soft ? `${hardPart(current!.get(tag) ?? FIRST_VERSION)}:${newTagVersion()}` : newTagVersion();
      return [this.tagKey(tag), this.codec.encode(version)];
    });
    await this.writeTagVersions(entries);
  }

  /** Writes new tag versions under their made keys; where versions expire, they expire at the horizon. */
  private async writeTagVersions(entries: Array<[string, P]>): Promise<void> {
    throwRefusal(await this.write(entries, null));
    if (this.expiringTagVersions) await this.expireAtHorizon(entries.map(([key]) => key));
  }

  /**
   * Gives new version keys the horizon's expiry, read after they were written (see
   * `tagVersionsForWrite`). No horizon (never raised, or lost) leaves them without one.
   */
  private async expireAtHorizon(keys: string[]): Promise<void> {
    const horizon = (await this.readForUpdate([this.horizonKey])).get(this.horizonKey);
    if (horizon === undefined) return;
    const expiresAt = Number(this.codec.decode(horizon.payload));
    if (!(expiresAt < FOREVER_HORIZON)) return;
    await Promise.all(keys.map((key) => this.retime(key, Math.max(expiresAt, this.now() + 1))));
  }

  /**
   * Takes the lock `name` for every process sharing the store (an `add`), for at most `seconds`:
   * answers its release, or undefined while someone else holds it. Releasing removes only this
   * holder's lock, never one taken after it expired.
   */
  async acquireLock(name: string, seconds: number): Promise<(() => Promise<void>) | undefined> {
    if (typeof name !== 'string' || name === '') throw this.typeError(`acquireLock: name must be a non-empty string (got ${describe(name)})`);
    if (typeof seconds !== 'number' || !(seconds > 0) || !Number.isFinite(seconds)) {
      throw this.typeError(`acquireLock: seconds must be a positive number (got ${describe(seconds)})`);
    }
    const made = this.key(`cachegrain.lock.${md5(name)}`, TAG_KEY_VERSION);
    const token = randomBytes(8).toString('hex');
    if (!(await this.insert(made, this.codec.encode(token), this.now() + seconds))) return undefined;
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      const held = await this.readOne(made);
      if (held !== undefined && this.readable(made, held.payload, false) === token) await this.remove([made]);
    };
  }

  private checkTags(tags: unknown, what: string): string[] {
    if (!Array.isArray(tags) || !tags.every((tag) => typeof tag === 'string' && tag !== '')) {
      throw this.typeError(`${what}: tags must be an array of non-empty strings (got ${describe(tags)})`);
    }
    return tags as string[];
  }

  /**
   * The value of a payload read under `made`; Unreadable when it cannot be decoded, which every
   * backend treats as filebased treats a damaged file: the entry is removed and read as a
   * miss, and reported once per cause. A payload from a serializer this process cannot read (a
   * rolling deploy across Node versions on one server) then costs one miss, not a failing read.
   * With `replacement`, the payload is overwritten with it instead (a tag's version, see `versionIn`).
   */
  private readable(made: string, payload: P, shared: boolean, replacement?: () => P): unknown {
    try {
      return this.decode(payload, shared);
    } catch (cause) {
      const reason = cause instanceof Error ? cause.message : String(cause);
      const outcome = replacement === undefined ? 'removed and read as a miss' : 'replaced by a new version, and its entries read as misses';
      const error = this.typeError(`the entry under key '${made}' cannot be decoded, so it was ${outcome}: ${reason}`, cause);
      this.reportError(error, `an entry cannot be decoded: ${reason}`);
      let removal: MaybePromise<void>;
      try {
        removal = replacement === undefined ? andThen(this.remove([made]), nothing) : this.writeTagVersions([[made, replacement()]]);
      } catch (failure) {
        removal = Promise.reject(failure);
      }
      if (removal instanceof Promise)
        removal = removal.catch((failure: unknown) => this.reportError(failure instanceof Error ? failure : new Error(String(failure))));
      return new Unreadable(error, removal);
    }
  }

  /**
   * A tag's version as read under `made`; undefined for none. One that cannot be decoded is replaced
   * by a new version, as an invalidation would (the write goes into `removals`), and answered as that:
   * removed, it would read as the first version and revive every entry written before the tag's
   * first invalidation.
   */
  private versionIn(made: string, entry: Entry<P> | undefined, removals?: Array<MaybePromise<void>>): string | undefined {
    if (entry === undefined) return undefined;
    let replacement: string | undefined;
    const version = this.readable(made, entry.payload, false, () => this.codec.encode((replacement = newTagVersion())));
    if (!(version instanceof Unreadable)) return String(version);
    removals?.push(version.removal);
    return replacement;
  }

  /** A stored payload's value: a fresh copy, or for shared readers one decoded value per payload. */
  private decode(payload: P, shared: boolean): unknown {
    if (!shared || !this.payloadsStayInProcess || typeof payload !== 'object' || payload === null) return this.codec.decode(payload);
    if (this.sharedValues.has(payload)) return this.sharedValues.get(payload);
    const value = this.codec.decode(payload);
    this.sharedValues.set(payload, value);
    return value;
  }

  set(key: CacheKey, value: unknown, timeoutOrOptions?: TimeoutArg): Promise<void> {
    try {
      return promised(this.answerSet(key, value, timeoutOrOptions));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** What `set` answers: at once for a store in this process. Throws for a bad key or value. */
  private answerSet(key: CacheKey, value: unknown, timeoutOrOptions: TimeoutArg): MaybePromise<void> {
    // The usual call names a timeout or none: its expiry is all there is to work out.
    if (timeoutOrOptions === undefined || typeof timeoutOrOptions === 'number') {
      const expiresAt = this.expiryAfter(timeoutOrOptions);
      const node = this.madeKey(key, undefined);
      return this.setMade(node, this.encode(value, node.made), expiresAt);
    }
    const { expiresAt, version, tags, windows, asOf } = this.writeOptions(timeoutOrOptions, 'set');
    const node = this.madeKey(key, version);
    const made = node.made;
    const payload = this.encode(value, made);
    if (tags !== undefined || windows !== undefined) {
      if (expiresAt === EXPIRED) return this.setMade(node, payload, expiresAt);
      this.counts.sets++;
      return this.stampedWith(payload, tags, windows, expiresAt, asOf)
        .then((stamped) => (stamped === undefined ? [] : this.write([[made, stamped]], storedExpiry(expiresAt, windows))))
        .then(throwRefusal);
    }
    return this.setMade(node, payload, expiresAt);
  }

  /** Stores an untagged payload under a made key: a timeout that has run out deletes it instead. */
  private setMade(node: MadeKey<P>, payload: P, expiresAt: number | null | typeof EXPIRED): MaybePromise<void> {
    if (expiresAt === EXPIRED) {
      const removed = this.remove([node.made]);
      return removed instanceof Promise ? removed.then(nothing) : undefined;
    }
    this.counts.sets++;
    if (this.writeAfter === undefined) return this.writeOne(node.made, payload, expiresAt);
    node.entry = this.writeAfter(node.made, node.entry, payload, expiresAt);
  }

  async add(key: CacheKey, value: unknown, timeoutOrOptions?: TimeoutArg): Promise<boolean> {
    const { expiresAt, version, tags, windows, asOf } = this.writeOptions(timeoutOrOptions, 'add');
    const made = this.key(key, version);
    const payload = this.encode(value, made);
    if (expiresAt === EXPIRED) return !(await this.hasLive(made));
    const stamped = await this.stampedWith(payload, tags, windows, expiresAt, asOf);
    return stamped !== undefined && this.addOverDead(made, stamped, storedExpiry(expiresAt, windows));
  }

  /**
   * Stores the entry when no fresh entry holds the key. An entry whose tags were invalidated, or one
   * kept past its timeout for its stale window, is replaced under a lock, so that one adder in all
   * processes wins.
   */
  private async addOverDead(made: string, payload: P, expiresAt: number | null): Promise<boolean> {
    const added = await this.replaceDead(made, payload, expiresAt);
    if (added) this.counts.sets++;
    return added;
  }

  private async replaceDead(made: string, payload: P, expiresAt: number | null): Promise<boolean> {
    if (await this.insert(made, payload, expiresAt)) return true;
    const entry = await this.readOne(made);
    if (entry === undefined) return this.insert(made, payload, expiresAt);
    if ((await this.unstamped(entry.payload)) !== undefined) return false;
    const release = await this.acquireLock(`replacing:${made}`, LOCK_SECONDS);
    if (release === undefined) return false;
    try {
      const again = await this.readOne(made);
      if (again !== undefined && (await this.unstamped(again.payload)) !== undefined) return false;
      throwRefusal(await this.write([[made, payload]], expiresAt));
      return true;
    } finally {
      await release();
    }
  }

  /** Whether a fresh entry holds the made key: present, its tags not invalidated, its timeout not passed. */
  private async hasLive(made: string): Promise<boolean> {
    if (this.codec.unstamp === undefined) return this.contains(made);
    const entry = await this.peekOne(made);
    const own = entry === undefined ? undefined : await this.unstamped(entry.payload);
    if (own === undefined) return false;
    // Decoded, as a read would: an entry that cannot be is no entry (and is removed).
    const value = this.readable(made, own, true);
    if (!(value instanceof Unreadable)) return true;
    await value.removal;
    return false;
  }

  /**
   * The cached value, else the value (or what the factory returns, awaited) added to the cache,
   * answering what the cache then holds. Concurrent callers for one key compute once. A stale entry
   * is answered at once while one refresh runs behind it; one past that window but inside
   * `staleIfError` stands in when computing fails.
   */
  async getOrSet<T = unknown>(key: CacheKey, valueOrFactory: T | Promise<T> | (() => T | Promise<T>), timeoutOrOptions?: TimeoutArg): Promise<T> {
    const { expiresAt, version, tags, windows, asOf } = this.writeOptions(timeoutOrOptions, 'getOrSet');
    const made = this.key(key, version);
    const hit = await this.readOne(made);
    const judged = hit === undefined ? undefined : await this.judged(hit.payload);
    let state = judged?.state;
    let held: unknown;
    if (state !== undefined) {
      held = this.readable(made, judged!.payload, false);
      if (held instanceof Unreadable) {
        await held.removal;
        state = undefined;
      }
    }
    this.countRead(state);
    if (state === 'fresh') return held as T;
    if (state === 'stale') {
      this.refreshBehind(made, valueOrFactory, timeoutOrOptions);
      return held as T;
    }
    let stored: P;
    try {
      stored = await this.flights.share(`getOrSet\u0000${made}`, () => this.computeAndAdd(made, valueOrFactory, expiresAt, tags, windows, asOf));
    } catch (error) {
      if (state !== 'error') throw error;
      this.reportError(error as Error);
      return held as T;
    }
    // What the cache then holds, read back: one that cannot be is removed, and nothing is answered.
    const value = this.readable(made, stored, false);
    if (!(value instanceof Unreadable)) return value as T;
    await value.removal;
    throw value.error;
  }

  /**
   * Recomputes a stale entry behind the callers that were answered with it: once per key in this
   * process, and once in every process sharing the store (the first to take the lock). A failure
   * leaves the stale entry and is reported as an `error` event.
   */
  private refreshBehind(made: string, valueOrFactory: unknown, timeoutOrOptions: TimeoutArg): void {
    const refresh = async () => {
      // Read stale before another process's refresh wrote the entry and let go of the lock: done already.
      const current = await this.readOne(made);
      if (current !== undefined && (await this.unstamped(current.payload)) !== undefined) return;
      const given = this.writeOptions(timeoutOrOptions, 'getOrSet');
      const asOf = given.asOf ?? (given.tags === undefined ? undefined : await this.readTagSnapshot(given.tags));
      const value = await (typeof valueOrFactory === 'function' ? valueOrFactory() : valueOrFactory);
      // The timeout counts from now, not from when the stale entry was read.
      const { expiresAt, tags, windows } = this.writeOptions(timeoutOrOptions, 'getOrSet');
      if (expiresAt === EXPIRED) return;
      const payload = await this.stampedWith(this.encode(value, made), tags, windows, expiresAt, asOf);
      if (payload !== undefined) throwRefusal(await this.write([[made, payload]], storedExpiry(expiresAt, windows)));
    };
    this.refreshes.behind([{ key: `getOrSet\u0000${made}`, lockName: `refresh:${made}` }], refresh, (error) => this.reportError(error));
  }

  /** Computes the value and adds it; answers the value's own payload of what the cache then holds. */
  private async computeAndAdd(
    made: string,
    valueOrFactory: unknown,
    expiresAt: number | null | typeof EXPIRED,
    tags: readonly string[] | undefined,
    windows: StaleWindows | undefined,
    asOf: TagSnapshot | undefined,
  ): Promise<P> {
    // The tags' versions from before the value is computed: an invalidation during it drops the value too.
    if (asOf === undefined && tags !== undefined && expiresAt !== EXPIRED) asOf = await this.readTagSnapshot(tags);
    const value = await (typeof valueOrFactory === 'function' ? valueOrFactory() : valueOrFactory);
    const payload = this.encode(value, made);
    if (expiresAt === EXPIRED || this.unreachable) return payload;
    const stamped = await this.stampedWith(payload, tags, windows, expiresAt, asOf);
    if (stamped === undefined) return payload;
    await this.addOverDead(made, stamped, storedExpiry(expiresAt, windows));
    const stored = await this.readOne(made);
    const live = stored === undefined ? undefined : await this.unstamped(stored.payload);
    return live ?? payload;
  }

  getMany<T = unknown>(keys: Iterable<CacheKey>, options?: VersionOption): Promise<Map<CacheKey, T>> {
    try {
      return promised(this.answerGetMany<T>(keys, options));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** What `getMany` answers: at once from a store in this process. Throws for a bad key. */
  private answerGetMany<T>(keys: Iterable<CacheKey>, options: VersionOption | undefined): MaybePromise<Map<CacheKey, T>> {
    return this.readBatch(keys, this.versionOf(options, 'getMany'), false, (made, payload) => this.readable(made, payload, false) as T);
  }

  /**
   * The entries found among `keys`, fresh and stale alike, each with its tags and how it stands
   * (what a fragment render needs to serve stale and to pass its tags on). One read of
   * the entries and at most one of their tags, as `getMany`.
   */
  getEntries<T = unknown>(keys: Iterable<CacheKey>, options?: VersionOption): Promise<Map<CacheKey, CachedEntry<T>>> {
    try {
      return promised(
        this.readBatch(keys, this.versionOf(options, 'getEntries'), true, (made, payload, stamp, state) =>
          this.entryOf<T>(made, { payload, stamp, state }, false),
        ),
      );
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * How the store holds the entry under `key`, for inspection (`cachegrain inspect`): when the backend
   * drops it (epoch seconds, `null` for never, undefined when the backend does not say), when it stops
   * being fresh if it may be served stale, and its stored size in bytes (undefined for a store that
   * keeps values as objects). Undefined when nothing is stored under the key.
   */
  async storedEntry(key: CacheKey, options?: VersionOption): Promise<StoredEntry | undefined> {
    const made = this.key(key, this.versionOf(options, 'storedEntry'));
    const entry = (await this.read([made], true)).get(made);
    if (entry === undefined) return undefined;
    const { payload } = entry;
    const bytes = Buffer.isBuffer(payload) ? payload.length : typeof payload === 'string' ? Buffer.byteLength(payload) : undefined;
    return { expiresAt: entry.expiresAt, freshUntil: this.codec.unstamp?.(payload)?.stamp.freshUntil, bytes };
  }

  /**
   * The fresh entry under `key` when this process can tell at once, without a server (a store in
   * process, an L1 holding the entry and its tags' versions): what lets a fragment hit be emitted
   * while the engine renders. Undefined otherwise (absent, stale, dead or not known here): the
   * caller then reads it the usual way.
   */
  peekFresh<T = unknown>(key: CacheKey): CachedEntry<T> | undefined {
    if (this.inProcess === undefined) return undefined;
    const made = this.key(key);
    const entry = this.inProcess(made);
    return entry === undefined ? undefined : this.freshInProcess<T>(made, entry);
  }

  /**
   * The key as this cache stores it (prefix, version, key function), checked as every read and write
   * checks it: for a caller that looks the same key up again and again and keeps what this answers.
   */
  storedKey(key: CacheKey): string {
    return this.key(key);
  }

  /**
   * `peekFresh` of a key as `storedKey` made it, for a caller that reads it again and again: a
   * fresh string comes as a `HeldString`, which the caller keeps and hands to `answerHeld` next time
   * instead of reading the store (a tagged one with the entries of its tags' versions, which it
   * stands by while they stay).
   */
  holdFresh(made: string): HeldString | CachedEntry<unknown> | undefined {
    const entry = this.inProcess?.(made);
    if (entry === undefined) return undefined;
    const inProcess = this.judgedInProcess(entry);
    if (inProcess === undefined || inProcess.judged.state !== 'fresh') return undefined;
    const { judged, tagKeys, tagEntries } = inProcess;
    const value = this.readable(made, judged.payload, true);
    if (value instanceof Unreadable) return undefined;
    // Only hits count here: an answer of undefined sends the caller to read the entry, which counts it.
    this.counts.hits++;
    const recency = this.inProcessRecency;
    const tags = judged.stamp?.tags ?? NO_TAGS;
    if (recency === undefined || typeof value !== 'string') return { value, tags, state: 'fresh' };
    // Held while every entry it stands on is trusted, and no longer than it is fresh.
    let trustedUntil = Math.min(entry.trustedUntil ?? Infinity, judged.stamp?.freshUntil ?? Infinity);
    entry.kept = true;
    for (const tagEntry of tagEntries) {
      trustedUntil = Math.min(trustedUntil, tagEntry.trustedUntil ?? Infinity);
      tagEntry.kept = true;
    }
    return { cache: this, key: made, value, entry, trustedUntil, recency, tags, tagKeys, tagEntries };
  }

  /**
   * The kept string again, counted as a hit, while its entry and those of its tags' versions are
   * still the store's and fresh at `now` (this cache's clock); else undefined.
   */
  answerHeld(held: HeldString, now = this.now()): string | undefined {
    const entry = held.entry;
    if (entry.retired) return undefined;
    if (held.trustedUntil <= now || (entry.expiresAt !== null && entry.expiresAt <= now)) return undefined;
    const tagEntries = held.tagEntries;
    for (let i = 0; i < tagEntries.length; i++) if (tagEntries[i]!.retired) return undefined;
    if (held.recency.crowded) {
      held.recency.touch(held.key);
      // The versions of its tags are in use as long as the entry is: they must not be culled first.
      for (let i = 0; i < held.tagKeys.length; i++) held.recency.touch(held.tagKeys[i]!);
    }
    this.counts.hits++;
    return held.value;
  }

  /** An entry this process holds, as `peekFresh` answers it (its tags' versions read in process too). */
  private freshInProcess<T>(made: string, entry: Entry<P>): CachedEntry<T> | undefined {
    const inProcess = this.judgedInProcess(entry);
    if (inProcess === undefined || inProcess.judged.state !== 'fresh') return undefined;
    const answer = this.entryOf<T>(made, inProcess.judged, true);
    if (answer instanceof Unreadable) return undefined;
    // Only hits count here: an answer of undefined sends the caller to read the entry, which counts it.
    this.counts.hits++;
    return answer;
  }

  /**
   * An entry this process holds, judged against its tags' versions as this process holds them, with
   * the entries of those versions (undefined when a tag has none: it was never invalidated); undefined
   * when this process cannot tell a version.
   */
  private judgedInProcess(entry: Entry<P>): { judged: Judged<P>; tagKeys: readonly string[]; tagEntries: ReadonlyArray<InProcessStanding> } | undefined {
    const stamped = this.codec.unstamp?.(entry.payload);
    if (stamped === undefined) return { judged: { payload: entry.payload, stamp: undefined, state: 'fresh' }, tagKeys: NO_TAGS, tagEntries: NO_ENTRIES };
    const versions = new Map<string, string | undefined>();
    const tagKeys: string[] = [];
    const tagEntries: InProcessStanding[] = [];
    for (const tag of stamped.stamp.tags) {
      const tagKey = this.tagKey(tag);
      const held = this.inProcess!(tagKey);
      if (held !== undefined) {
        const version = this.versionIn(tagKey, held);
        if (version === undefined) return undefined;
        versions.set(tag, version);
        tagEntries.push(held);
      } else {
        // A tag never invalidated has no version: its absence stands in for it, until the key is written.
        const absence = this.inProcessAbsence?.(tagKey);
        if (absence === undefined) return undefined;
        versions.set(tag, undefined);
        tagEntries.push(absence);
      }
      tagKeys.push(tagKey);
    }
    return { judged: { payload: stamped.payload, stamp: stamped.stamp, state: this.stateOf(stamped.stamp, versions) }, tagKeys, tagEntries };
  }

  /**
   * A render level's read: the entries found among `keys`, fresh and stale alike, and,
   * in the same round trip, the current version of each of `tags`; the found entries' own tags are
   * read in at most one more. `versions` holds every tag read, for what is computed next (`tagsAsOf`).
   */
  readEntriesAndTags<T = unknown>(
    keys: readonly CacheKey[],
    tags: readonly string[],
  ): MaybePromise<{ entries: Map<CacheKey, CachedEntry<T>>; versions: Map<string, string | undefined> }> {
    const made = keys.map((key) => this.key(key));
    // The tags the entries carried when last read travel with them too (see `guessTagKeys`).
    const tagList = [...new Set([...this.checkTags(tags, 'readEntriesAndTags'), ...(this.guessTagKeys(made)?.tags ?? NO_TAGS)])];
    const tagKeys = tagList.map((tag) => this.tagKey(tag));
    return andThen(this.read(tagKeys.length === 0 ? made : [...made, ...tagKeys], false), (found) => {
      const removals: Array<MaybePromise<void>> = [];
      const versions = new Map<string, string | undefined>();
      tagList.forEach((tag, i) => versions.set(tag, this.versionIn(tagKeys[i]!, found.get(tagKeys[i]!), removals)));
      const entries = new Map<CacheKey, CachedEntry<T>>();
      const stamped: Array<[CacheKey, string, Judged<P>]> = [];
      const unread = new Set<string>();
      /** Answers a read entry under `key`; false for one that cannot be decoded (then being removed). */
      const answer = (key: CacheKey, made: string, judged: Judged<P>): boolean => {
        const entry = this.entryOf<T>(made, judged, true);
        if (entry instanceof Unreadable) {
          removals.push(entry.removal);
          return false;
        }
        entries.set(key, entry);
        return true;
      };
      made.forEach((key, i) => {
        const entry = found.get(key);
        if (entry === undefined) return;
        const unstamped = this.unstampRead(key, entry.payload);
        if (unstamped === undefined) {
          answer(keys[i]!, key, { payload: entry.payload, stamp: undefined, state: 'fresh' });
          return;
        }
        stamped.push([keys[i]!, key, { payload: unstamped.payload, stamp: unstamped.stamp, state: undefined }]);
        for (const tag of unstamped.stamp.tags) if (!versions.has(tag)) unread.add(tag);
      });
      const judge = () => {
        this.counts.hits += entries.size;
        this.counts.misses += keys.length - entries.size - stamped.length;
        if (stamped.length === 0) return afterRemovals(removals, { entries, versions });
        for (const [key, made, judged] of stamped) {
          judged.state = this.stateOf(judged.stamp!, versions);
          const answered = judged.state !== undefined && answer(key, made, judged);
          this.countRead(judged.state === 'error' || !answered ? undefined : judged.state);
        }
        // In the caller's order, as getEntries answers.
        const ordered = new Map<CacheKey, CachedEntry<T>>();
        for (const key of keys) if (entries.has(key)) ordered.set(key, entries.get(key)!);
        return afterRemovals(removals, { entries: ordered, versions });
      };
      if (unread.size === 0) return judge();
      return andThen(this.readTagVersions([...unread]), (more) => {
        for (const [tag, version] of more) versions.set(tag, version);
        return judge();
      });
    });
  }

  private readBatch<V>(keys: Iterable<CacheKey>, version: number | undefined, withStale: boolean, build: BuildAnswer<P, V>): MaybePromise<Map<CacheKey, V>> {
    const originals: CacheKey[] = [];
    const made: string[] = [];
    for (const key of keys) {
      originals.push(key);
      made.push(this.key(key, version));
    }
    if (made.length === 0) return new Map();
    const guess = this.guessTagKeys(made);
    if (guess === undefined) return andThen(this.read(made, false), (entries) => this.pick(originals, made, entries, withStale, build));
    // The versions of the tags these keys had last time travel with them: usually no second read.
    return andThen(this.read([...made, ...guess.keys], false), (entries) =>
      andThen(this.versionsIn(guess.tags, guess.keys, entries), (known) => this.pick(originals, made, entries, withStale, build, known)),
    );
  }

  /**
   * The keys of the versions of the tags `made` keys carried when last read, if any did: read in the
   * same round trip as the entries, they spare a second one while the entries keep their tags.
   */
  private guessTagKeys(made: string[]): { tags: string[]; keys: string[] } | undefined {
    if (this.stampsByKey.size === 0) return undefined;
    let tags: Set<string> | undefined;
    for (const key of made) {
      const carried = this.stampsByKey.get(key)?.stamp.tags;
      if (carried !== undefined) for (const tag of carried) (tags ??= new Set()).add(tag);
    }
    if (tags === undefined) return undefined;
    const list = [...tags];
    return { tags: list, keys: list.map((tag) => this.tagKey(tag)) };
  }

  /**
   * The versions of `tags`, stored under `keys`, found among `entries` (undefined for a tag without
   * one): answered once the removal of any that cannot be decoded has settled.
   */
  private versionsIn(tags: readonly string[], keys: readonly string[], entries: Map<string, Entry<P>>): MaybePromise<Map<string, string | undefined>> {
    const versions = new Map<string, string | undefined>();
    const removals: Array<MaybePromise<void>> = [];
    tags.forEach((tag, i) => versions.set(tag, this.versionIn(keys[i]!, entries.get(keys[i]!), removals)));
    return afterRemovals(removals, versions);
  }

  /**
   * The found entries of a batch, built into answers under the keys as the caller gave them, in the
   * caller's order; dead entries (and, unless `withStale`, stale ones) are left out, after one read of
   * every tag among them.
   */
  private pick<V>(
    originals: CacheKey[],
    made: string[],
    entries: Map<string, Entry<P>>,
    withStale: boolean,
    build: BuildAnswer<P, V>,
    known?: TagSnapshot,
  ): MaybePromise<Map<CacheKey, V>> {
    const found = new Map<CacheKey, V>();
    // Entries with a tag whose version was not read with them: judged after one more read.
    let unjudged: Array<{ index: number; judged: Judged<P> }> | undefined;
    // Removals of entries that cannot be decoded, read as misses once they are done.
    let removals: Array<MaybePromise<void>> | undefined;
    const built = (answer: V | Unreadable): answer is V => {
      if (!(answer instanceof Unreadable)) return true;
      (removals ??= []).push(answer.removal);
      return false;
    };
    for (let i = 0; i < made.length; i++) {
      const entry = entries.get(made[i]!);
      if (entry === undefined) continue;
      const unstamped = this.unstampRead(made[i]!, entry.payload);
      if (unstamped === undefined) {
        const answer = build(made[i]!, entry.payload, undefined, 'fresh');
        if (built(answer)) {
          this.counts.hits++;
          found.set(originals[i]!, answer);
        }
        continue;
      }
      const { stamp, payload } = unstamped;
      if (known === undefined || !knowsEvery(known, stamp.tags)) {
        (unjudged ??= []).push({ index: i, judged: { payload, stamp, state: undefined } });
        continue;
      }
      const state = this.stateOf(stamp, known);
      if (state === 'fresh' || (withStale && state !== undefined)) {
        const answer = build(made[i]!, payload, stamp, state);
        if (built(answer)) {
          this.countRead(state === 'fresh' ? state : 'stale');
          found.set(originals[i]!, answer);
        }
      }
    }
    this.counts.misses += made.length - found.size - (unjudged?.length ?? 0);
    if (unjudged === undefined) return removals === undefined ? found : afterRemovals(removals, found);
    const late = unjudged;
    return andThen(
      this.statesOf(
        late.map((item) => item.judged.stamp!),
        known,
      ),
      (states) => {
        const judgedLate = new Map<number, V>();
        late.forEach((item, n) => {
          const state = states[n];
          const answer =
            state === 'fresh' || (withStale && state !== undefined) ? build(made[item.index]!, item.judged.payload, item.judged.stamp, state) : undefined;
          if (answer !== undefined && built(answer)) {
            this.countRead(state === 'fresh' ? state : 'stale');
            judgedLate.set(item.index, answer);
          } else this.counts.misses++;
        });
        // In the caller's order, as the others are.
        const ordered = new Map<CacheKey, V>();
        for (let i = 0; i < originals.length; i++) {
          const key = originals[i]!;
          if (judgedLate.has(i)) ordered.set(key, judgedLate.get(i)!);
          else if (found.has(key)) ordered.set(key, found.get(key)!);
        }
        return removals === undefined ? ordered : afterRemovals(removals, ordered);
      },
    );
  }

  /** A read entry's stamp and own payload, remembering the stamp under its made key (see `stampsByKey`). */
  private unstampRead(made: string, payload: P): Unstamped<P> | undefined {
    if (this.codec.unstamp === undefined) return undefined;
    // Nothing read so far carried a stamp: most caches hold no tagged entries, and skip the lookup.
    const last = this.stampsByKey.size === 0 ? undefined : this.stampsByKey.get(made);
    const unstamped = this.codec.unstamp(payload, last);
    if (unstamped !== undefined && unstamped.stamp !== last?.stamp) this.stampsByKey.set(made, { stamp: unstamped.stamp, stored: unstamped.stored });
    return unstamped;
  }

  /** Stores every entry; answers the keys that could not be stored. */
  async setMany(entries: Map<CacheKey, unknown> | Record<string, unknown>, timeoutOrOptions?: TimeoutArg): Promise<CacheKey[]> {
    const { expiresAt, version, tags, windows, asOf } = this.writeOptions(timeoutOrOptions, 'setMany');
    const pairs = entries instanceof Map ? [...entries] : Object.entries(entries);
    const byMade = new Map<string, CacheKey>();
    const payloads: Array<[string, P]> = [];
    for (const [key, value] of pairs) {
      const made = this.key(key, version);
      byMade.set(made, key);
      payloads.push([made, this.encode(value, made)]);
    }
    if (payloads.length === 0) return [];
    if (expiresAt === EXPIRED) {
      await this.remove([...byMade.keys()]);
      return [];
    }
    if (tags !== undefined || windows !== undefined) {
      const stamped = await this.stampedWith(payloads[0]![1], tags, windows, expiresAt, asOf);
      if (stamped === undefined) return pairs.map(([key]) => key);
      const stamp = this.codec.unstamp!(stamped)?.stamp;
      if (stamp !== undefined) for (const pair of payloads) pair[1] = this.codec.stamp!(pair[1], stamp);
    }
    const failed = await this.write(payloads, storedExpiry(expiresAt, windows));
    this.counts.sets += payloads.length - failed.length;
    return failed.map((failure) => {
      const made = failedKey(failure);
      return byMade.get(made) ?? made;
    });
  }

  /** Answers true when a live entry was removed. */
  async delete(key: CacheKey, options?: VersionOption): Promise<boolean> {
    const made = this.key(key, this.versionOf(options, 'delete'));
    this.counts.deletes++;
    return (await this.remove([made])) > 0;
  }

  async deleteMany(keys: Iterable<CacheKey>, options?: VersionOption): Promise<void> {
    const version = this.versionOf(options, 'deleteMany');
    const made = [...keys].map((key) => this.key(key, version));
    this.counts.deletes += made.length;
    if (made.length > 0) await this.remove(made);
  }

  async clear(): Promise<void> {
    await this.removeAll();
  }

  /** Gives a live entry a new timeout, keeping its tags and stale windows; answers false when the key is missing. */
  async touch(key: CacheKey, timeoutOrOptions?: TimeoutArg): Promise<boolean> {
    const { expiresAt, version } = this.writeOptions(timeoutOrOptions, 'touch');
    const made = this.key(key, version);
    if (expiresAt === EXPIRED) return (await this.remove([made])) > 0;
    if (this.codec.unstamp !== undefined) {
      // An entry with stale windows records when it stops being fresh: that moves with the timeout.
      const entry = await this.peekOne(made);
      const stamped = entry === undefined ? undefined : this.codec.unstamp(entry.payload);
      if (stamped !== undefined && hasWindows(stamped.stamp)) {
        const { staleWhileRevalidate = 0, staleIfError = 0 } = stamped.stamp;
        const stamp: EntryStamp = { ...stamped.stamp, freshUntil: expiresAt ?? undefined };
        if (expiresAt === null) delete stamp.freshUntil;
        throwRefusal(await this.write([[made, this.codec.stamp!(stamped.payload, stamp)]], storedExpiry(expiresAt, { staleWhileRevalidate, staleIfError })));
        return true;
      }
    }
    return this.retime(made, expiresAt);
  }

  async hasKey(key: CacheKey, options?: VersionOption): Promise<boolean> {
    return this.hasLive(this.key(key, this.versionOf(options, 'hasKey')));
  }

  /** Adds `delta` to a stored integer, keeping its expiry; KeyNotFoundError when missing. */
  async incr(key: CacheKey, delta = 1, options?: VersionOption): Promise<number> {
    if (!Number.isSafeInteger(delta)) throw this.typeError(`incr/decr delta must be an integer (got ${describe(delta)})`);
    const made = this.key(key, this.versionOf(options, 'incr'));
    if (this.incrBy !== undefined) {
      let value: number | undefined;
      try {
        value = await this.incrBy(made, delta);
      } catch (error) {
        // Not a plain integer: an integer stamped with tags is added to by read-modify-write.
        if (!(error instanceof TypeError) || this.codec.unstamp === undefined) throw error;
        const entry = (await this.readForUpdate([made])).get(made);
        if (entry === undefined) throw error;
        if (this.codec.unstamp(entry.payload) !== undefined) return this.incrInOrder(key, made, delta);
        // One that cannot be decoded is removed, as a read removes it: then there is nothing to add to.
        const value = this.readable(made, entry.payload, false);
        if (!(value instanceof Unreadable)) throw error;
        await value.removal;
        throw new KeyNotFoundError(String(key));
      }
      if (value === undefined) throw new KeyNotFoundError(String(key));
      return value;
    }
    return this.incrInOrder(key, made, delta);
  }

  private async incrInOrder(key: CacheKey, made: string, delta: number): Promise<number> {
    // Read-modify-write: one at a time per key in this process, so concurrent callers lose nothing.
    const previous = this.pendingIncrs.get(made) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => this.addToStored(key, made, delta));
    this.pendingIncrs.set(made, next);
    try {
      return await next;
    } finally {
      if (this.pendingIncrs.get(made) === next) this.pendingIncrs.delete(made);
    }
  }

  private async addToStored(key: CacheKey, made: string, delta: number): Promise<number> {
    const entry = (await this.readForUpdate([made])).get(made);
    if (entry === undefined) throw new KeyNotFoundError(String(key));
    const stamped = this.codec.unstamp?.(entry.payload);
    if (stamped !== undefined && (await this.statesOf([stamped.stamp]))[0] !== 'fresh') throw new KeyNotFoundError(String(key));
    const current = this.readable(made, stamped?.payload ?? entry.payload, false);
    if (current instanceof Unreadable) {
      await current.removal;
      throw new KeyNotFoundError(String(key));
    }
    if (typeof current !== 'number' || !Number.isSafeInteger(current)) {
      throw this.typeError(`cannot incr/decr key '${key}': its value is not an integer (got ${describe(current)})`);
    }
    const value = current + delta;
    const payload = stamped === undefined ? this.codec.encode(value) : this.codec.stamp!(this.codec.encode(value), stamped.stamp);
    throwRefusal(await this.write([[made, payload]], this.expiryOf(entry)));
    return value;
  }

  async decr(key: CacheKey, delta = 1, options?: VersionOption): Promise<number> {
    if (!Number.isSafeInteger(delta)) throw this.typeError(`incr/decr delta must be an integer (got ${describe(delta)})`);
    this.versionOf(options, 'decr');
    return this.incr(key, -delta, options);
  }

  /** Moves the entry to version + delta, keeping its expiry; answers the new version. */
  async incrVersion(key: CacheKey, delta = 1, options?: VersionOption): Promise<number> {
    if (!Number.isSafeInteger(delta)) throw this.typeError(`incrVersion/decrVersion delta must be an integer (got ${describe(delta)})`);
    const version = this.versionOf(options, 'incrVersion') ?? this.version;
    const oldKey = this.key(key, version);
    const entry = (await this.readForUpdate([oldKey])).get(oldKey);
    if (entry === undefined) throw new KeyNotFoundError(String(key));
    throwRefusal(await this.write([[this.key(key, version + delta), entry.payload]], this.expiryOf(entry)));
    await this.remove([oldKey]);
    return version + delta;
  }

  async decrVersion(key: CacheKey, delta = 1, options?: VersionOption): Promise<number> {
    if (!Number.isSafeInteger(delta)) throw this.typeError(`incrVersion/decrVersion delta must be an integer (got ${describe(delta)})`);
    this.versionOf(options, 'decrVersion');
    return this.incrVersion(key, -delta, options);
  }

  async close(): Promise<void> {
    await this.disconnect?.();
  }

  // ---- Helpers for backends -----------------------------------------------------------------

  /** Whether an absolute expiry has passed by this cache's clock. */
  protected isExpired(expiresAt: number | null | undefined, now = this.now()): boolean {
    return expiresAt != null && expiresAt <= now;
  }

  /**
   * Reports a server error that was turned into a miss or a no-op: as an `error` event when someone
   * listens, else logged once per distinct `cause` (an unheard `error` event would throw).
   */
  reportError(error: Error, cause = error.message): void {
    // A server's failures are counted where they happen (`countServerFailure`), reported or not.
    if (!(error instanceof CacheServerError)) this.counts.errors++;
    if (this.listenerCount('error') > 0) {
      this.emit('error', error);
      return;
    }
    if (this.reportedCauses.has(cause)) return;
    this.reportedCauses.add(cause);
    this.logger.warn(`cachegrain: ${this.named(error.message)} (reported once; listen for 'error' events on the cache to see every one)`);
  }

  /** Counts a command a server failed, or that was answered without it while it is down. */
  protected countServerFailure(): void {
    this.counts.errors++;
  }

  /** A TypeError whose message starts by naming this cache. */
  protected typeError(message: string, cause?: unknown): TypeError {
    return new TypeError(this.named(message), cause === undefined ? undefined : { cause });
  }

  /** The message, starting with the name of this cache once (messages of the backends name it already). */
  protected named(message: string): string {
    const name = `cache '${this.alias}': `;
    return message.startsWith(name) ? message : name + message;
  }

  // ---- Internals ----------------------------------------------------------------------------

  private expiryOf(entry: Entry<P>): number | null {
    if (entry.expiresAt === undefined) {
      throw new Error(`cache '${this.alias}': backend ${this.constructor.name} returned an entry without expiresAt from read(keys, true)`);
    }
    return entry.expiresAt;
  }

  private encode(value: unknown, made: string): P {
    try {
      return this.codec.encode(value);
    } catch (error) {
      throw this.typeError(`cannot store the value for key '${made}': ${(error as Error).message}`, error);
    }
  }

  /**
   * Refuses a name of a call's options object that `known` does not list, naming `method`. On the hot
   * path: one `for…in` over the few names a call passes, and the message is built only for a stranger.
   */
  private checkCallOptions(options: object, known: OptionShape, method: string): void {
    for (const name in options) {
      if (known[name] === true) continue;
      const message = checkOptionNames(options, known);
      if (message !== undefined) throw this.typeError(`${method}: ${message}`);
    }
  }

  /** The version a read names in its options object, checked; undefined for the cache's own. */
  private versionOf(options: VersionOption | undefined, method: string): number | undefined {
    if (options === undefined || options === null) return undefined;
    this.checkCallOptions(options, VERSION_OPTIONS, method);
    return options.version;
  }

  private writeOptions(
    arg: TimeoutArg,
    method: string,
  ): {
    expiresAt: number | null | typeof EXPIRED;
    version?: number;
    tags?: readonly string[];
    windows?: StaleWindows;
    asOf?: TagSnapshot;
  } {
    let timeout: number | null | undefined;
    let version: number | undefined;
    let tags: readonly string[] | undefined;
    let windows: StaleWindows | undefined;
    let asOf: TagSnapshot | undefined;
    if (arg !== null && typeof arg === 'object') {
      this.checkCallOptions(arg, WRITE_OPTIONS, method);
      timeout = arg.timeout;
      version = arg.version;
      if (arg.tagsAsOf !== undefined) {
        if (!(arg.tagsAsOf instanceof Map)) throw this.typeError(`tagsAsOf must be a snapshot from readTagSnapshot (got ${describe(arg.tagsAsOf)})`);
        asOf = arg.tagsAsOf;
      }
      if (arg.tags !== undefined) tags = this.checkTags(arg.tags, 'tags');
      const staleWhileRevalidate = this.checkWindow(arg.staleWhileRevalidate, 'staleWhileRevalidate');
      const staleIfError = this.checkWindow(arg.staleIfError, 'staleIfError');
      if (staleWhileRevalidate > 0 || staleIfError > 0) windows = { staleWhileRevalidate, staleIfError };
    } else {
      timeout = arg;
    }
    return { expiresAt: this.expiryAfter(timeout), version, tags, windows, asOf };
  }

  /** When an entry written now with `timeout` expires: never (null), at once (EXPIRED), or an epoch time. */
  private expiryAfter(timeout: number | null | undefined): number | null | typeof EXPIRED {
    const seconds = timeout === undefined ? this.defaultTimeout : this.checkTimeout(timeout, 'timeout');
    if (seconds === null) return null;
    if (seconds <= 0) return EXPIRED;
    return this.now() + seconds;
  }

  private checkWindow(seconds: unknown, what: string): number {
    if (seconds === undefined) return 0;
    if (typeof seconds === 'number' && Number.isFinite(seconds) && seconds >= 0) return seconds;
    throw this.typeError(`${what} must be a non-negative number of seconds (got ${describe(seconds)})`);
  }

  private checkTimeout(timeout: unknown, what: string): number | null {
    if (timeout === null || (typeof timeout === 'number' && Number.isFinite(timeout))) return timeout;
    throw this.typeError(`${what} must be a finite number of seconds or null (got ${describe(timeout)})`);
  }

  private checkVersion(version: unknown, what: string): void {
    if (!Number.isSafeInteger(version)) throw this.typeError(`${what} must be an integer (got ${describe(version)})`);
  }
}

/**
 * Every public operation publishes how it ended on `cachegrain:<operation>`. Installed
 * over the methods once, here, rather than written into each: while nobody subscribes, a call costs
 * one `hasSubscribers` read more. While someone does (metrics exporters subscribe for good), a call
 * reads the clock when it starts and builds one message, whose duration is read off the clock when
 * a subscriber asks for it (see `ObservedCall`); an answer given at once (a store in this process)
 * is published at once, without waiting a turn of the event loop.
 */
type Operation = (this: BaseCache, a?: unknown, b?: unknown, c?: unknown) => MaybePromise<unknown>;
const NOT_FOUND = Symbol('not found');

/** The operations that can answer at once, by the method that does: observed, they are called instead of the public one. */
const ANSWERED_AT_ONCE: Partial<Record<CacheOperation, Operation>> = {
  get: BaseCache.prototype['answerGet'] as Operation,
  set: BaseCache.prototype['answerSet'] as Operation,
  getMany: BaseCache.prototype['answerGetMany'] as Operation,
};

/** The operations whose first argument is a list of keys or tags, which may come as any iterable. */
const LISTS = new Set<CacheOperation>(['getMany', 'getEntries', 'deleteMany', 'invalidateTags']);

for (const operation of CACHE_OPERATIONS) {
  const direct = BaseCache.prototype[operation] as Operation;
  const answer = ANSWERED_AT_ONCE[operation] ?? direct;
  const channel = CHANNELS[operation];
  const takesList = LISTS.has(operation);
  const observed: Operation = function (a, b, c) {
    return channel.hasSubscribers ? observe(this, operation, takesList, answer, a, b, c) : direct.call(this, a, b, c);
  };
  Object.defineProperty(BaseCache.prototype, operation, { value: observed, writable: true, configurable: true });
}

function observe(cache: BaseCache, operation: CacheOperation, takesList: boolean, answer: Operation, a: unknown, b: unknown, c: unknown): Promise<unknown> {
  const started = performance.now();
  // Read once: a generator of keys or tags would be empty for the operation after the event read it.
  if (takesList && a !== null && typeof a === 'object' && !Array.isArray(a) && Symbol.iterator in a) a = [...(a as Iterable<unknown>)];
  let answered: MaybePromise<unknown>;
  try {
    // A get is asked with a default of its own, so that a miss is told apart from a stored value equal to the caller's default.
    answered = answer.call(cache, a, operation === 'get' ? NOT_FOUND : b, c);
  } catch (error) {
    publishFailure(cache, operation, a, b, started, error);
    return Promise.reject(error);
  }
  if (answered instanceof Promise) return observeLater(cache, operation, answered, a, b, started);
  return promised(published(cache, operation, a, b, started, answered));
}

async function observeLater(cache: BaseCache, operation: CacheOperation, answer: Promise<unknown>, a: unknown, b: unknown, started: number): Promise<unknown> {
  let result: unknown;
  try {
    result = await answer;
  } catch (error) {
    publishFailure(cache, operation, a, b, started, error);
    throw error;
  }
  return published(cache, operation, a, b, started, result);
}

/** Publishes how an operation ended, and answers what its caller receives (a get's miss: the caller's default). */
function published(cache: BaseCache, operation: CacheOperation, a: unknown, b: unknown, started: number, result: unknown): unknown {
  if (operation === 'get') {
    const hit = result !== NOT_FOUND;
    const event = new ObservedCall(operation, cache.alias, started);
    event.key = keyName(a);
    event.outcome = hit ? 'hit' : 'miss';
    CHANNELS.get.publish(event);
    return hit ? result : b;
  }
  const event = eventOf(cache, operation, a, b, started);
  if (operation === 'getMany' || operation === 'getEntries') {
    const found = (result as Map<CacheKey, unknown>).size;
    const misses = (event.keys?.length ?? found) - found;
    event.outcome = misses === 0 ? 'hit' : 'miss';
    event.hits = found;
    event.misses = misses;
  } else if (operation === 'hasKey') event.outcome = result ? 'hit' : 'miss';
  CHANNELS[operation].publish(event);
  return result;
}

function publishFailure(cache: BaseCache, operation: CacheOperation, a: unknown, b: unknown, started: number, error: unknown): void {
  const event = eventOf(cache, operation, a, b, started);
  event.outcome = 'error';
  event.error = error;
  CHANNELS[operation].publish(event);
}

/**
 * The message of an observed call. The clock is read once at the call; its `duration` is taken when
 * a subscriber first asks for it, which it does as the call is published, right after its answer: a
 * call whose subscribers only count outcomes reads the clock once. A subscriber that keeps messages
 * reads `duration` in its handler (JSON.stringify takes it then too).
 */
class ObservedCall implements CacheEvent {
  declare key?: string;
  declare keys?: string[];
  declare tags?: string[];
  declare soft?: boolean;
  declare hits?: number;
  declare misses?: number;
  declare error?: unknown;
  outcome: CacheOutcome = 'ok';
  readonly #started: number;
  #duration: number | undefined;

  constructor(
    readonly operation: CacheOperation,
    readonly alias: string,
    started: number,
  ) {
    this.#started = started;
  }

  get duration(): number {
    return (this.#duration ??= performance.now() - this.#started);
  }

  toJSON(): CacheEvent {
    return { ...this, duration: this.duration };
  }
}

/** An operation's event before its outcome is known: `ok`. */
function eventOf(cache: BaseCache, operation: CacheOperation, a: unknown, b: unknown, started: number): ObservedCall {
  return Object.assign(new ObservedCall(operation, cache.alias, started), eventSubject(operation, a, b));
}

const keyName = (key: unknown): string => (typeof key === 'string' ? key : String(key));

/** The keys or tags an operation is about, as its event names them. */
function eventSubject(operation: CacheOperation, a: unknown, b: unknown): Partial<CacheEvent> {
  switch (operation) {
    case 'clear':
      return {};
    case 'invalidateTags':
      return { tags: [...(a as Iterable<string>)].map(String), soft: (b as InvalidateOptions | undefined)?.soft === true };
    case 'getMany':
    case 'getEntries':
    case 'deleteMany':
      return { keys: [...(a as Iterable<unknown>)].map(keyName) };
    case 'setMany':
      return { keys: (a instanceof Map ? [...a.keys()] : Object.keys(a as object)).map(keyName) };
    default:
      return { key: keyName(a) };
  }
}

/** How long the store keeps an entry: past its timeout for as long as it may still be served stale. */
function storedExpiry(expiresAt: number | null, windows: StaleWindows | undefined): number | null {
  if (expiresAt === null || windows === undefined) return expiresAt;
  return expiresAt + Math.max(windows.staleWhileRevalidate, windows.staleIfError);
}

function hasWindows(stamp: EntryStamp): boolean {
  return stamp.freshUntil !== undefined || (stamp.staleWhileRevalidate ?? 0) > 0 || (stamp.staleIfError ?? 0) > 0;
}

/** A location given as a list, or as one string separated by `;` or `,`. */
export function splitLocation(location: string | string[] | undefined): string[] {
  if (location === undefined) return [];
  const parts = Array.isArray(location) ? location : location.split(/[;,]/);
  return parts.map((part) => part.trim()).filter((part) => part !== '');
}
