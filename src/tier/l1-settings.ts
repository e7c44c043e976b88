/**
 * The L1 tier's options (`options.l1` of a server cache): their names, their checks and their
 * defaults, read once when the cache is made.
 */
import { describe } from '../common/cache-keys.js';
import { optionShape } from '../common/option-rules.js';

export interface L1Options {
  /** How many entries the in-process copy keeps, least recently used going first. @default 10000 */
  maxEntries?: number;
  /**
   * How long an in-process entry is trusted at most, in seconds: what bounds staleness without a
   * bus, while it is down, and after the server drops an entry by itself (evicted, culled). @default 30
   */
  timeout?: number;
  /**
   * A redis:// URL whose pub/sub carries invalidations between processes. A redis cache uses its
   * own server when this is not given; other backends without it rely on `timeout` alone.
   */
  bus?: string;
}

export const L1_OPTIONS = optionShape<L1Options>({ maxEntries: true, timeout: true, bus: true });

export const DEFAULT_L1_MAX_ENTRIES = 10_000;
export const DEFAULT_L1_TIMEOUT = 30;

/** The options checked, with their defaults. */
export interface L1Settings {
  maxEntries: number;
  timeout: number;
  bus?: string;
}

/** Checks the values of `options.l1` (its names are checked with the cache's options); `fail` turns a problem into the cache's TypeError. */
export function l1Settings(l1: unknown, fail: (message: string) => Error): L1Settings | undefined {
  if (l1 === undefined || l1 === false) return undefined;
  if (l1 === null || typeof l1 !== 'object') throw fail(`options.l1 must be an object such as { maxEntries: 10000, timeout: 30 } (got ${describe(l1)})`);
  const { maxEntries = DEFAULT_L1_MAX_ENTRIES, timeout = DEFAULT_L1_TIMEOUT, bus } = l1 as L1Options;
  if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) throw fail(`options.l1.maxEntries must be a positive integer (got ${describe(maxEntries)})`);
  if (typeof timeout !== 'number' || !(timeout > 0) || !Number.isFinite(timeout)) {
    throw fail(`options.l1.timeout must be a positive number of seconds (got ${describe(timeout)})`);
  }
  if (bus !== undefined && (typeof bus !== 'string' || !/^rediss?:\/\//.test(bus))) {
    throw fail(`options.l1.bus must be a redis:// or rediss:// URL (got ${describe(bus)})`);
  }
  return { maxEntries, timeout, bus };
}
