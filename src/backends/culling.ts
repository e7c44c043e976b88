/**
 * Culling for the backends that bound their own size (locmem, filebased, database), as Django
 * does it: when a write finds the store full, remove 1/cullFrequency of the entries (0: all).
 */
import { describe } from '../common/cache-keys.js';
import { MUST_BE, optionShape } from '../common/option-rules.js';

/** The options every culling backend takes. */
export interface CullingOptions {
  /** How many entries the cache holds before it culls. @default 300 */
  maxEntries?: number;
  /** When full, remove 1/cullFrequency of the entries; 0 removes them all. @default 3 */
  cullFrequency?: number;
}

export const CULLING_OPTIONS = optionShape<CullingOptions>({ maxEntries: MUST_BE.nonNegativeInteger, cullFrequency: MUST_BE.nonNegativeInteger });
export const DEFAULT_MAX_ENTRIES = 300;
export const DEFAULT_CULL_FREQUENCY = 3;

/** Reads and checks the culling options, naming the cache and the option at fault. */
export function cullingOptions(alias: string, options: CullingOptions): Required<CullingOptions> {
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const cullFrequency = options.cullFrequency ?? DEFAULT_CULL_FREQUENCY;
  for (const [name, value] of [
    ['maxEntries', maxEntries],
    ['cullFrequency', cullFrequency],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new TypeError(`cache '${alias}': options.${name} must be a non-negative integer (got ${describe(value)})`);
    }
  }
  return { maxEntries, cullFrequency };
}

/**
 * How many entries to remove from a store holding `count` before adding one more:
 * 0 while there is room, all of them with cullFrequency 0, else count / cullFrequency.
 */
export function cullCount(count: number, { maxEntries, cullFrequency }: Required<CullingOptions>): number {
  if (count < maxEntries) return 0;
  if (cullFrequency === 0) return count;
  return Math.floor(count / cullFrequency);
}
