/** The shapes the cache API takes and answers: construction parameters, call options, entries. */
import type { KeyFunction } from '../keys/cache-keys.js';
import { MUST_BE, optionShape, ValueRule } from '../options/option-rules.js';

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

/**
 * What each setting of `CacheParams` must be: checked by `configureCaches` before it replaces anything,
 * and by the constructor for a cache built directly, with the same words.
 */
export const CACHE_PARAMS = optionShape<CacheParams>({
  alias: MUST_BE.string,
  location: new ValueRule(
    'a string or a list of strings',
    (value) => typeof value === 'string' || (Array.isArray(value) && value.every((part) => typeof part === 'string')),
  ),
  timeout: new ValueRule('a finite number of seconds or null', (value) => value === null || (typeof value === 'number' && Number.isFinite(value))),
  keyPrefix: MUST_BE.string,
  version: new ValueRule('an integer', (value) => Number.isSafeInteger(value)),
  keyFunction: new ValueRule('a function (key, keyPrefix, version) => string', (value) => typeof value === 'function'),
  logger: new ValueRule('a warn(message) method, as console does', (value) => typeof (value as CacheLogger | null)?.warn === 'function', 'have'),
  options: new ValueRule('an object', (value) => value !== null && typeof value === 'object' && !Array.isArray(value)),
});

/** Where a cache reports what goes wrong around it: a server down, a key memcached would refuse. `console` is one. */
export interface CacheLogger {
  warn(message: string): void;
}

export const DEFAULT_TIMEOUT = 300;

/**
 * A list the API takes (keys, tags): an array, a Set, any iterable object, but not a string, which
 * would be taken character by character.
 */
export type ListOf<T> = Iterable<T> & object;

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

/**
 * The options of `touch`: the new timeout and the version of the entry it names. An entry keeps its
 * tags and stale windows when touched, so those are not among them.
 */
export interface TouchOptions {
  timeout?: number | null;
  version?: number;
}
/** A timeout in seconds (`null` = forever), or `touch`'s options. Omitted = the cache's default. */
export type TouchArg = number | null | undefined | TouchOptions;

export interface VersionOption {
  version?: number;
}

/**
 * Each tag's version at one moment; undefined for a tag never invalidated (or whose version expired),
 * which is its first version. `generation`: how many invalidations the cache had begun by then, so
 * that a write can tell an invalidation since of a tag the snapshot did not hold (one added late).
 */
export type TagSnapshot = ReadonlyMap<string, string | undefined> & { readonly generation?: number };

/** The option of each call that purges the edges in front (`invalidateTags`, `invalidatePage`, `clear`). */
export interface EdgeWaitOptions {
  /**
   * Resolve only once every edge in the cache's `purge` option took this call's purge (and each of
   * its invalidation listeners answered): `true` waits at most 5 seconds, a number at most that many
   * seconds. Past that, or when an edge refuses the purge, the call rejects with an `EdgeWaitError`
   * (the cache's own invalidation is done all the same).
   * @default false: the purge is sent after the call resolved
   */
  waitForEdges?: boolean | number;
}

/** How long `waitForEdges: true` waits, in seconds. */
export const DEFAULT_EDGE_WAIT_SECONDS = 5;

/** The rule of `waitForEdges`, in every options shape that takes it. */
export const WAIT_FOR_EDGES = new ValueRule(
  'a boolean or a positive number of seconds',
  (value) => typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value) && value > 0),
);

/** The options of `clear`. */
export type ClearOptions = EdgeWaitOptions;

export const CLEAR_OPTIONS = optionShape<ClearOptions>({ waitForEdges: WAIT_FOR_EDGES });

/** The options of `invalidateTags`. */
export interface InvalidateOptions extends EdgeWaitOptions {
  /** Make the entries stale (served while one refresh runs, where they have a stale window) instead of gone. */
  soft?: boolean;
}

export const INVALIDATE_OPTIONS = optionShape<InvalidateOptions>({ soft: MUST_BE.boolean, waitForEdges: WAIT_FOR_EDGES });

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

/** An entry as a render (of fragments, of a page) reads it: with what its stamp recorded of what it depends on. */
export interface RenderEntry<T> extends CachedEntry<T> {
  /** The cache contexts it was stored varying on; empty for most entries. */
  contexts: readonly string[];
  /** Epoch seconds when it stops being fresh, where it was stored saying so (stale windows, fragments, any entry that expires on Redis or memcached); else undefined. */
  freshUntil: number | undefined;
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

/** What the dashboard sees of one server's breaker. */
export interface ServerHealth {
  server: string;
  /** closed: calls go through; open: calls answer at once; probing: one call is testing the server. */
  state: 'closed' | 'open' | 'probing';
  /** Failures in a row (0 once the server answers). */
  consecutiveFailures: number;
  /** The failure that opened the breaker or failed the last probe, while not closed. */
  lastFailure?: string;
  /** Epoch milliseconds when the breaker last opened, while not closed. */
  openedAt?: number;
}

/** A location given as a list, or as one string separated by `;` or `,`. */
export function splitLocation(location: string | string[] | undefined): string[] {
  if (location === undefined) return [];
  const parts = Array.isArray(location) ? location : location.split(/[;,]/);
  return parts.map((part) => part.trim()).filter((part) => part !== '');
}

/** A stored entry as a backend returns it. */
export interface Entry<P> {
  payload: P;
  /** Epoch seconds, `null` for never; `undefined` when the read did not ask for it. */
  expiresAt?: number | null;
}
