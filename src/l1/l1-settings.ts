/**
 * The L1 tier's options (`options.l1` of a server cache): their names, their checks and their
 * defaults, read once when the cache is made.
 */
import { MUST_BE, optionShape, ValueRule } from '../options/option-rules.js';

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

const L1_FIELDS = optionShape<L1Options>({
  maxEntries: MUST_BE.positiveInteger,
  timeout: MUST_BE.positiveSeconds,
  bus: new ValueRule('a redis:// or rediss:// URL', (value) => typeof value === 'string' && /^rediss?:\/\//.test(value)),
});

/** `options.l1` of a server cache: false or absent for none, else an object of `L1_FIELDS`. */
export const L1_OPTIONS = new ValueRule(
  'an object such as { maxEntries: 10000, timeout: 30 }',
  (value) => value === false || (value !== null && typeof value === 'object'),
  'be',
  L1_FIELDS,
);

export const DEFAULT_L1_MAX_ENTRIES = 10_000;
export const DEFAULT_L1_TIMEOUT = 30;

/** The options checked, with their defaults. */
export interface L1Settings {
  maxEntries: number;
  timeout: number;
  bus?: string;
}

/** `options.l1` (checked with the cache's options, by `L1_OPTIONS`) with its defaults; undefined for none. */
export function l1Settings(l1: L1Options | false | undefined): L1Settings | undefined {
  if (l1 === undefined || l1 === false) return undefined;
  const { maxEntries = DEFAULT_L1_MAX_ENTRIES, timeout = DEFAULT_L1_TIMEOUT, bus } = l1;
  return { maxEntries, timeout, bus };
}
