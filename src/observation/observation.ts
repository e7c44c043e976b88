/**
 * What a cache reports about its own work: counts kept by every cache, one
 * `node:diagnostics_channel` channel per operation for tracing and metrics tools (and one each for
 * errors, page lookups and edge purges), and the slot a tracer plugs into to run observed work inside
 * spans of its own. A channel nobody subscribes to costs one property read per operation: no message
 * is built and no clock is read. A subscribed one costs a message and one clock read, and one more if
 * a subscriber reads `duration`.
 */
import { type Channel, channel } from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import type { CacheKey } from '../keys/cache-keys.js';
import { type MaybePromise, promised } from '../store/maybe-promise.js';

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
  /** Purge requests an edge in front took (the `purge` option). */
  purgesSent: number;
  /** Purge requests given up after their tries, each reported with what it did not purge. */
  purgesFailed: number;
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

/** The message published on `cachegrain:error` for each failure `stats().errors` counts. */
export interface CacheErrorEvent {
  alias: string;
  error: Error;
}

/** The message published on `cachegrain:page`, once per request a page cache looked up or let by. */
export interface PageEvent {
  /** The alias of the cache the page is (or would be) kept in. */
  alias: string;
  /** What `pageStats()` counts it under: the route pattern, else the path. */
  route: string;
  method: string;
  /** As `X-Cache` says it: found fresh, found stale, not found (rendered and stored), or not cacheable. */
  outcome: 'hit' | 'stale' | 'miss' | 'bypass';
}

/** The message published on `cachegrain:purge` for each purge request an edge took or that was given up. */
export interface PurgeEvent {
  alias: string;
  /** The edge, as its kind and URL: `varnish http://127.0.0.1:6081`. */
  edge: string;
  outcome: 'sent' | 'failed';
}

export const ERROR_CHANNEL = channel('cachegrain:error');
export const PAGE_CHANNEL = channel('cachegrain:page');
export const PURGE_CHANNEL = channel('cachegrain:purge');

/** Counts a failure in a cache's stats, and publishes it to whoever listens. */
export function countError(counts: CacheStats, alias: string, error: Error): void {
  counts.errors++;
  if (ERROR_CHANNEL.hasSubscribers) ERROR_CHANNEL.publish({ alias, error } satisfies CacheErrorEvent);
}

/**
 * A span begun around one piece of a cache's work: `run` runs the work inside it (what the work
 * starts is its child), and `end` closes it with how the work ended.
 */
export interface TracedWork {
  run<T>(work: () => T): T;
  /** A page lookup's route, once known. */
  route(route: string): void;
  end(outcome: CacheOutcome | PageEvent['outcome'], error?: unknown): void;
}

/** What begins spans for the cache's work: plugged in by a tracing bridge, absent otherwise. */
export interface CacheTracer {
  operation(operation: CacheOperation, alias: string): TracedWork;
  pageLookup(alias: string, method: string): TracedWork;
}

/** The tracer plugged in, if any: read once per operation that is observed, and once per page lookup. */
export const tracing: { tracer: CacheTracer | undefined } = { tracer: undefined };

/**
 * Runs `work` inside `span` and ends it with the outcome `outcomeOf` reads from its answer (or with
 * its failure): at once when the answer is, else when its promise settles.
 */
export function traced<T>(span: TracedWork, work: () => MaybePromise<T>, outcomeOf: (answer: T) => CacheOutcome | PageEvent['outcome']): MaybePromise<T> {
  let answer: MaybePromise<T>;
  try {
    answer = span.run(work);
  } catch (error) {
    span.end('error', error);
    throw error;
  }
  if (!(answer instanceof Promise)) {
    span.end(outcomeOf(answer));
    return answer;
  }
  return answer.then(
    (value) => {
      span.end(outcomeOf(value));
      return value;
    },
    (error: unknown) => {
      span.end('error', error);
      throw error;
    },
  );
}

