/**
 * What one request cost: slow queries run and template fragments hit or missed, gathered with
 * AsyncLocalStorage so that concurrent requests keep their own counts. Surprise: fragment hits are
 * counted by wrapping the fragment cache's `readEntriesAndTags` (the one read a render makes per level); the
 * library itself needs none of this.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { BaseCache } from 'cachegrain';

export interface RequestMetrics {
  /** `performance.now()` when the request came in. */
  startedAt: number;
  queries: number;
  fragmentHits: number;
  fragmentMisses: number;
}

/** Totals since the process started, shown by /stats. */
export const totals = { queries: 0, fragmentHits: 0, fragmentMisses: 0 };

const storage = new AsyncLocalStorage<RequestMetrics>();

/** Runs `next` (the rest of the request) with fresh counters. */
export function measure(next: () => void): void {
  storage.run({ startedAt: performance.now(), queries: 0, fragmentHits: 0, fragmentMisses: 0 }, next);
}

export function currentMetrics(): RequestMetrics | undefined {
  return storage.getStore();
}

/** Called by every slow catalogue query. */
export function recordQuery(): void {
  totals.queries++;
  const metrics = storage.getStore();
  if (metrics !== undefined) metrics.queries++;
}

/** Counts, per request, how many of the keys a render asks the fragment cache for are found. */
export function meterFragments(cache: BaseCache): void {
  const read = cache.readEntriesAndTags.bind(cache);
  cache.readEntriesAndTags = ((keys, tags) => {
    const count = (found: Awaited<ReturnType<BaseCache['readEntriesAndTags']>>) => {
      const hits = found.entries.size;
      const misses = keys.length - hits;
      totals.fragmentHits += hits;
      totals.fragmentMisses += misses;
      const metrics = storage.getStore();
      if (metrics !== undefined) {
        metrics.fragmentHits += hits;
        metrics.fragmentMisses += misses;
      }
      return found;
    };
    const found = read(keys, tags);
    return found instanceof Promise ? found.then(count) : count(found);
  }) as BaseCache['readEntriesAndTags'];
}
