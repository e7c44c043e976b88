/** What a render level's read answers: the entries found, and the versions (and count) it read. */
export interface RenderRead<T> {
  entries: Map<CacheKey, RenderEntry<T>>;
  versions: Map<string, string | undefined> & TagSnapshot;
}

/**
 * BaseCache: the cache API (Django's, in camelCase), written once over a handful of primitives that each backend
 * implements (Django's `BaseCache`, unstorage's driver seam). The base owns argument shapes, made
 * keys, versions, timeouts, serialization and copy-on-read; a backend sees only made keys, payloads
 * and absolute expiries (epoch seconds, `null` = never). The concerns around the API live in parts
 * of their own, which this class holds: tags (src/tags), getOrSet over the flight engine, counters,
 * in-process hits and reporting. Each public operation goes through `instrument` (src/observation/observation.ts),
 * which publishes how it ended while someone subscribes.
 */
import type { Codec } from '../encoding/codec.js';
import { type CallOptions, checkVersion, type Expiry, hasRunOut, storedExpiry } from '../store/call-options.js';
import { type SharedByParts, sharedByParts } from './shared-by-parts.js';
import { Counters } from './counters.js';
import { GetOrSet } from './get-or-set.js';
import type { InProcessEntry, InProcessStore, LocalStore } from '../store/in-process-contract.js';
import { InProcessHits } from './in-process-hits.js';
import { type CacheKey, userKeyToString } from '../keys/cache-keys.js';
import type { MadeKey, KeyMaker } from '../store/key-maker.js';
import { type CacheStats, countError, emptyStats, instrument, observing } from '../observation/observation.js';
import { type Payloads, Unreadable } from '../encoding/payloads.js';
import type { Reporter } from '../observation/reporting.js';
import { BackendContract } from './backend-contract.js';
import { throwRefusal } from '../store/backend-primitives.js';
import { andThen, type MaybePromise, nothing, promised } from '../store/maybe-promise.js';
import { type CacheIntegration, INTEGRATION } from './integration.js';
import { storedEntryIn } from './stored-entry.js';
import { type BackendPrimitives } from '../store/backend-primitives.js';
import { StoreLocks } from './store-locks.js';
import { type EachEntry, Writes } from './writes.js';
import {
  CLEAR_OPTIONS,
  type CachedEntry,
  type CacheParams,
  type ClearOptions,
  type Entry,
  type ListOf,
  type RenderEntry,
  type InvalidateOptions,
  type TagSnapshot,
  type TimeoutArg,
  type TouchArg,
  type VersionOption,
} from '../store/cache-types.js';
import { checkOptionNames } from '../options/option-rules.js';
import { Flights, Refreshes } from '../flight/index.js';
import { withOwnExpiry } from '../tags/expiry-stamps.js';
import { TaggedReads } from '../tags/read.js';
import type { TagVersions } from '../tags/versions.js';

export type { WriteFailure } from '../store/backend-primitives.js';
export type { EachEntry } from './writes.js';
export type { InvalidationEvent, InvalidationListener, TagsInvalidatedEvent } from './invalidation-listeners.js';
export type { Entry } from '../store/cache-types.js';
export type { MaybePromise } from '../store/maybe-promise.js';
export { failedKey } from '../store/backend-primitives.js';
export type { HeldString, InProcessEntry, InProcessRecency, InProcessStanding, InProcessStore, LocalStore } from '../store/in-process-contract.js';
export type {
  CachedEntry,
  CacheLogger,
  CacheParams,
  ClearOptions,
  EdgeWaitOptions,
  EntryState,
  InvalidateOptions,
  ListOf,
  RenderEntry,
  StoredEntry,
  TagSnapshot,
  TimeoutArg,
  TouchArg,
  TouchOptions,
  VersionOption,
  WriteOptions,
} from '../store/cache-types.js';
export { DEFAULT_TIMEOUT, INVALIDATE_OPTIONS, splitLocation } from '../store/cache-types.js';

