/**
 * The options of a call, read and checked once: a write's timeout (turned into an absolute expiry),
 * version, tags and stale windows; a read's version. Bad values are TypeErrors naming the cache.
 */
import { checkOptionNames, type OptionShape, optionShape } from '../options/option-rules.js';
import type { ListOf, TagSnapshot, TimeoutArg, TouchArg, TouchOptions, VersionOption, WriteOptions } from './cache-types.js';
import { cacheTypeError, describe } from '../errors/errors.js';

/** Marks a timeout that has already run out (`0` or negative): nothing is kept. */
export const EXPIRED = Symbol('expired');
/** When an entry written now expires: never (null), at once (EXPIRED), or an epoch time. */
export type Expiry = number | null | typeof EXPIRED;

/**
 * Whether an expiry says nothing is kept. Asked by type rather than by `=== EXPIRED`: V8 compares
 * a number with a symbol by its generic routine, a call on every write.
 */
export function hasRunOut(expiresAt: Expiry): expiresAt is typeof EXPIRED {
  return typeof expiresAt === 'symbol';
}

/** The stale windows of a write, in seconds; absent when it has none. */
export interface StaleWindows {
  staleWhileRevalidate: number;
  staleIfError: number;
}

/** A write's options as read. */
export interface WriteArgs {
  expiresAt: Expiry;
  version?: number;
  tags?: readonly string[];
  windows?: StaleWindows;
  asOf?: TagSnapshot;
}

const WRITE_OPTIONS = optionShape<WriteOptions>({ timeout: true, version: true, tags: true, staleWhileRevalidate: true, staleIfError: true, tagsAsOf: true });
const TOUCH_OPTIONS = optionShape<TouchOptions>({ timeout: true, version: true });
const VERSION_OPTIONS = optionShape<VersionOption>({ version: true });

export function checkTimeout(alias: string, timeout: unknown, what: string): number | null {
  if (timeout === null || (typeof timeout === 'number' && Number.isFinite(timeout))) return timeout;
  throw cacheTypeError(alias, `${what} must be a finite number of seconds or null (got ${describe(timeout)})`);
}

export function checkVersion(alias: string, version: unknown, what: string): void {
  if (!Number.isSafeInteger(version)) throw cacheTypeError(alias, `${what} must be an integer (got ${describe(version)})`);
}

/**
 * The error text when `value`, given to `method` as its list `parameter` (of `items`), is no list, else
 * undefined. A string is iterable, so without this `invalidateTags('author:3')` would go through
 * its characters, one tag each.
 */
export function listMessage(value: unknown, method: string, parameter: string, items: string): string | undefined {
  if (typeof value === 'string' || value instanceof String) {
    return `${method}: ${parameter} must be a list of ${items}, not the string ${describe(value)} (write [${describe(value)}])`;
  }
  if (value === null || typeof value !== 'object' || typeof (value as Iterable<unknown>)[Symbol.iterator] !== 'function') {
    return `${method}: ${parameter} must be a list of ${items} (got ${describe(value)})`;
  }
  return undefined;
}

/** `value` when it is a list (see `listMessage`), else a TypeError without an alias: for calls over every cache. */
export function checkList<T>(value: ListOf<T>, method: string, parameter: string, items: string): ListOf<T> {
  const message = listMessage(value, method, parameter, items);
  if (message !== undefined) throw new TypeError(message);
  return value;
}

/** Whether an expiry (null: never; undefined: unknown) comes no sooner than `needed`. */
export function lastsUntil(expiry: number | null | undefined, needed: number | null): boolean {
  if (expiry === undefined) return false;
  return expiry === null || (needed !== null && expiry >= needed);
}

/** How long the store keeps an entry: past its timeout for as long as it may still be served stale. */
export function storedExpiry(expiresAt: number | null, windows: StaleWindows | undefined): number | null {
  if (expiresAt === null || windows === undefined) return expiresAt;
  return expiresAt + Math.max(windows.staleWhileRevalidate, windows.staleIfError);
}

/** The latest stored expiry among entries to write (null: one never expires). */
export function latestStoredExpiry(entries: ReadonlyArray<{ expiresAt: number | symbol | null; windows: StaleWindows | undefined }>): number | null {
  let latest = 0;
  for (const { expiresAt, windows } of entries) {
    if (typeof expiresAt === 'symbol') continue;
    const stored = storedExpiry(expiresAt, windows);
    if (stored === null) return null;
    latest = Math.max(latest, stored);
  }
  return latest;
}

/** Reads the options of one cache's calls against its default timeout and its clock. */
export class CallOptions {
  constructor(
    private readonly alias: string,
    private readonly defaultTimeout: number | null,
    private readonly clock: { now(): number },
  ) {}