export function emptyStats(): CacheStats {
  return { hits: 0, misses: 0, staleHits: 0, sets: 0, deletes: 0, errors: 0, purgesSent: 0, purgesFailed: 0 };
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

  constructor(private readonly limit = 1000) {}

  of(name: string): HitCounts {
    let counts = this.counts.get(name);
    if (counts !== undefined) return counts;
    if (this.counts.size >= this.limit && name !== OTHER) return this.of(OTHER);
    counts = { hits: 0, misses: 0, staleHits: 0 };
    this.counts.set(name, counts);
    return counts;
  }

  /** The name `of(name)` counts under, without counting it: `(other)` once the limit is reached. */
  nameOf(name: string): string {
    return this.counts.has(name) || this.counts.size < this.limit ? name : OTHER;
  }

  /** A copy, in the order names were first counted. */
  snapshot(): Map<string, HitCounts> {
    return new Map([...this.counts].map(([name, counts]) => [name, { ...counts }]));
  }

  reset(): void {
    this.counts.clear();
  }
}

const OTHER = '(other)';

/** What an observed call needs of its cache: its alias, for the message. */
interface Observed {
  readonly alias: string;
}
const NOT_FOUND = Symbol('not found');

/**
 * Where an observed operation whose answer does not tell how it ended writes it: `getOrSet` found
 * the key fresh, found it stale, or computed it.
 */
export interface ToldOutcome {
  outcome: CacheOutcome;
}

/** One public operation's work: a method of the cache or of one of its parts, given the operation's arguments. */
export type OperationWork<T, A, B, C, R> = (this: T, a: A, b: B, c: C, told?: ToldOutcome) => MaybePromise<R>;

/** The operations whose first argument is a list of keys or tags, which may come as any iterable. */
const LISTS = new Set<CacheOperation>(['getMany', 'getEntries', 'deleteMany', 'invalidateTags']);

/**
 * Whether someone listens to `operation`'s channel. The hottest operations (get, set) ask first and,
 * while nobody does, call their own work themselves: a call site of their own stays monomorphic,
 * where the one in `instrument` serves every operation.
 */
export function observing(operation: CacheOperation): boolean {
  return CHANNELS[operation].hasSubscribers;
}

/**
 * Runs one public operation of `cache` (Rails' `instrument`): `work`, called on `receiver` with the
 * operation's arguments, answered as a promise (a throw as a rejection). Every public operation of
 * `BaseCache` goes through here, so each publishes how it ended on `cachegrain:<operation>`. While
 * nobody subscribes, a call costs one `hasSubscribers` read and nothing is built. While someone does
 * (metrics exporters subscribe for good), a call reads the clock when it starts and builds one
 * message, whose duration is read off the clock when a subscriber asks for it (see `ObservedCall`);
 * an answer given at once (a store in this process) is published at once, without waiting a turn
 * of the event loop.
 */
export function instrument<T, A, B, C, R>(
  cache: Observed,
  operation: CacheOperation,
  receiver: T,
  work: OperationWork<T, A, B, C, R>,
  a: A,
  b?: B,
  c?: C,
): Promise<R> {
  if (CHANNELS[operation].hasSubscribers) return observe(cache, operation, receiver, work, a, b as B, c as C) as Promise<R>;
  try {
    return promised(work.call(receiver, a, b as B, c as C));
  } catch (error) {
    return Promise.reject(error);
  }
}

function observe<T, A, B, C, R>(
  cache: Observed,
  operation: CacheOperation,
  receiver: T,
  work: OperationWork<T, A, B, C, R>,
  a: A,
  b: B,
  c: C,
): Promise<unknown> {
  const started = performance.now();
  // Read once: a generator of keys or tags would be empty for the operation after the event read it.
  if (LISTS.has(operation) && a !== null && typeof a === 'object' && !Array.isArray(a) && Symbol.iterator in a) a = [...(a as Iterable<unknown>)] as A;
  // A get is asked with a default of its own, so that a miss is told apart from a stored value equal to the caller's default.
  const asked = operation === 'get' ? (NOT_FOUND as B) : b;
  const told: ToldOutcome | undefined = operation === 'getOrSet' ? { outcome: 'ok' } : undefined;
  const run = () => work.call(receiver, a, asked, c, told);
  const span = tracing.tracer?.operation(operation, cache.alias);
  const call: ObservedArguments = { cache, operation, a, b, started, span, told };
  let answered: unknown;
  try {
    answered = span === undefined ? run() : span.run(run);
  } catch (error) {
    publishFailure(call, error);
    return Promise.reject(error);
  }
  if (answered instanceof Promise) return observeLater(call, answered);
  return promised(published(call, answered));
}