export abstract class BaseCache<P = unknown> extends BackendContract<P> {
  protected readonly codec: Codec<P>;
  private readonly flights = new Flights();
  private readonly refreshes: Refreshes = new Refreshes(this, this.behind);
  /** What `stats()` reports: counted where each operation learns its outcome, once, for every backend. */
  private readonly counts: CacheStats = emptyStats();
  /** How it reports: a server backend reports the end of an outage by the path its failure went. */
  protected readonly reporter: Reporter;
  private readonly keys: KeyMaker<P>;
  private readonly calls: CallOptions;
  private readonly payloads: Payloads<P>;
  private readonly shared: SharedByParts<P>;
  /** The backend contract every operation calls: the backend's own primitives, or a layer in front of them (`composePrimitives`). */
  protected readonly primitives: BackendPrimitives<P>;
  private readonly tags: TagVersions<P>;
  private readonly batches: TaggedReads<P>;
  private readonly computed: GetOrSet<P>;
  private readonly counters: Counters<P>;
  private readonly locks: StoreLocks<P>;
  private readonly writes: Writes<P>;
  /** Hits answered from a store in this process, once the backend handed one over (`answerFromMemory`). */
  private hits: InProcessHits<P> | undefined;
  /** The store, when it is wholly in this process: made keys remember its entries. */
  private local: LocalStore<P> | undefined;
  /** What the page cache and the fragments reach beyond the documented API (see `integrationOf`). */
  readonly [INTEGRATION]: CacheIntegration = this.integration();

  constructor(params: CacheParams<object>, codec: Codec<P>) {
    super(params, new.target);
    this.codec = codec;
    const backend = { primitives: this.composePrimitives(this as unknown as BackendPrimitives<P>), codec, stampsExpiry: this.expiresByServerClock };
    const shared = (this.shared = sharedByParts<P>(this, backend, params, this.counts));
    ({ primitives: this.primitives, reporter: this.reporter, keys: this.keys, calls: this.calls, payloads: this.payloads, tags: this.tags } = shared);
    this.batches = new TaggedReads(shared);
    this.computed = new GetOrSet(shared);
    this.counters = new Counters(shared);
    this.locks = new StoreLocks(shared);
    this.writes = new Writes(shared);
    this.invalidationListeners = shared.listeners;
  }

  /**
   * For a backend with a store in this process (locmem, an L1): hands it over, once, so that hits may
   * be answered from memory (`peekFresh`, the integration's `peekFreshToKeep`). A `LocalStore` (wholly
   * in this process) also shares one decoded value per payload among shared readers, and lets made
   * keys remember its entries.
   */
  protected answerFromMemory(store: InProcessStore<P> | LocalStore<P>): void {
    this.hits = new InProcessHits(this.shared, store);
    if ('writeAfter' in store) {
      this.local = store;
      this.payloads.sharesValues = true;
      this.keys.holdEntriesOf(store.capacity);
      this.batches.rememberAsManyAsKeys();
    }
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
    return this.keyFunction(userKeyToString(key, this.alias), this.keyPrefix, version);
  }

  /** Warns (as a `CacheKeyWarning`) about made keys memcached would refuse, once per shape of key. */
  validateKey(key: string): void {
    this.keys.warnOnce(key);
  }

  // ---- Reads --------------------------------------------------------------------------------

