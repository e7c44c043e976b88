/**
 * How a cache reports what went wrong around it (a server down, an entry that cannot be decoded):
 * as an `error` event when someone listens, else logged once per distinct cause. Every report is
 * counted in `stats().errors`, once, here or where a server's failure happened.
 */
import type { EventEmitter } from 'node:events';
import { CacheServerError } from './errors.js';
import { describe } from './keys.js';
import { BoundedMemo } from './memo.js';
import type { CacheStats } from './observe.js';
import type { CacheLogger } from './types.js';

/**
 * How many distinct causes a cache remembers having logged. A cause names what failed, often with
 * its key, so a site can produce them without end; past this many the memo starts afresh, and a
 * cause seen again is logged once more.
 */
export const REPORTED_CAUSES_REMEMBERED = 1_000;

/** The message, starting with the name of cache `alias` once (messages of the backends name it already). */
export function named(alias: string, message: string): string {
  const name = `cache '${alias}': `;
  return message.startsWith(name) ? message : name + message;
}

/** A TypeError whose message starts by naming cache `alias`. */
export function cacheTypeError(alias: string, message: string, cause?: unknown): TypeError {
  return new TypeError(named(alias, message), cause === undefined ? undefined : { cause });
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

  /** Reports an error that was turned into a miss or a no-op (see `BaseCache.reportError`). */
  report(error: Error, cause = error.message): void {
    // A server's failures are counted where they happen (`countServerFailure`), reported or not.
    if (!(error instanceof CacheServerError)) this.counts.errors++;
    if (this.events.listenerCount('error') > 0) {
      this.events.emit('error', error);
      return;
    }
    if (this.reportedCauses.get(cause) === true) return;
    this.reportedCauses.set(cause, true);
    this.logger.warn(`cachegrain: ${named(this.alias, error.message)} (reported once; listen for 'error' events on the cache to see every one)`);
  }
}
