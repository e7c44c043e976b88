/**
 * Culling for the backends that bound their own size (locmem, filebased, database), as Django
 * does it: when a write finds the store full, remove 1/cullFrequency of the entries (0: all).
 */
import { checkOptionValues, MUST_BE, optionShape } from '../options/option-rules.js';

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

/**
 * The culling options with their defaults, their values held to `CULLING_OPTIONS` (a cache whose
 * `optionNames` include them had them checked already; a custom backend may call this alone).
 */
export function cullingOptions(alias: string, options: CullingOptions): Required<CullingOptions> {
  const problem = checkOptionValues(options, CULLING_OPTIONS);
  if (problem !== undefined) throw new TypeError(`cache '${alias}': ${problem}`);
  return { maxEntries: options.maxEntries ?? DEFAULT_MAX_ENTRIES, cullFrequency: options.cullFrequency ?? DEFAULT_CULL_FREQUENCY };
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