  // get, set and getMany are the hot path: their work is not `async`, so that a backend answering
  // synchronously (locmem) costs one promise per call instead of three.
  get<T = unknown>(key: CacheKey): Promise<T | undefined>;
  /** With a default, a miss answers the default, so the result has the default's type. */
  get<T>(key: CacheKey, defaultValue: T, options?: VersionOption): Promise<T>;
  get<T = unknown>(key: CacheKey, defaultValue?: T, options?: VersionOption): Promise<T | undefined>;
  get<T = unknown>(key: CacheKey, defaultValue?: T, options?: VersionOption): Promise<T | undefined> {
    try {
      return observing('get')
        ? instrument(this, 'get', this, this.answerGet<T>, key, defaultValue, options)
        : promised(this.answerGet(key, defaultValue, options));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** What `get` answers: at once from a store in this process. Throws for a bad key. */
  private answerGet<T>(key: CacheKey, defaultValue: T | undefined, options: VersionOption | undefined): MaybePromise<T | undefined> {
    const node = this.keys.node(key, options === undefined ? undefined : this.calls.versionOf(options, 'get'));
    const last = node.entry;
    if (last !== undefined && this.local!.usedAgain(last)) return this.batches.countedValue(node.made, last, false, defaultValue);
    const found = this.primitives.readOne(node.made);
    if (found instanceof Promise) return found.then((entry) => this.batches.countedValue(node.made, entry, false, defaultValue));
    if (this.local !== undefined) node.entry = found as InProcessEntry<P> | undefined;
    return this.batches.countedValue(node.made, found, false, defaultValue);
  }

  getMany<T = unknown>(keys: ListOf<CacheKey>, options?: VersionOption): Promise<Map<CacheKey, T>> {
    return instrument(this, 'getMany', this, this.answerGetMany<T>, keys, options);
  }

  /** What `getMany` answers: at once from a store in this process. Throws for a bad key. */
  private answerGetMany<T>(keys: ListOf<CacheKey>, options: VersionOption | undefined): MaybePromise<Map<CacheKey, T>> {
    return this.batches.read<T>(this.calls.keys(keys, 'getMany'), this.calls.versionOf(options, 'getMany'), 'fresh');
  }

  /**
   * The entries found among `keys`, fresh and stale alike, each with its tags and how it stands. One
   * read of the entries and at most one of their tags, as `getMany`.
   */
  getEntries<T = unknown>(keys: ListOf<CacheKey>, options?: VersionOption): Promise<Map<CacheKey, CachedEntry<T>>> {
    return instrument(this, 'getEntries', this, this.answerGetEntries<T>, keys, options);
  }

  private answerGetEntries<T>(keys: ListOf<CacheKey>, options: VersionOption | undefined): MaybePromise<Map<CacheKey, CachedEntry<T>>> {
    return this.batches.read<CachedEntry<T>>(this.calls.keys(keys, 'getEntries'), this.calls.versionOf(options, 'getEntries'), 'live');
  }

  /**
   * A render level's read: the entries found among `keys`, fresh and stale alike, and,
   * in the same round trip, the current version of each of `tags`; the found entries' own tags are
   * read in at most one more. `versions` holds every tag read and, unless the render has it already
   * (`withGeneration` false), the invalidation count, for what is computed next (`tagsAsOf`).
   */
  readEntriesAndTags<T = unknown>(keys: readonly CacheKey[], tags: readonly string[], withGeneration = true): MaybePromise<RenderRead<T>> {
    return this.batches.readForRender<RenderEntry<T>>(keys, this.calls.tags(tags, 'readEntriesAndTags'), withGeneration);
  }

  /** Each tag's current version and the cache's invalidation count, for a later write's `tagsAsOf`: one read, synchronous in process. */
  readTagSnapshot(tags: readonly string[]): MaybePromise<TagSnapshot> {
    return this.tags.snapshot(this.calls.tags(tags, 'readTagSnapshot'));
  }

  /** Whether a live entry holds the key: present, its tags not invalidated, its timeout not passed. */
  hasKey(key: CacheKey, options?: VersionOption): Promise<boolean> {
    return instrument(this, 'hasKey', this, this.answerHasKey, key, options);
  }

  private answerHasKey(key: CacheKey, options: VersionOption | undefined): Promise<boolean> {
    return this.batches.hasFresh(this.keys.made(key, this.calls.versionOf(options, 'hasKey')));
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

  /** Its integration face: getters, as a backend's settings (`failOpen`) are its own once its constructor ran. */
  private integration(): CacheIntegration {
    const cache = this;
    return {
      readShared: <T>(key: CacheKey) => this.batches.readShared<T>(this.keys.made(key)),
      readSharedEntry: <T>(key: CacheKey, known?: TagSnapshot) => this.batches.readSharedEntry<T>(this.keys.made(key), known),
      readyTagsAhead: (snapshot: TagSnapshot, storedExpiry: number | null) => this.tags.readyAhead(snapshot, storedExpiry),
      readTagsAhead: (asOf: TagSnapshot, tags: readonly string[], storedExpiry: number | null) => this.tags.readAhead(asOf, tags, storedExpiry),
      joinTagSnapshots: (snapshots: readonly TagSnapshot[]) => this.tags.join(snapshots),
      setHeld: (key: CacheKey, value: unknown, options?: TimeoutArg) => {
        try {
          return promised(this.setHeld(key, value, options));
        } catch (error) {
          return Promise.reject(error);
        }
      },
      storedKey: (key: CacheKey) => this.keys.made(key),
      peekFreshToKeep: (made: string) => this.hits?.peekFreshToKeep(made),
      storedEntry: (key: CacheKey, options?: VersionOption) => storedEntryIn(this.shared, key, options),
      countEntries: () => this.countEntries(),
      waitsOnServers: this.waitsOnServers,
      get failsOpen() {
        return cache.failsOpen;
      },
      get answersAtOnce() {
        return cache.answersAtOnce;
      },
      get invalidationListeners() {
        return cache.invalidationListeners.all;
      },
      counts: this.counts,
      behind: this.behind,
      flights: this.flights,
      refreshes: this.refreshes,
    };
  }

  // ---- Writes -------------------------------------------------------------------------------

  set(key: CacheKey, value: unknown, timeoutOrOptions?: TimeoutArg): Promise<void> {
    try {
      return observing('set')
        ? instrument(this, 'set', this, this.answerSet, key, value, timeoutOrOptions)
        : promised(this.answerSet(key, value, timeoutOrOptions));
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
    return this.setWithOptions(key, value, timeoutOrOptions);
  }

  /**
   * `set` with an options object: a version, tags or stale windows besides the timeout. `held`: the
   * value's readers never mutate it, so a store in this process keeps it as it is (`Codec.hold`).
   */
  private setWithOptions(key: CacheKey, value: unknown, options: TimeoutArg, held = false): MaybePromise<void> {
    const { expiresAt, version, tags, windows, asOf } = this.calls.write(options, 'set');
    const node = this.keys.node(key, version);
    const payload = held ? this.payloads.encodeHeld(value, node.made) : this.payloads.encode(value, node.made);
    if ((tags === undefined && windows === undefined) || hasRunOut(expiresAt)) return this.setMade(node, payload, expiresAt);
    this.counts.sets++;
    return this.tags
      .stampedWith(payload, { tags, windows, expiresAt, asOf })
      .then((stamped) => (stamped === undefined ? [] : this.primitives.write([[node.made, stamped]], storedExpiry(expiresAt, windows))))
      .then(throwRefusal);
  }

  /** The integration's `setHeld`: `set` of a value its readers never mutate, unobserved. */
  private setHeld(key: CacheKey, value: unknown, options: TimeoutArg): MaybePromise<void> {
    if (options !== undefined && typeof options !== 'number') return this.setWithOptions(key, value, options, true);
    const node = this.keys.node(key, undefined);
    return this.setMade(node, this.payloads.encodeHeld(value, node.made), this.calls.expiryAfter(options));
  }

  /** Stores an untagged payload under a made key: a timeout that has run out deletes it instead. */
  private setMade(node: MadeKey<P>, payload: P, expiresAt: Expiry): MaybePromise<void> {
    if (hasRunOut(expiresAt)) return andThen(this.primitives.remove([node.made]), nothing);
    this.counts.sets++;
    const local = this.local;
    if (local === undefined) return this.primitives.writeOne(node.made, withOwnExpiry(this.shared, payload, expiresAt), expiresAt);
    node.entry = local.writeAfter(node.made, node.entry, payload, expiresAt);
  }

  /** Stores the value only when no fresh entry holds the key; answers whether it did. */
  add(key: CacheKey, value: unknown, timeoutOrOptions?: TimeoutArg): Promise<boolean> {
    return instrument(this, 'add', this, this.answerAdd, key, value, timeoutOrOptions);
  }

  private async answerAdd(key: CacheKey, value: unknown, timeoutOrOptions: TimeoutArg): Promise<boolean> {
    const { expiresAt, version, tags, windows, asOf } = this.calls.write(timeoutOrOptions, 'add');
    const made = this.keys.made(key, version);
    const payload = this.payloads.encode(value, made);
    if (hasRunOut(expiresAt)) return !(await this.batches.hasFresh(made));
    const stamped = await this.tags.stampedWith(payload, { tags, windows, expiresAt, asOf });
    return stamped !== undefined && this.computed.addOverDead(made, stamped, storedExpiry(expiresAt, windows));
  }

  /**
   * The cached value, else the value (or what the factory returns, awaited) added to the cache,
   * answering what the cache then holds. Concurrent callers for one key compute once. A stale entry
   * is answered at once while one refresh runs behind it; one past that window but inside
   * `staleIfError` stands in when computing fails.
   */
  getOrSet<T = unknown>(key: CacheKey, valueOrFactory: T | Promise<T> | (() => T | Promise<T>), timeoutOrOptions?: TimeoutArg): Promise<T> {
    return instrument(this, 'getOrSet', this.computed, this.computed.run<T>, key, valueOrFactory, timeoutOrOptions);
  }

  /** Stores every entry; answers the keys that could not be stored. */
  setMany(entries: Map<CacheKey, unknown> | Record<string, unknown>, timeoutOrOptions?: TimeoutArg): Promise<string[]> {
    return instrument(this, 'setMany', this.writes, this.writes.setMany, entries, timeoutOrOptions);
  }

  /**
   * Stores entries that differ in timeout, tags or stale windows as one batch, their tags' versions
   * settled once (as of `tagsAsOf`, for every entry); answers the keys that were not stored.
   */
  async setEach(entries: ReadonlyArray<EachEntry>, tagsAsOf?: TagSnapshot): Promise<CacheKey[]> {
    return this.writes.setEach(entries, tagsAsOf);
  }

  /** Gives a live entry a new timeout, keeping its tags and stale windows; answers false when the key is missing. */
  touch(key: CacheKey, timeoutOrOptions?: TouchArg): Promise<boolean> {
    return instrument(this, 'touch', this.writes, this.writes.touch, key, timeoutOrOptions);
  }

  /** Answers true when a live entry was removed. */
  delete(key: CacheKey, options?: VersionOption): Promise<boolean> {
    return instrument(this, 'delete', this.writes, this.writes.delete, key, options);
  }

  deleteMany(keys: ListOf<CacheKey>, options?: VersionOption): Promise<void> {
    return instrument(this, 'deleteMany', this.writes, this.writes.deleteMany, keys, options);
  }

  /** Removes every entry of this cache, then tells its invalidation listeners (with `waitForEdges`, waiting until they took it). */
  clear(options?: ClearOptions): Promise<void> {
    return instrument(this, 'clear', this, this.removeEverything, options);
  }

  private async removeEverything(options: ClearOptions | undefined): Promise<void> {
    const problem = options === undefined ? undefined : checkOptionNames(options, CLEAR_OPTIONS);
    if (problem !== undefined) throw this.typeError(`clear: ${problem}`);
    await this.primitives.removeAll();
    // What is being computed now may carry what was cleared: nobody who comes after joins it.
    this.flights.overtakeAll();
    await this.invalidationListeners.everythingCleared(options?.waitForEdges);
  }

  /** Adds `delta` to a stored integer, keeping its expiry; KeyNotFoundError when missing. */
  incr(key: CacheKey, delta = 1, options?: VersionOption): Promise<number> {
    return instrument(this, 'incr', this.counters, this.counters.incr, key, delta, options);
  }

  decr(key: CacheKey, delta = 1, options?: VersionOption): Promise<number> {
    return instrument(this, 'decr', this.counters, this.counters.decr, key, delta, options);
  }

  /** Moves the entry to version + delta, keeping its expiry; answers the new version. */
  incrVersion(key: CacheKey, delta = 1, options?: VersionOption): Promise<number> {
    return instrument(this, 'incrVersion', this.counters, this.counters.incrVersion, key, delta, options);
  }

  decrVersion(key: CacheKey, delta = 1, options?: VersionOption): Promise<number> {
    return instrument(this, 'decrVersion', this.counters, this.counters.decrVersion, key, delta, options);
  }

  /**
   * Invalidates every entry written with any of `tags` before this call, in every process sharing the
   * store: they read as misses (with `soft`, as stale where they have a stale window). Nothing is scanned.
   */
  invalidateTags(tags: ListOf<string>, options?: InvalidateOptions): Promise<void> {
    return instrument(this, 'invalidateTags', this.tags, this.tags.invalidateTags, tags, options);
  }

  /**
   * Takes the lock `name` for every process sharing the store, for at most `seconds`: answers its
   * release (which never removes a lock taken after this one expired), or undefined while it is held.
   */
  async acquireLock(name: string, seconds: number): Promise<(() => Promise<void>) | undefined> {
    return this.locks.acquire(name, seconds);
  }

  async close(): Promise<void> {
    await this.primitives.disconnect?.();
  }

  // ---- What the cache knows about itself ----------------------------------------------------

  /** What this cache did since it was made or since `resetStats()` (see `CacheStats`). */
  stats(): CacheStats {
    return { ...this.counts };
  }

  resetStats(): void {
    Object.assign(this.counts, emptyStats());
  }

  /** Whether the store is known to be out of reach now (every server's breaker open): writes that only fill the cache wait. */
  get unreachable(): boolean {
    return false;
  }

  /** How many entries the store holds, where the backend can tell cheaply (undefined where it cannot: a shared server). */
  protected async countEntries(): Promise<number | undefined> {
    return undefined;
  }

  /**
   * Reports a server error that was turned into a miss or a no-op: as an `error` event when someone
   * listens, else logged once per distinct `cause` (an unheard `error` event would throw).
   */
  reportError(error: Error, cause = error.message): void {
    this.reporter.report(error, cause);
  }

  /** Counts a command a server failed, or that was answered without it while it is down. */
  protected countServerFailure(error: Error): void {
    countError(this.counts, this.alias, error);
  }
}
