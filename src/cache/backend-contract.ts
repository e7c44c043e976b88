/**
 * The backend contract (Django's base.py, Rails' ActiveSupport::Cache::Store): the primitives a
 * backend implements as protected methods of its class, over which `BaseCache` writes the whole API.
 * A backend sees only made keys, payloads and absolute expiries (epoch seconds, `null` = never).
 *
 * A backend MUST implement `read`, `write`, `insert`, `remove`, `retime` and `removeAll`.
 *
 * It MAY implement each of these where it can do better than the base does without it: `readOne`
 * (else a `read` of one key), `readPayloads` (else a `read` put in the keys' order), `peekOne` (else
 * `readOne`), `contains` (else `readOne`, its entry dropped), `readForUpdate` (else `read` with
 * expiries), `writeOne` (else a `write` of one entry), `incrBy` (else `incr` reads and writes, one
 * at a time per key in the process), `extendExpiry` (else tag versions never expire) and
 * `disconnect` (else closing releases nothing).
 *
 * `BackendContract` declares each, documented there, and the contract's table in docs/backends.md
 * lists the same. The cache's operations reach them through one `BackendPrimitives`, chosen when it is made
 * (`composePrimitives`): the backend itself, or a layer in front of it (an L1).
 */
import { andThen, type MaybePromise } from '../store/maybe-promise.js';
import { EventEmitter } from 'node:events';
import { now } from '../store/clock.js';
import { defaultKeyFunction, type KeyFunction } from '../keys/cache-keys.js';
import { madeKeyStart, TAG_KEY_VERSION, TAG_KEYS } from '../store/key-maker.js';
import { payloadsInOrder, type BackendPrimitives, throwRefusal, type WriteFailure } from '../store/backend-primitives.js';
import { cacheTypeError, named } from '../errors/errors.js';
import { WorkBehind } from '../flight/work-behind.js';
import type { InvalidationListener, InvalidationListeners } from './invalidation-listeners.js';
import { CACHE_PARAMS, type CacheParams, DEFAULT_TIMEOUT, type Entry, type ServerHealth, splitLocation } from '../store/cache-types.js';
import { checkOptionNames, checkOptionValues, type OptionShape } from '../options/option-rules.js';

/**
 * What a backend is built on: the settings every cache has, checked once, and the primitives a
 * backend implements as protected methods of its class: the six it must (abstract here), and those
 * it may where it can do better than the default (a batch of one, a peek). `BaseCache` extends it
 * with the API written over them.
 */
export abstract class BackendContract<P> extends EventEmitter {
  /**
   * The option names this backend takes: a list, or a shape (`optionShape`) whose nested records
   * check nested options objects too (`options.l1`). A backend that gives them has unknown names
   * refused, with the closest valid one; one that leaves this undefined takes any (dummy, and custom backends).
   */
  static readonly optionNames?: readonly string[] | OptionShape;

  /**
   * Why this backend cannot use the `location` of `params` (or what else names where its entries
   * live, a database's connection), in the words its constructor refuses it with; undefined when it
   * can. `configureCaches` asks before it replaces anything, so a malformed URL is refused where it is
   * given rather than by every call. Opens nothing.
   */
  static locationProblem(_params: CacheParams<any>): string | undefined {
    return undefined;
  }
  readonly alias: string;
  readonly location: string[];
  readonly defaultTimeout: number | null;
  readonly keyPrefix: string;
  readonly version: number;
  readonly keyFunction: KeyFunction;
  readonly options: Record<string, unknown>;

  /** `backend` is the class being built, whose `optionNames` and `locationProblem` check what it is given. */
  constructor(
    params: CacheParams<object>,
    backend: { optionNames?: readonly string[] | OptionShape; locationProblem?: typeof BackendContract.locationProblem },
  ) {
    super();
    this.alias = params.alias ?? 'default';
    const problem = checkOptionValues(params, CACHE_PARAMS, '') ?? misplacedPurge(params);
    if (problem !== undefined) throw this.typeError(problem);
    this.location = splitLocation(params.location);
    this.defaultTimeout = params.timeout === undefined ? DEFAULT_TIMEOUT : params.timeout;
    this.keyPrefix = params.keyPrefix ?? '';
    this.version = params.version ?? 1;
    this.keyFunction = params.keyFunction ?? defaultKeyFunction;
    this.options = { ...(params.options ?? {}) } as Record<string, unknown>;
    const unknownOption = backend.optionNames === undefined ? undefined : checkOptionNames(this.options, backend.optionNames);
    if (unknownOption !== undefined) throw this.typeError(unknownOption);
    const misplaced = backend.locationProblem?.(params);
    if (misplaced !== undefined) throw this.typeError(misplaced);
    this.cullProofKeyStart = madeKeyStart(this.keyFunction, this.keyPrefix, TAG_KEYS, TAG_KEY_VERSION);
  }

  /** Who it tells of its invalidations once they have landed (`addInvalidationListener`): set by `BaseCache`. */
  protected invalidationListeners!: InvalidationListeners;

