/**
 * BaseCache: the cache API of SPEC §3, written once over a handful of primitives that each backend
 * implements (Django's `BaseCache`, unstorage's driver seam). The base owns argument shapes, made
 * keys, versions, timeouts, serialization and copy-on-read; a backend sees only made keys, payloads
 * and absolute expiries (epoch seconds, `null` = never). The concerns around the API live in parts
 * of their own, which this class holds: tags (src/tags), getOrSet over the flight engine, counters,
 * in-process hits, reporting and observation.
 */
import type { Codec } from './codec.js';
import { CallOptions, checkTimeout, checkVersion, EXPIRED, type Expiry, storedExpiry } from './call-options.js';
import type { CacheContext } from './context.js';
import { Counters } from './counters.js';
import { GetOrSet } from './get-or-set.js';
import { type HeldString, type InProcessEntry, InProcessHits, type InProcessStore, type LocalStore } from './in-process.js';
import { type CacheKey, defaultKeyFunction, describe, type KeyFunction, userKeyToString } from './keys.js';
import { type MadeKey, MadeKeys, madeKeyStart } from './made-keys.js';
import { type CacheStats, emptyStats, observeOperations, type Operation } from './observe.js';
import { Payloads, Unreadable } from './payloads.js';
import { Reporter } from './report.js';
import { andThen, CacheSeam, type Entry, type MaybePromise, nothing, promised, type Seam, throwRefusal } from './seam.js';
import { StoreLocks } from './store-locks.js';
import { BatchWrites } from './batch-writes.js';
import {
  type CachedEntry,
  type CacheParams,
  DEFAULT_TIMEOUT,
  INVALIDATE_OPTIONS,
  type InvalidateOptions,
  splitLocation,
  type StoredEntry,
  type TagSnapshot,
  type TimeoutArg,
  type VersionOption,
} from './types.js';
import { Flights, Refreshes } from '../flight/index.js';
import { checkOptionNames, type OptionShape } from '../options.js';
import { type BatchAnswer, TaggedReads } from '../tags/read.js';
import { TAG_KEY_VERSION, TAG_KEYS, TagVersions } from '../tags/versions.js';

export type { Entry, MaybePromise, WriteFailure } from './seam.js';
export { failedKey } from './seam.js';
export type { HeldString, InProcessEntry, InProcessRecency, InProcessStanding, InProcessStore, LocalStore } from './in-process.js';
export type {
  CachedEntry,
  CacheLogger,
  CacheParams,
  EntryState,
  InvalidateOptions,
  StoredEntry,
  TagSnapshot,
  TimeoutArg,
  VersionOption,
  WriteOptions,
} from './types.js';
export { DEFAULT_TIMEOUT, INVALIDATE_OPTIONS, splitLocation } from './types.js';

const entriesOf = <V>(batch: BatchAnswer<V>): Map<CacheKey, V> => batch.entries;
const NO_TAGS: readonly string[] = Object.freeze([]);

export abstract class BaseCache<P = unknown> extends CacheSeam<P> {
  /**
   * The option names this backend takes: a list, or a shape (`optionShape`) whose nested records
   * check nested options objects too (`options.l1`). A backend that gives them has unknown names
   * refused, with the closest valid one; one that leaves this undefined takes any (dummy, and custom backends).
   */
  static readonly optionNames?: readonly string[] | OptionShape;
  readonly location: string[];
  readonly defaultTimeout: number | null;
  readonly keyPrefix: string;
  readonly version: number;
  readonly keyFunction: KeyFunction;
  readonly options: Record<string, unknown>;
  protected readonly codec: Codec<P>;
  /** Work in flight on this cache in this process, at every level (getOrSet, fragments, pages): one per key. */
  readonly flights = new Flights();
  /** Stale entries of this cache being computed again behind their callers, at every level. */
  readonly refreshes: Refreshes = new Refreshes(this);
  /** What `stats()` reports: counted where each operation learns its outcome, once, for every backend. */
  private readonly counts: CacheStats = emptyStats();
  private readonly reporter: Reporter;
  private readonly keys: MadeKeys<P>;
  private readonly calls: CallOptions;
  private readonly payloads: Payloads<P>;
  private readonly context: CacheContext<P>;
  private readonly tags: TagVersions<P>;
  private readonly batches: TaggedReads<P>;
  private readonly computed: GetOrSet<P>;
  private readonly counters: Counters<P>;
  private readonly locks: StoreLocks<P>;
  private readonly batchWrites: BatchWrites<P>;
  /** Hits answered from a store in this process, once the backend handed one over (`answerFromMemory`). */
  private hits: InProcessHits<P> | undefined;
  /** The store, when it is wholly in this process: made keys remember its entries. */
  private local: LocalStore<P> | undefined;