  /** The version a read names in its options object, checked; undefined for the cache's own. */
  versionOf(options: VersionOption | undefined, method: string): number | undefined {
    if (options === undefined || options === null) return undefined;
    this.checkNames(options, VERSION_OPTIONS, method);
    return options.version;
  }

  write(arg: TimeoutArg, method: string): WriteArgs {
    if (arg === null || typeof arg !== 'object') return { expiresAt: this.expiryAfter(arg) };
    this.checkNames(arg, WRITE_OPTIONS, method);
    let asOf: TagSnapshot | undefined;
    if (arg.tagsAsOf !== undefined) {
      if (!(arg.tagsAsOf instanceof Map)) throw cacheTypeError(this.alias, `tagsAsOf must be a snapshot from readTagSnapshot (got ${describe(arg.tagsAsOf)})`);
      asOf = arg.tagsAsOf;
    }
    const tags = arg.tags === undefined ? undefined : this.tags(arg.tags, 'tags');
    const staleWhileRevalidate = this.window(arg.staleWhileRevalidate, 'staleWhileRevalidate');
    const staleIfError = this.window(arg.staleIfError, 'staleIfError');
    const windows = staleWhileRevalidate > 0 || staleIfError > 0 ? { staleWhileRevalidate, staleIfError } : undefined;
    return { expiresAt: this.expiryAfter(arg.timeout), version: arg.version, tags, windows, asOf };
  }

  /** `touch`'s new expiry and version. */
  touch(arg: TouchArg): { expiresAt: Expiry; version?: number } {
    if (arg === null || typeof arg !== 'object') return { expiresAt: this.expiryAfter(arg) };
    this.checkNames(arg, TOUCH_OPTIONS, 'touch');
    return { expiresAt: this.expiryAfter(arg.timeout), version: arg.version };
  }

  /** When an entry written now with `timeout` expires. */
  expiryAfter(timeout: number | null | undefined): Expiry {
    const seconds = timeout === undefined ? this.defaultTimeout : checkTimeout(this.alias, timeout, 'timeout');
    if (seconds === null) return null;
    if (seconds <= 0) return EXPIRED;
    return this.clock.now() + seconds;
  }

  tags(tags: unknown, what: string): string[] {
    if (!Array.isArray(tags) || !tags.every(isTag)) {
      throw cacheTypeError(this.alias, `${what}: tags must be an array of non-empty strings (got ${describe(tags)})`);
    }
    return tags as string[];
  }

  /** `keys` when it is a list of keys (not a string), else a TypeError naming `method`. */
  keys<K>(keys: ListOf<K>, method: string): ListOf<K> {
    return this.list(keys, method, 'keys', 'keys');
  }

  /** `tags` when it is a list (not a string), else a TypeError naming `method`; each tag is checked later. */
  tagList(tags: ListOf<string>, method: string): ListOf<string> {
    return this.list(tags, method, 'tags', 'strings');
  }

  private list<T>(value: ListOf<T>, method: string, parameter: string, items: string): ListOf<T> {
    const message = listMessage(value, method, parameter, items);
    if (message !== undefined) throw cacheTypeError(this.alias, message);
    return value;
  }

  /** The entries of `setMany` when they are a Map or a plain object of key → value, else a TypeError. */
  entries<E>(entries: E, method: string): E {
    if (entries instanceof Map || (entries !== null && typeof entries === 'object' && !Array.isArray(entries) && !(entries instanceof String))) return entries;
    const hint = typeof entries === 'string' ? ', not a string' : ` (got ${describe(entries)})`;
    throw cacheTypeError(this.alias, `${method}: entries must be a Map or an object of key → value${hint}`);
  }

  /** A delta of incr or incrVersion (and their opposites), checked. */
  delta(delta: unknown, methods: string): void {
    if (!Number.isSafeInteger(delta)) throw cacheTypeError(this.alias, `${methods} delta must be an integer (got ${describe(delta)})`);
  }

  private window(seconds: unknown, what: string): number {
    if (seconds === undefined) return 0;
    if (typeof seconds === 'number' && Number.isFinite(seconds) && seconds >= 0) return seconds;
    throw cacheTypeError(this.alias, `${what} must be a non-negative number of seconds (got ${describe(seconds)})`);
  }

  /**
   * Refuses a name of a call's options object that `known` does not list, naming `method`. On the hot
   * path: one `for…in` over the few names a call passes, and the message is built only for a stranger.
   */
  private checkNames(options: object, known: OptionShape, method: string): void {
    for (const name in options) {
      if (known[name] === true) continue;
      const message = checkOptionNames(options, known);
      if (message !== undefined) throw cacheTypeError(this.alias, `${method}: ${message}`);
    }
  }
}

const isTag = (tag: unknown): boolean => typeof tag === 'string' && tag !== '';
