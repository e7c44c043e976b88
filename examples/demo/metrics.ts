/**
 * What one request cost: slow queries run, gathered with AsyncLocalStorage so that concurrent
 * requests keep their own counts, and template fragments hit or missed, read from `fragmentStats()`
 * (what every fragment in every cache counts) as they stood when the request came in and when its
 * footer is rendered: a fragment another request renders meanwhile is counted in both.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { fragmentStats } from 'cachegrain';

export interface RequestMetrics {
  /** `performance.now()` when the request came in. */
  startedAt: number;
  queries: number;
  fragmentHits: number;
  fragmentMisses: number;
}

/** Totals since the process started, shown by /stats (the fragments' from `fragmentTotals`). */
export const totals = { queries: 0 };

/** A request's start, and the fragment counts then: its own are what the counts gained since. */
interface Measured {
  startedAt: number;
  queries: number;
  fragmentsBefore: { hits: number; misses: number };
}

const storage = new AsyncLocalStorage<Measured>();

/** Runs `next` (the rest of the request) with fresh counters. */
export function measure(next: () => void): void {
  storage.run({ startedAt: performance.now(), queries: 0, fragmentsBefore: fragmentCounts() }, next);
}

export function currentMetrics(): RequestMetrics | undefined {
  const measured = storage.getStore();
  if (measured === undefined) return undefined;
  const { hits, misses } = fragmentCounts();
  const before = measured.fragmentsBefore;
  return { startedAt: measured.startedAt, queries: measured.queries, fragmentHits: hits - before.hits, fragmentMisses: misses - before.misses };
}

/** Called by every slow catalogue query. */
export function recordQuery(): void {
  totals.queries++;
  const metrics = storage.getStore();
  if (metrics !== undefined) metrics.queries++;
}

/** Fragment hits (stale ones too) and misses in every cache since the process started, as `fragmentStats()` counts them. */
function fragmentCounts(): { hits: number; misses: number } {
  let hits = 0;
  let misses = 0;
  for (const counts of fragmentStats().values()) {
    hits += counts.hits + counts.staleHits;
    misses += counts.misses;
  }
  return { hits, misses };
}

/** Fragment hits and misses since the process started, shown by /stats. */
export function fragmentTotals(): { fragmentHits: number; fragmentMisses: number } {
  const { hits, misses } = fragmentCounts();
  return { fragmentHits: hits, fragmentMisses: misses };
}