  constructor(params: CacheParams<object>, codec: Codec<P>) {
    super(params.alias ?? 'default');
    const alias = this.alias;
    this.location = splitLocation(params.location);
    this.defaultTimeout = params.timeout === undefined ? DEFAULT_TIMEOUT : checkTimeout(alias, params.timeout, 'timeout');
    this.keyPrefix = params.keyPrefix ?? '';
    if (typeof this.keyPrefix !== 'string') throw this.typeError(`keyPrefix must be a string (got ${describe(this.keyPrefix)})`);
    this.version = params.version ?? 1;
    checkVersion(alias, this.version, 'version');
    this.keyFunction = params.keyFunction ?? defaultKeyFunction;
    if (typeof this.keyFunction !== 'function') throw this.typeError('keyFunction must be a function');
    this.cullProofKeyStart = madeKeyStart(this.keyFunction, this.keyPrefix, TAG_KEYS, TAG_KEY_VERSION);
    this.options = { ...(params.options ?? {}) } as Record<string, unknown>;
    const known = (new.target as unknown as { optionNames?: readonly string[] | OptionShape }).optionNames;
    const unknownOption = known === undefined ? undefined : checkOptionNames(this.options, known);
    if (unknownOption !== undefined) throw this.typeError(unknownOption);
    this.codec = codec;
    this.reporter = new Reporter(alias, this, this.counts, params.logger);
    this.keys = new MadeKeys<P>(this);
    this.calls = new CallOptions(alias, this.defaultTimeout, this);
    // The cache is its own seam: what an L1 installs over this instance's primitives, every part calls.
    const seam = this as unknown as Seam<P>;
    this.payloads = new Payloads(alias, codec, seam, this.reporter);
    const parts = { alias, cache: this as BaseCache<P>, seam, codec, payloads: this.payloads, keys: this.keys, calls: this.calls, counts: this.counts };
    const context: CacheContext<P> = { ...parts, reporter: this.reporter, tags: new TagVersions<P>(parts as CacheContext<P>) };
    this.context = context;
    this.tags = context.tags;
    this.batches = new TaggedReads(context);
    this.computed = new GetOrSet(context);
    this.counters = new Counters(context);
    this.locks = new StoreLocks(context);
    this.batchWrites = new BatchWrites(context);
  }

  /**
   * For a backend with a store in this process (locmem, an L1): hands it over, once, so that hits
   * may be answered from memory (`peekFresh`, `holdFresh`). A `LocalStore` (wholly in this process)
   * also shares one decoded value per payload among shared readers, and lets made keys remember its entries.
   */
  protected answerFromMemory(store: InProcessStore<P> | LocalStore<P>): void {
    this.hits = new InProcessHits(this.context, store);
    if ('writeAfter' in store) {
      this.local = store;
      this.payloads.sharesValues = true;
    }
  }

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

  /** Whether a made key is where a tag's version is kept (one this process made lately): an L1 remembers that none is there. */
  protected isTagKey(made: string): boolean {
    return this.tags.isTagKey(made);
  }

