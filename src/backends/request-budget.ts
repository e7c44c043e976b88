/**
 * The budget of one request's calls to cache servers: a request whose caches are down waits at most
 * `timeoutMs` in all, however many calls and caches it makes, and a server that failed in it is not
 * called again in it. Kept in the request's scope.
 */
import { ScopeSlot } from '../cacheability/request-scope.js';

export class RequestBudget {
  /** Servers (or caches) that failed during this request: later calls skip them at once. */
  private readonly down = new Set<unknown>();
  /**
   * The request's cache budget in ms: the largest `timeoutMs` among the caches it has called. One
   * budget for every cache the request touches, so a page whose page cache and fragments sit on two
   * aliases of one dead server waits for it once, not once per alias.
   */
  private budgetMs = 0;
  /** How long this request has waited on cache calls that failed, in ms; waits that overlap count once. */
  private lostMs = 0;
  /** When the last wait counted in `lostMs` ended (`performance.now()`). */
  private lostUntil = 0;

  /**
   * How long a call to a cache whose deadline is `timeoutMs` may wait now: its own deadline, cut to
   * what is left of the request's budget (0 or less once the budget is spent).
   */
  allowanceMs(timeoutMs: number): number {
    if (timeoutMs > this.budgetMs) this.budgetMs = timeoutMs;
    return Math.min(timeoutMs, this.budgetMs - this.lostMs);
  }

  /** Records that a call to `server`, started at `startedAt` (`performance.now()`), failed just now. */
  markDown(server: unknown, startedAt: number): void {
    this.down.add(server);
    const now = performance.now();
    // Failures are recorded in the order they end, so the part of this wait that overlaps the
    // waits already counted lies between its start and the end of the last one.
    this.lostMs += Math.max(0, now - Math.max(startedAt, this.lostUntil));
    this.lostUntil = now;
  }

  /** Whether `server` already failed in this request. */
  isDown(server: unknown): boolean {
    return this.down.size > 0 && this.down.has(server);
  }
}

/** Each request's budget, shared by every cache on a server that it calls. */
export const REQUEST_BUDGET = new ScopeSlot(() => new RequestBudget());