  /**
   * Tells `listener` of every later `invalidateTags` (so `invalidatePage`) and `clear` of this cache,
   * once its own has landed, after the listeners added before it (see `InvalidationListener`).
   */
  addInvalidationListener(listener: InvalidationListener): void {
    this.invalidationListeners.add(listener);
  }

  /** Work of this cache that runs behind its callers once they were answered (see `settled`). */
  protected readonly behind = new WorkBehind();

  /**
   * Settles once what its invalidation listeners do behind the calls that told them has ended: every
   * edge purge this cache queued (the `purge` option) taken by its edge, or given up and reported.
   * Never rejects. A test awaits it before asking the edge for a page.
   */
  purgesSettled(): Promise<void> {
    return this.invalidationListeners.settled();
  }

  /**
   * Settles once the work this cache does behind its callers has ended: the pages stored after their
   * responses went out, the stale entries, fragments and pages computed again behind those served
   * them, and what its invalidation listeners do behind the calls that told them, the edge purges
   * among it (`purgesSettled`). Never rejects: each failure is reported as it happens. A test awaits
   * it before asking for what a request wrote.
   */
  async settled(): Promise<void> {
    await this.behind.settled();
    await this.purgesSettled();
  }

  /**
   * The breaker of each server this cache has called, for dashboards and health checks: a server
   * backend overrides it; a store with no server (locmem, filebased, dummy) has none to report.
   */
  health(): ServerHealth[] {
    return [];
  }

  /** Whether a server's failure answers as a miss or a no-op rather than rejecting (a server backend's `failOpen`). */
  protected get failsOpen(): boolean {
    return false;
  }

  /** Whether its calls wait on a server, under a deadline a request's budget cuts (see `CacheIntegration`). */
  protected get waitsOnServers(): boolean {
    return false;
  }

  /**
   * Whether every read and write is done before anything else in the process runs (a store wholly
   * in this process): no one need wait to see a write, and a lookup needs no promise between its
   * reads. A file or a server answers later.
   */
  protected get answersAtOnce(): boolean {
    return false;
  }

  /**
   * Whether the store expires entries by a clock of its own, a server's, which the cache's `now`
   * does not move (Redis, memcached). Entries written through the API then carry their expiry in
   * their stamp and are judged by the cache's clock when read, as Rails judges an entry's own
   * `expires_at`; the server, told the same expiry, frees them. Left to the server's clock: an
   * integer it adds to in place, locks, and whether `delete` removed a live entry.
   */
  protected get expiresByServerClock(): boolean {
    return false;
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
   * it lets tag versions expire (see `TagVersions.forWrite`); without it they live until evicted.
   */
  protected extendExpiry?(keys: string[], expiresAt: number | null): MaybePromise<void>;

  /** Removes every entry of this cache, and nothing that belongs to anyone else. */
  protected abstract removeAll(): MaybePromise<void>;

  /**
   * Optional: the payloads of `keys` as `read(keys, false)` finds them, in the order of `keys`
   * (undefined, or past the array's end, for a missing one: null is a payload), for a backend whose server
   * answers a batch in order (an MGET): the batched read walks the reply once, building no Map.
   */
  protected readPayloads(keys: string[]): MaybePromise<ReadonlyArray<P | undefined>> {
    return andThen(this.read(keys, false), (found) => payloadsInOrder(keys, found));
  }

  /** Optional: one key, for backends that can answer faster than a batch of one. */
  protected readOne(key: string): MaybePromise<Entry<P> | undefined> {
    const found = this.read([key], false);
    return found instanceof Promise ? found.then((map) => map.get(key)) : found.get(key);
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
   * What the cache's operations call in place of `backend`, its own primitives (this object, the
   * protected methods above): the backend itself, unless a subclass composes it with a layer that
   * keeps the contract (a server cache's L1). Called once, by `BaseCache`'s constructor: a
   * subclass's settings (`options`, `keyPrefix`) and the codec are set then, its own fields are not.
   */
  protected composePrimitives(backend: BackendPrimitives<P>): BackendPrimitives<P> {
    return backend;
  }

  /** Whether an absolute expiry has passed by this cache's clock. */
  protected isExpired(expiresAt: number | null | undefined, now = this.now()): boolean {
    return expiresAt != null && expiresAt <= now;
  }

  /** The clock, in epoch seconds. Tests replace it to move time without sleeping. */
  now(): number {
    return now();
  }

  /** A TypeError whose message starts by naming this cache. */
  protected typeError(message: string, cause?: unknown): TypeError {
    return cacheTypeError(this.alias, message, cause);
  }

  /** The message, starting with the name of this cache once (messages of the backends name it already). */
  protected named(message: string): string {
    return named(this.alias, message);
  }
}

/**
 * Why a cache built directly refuses `purge`: the edges are purged by a listener that
 * `configureCaches` adds to the cache of the alias whose configuration names them.
 */
function misplacedPurge(params: object): string | undefined {
  if (!('purge' in params) || params.purge === undefined) return undefined;
  return 'purge is an option of the alias in configureCaches, whose cache purges the edges it names; a cache built directly tells its invalidations to the listeners given to addInvalidationListener';
}
