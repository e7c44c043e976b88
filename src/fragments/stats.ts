/** Hits, stale hits and misses by fragment name, in every cache, since start or `resetFragmentStats()`. */
import { CountsByName, type HitCounts } from '../observation/observation.js';

const countsByName = new CountsByName();

/** Hits, stale hits and misses of every fragment name since start or `resetFragmentStats()`, in every cache. */
export function fragmentStats(): Map<string, HitCounts> {
  return countsByName.snapshot();
}

export function resetFragmentStats(): void {
  countsByName.reset();
  // The counts kept for the last name are no longer counted.
  lastCountedName = lastCounts = undefined;
}

/** The counts of one fragment name, for a fragment read after the engine's pass. */
export function countsOf(name: string): HitCounts {
  return countsByName.of(name);
}

/** The counts of the last fragment name hit inline (until a reset): a loop's hits of one name look it up once. */
let lastCountedName: string | undefined;
let lastCounts: HitCounts | undefined;

/** Counts a hit answered while the engine renders. */
export function countInlineHit(name: string): void {
  // Small, for each hit to inline it: the lookup of another name's counts is made out of line.
  (lastCountedName === name ? lastCounts! : lookUpCounts(name)).hits++;
}

function lookUpCounts(name: string): HitCounts {
  lastCountedName = name;
  return (lastCounts = countsByName.of(name));
}
