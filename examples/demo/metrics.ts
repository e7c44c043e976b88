/**
 * What one request cost: slow queries run and template fragments hit or missed, gathered with
 * AsyncLocalStorage so that concurrent requests keep their own counts. Surprise: fragment hits are
 * counted by wrapping the fragment cache's reads (those that answer while the engine renders, then
 * one read per level); the library itself needs none of this.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { BaseCache, HeldStringKeeper } from 'cachegrain';

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

/**
 * Counts, per request, how many of the keys a render asks the fragment cache for are found: hits
 * emitted while the engine renders (`holdFresh`, and its keeper's `answerHeld` for a string kept
 * from an earlier hit) and those read after it (`readEntriesAndTags`).
 */
export function meterFragments(cache: BaseCache): void {
  const record = (hits: number, misses: number) => {
    totals.fragmentHits += hits;
    totals.fragmentMisses += misses;
    const metrics = storage.getStore();
    if (metrics !== undefined) {
      metrics.fragmentHits += hits;
      metrics.fragmentMisses += misses;
    }
  };
  const holdFresh = cache.holdFresh.bind(cache);
  cache.holdFresh = (made) => {
    const found = holdFresh(made);
    if (found === undefined) return found;
    record(1, 0);
    if (!('entry' in found)) return found;
    // A string kept for later hits is answered again by its keeper, without asking the cache.
    const { keeper } = found;
    const counted: HeldStringKeeper = {
      answerHeld(held, now) {
        const html = keeper.answerHeld(held, now);
        if (html !== undefined) record(1, 0);
        return html;
      },
    };
    return { ...found, keeper: counted };
  };
  const read = cache.readEntriesAndTags.bind(cache);
  cache.readEntriesAndTags = ((keys, tags) => {
    const count = (found: Awaited<ReturnType<BaseCache['readEntriesAndTags']>>) => {
      record(found.entries.size, keys.length - found.entries.size);
      return found;
    };
    const found = read(keys, tags);
    return found instanceof Promise ? found.then(count) : count(found);
  }) as BaseCache['readEntriesAndTags'];
}
