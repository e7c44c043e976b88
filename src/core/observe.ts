/**
 * What a cache reports about its own work: counts kept by every cache, and one
 * `node:diagnostics_channel` channel per operation for tracing and metrics tools. A channel nobody
 * subscribes to costs one property read per operation: no message is built and no clock is read. A
 * subscribed one costs a message and one clock read, and one more if a subscriber reads `duration`.
 */
import { type Channel, channel } from 'node:diagnostics_channel';

/** What a cache did since it was made or since `resetStats()`. */
export interface CacheStats {
  /** Reads answered with a fresh entry. */
  hits: number;
  /** Reads that found nothing usable. */
  misses: number;
  /** Reads answered with a stale entry while it is refreshed. */
  staleHits: number;
  /** Entries written (set, setMany, add that stored, getOrSet's computed value). */
  sets: number;
  /** delete and deleteMany calls. */
  deletes: number;
  /** Server failures (thrown or, with `failOpen`, answered as misses) and reported errors. */
  errors: number;
}

/** How one operation ended: a read's hit, miss or stale hit; any other operation's ok; or an error. */
export type CacheOutcome = 'hit' | 'miss' | 'stale' | 'ok' | 'error';

/** The message published on `cachegrain:<operation>`. */
export interface CacheEvent {
  operation: CacheOperation;
  /** The cache's alias. */
  alias: string;
  key?: string;
  keys?: string[];
  tags?: string[];
  /** invalidateTags: whether the entries were left to be served stale. */
  soft?: boolean;
  outcome: CacheOutcome;
  /** For a batch read: how many keys were found fresh, and how many not. */
  hits?: number;
  misses?: number;
  /**
   * Milliseconds from the call to its answer, taken when first read: a subscriber reads it in its
   * handler, as the message is published right after the answer.
   */
  duration: number;
  error?: unknown;
}

export const CACHE_OPERATIONS = [
  'get',
  'getMany',
  'getEntries',
  'getOrSet',
  'hasKey',
  'set',
  'setMany',
  'add',
  'touch',
  'delete',
  'deleteMany',
  'clear',
  'incr',
  'decr',
  'incrVersion',
  'decrVersion',
  'invalidateTags',
] as const;
export type CacheOperation = (typeof CACHE_OPERATIONS)[number];

/** The channel an operation publishes on: `cachegrain:<operation>`. */
export function channelName(operation: CacheOperation): string {
  return `cachegrain:${operation}`;
}

/** The channels, made once: `diagnostics_channel.channel()` hands back the same object to subscribers. */
export const CHANNELS: Readonly<Record<CacheOperation, Channel>> = Object.fromEntries(
  CACHE_OPERATIONS.map((operation) => [operation, channel(channelName(operation))]),
) as Record<CacheOperation, Channel>;

export function emptyStats(): CacheStats {
  return { hits: 0, misses: 0, staleHits: 0, sets: 0, deletes: 0, errors: 0 };
}

/** Hit, miss and stale counts of one fragment name or page route. */
export interface HitCounts {
  hits: number;
  misses: number;
  staleHits: number;
}

/**
 * Counts by name (fragment names, route patterns), bounded: a name made per item (a fragment named
 * after an id, a route per path) must not grow it forever. Past `limit` names, new ones count
 * under `(other)`.
 */
export class CountsByName {
  private readonly counts = new Map<string, HitCounts>();
  /** Changes on every reset: counts kept by a caller from before it are no longer counted. */
  generation = 0;

  constructor(private readonly limit = 1000) {}

  of(name: string): HitCounts {
    let counts = this.counts.get(name);
    if (counts !== undefined) return counts;
    if (this.counts.size >= this.limit && name !== OTHER) return this.of(OTHER);
    counts = { hits: 0, misses: 0, staleHits: 0 };
    this.counts.set(name, counts);
    return counts;
  }

  /** A copy, in the order names were first counted. */
  snapshot(): Map<string, HitCounts> {
    return new Map([...this.counts].map(([name, counts]) => [name, { ...counts }]));
  }

  reset(): void {
    this.counts.clear();
    this.generation++;
  }
}

const OTHER = '(other)';