/** An observed call: its cache, operation and first two arguments, when it started, its span if traced, and the outcome its work told. */
interface ObservedArguments {
  readonly cache: Observed;
  readonly operation: CacheOperation;
  readonly a: unknown;
  readonly b: unknown;
  readonly started: number;
  readonly span: TracedWork | undefined;
  readonly told: ToldOutcome | undefined;
}

async function observeLater(call: ObservedArguments, answer: Promise<unknown>): Promise<unknown> {
  let result: unknown;
  try {
    result = await answer;
  } catch (error) {
    publishFailure(call, error);
    throw error;
  }
  return published(call, result);
}

/** Publishes how an operation ended, and answers what its caller receives (a get's miss: the caller's default). */
function published(call: ObservedArguments, result: unknown): unknown {
  const { cache, operation, a, b, started, span, told } = call;
  if (operation === 'get') {
    const hit = result !== NOT_FOUND;
    const event = new ObservedCall(operation, cache.alias, started);
    event.key = keyName(a);
    event.outcome = hit ? 'hit' : 'miss';
    CHANNELS.get.publish(event);
    span?.end(event.outcome);
    return hit ? result : b;
  }
  const event = eventOf(call);
  if (operation === 'getMany' || operation === 'getEntries') {
    const found = (result as Map<CacheKey, unknown>).size;
    const misses = (event.keys?.length ?? found) - found;
    event.outcome = misses === 0 ? 'hit' : 'miss';
    event.hits = found;
    event.misses = misses;
  } else if (operation === 'hasKey') event.outcome = result ? 'hit' : 'miss';
  else if (told !== undefined) event.outcome = told.outcome;
  CHANNELS[operation].publish(event);
  span?.end(event.outcome);
  return result;
}

function publishFailure(call: ObservedArguments, error: unknown): void {
  const event = eventOf(call);
  event.outcome = 'error';
  event.error = error;
  CHANNELS[call.operation].publish(event);
  call.span?.end('error', error);
}

/**
 * The message of an observed call. The clock is read once at the call; its `duration` is taken when
 * a subscriber first asks for it, which it does as the call is published, right after its answer: a
 * call whose subscribers only count outcomes reads the clock once. A subscriber that keeps messages
 * reads `duration` in its handler (JSON.stringify takes it then too).
 */
class ObservedCall implements CacheEvent {
  declare key?: string;
  declare keys?: string[];
  declare tags?: string[];
  declare soft?: boolean;
  declare hits?: number;
  declare misses?: number;
  declare error?: unknown;
  outcome: CacheOutcome = 'ok';
  readonly #started: number;
  #duration: number | undefined;

  constructor(
    readonly operation: CacheOperation,
    readonly alias: string,
    started: number,
  ) {
    this.#started = started;
  }

  get duration(): number {
    return (this.#duration ??= performance.now() - this.#started);
  }

  toJSON(): CacheEvent {
    return { ...this, duration: this.duration };
  }
}

/** An operation's event before its outcome is known: `ok`. */
function eventOf({ cache, operation, a, b, started }: ObservedArguments): ObservedCall {
  return Object.assign(new ObservedCall(operation, cache.alias, started), eventSubject(operation, a, b));
}

const keyName = (key: unknown): string => (typeof key === 'string' ? key : String(key));

/** The keys or tags an operation is about, as its event names them. */
function eventSubject(operation: CacheOperation, a: unknown, b: unknown): Partial<CacheEvent> {
  switch (operation) {
    case 'clear':
      return {};
    case 'invalidateTags':
      return { tags: [...(a as Iterable<string>)].map(String), soft: (b as { soft?: unknown } | undefined)?.soft === true };
    case 'getMany':
    case 'getEntries':
    case 'deleteMany':
      return { keys: [...(a as Iterable<unknown>)].map(keyName) };
    case 'setMany':
      return { keys: (a instanceof Map ? [...a.keys()] : Object.keys(a as object)).map(keyName) };
    default:
      return { key: keyName(a) };
  }
}