  // ---- Keys ---------------------------------------------------------------------------------

  /** The stored key for a user key: `keyFunction(key, keyPrefix, version)`. */
  makeKey(key: CacheKey, version?: number): string {
    if (version === undefined) version = this.version;
    else checkVersion(this.alias, version, 'version');
    return this.keyFunction(userKeyToString(key), this.keyPrefix, version);
  }

  /** Warns (as a `CacheKeyWarning`) about made keys memcached would refuse, once per shape of key. */
  validateKey(key: string): void {
    this.keys.warnOnce(key);
  }

  /**
   * The key as this cache stores it (prefix, version, key function), checked as every read and write
   * checks it: for a caller that looks the same key up again and again and keeps what this answers.
   */
  storedKey(key: CacheKey): string {
    return this.keys.made(key);
  }

  // ---- Reads --------------------------------------------------------------------------------

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
    const node = this.keys.node(key, options === undefined ? undefined : this.calls.versionOf(options, 'get'));
    const last = node.entry;
    if (last !== undefined && this.local!.usedAgain(last)) return this.countedValue(node.made, last, false, defaultValue);
    const found = this.readOne(node.made);
    if (found instanceof Promise) return found.then((entry) => this.countedValue(node.made, entry, false, defaultValue));
    if (this.local !== undefined) node.entry = found as InProcessEntry<P> | undefined;
    return this.countedValue(node.made, found, false, defaultValue);
  }

  /**
   * A read for callers that never mutate what they read (the page cache's stored responses): where
   * the store keeps its payloads in this process, every such reader of one entry shares one decoded
   * value, and the answer comes back synchronously, so a hit needs no turn of the event loop. A
   * store elsewhere answers with a promise. Answers fresh entries only. Throws for a bad key.
   */
  readShared<T = unknown>(key: CacheKey): MaybePromise<T | undefined> {
    const made = this.keys.made(key);
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
    const own = this.tags.unstamped(entry.payload);
    if (own instanceof Promise) return own.then((live) => this.countedLive(made, live, shared, missing));
    return this.countedLive(made, own, shared, missing);
  }

  private countedLive<T>(made: string, own: P | undefined, shared: boolean, missing: T): MaybePromise<T> {
    const value = own === undefined ? undefined : this.payloads.readable(made, own, shared);
    if (own === undefined || value instanceof Unreadable) {
      this.counts.misses++;
      return value instanceof Unreadable ? andThen(value.removal, () => missing) : missing;
    }
    this.counts.hits++;
    return value as T;
  }

  /**
   * `readShared` for an entry that may be stale: its shared value, its tags and how it stands. Tags
   * found in `known` (read in the same lookup) are not read again.
   */
  readSharedEntry<T = unknown>(key: CacheKey, known?: TagSnapshot): MaybePromise<CachedEntry<T> | undefined> {
    return this.batches.readSharedEntry<T>(this.keys.made(key), known);
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
    return andThen(this.batches.read<T>(keys, this.calls.versionOf(options, 'getMany'), NO_TAGS, 'fresh'), entriesOf);
  }

  /**
   * The entries found among `keys`, fresh and stale alike, each with its tags and how it stands
   * (what a fragment render needs to serve stale and to pass its tags on). One read of
   * the entries and at most one of their tags, as `getMany`.
   */
  getEntries<T = unknown>(keys: Iterable<CacheKey>, options?: VersionOption): Promise<Map<CacheKey, CachedEntry<T>>> {
    try {
      return promised(andThen(this.batches.read<CachedEntry<T>>(keys, this.calls.versionOf(options, 'getEntries'), NO_TAGS, 'live'), entriesOf));
    } catch (error) {
      return Promise.reject(error);
    }
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
    return this.batches.read<CachedEntry<T>>(keys, undefined, this.calls.tags(tags, 'readEntriesAndTags'), 'render');
  }

  /** The current version of each tag, for a later write's `tagsAsOf`: one read, synchronous for a store in this process. */
  readTagSnapshot(tags: readonly string[]): MaybePromise<TagSnapshot> {
    return this.tags.read(this.calls.tags(tags, 'readTagSnapshot'));
  }

  /** Whether a live entry holds the key: present, its tags not invalidated, its timeout not passed. */
  async hasKey(key: CacheKey, options?: VersionOption): Promise<boolean> {
    return this.hasLive(this.keys.made(key, this.calls.versionOf(options, 'hasKey')));
  }

  private async hasLive(made: string): Promise<boolean> {
    if (this.codec.unstamp === undefined) return this.contains(made);
    const entry = await this.peekOne(made);
    const own = entry === undefined ? undefined : await this.tags.unstamped(entry.payload);
    if (own === undefined) return false;
    // Decoded, as a read would: an entry that cannot be is no entry (and is removed).
    const value = this.payloads.readable(made, own, true);
    if (!(value instanceof Unreadable)) return true;
    await value.removal;
    return false;
  }

  // ---- In-process hits (fragments) ----------------------------------------------------------

  /**
   * The fresh entry under `key` when this process can tell at once, without a server (a store in
   * process, an L1 holding the entry and its tags' versions): what lets a fragment hit be emitted
   * while the engine renders. Undefined otherwise: the caller then reads it the usual way.
   */
  peekFresh<T = unknown>(key: CacheKey): CachedEntry<T> | undefined {
    return this.hits?.peekFresh<T>(this.keys.made(key));
  }

  /**
   * `peekFresh` of a key as `storedKey` made it, for a caller that reads it again and again: a fresh
   * string comes as a `HeldString`, which the caller keeps and hands to `answerHeld` next time
   * instead of reading the store (a tagged one with the entries of its tags' versions).
   */
  holdFresh(made: string): HeldString | CachedEntry<unknown> | undefined {
    return this.hits?.holdFresh(made);
  }

  /** The kept string again, counted as a hit, while everything it stands on is still the store's and fresh at `now`; else undefined. */
  answerHeld(held: HeldString, now = this.now()): string | undefined {
    return this.hits!.answerHeld(held, now);
  }

  // ---- Writes -------------------------------------------------------------------------------

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
      const expiresAt = this.calls.expiryAfter(timeoutOrOptions);
      const node = this.keys.node(key, undefined);
      return this.setMade(node, this.payloads.encode(value, node.made), expiresAt);
    }
    const { expiresAt, version, tags, windows, asOf } = this.calls.write(timeoutOrOptions, 'set');
    const node = this.keys.node(key, version);
    const payload = this.payloads.encode(value, node.made);
    if ((tags === undefined && windows === undefined) || expiresAt === EXPIRED) return this.setMade(node, payload, expiresAt);
    this.counts.sets++;
    return this.tags
      .stampedWith(payload, tags, windows, expiresAt, asOf)
      .then((stamped) => (stamped === undefined ? [] : this.write([[node.made, stamped]], storedExpiry(expiresAt, windows))))
      .then(throwRefusal);
  }

  /** Stores an untagged payload under a made key: a timeout that has run out deletes it instead. */
  private setMade(node: MadeKey<P>, payload: P, expiresAt: Expiry): MaybePromise<void> {
    if (expiresAt === EXPIRED) {
      const removed = this.remove([node.made]);
      return removed instanceof Promise ? removed.then(nothing) : undefined;
    }
    this.counts.sets++;
    const local = this.local;
    if (local === undefined) return this.writeOne(node.made, payload, expiresAt);
    node.entry = local.writeAfter(node.made, node.entry, payload, expiresAt);
  }

  /** Stores the value only when no fresh entry holds the key; answers whether it did. */
  async add(key: CacheKey, value: unknown, timeoutOrOptions?: TimeoutArg): Promise<boolean> {
    const { expiresAt, version, tags, windows, asOf } = this.calls.write(timeoutOrOptions, 'add');
    const made = this.keys.made(key, version);
    const payload = this.payloads.encode(value, made);
    if (expiresAt === EXPIRED) return !(await this.hasLive(made));
    const stamped = await this.tags.stampedWith(payload, tags, windows, expiresAt, asOf);
    return stamped !== undefined && this.computed.addOverDead(made, stamped, storedExpiry(expiresAt, windows));
  }

  /**
   * The cached value, else the value (or what the factory returns, awaited) added to the cache,
   * answering what the cache then holds. Concurrent callers for one key compute once. A stale entry
   * is answered at once while one refresh runs behind it; one past that window but inside
   * `staleIfError` stands in when computing fails.
   */
  async getOrSet<T = unknown>(key: CacheKey, valueOrFactory: T | Promise<T> | (() => T | Promise<T>), timeoutOrOptions?: TimeoutArg): Promise<T> {
    const args = this.calls.write(timeoutOrOptions, 'getOrSet');
    return this.computed.run<T>(this.keys.made(key, args.version), valueOrFactory, timeoutOrOptions, args);
  }

  /** Stores every entry; answers the keys that could not be stored. */
  async setMany(entries: Map<CacheKey, unknown> | Record<string, unknown>, timeoutOrOptions?: TimeoutArg): Promise<CacheKey[]> {
    return this.batchWrites.setMany(entries, timeoutOrOptions);
  }

  /**
   * Stores entries that differ in timeout, tags or stale windows as one batch: the versions of all
   * their tags are settled once (as of `tagsAsOf`, which applies to every entry), then one write goes
   * out per expiry. Answers the keys that were not stored.
   */
  async setEach(entries: ReadonlyArray<{ key: CacheKey; value: unknown; options?: TimeoutArg }>, tagsAsOf?: TagSnapshot): Promise<CacheKey[]> {
    return this.batchWrites.setEach(entries, tagsAsOf);
  }

  /** Gives a live entry a new timeout, keeping its tags and stale windows; answers false when the key is missing. */
  async touch(key: CacheKey, timeoutOrOptions?: TimeoutArg): Promise<boolean> {
    return this.batchWrites.touch(key, timeoutOrOptions);
  }

  /** Answers true when a live entry was removed. */
  async delete(key: CacheKey, options?: VersionOption): Promise<boolean> {
    const made = this.keys.made(key, this.calls.versionOf(options, 'delete'));
    this.counts.deletes++;
    return (await this.remove([made])) > 0;
  }

  async deleteMany(keys: Iterable<CacheKey>, options?: VersionOption): Promise<void> {
    const version = this.calls.versionOf(options, 'deleteMany');
    const made = [...keys].map((key) => this.keys.made(key, version));
    this.counts.deletes += made.length;
    if (made.length > 0) await this.remove(made);
  }

  async clear(): Promise<void> {
    await this.removeAll();
  }

  /** Adds `delta` to a stored integer, keeping its expiry; KeyNotFoundError when missing. */
  async incr(key: CacheKey, delta = 1, options?: VersionOption): Promise<number> {
    this.calls.delta(delta, 'incr/decr');
    return this.counters.incr(key, this.keys.made(key, this.calls.versionOf(options, 'incr')), delta);
  }

  async decr(key: CacheKey, delta = 1, options?: VersionOption): Promise<number> {
    this.calls.delta(delta, 'incr/decr');
    this.calls.versionOf(options, 'decr');
    return this.incr(key, -delta, options);
  }

  /** Moves the entry to version + delta, keeping its expiry; answers the new version. */
  async incrVersion(key: CacheKey, delta = 1, options?: VersionOption): Promise<number> {
    this.calls.delta(delta, 'incrVersion/decrVersion');
    const version = this.calls.versionOf(options, 'incrVersion') ?? this.version;
    await this.counters.move(key, this.keys.made(key, version), this.keys.made(key, version + delta));
    return version + delta;
  }

  async decrVersion(key: CacheKey, delta = 1, options?: VersionOption): Promise<number> {
    this.calls.delta(delta, 'incrVersion/decrVersion');
    this.calls.versionOf(options, 'decrVersion');
    return this.incrVersion(key, -delta, options);
  }

  /**
   * Invalidates every entry written with any of `tags` before this call, in every process that shares
   * the store: each tag gets a new version, so entries that recorded the old one read as misses (or,
   * with `soft`, as stale where they have a stale window). Nothing is scanned; entries written after
   * it resolves are not affected.
   */
  async invalidateTags(tags: Iterable<string>, options?: InvalidateOptions): Promise<void> {
    const list = this.calls.tags([...tags], 'invalidateTags');
    const unknownOption = options === undefined ? undefined : checkOptionNames(options, INVALIDATE_OPTIONS);
    if (unknownOption !== undefined) throw this.typeError(`invalidateTags: ${unknownOption}`);
    const soft = options?.soft ?? false;
    if (typeof soft !== 'boolean') throw this.typeError(`invalidateTags: options.soft must be a boolean (got ${describe(soft)})`);
    if (list.length > 0) await this.tags.invalidate(list, soft);
  }

  /**
   * Takes the lock `name` for every process sharing the store (an `add`), for at most `seconds`:
   * answers its release, or undefined while someone else holds it. Releasing removes only this
   * holder's lock, never one taken after it expired.
   */
  async acquireLock(name: string, seconds: number): Promise<(() => Promise<void>) | undefined> {
    return this.locks.acquire(name, seconds);
  }

  async close(): Promise<void> {
    await this.disconnect?.();
  }

  // ---- What the cache knows about itself ----------------------------------------------------

  /**
   * What this cache did since it was made or since `resetStats()`: reads answered fresh
   * (`hits`), stale (`staleHits`) or with nothing (`misses`), entries written, deletes, and errors.
   */
  stats(): CacheStats {
    return { ...this.counts };
  }

  resetStats(): void {
    Object.assign(this.counts, emptyStats());
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
   * How the store holds the entry under `key`, for inspection (`cachegrain inspect`): when the backend
   * drops it (epoch seconds, `null` for never, undefined when the backend does not say), when it stops
   * being fresh if it may be served stale, and its stored size in bytes (undefined for a store that
   * keeps values as objects). Undefined when nothing is stored under the key.
   */
  async storedEntry(key: CacheKey, options?: VersionOption): Promise<StoredEntry | undefined> {
    const made = this.keys.made(key, this.calls.versionOf(options, 'storedEntry'));
    const entry = (await this.read([made], true)).get(made);
    if (entry === undefined) return undefined;
    const { payload } = entry;
    const bytes = Buffer.isBuffer(payload) ? payload.length : typeof payload === 'string' ? Buffer.byteLength(payload) : undefined;
    return { expiresAt: entry.expiresAt, freshUntil: this.codec.unstamp?.(payload)?.stamp.freshUntil, bytes };
  }

  /**
   * Reports a server error that was turned into a miss or a no-op: as an `error` event when someone
   * listens, else logged once per distinct `cause` (an unheard `error` event would throw).
   */
  reportError(error: Error, cause = error.message): void {
    this.reporter.report(error, cause);
  }

  /** Counts a command a server failed, or that was answered without it while it is down. */
  protected countServerFailure(): void {
    this.counts.errors++;
  }
}

// The operations that can answer at once, by the method that does: observed, they are called instead of the public one.
observeOperations(BaseCache.prototype, {
  get: BaseCache.prototype['answerGet'] as Operation,
  set: BaseCache.prototype['answerSet'] as Operation,
  getMany: BaseCache.prototype['answerGetMany'] as Operation,
});
