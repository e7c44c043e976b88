/**
 * What one request cost: slow queries run and template fragments hit or missed, gathered with
 * AsyncLocalStorage so that concurrent requests keep their own counts. Surprise: fragment hits are
 * counted by wrapping the fragment cache's `getMany` (the one read a render makes per level); the
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
  const getMany = cache.getMany.bind(cache);
  cache.getMany = (async (keys: Parameters<BaseCache['getMany']>[0], options?: Parameters<BaseCache['getMany']>[1]) => {
    const list = [...keys];
    const found = await getMany(list, options);
    const requested = list.length;
    totals.fragmentHits += found.size;
    totals.fragmentMisses += requested - found.size;
    const metrics = storage.getStore();
    if (metrics !== undefined) {
      metrics.fragmentHits += found.size;
      metrics.fragmentMisses += requested - found.size;
    }
    return found;
  }) as BaseCache['getMany'];
}
