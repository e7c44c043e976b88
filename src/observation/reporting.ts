/**
 * How a cache reports what went wrong around it (a server down, an entry that cannot be decoded):
 * as an `error` event when someone listens, else logged once per distinct cause. Every report is
 * counted in `stats().errors`, once, here or where a server's failure happened.
 */
import type { EventEmitter } from 'node:events';
import { cacheTypeError, CacheServerError, describe, named } from '../errors/errors.js';
import { BoundedMemo } from '../memos/bounded-memo.js';
import { type CacheStats, countError } from './observation.js';
import type { CacheLogger } from '../store/cache-types.js';

/**
 * How many distinct causes a cache remembers having logged. A cause names what failed, often with
 * its key, so a site can produce them without end; past this many the memo starts afresh, and a
 * cause seen again is logged once more.
 */
export const REPORTED_CAUSES_REMEMBERED = 1_000;

/** Where a report went: to the cache's `error` listeners, or to its logger. */
export type ReportPath = 'event' | 'logger';

/** What a `recovered` event carries: a server whose failure was reported answers again. */
export interface ServerRecovery {
  alias: string;
  server: string;
  /** `cache '<alias>': server <server> recovered: it answers again`, as the logger gets it. */
  message: string;
}

export class Reporter {
  private readonly logger: CacheLogger;
  private readonly reportedCauses = new BoundedMemo<true>(REPORTED_CAUSES_REMEMBERED);

  constructor(
    private readonly alias: string,
    private readonly events: EventEmitter,
    private readonly counts: CacheStats,
    logger: unknown,
  ) {
    this.logger = (logger ?? console) as CacheLogger;
    if (this.logger === null || typeof this.logger !== 'object' || typeof this.logger.warn !== 'function') {
      throw cacheTypeError(alias, `logger must have a warn(message) method, as console does (got ${describe(logger)})`);
    }
  }

  /**
   * Reports an error that was turned into a miss or a no-op (see `BaseCache.reportError`); answers
   * where the report went, undefined when nowhere (its cause was logged already).
   */
  report(error: Error, cause = error.message): ReportPath | undefined {
    // A server's failures are counted where they happen (`countServerFailure`), reported or not.
    if (!(error instanceof CacheServerError)) countError(this.counts, this.alias, error);
    if (this.events.listenerCount('error') > 0) {
      this.events.emit('error', error);
      return 'event';
    }
    if (this.reportedCauses.get(cause) === true) return undefined;
    this.reportedCauses.set(cause, true);
    this.logger.warn(`cachegrain: ${named(this.alias, error.message)} (reported once; listen for 'error' events on the cache to see every one)`);
    return 'logger';
  }

  /**
   * Reports, once, that a server whose failure went `via` one path answers again, by the same path:
   * a `recovered` event where the failure was an `error` event, else the logger. The causes of its
   * outage are forgotten, so that the next outage is logged again rather than taken for this one.
   */
  recovered(server: string, via: ReportPath, causes: Iterable<string>): void {
    for (const cause of causes) this.reportedCauses.delete(cause);
    const message = `cache '${this.alias}': server ${server} recovered: it answers again`;
    if (via === 'event') this.events.emit('recovered', { alias: this.alias, server, message } satisfies ServerRecovery);
    else this.logger.warn(`cachegrain: ${message}`);
  }
}
