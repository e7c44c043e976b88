/**
 * What every backend that talks to a server shares: a deadline on each command
 * (`timeoutMs`, covering time spent waiting to reconnect), `failOpen`, which turns a server's errors
 * and timeouts into misses and no-ops reported as `error` events instead of rejections, a breaker per
 * server, and the per-request budget. The surprise: once a server failed, calls to it answer at once
 * without touching it: for the rest of the request, and, after repeated failures, for every request
 * until a probe gets an answer (the breaker); and a request's calls to every cache share one budget
 * (the largest `timeoutMs` among them), cut by each wait on a call that failed.
 */
import { BaseCache, type CacheParams } from '../cache/base-cache.js';
import type { BackendPrimitives } from '../store/backend-primitives.js';
import type { ServerHealth } from '../store/cache-types.js';
import type { Codec } from '../encoding/codec.js';
import { CacheServerError } from '../errors/errors.js';
import type { ReportPath } from '../observation/reporting.js';
import { MUST_BE, type OptionShape, optionShape } from '../options/option-rules.js';
import { currentScope } from '../cacheability/request-scope.js';
import { REQUEST_BUDGET, type RequestBudget } from './request-budget.js';
import { DISCONNECT_TIMEOUT_MS, loadRedisClients, quit } from './ioredis.js';
import type { BusConnections } from '../l1/l1-bus.js';
import { L1Tier } from '../l1/l1.js';
import { L1_OPTIONS, type L1Options, type L1Settings, l1Settings } from '../l1/l1-settings.js';

export interface ServerOptions {
  /** How long one command may take, waiting for a connection included, in milliseconds. @default 1000 */
  timeoutMs?: number;
  /** Answer a server failure with a miss (reads) or a no-op (writes) and an `error` event, instead of rejecting. @default false */
  failOpen?: boolean;
  /** An in-process copy of recent entries in front of the server, invalidated across processes. */
  l1?: L1Options;
}

export const SERVER_OPTIONS = optionShape<ServerOptions>({ timeoutMs: MUST_BE.positiveMilliseconds, failOpen: MUST_BE.boolean, l1: L1_OPTIONS });

export const DEFAULT_TIMEOUT_MS = 1000;
/** Consecutive failures of one server that open its breaker. */
export const BREAKER_FAILURES = 3;
/** While a breaker is open, one call in this many milliseconds is let through as a probe. */
export const BREAKER_PROBE_MS = 500;

/**
 * Answered by `guard` instead of a fallback when the caller asked for `SERVER_FAILED`: the server
 * failed (already reported), and the caller has somewhere else to go (a replica's reader, the leader).
 */
export const SERVER_FAILED: unique symbol = Symbol('server failed');
/** A fallback that is never used: the call rejects even with failOpen (a counter cannot fake a miss). */
const NO_FALLBACK: unique symbol = Symbol('no fallback');

export type { ServerHealth };

export abstract class ServerCache<P> extends BaseCache<P> {
  static override readonly optionNames: OptionShape = SERVER_OPTIONS;
  protected readonly timeoutMs: number;
  protected readonly failOpen: boolean;
  private readonly failures: FailurePolicy;
  private readonly breakers = new Map<string, Breaker>();
  /** The in-process tier in front of the server, when `options.l1` asks for one: then it is the cache's primitives. */
  readonly l1: L1Tier<P> | undefined;
  /** Set by `close()`: every call from then on, and every one it cut short, fails as a call to a closed cache. */
  private closed = false;

  constructor(params: CacheParams<ServerOptions>, codec: Codec<P>) {
    super(params, codec);
    const options = (params.options ?? {}) as ServerOptions;
    // Checked with the names, by SERVER_OPTIONS.
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.failOpen = options.failOpen ?? false;
    this.failures = {
      watch: new DeadlineWatch(this.timeoutMs),
      timedOut: (server, cutByBudget) =>
        new CacheServerError(
          cutByBudget
            ? `cache '${this.alias}': server ${server} did not answer within what was left of the request's cache budget`
            : `cache '${this.alias}': server ${server} did not answer within ${this.timeoutMs} ms`,
          server,
        ),
      settle: (pending, error) => this.settleFailure(pending, error),
    };
    this.l1 = this.primitives instanceof L1Tier ? this.primitives : undefined;
    if (this.l1 !== undefined) this.answerFromMemory(this.l1);
  }

  /** The server's primitives, with an L1 in front of them when `options.l1` asks for one. */
  protected override composePrimitives(server: BackendPrimitives<P>): BackendPrimitives<P> {
    const l1 = l1Settings((this.options as ServerOptions).l1);
    if (l1 === undefined) return server;
    return new L1Tier(server, l1, {
      clock: () => this.now(),
      keep: this.codec.forKeeping?.bind(this.codec),
      remembersAbsence: (key) => this.isTagKey(key),
      channelName: this.keyPrefix,
      readsCarryExpiry: this.readsCarryExpiry,
      openBus: l1.bus === undefined && !this.hasOwnBus ? undefined : () => this.openL1Bus(l1),
      reportError: (error) => this.reportError(error),
    });
  }

  /** Whether `read(keys, false)` fills in each entry's expiry anyway (the L1 needs it). */
  protected get readsCarryExpiry(): boolean {
    return false;
  }

  /** Whether the server itself can carry L1 invalidations (Redis pub/sub) when `l1.bus` is not given. */
  protected get hasOwnBus(): boolean {
    return false;
  }

  /** The connections the L1's invalidations travel on: `l1.bus` (a backend with its own bus overrides this). */
  protected openL1Bus(settings: L1Settings): BusConnections {
    const { ioredis } = loadRedisClients();
    // The publisher queues while it connects, so a write made just after startup still tells the
    // other processes; once connected, maxRetriesPerRequest 0 fails a publish at once when it drops.
    const connect = (enableOfflineQueue: boolean) =>
      new ioredis.Redis(settings.bus!, {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        enableOfflineQueue,
        disconnectTimeout: DISCONNECT_TIMEOUT_MS,
        retryStrategy: (attempt: number) => Math.min(attempt * 100, 1000),
      });
    const publisher = connect(true);
    publisher.on('error', () => undefined); // the subscriber reports the bus's troubles
    publisher.connect().catch(() => undefined);
    const subscriber = connect(false);
    return {
      publisher,
      subscriber,
      close: async () => {
        subscriber.disconnect();
        // The invalidations already published leave before the connection ends.
        await quit(publisher, this.timeoutMs);
      },
    };
  }

  /** The breaker of every server this cache has called, for dashboards and health checks. */
  override health(): ServerHealth[] {
    return [...this.breakers.values()].map((breaker) => breaker.health());
  }

  /**
   * Runs one server command under the deadline. On failure: with failOpen, reports the error and
   * answers `fallback` (a miss or a no-op); without, rejects with a CacheServerError naming `server`.
   * Errors that are the caller's fault (`isServerError` false) are always rethrown as they are.
   * A server whose breaker is open, or that already failed in this request, is not called at all,
   * nor is any once the request's budget is spent: the call answers the same way at once. In a
   * request, the deadline is cut to what is left of its budget.
   */
  protected guard<T>(server: string, fallback: T, command: () => Promise<T>): Promise<T>;
  /** The same, with `answer` turning the server's reply into the result (saving a `.then` per call). */
  protected guard<T, R>(server: string, fallback: T, command: () => Promise<R>, answer: (reply: R) => T): Promise<T>;
  protected guard<T, R>(server: string, fallback: T, command: () => Promise<R>, answer?: (reply: R) => T): Promise<T> {
    // This runs on every cache call: one promise, one small object, no timer of its own (the
    // watch sweeps deadlines), no closure.
    if (this.closed) return Promise.reject(this.closedError());
    const breaker = this.breakers.get(server) ?? this.addBreaker(server);
    const budget = currentScope()?.get(REQUEST_BUDGET);
    const watch = this.failures.watch;
    const ticks = budget === undefined ? DeadlineWatch.TICKS : this.ticksLeftIn(budget, breaker);
    if (ticks === 0) return this.answerWithout(breaker, fallback, budget);
    if (breaker.state !== CLOSED && !breaker.admit()) return this.answerWithout(breaker, fallback);
    const pending = new PendingCommand<T>(this.failures, breaker, fallback, ticks);
    if (budget !== undefined) pending.inBudget(budget);
    const settled = new Promise<T>((resolve, reject) => {
      pending.resolve = resolve;
      pending.reject = reject;
    });
    watch.add(pending);
    try {
      command().then(
        (reply) => {
          if (answer === undefined) return pending.succeed(reply as unknown as T);
          let value: T;
          try {
            value = answer(reply);
          } catch (error) {
            return pending.fail(error);
          }
          pending.succeed(value);
        },
        (error) => pending.fail(error),
      );
    } catch (error) {
      pending.fail(error);
    }
    return settled;
  }

  /** As `guard`, but a server failure always rejects, failOpen or not: for counters, which cannot answer a fake miss. */
  protected guardStrict<T>(server: string, command: () => Promise<T>): Promise<T> {
    return this.guard(server, NO_FALLBACK as T, command);
  }

  /** Whether calls to `server` go through now (its breaker closed, or open and due a probe). */
  protected isAvailable(server: string): boolean {
    const breaker = this.breakers.get(server);
    if (breaker === undefined) return true;
    const budget = currentScope()?.get(REQUEST_BUDGET);
    if (budget !== undefined && this.ticksLeftIn(budget, breaker) === 0) return false;
    return breaker.state === CLOSED || (breaker.state === OPEN && Date.now() >= breaker.probeAt);
  }

  /**
   * How many ticks of the deadline watch a call to `breaker`'s server may wait in the request of
   * whose budget is `budget`: none once that server failed in it or its budget is spent.
   */
  private ticksLeftIn(budget: RequestBudget, breaker: Breaker): number {
    return budget.isDown(breaker) ? 0 : this.failures.watch.ticksWithin(budget.allowanceMs(this.timeoutMs));
  }

  /**
   * The answer of a call that does not reach its server: the fallback, or the failure that stopped
   * it; `budget` when it was the request's (spent, or this server failed earlier in it).
   */
  private answerWithout<T>(breaker: Breaker, fallback: T, budget?: RequestBudget): Promise<T> {
    const server = breaker.server;
    const failure =
      budget === undefined || budget.isDown(breaker)
        ? (breaker.lastFailure ?? new CacheServerError(`cache '${this.alias}': server ${server} failed earlier in this request`, server))
        : new CacheServerError(`cache '${this.alias}': server ${server} was not called: this request's cache budget is spent`, server);
    this.countServerFailure(failure);
    if (fallback === SERVER_FAILED || (this.failOpen && fallback !== NO_FALLBACK)) return Promise.resolve(fallback);
    return Promise.reject(failure);
  }

  private addBreaker(server: string): Breaker {
    const breaker = new Breaker(server, (recovered, via) => this.reporter.recovered(recovered.server, via, recovered.reported));
    this.breakers.set(server, breaker);
    return breaker;
  }

  /** Settles a command that failed or ran out of time: a rejection, or with failOpen a fallback. */
  private settleFailure<T>(pending: PendingCommand<T>, error: unknown): void {
    // A call the close cut short: no failure of the server, so no miss in its place and no outage.
    if (this.closed) return pending.reject(this.closedError());
    const breaker = pending.breaker;
    if (!this.isServerError(error)) {
      // The server answered; the call was at fault.
      breaker.succeed();
      return pending.reject(error);
    }
    const failure = error instanceof CacheServerError ? error : this.failureOf(breaker, error);
    this.countServerFailure(failure);
    pending.budget?.markDown(breaker, pending.startedMs);
    breaker.fail(failure);
    const fallback = pending.fallback;
    // Without failOpen the rejection is the report; with it, an outage is heard as an event whatever call met it.
    if (fallback === NO_FALLBACK || (!this.failOpen && fallback !== SERVER_FAILED)) {
      if (this.failOpen) this.reportOutage(breaker, failure);
      return pending.reject(failure);
    }
    this.reportOutage(breaker, failure);
    pending.resolve(fallback);
  }

  override async close(): Promise<void> {
    this.closed = true;
    await super.close();
  }

  /** Refuses a call to a closed cache, for a backend whose calls do not all go through `guard` (SQLite's). */
  protected refuseIfClosed(): void {
    if (this.closed) throw this.closedError();
  }

  private closedError(): Error {
    return new Error(`cache '${this.alias}' is closed: close() or caches.closeAll() ended its connections`);
  }

  /** A command's failure, naming the connection error behind it when the client had one. */
  private failureOf(breaker: Breaker, error: unknown): CacheServerError {
    const server = breaker.server;
    const unreachable = breaker.connectionError;
    if (unreachable !== undefined)
      return new CacheServerError(`cache '${this.alias}': server ${server} unreachable: ${unreachable.message}`, server, unreachable);
    return new CacheServerError(`cache '${this.alias}': server ${server} failed: ${(error as Error)?.message ?? String(error)}`, server, error);
  }

  protected override get waitsOnServers(): boolean {
    return true;
  }

  protected override get failsOpen(): boolean {
    return this.failOpen;
  }

  override get unreachable(): boolean {
    if (this.breakers.size === 0) return false;
    for (const breaker of this.breakers.values()) if (breaker.state !== OPEN) return false;
    return true;
  }

  /** Reports a failure of `server` seen outside a call (a client's connection errors), as `guard` reports its own. */
  protected reportServerError(server: string, failure: CacheServerError): void {
    const breaker = this.breakers.get(server) ?? this.addBreaker(server);
    breaker.connectionError = failure.cause instanceof Error ? failure.cause : failure;
    this.reportOutage(breaker, failure);
  }

  /**
   * Reports a failure as an `error` event once per cause and outage: a down server does not flood
   * listeners. The path the outage's first report took is kept: its recovery goes the same way.
   */
  private reportOutage(breaker: Breaker, failure: CacheServerError): void {
    if (breaker.reported.has(failure.message)) return;
    breaker.reported.add(failure.message);
    breaker.reportedVia ??= this.reporter.report(failure);
  }

  /** Whether an error came from the server or the connection (true), or from the call itself (false). */
  protected isServerError(error: unknown): boolean {
    return !(error instanceof TypeError) && !(error instanceof RangeError);
  }
}

const CLOSED = 0;
const OPEN = 1;
const PROBING = 2;
const STATE_NAMES = ['closed', 'open', 'probing'] as const;

/**
 * One server's breaker: closed while it answers; open after BREAKER_FAILURES failures in a row, when
 * calls answer at once; every BREAKER_PROBE_MS one call goes through as a probe (probing), and the
 * first answer closes it again.
 */
class Breaker {
  state: typeof CLOSED | typeof OPEN | typeof PROBING = CLOSED;
  consecutiveFailures = 0;
  lastFailure: CacheServerError | undefined;
  openedAt = 0;
  probeAt = 0;
  /** Causes already reported during this outage. */
  readonly reported = new Set<string>();
  /** Where this outage's first report went, and so where its recovery goes; undefined while none went anywhere. */
  reportedVia: ReportPath | undefined;
  /**
   * Why the client last failed to reach the server (`connect ECONNREFUSED …`), until a call succeeds:
   * a command the client then fails says only that it gave up, so the failure names this instead.
   */
  connectionError: Error | undefined;

  constructor(
    readonly server: string,
    /** Called once when a call succeeds after an outage that was reported, before the outage is forgotten. */
    private readonly onRecovery: (breaker: Breaker, via: ReportPath) => void,
  ) {}

  /** For a breaker that is not closed: whether this call may go through (as the probe). */
  admit(): boolean {
    if (this.state === OPEN && Date.now() >= this.probeAt) {
      this.state = PROBING;
      return true;
    }
    return false;
  }

  succeed(): void {
    if (this.state === CLOSED && this.consecutiveFailures === 0 && this.connectionError === undefined) return;
    if (this.reportedVia !== undefined) this.onRecovery(this, this.reportedVia);
    this.reportedVia = undefined;
    this.state = CLOSED;
    this.consecutiveFailures = 0;
    this.lastFailure = undefined;
    this.connectionError = undefined;
    this.reported.clear();
  }

  fail(failure: CacheServerError): void {
    this.consecutiveFailures++;
    this.lastFailure = failure;
    if (this.state === CLOSED && this.consecutiveFailures < BREAKER_FAILURES) return;
    if (this.state === CLOSED) this.openedAt = Date.now();
    this.state = OPEN;
    this.probeAt = Date.now() + BREAKER_PROBE_MS;
  }

  health(): ServerHealth {
    const health: ServerHealth = { server: this.server, state: STATE_NAMES[this.state], consecutiveFailures: this.consecutiveFailures };
    if (this.state !== CLOSED) {
      health.lastFailure = this.lastFailure?.message;
      health.openedAt = this.openedAt;
    }
    return health;
  }
}

interface Watched {
  /** The watch's tick count at which the command runs out of time. */
  dueAt: number;
  expire(): void;
}

/** One command in flight under `guard`: settled once, by its outcome or by its deadline. */
class PendingCommand<T> implements Watched {
  resolve!: (value: T) => void;
  reject!: (error: unknown) => void;
  /** The budget of the request it runs in, if any: a failure marks its server down for the rest of it. */
  budget: RequestBudget | undefined = undefined;
  /** When it started (`performance.now()`), for the request's budget; 0 outside a request. */
  startedMs = 0;
  /** The watch's tick count at which it runs out of time. */
  readonly dueAt: number;
  /** Whether its deadline is what was left of the request's budget rather than the cache's `timeoutMs`. */
  private readonly cutByBudget: boolean;

  /** `ticks`: how many ticks of the watch it is given (`DeadlineWatch.TICKS` unless the request's budget cut it). */
  constructor(
    private readonly policy: FailurePolicy,
    readonly breaker: Breaker,
    readonly fallback: T,
    ticks: number,
  ) {
    this.dueAt = policy.watch.ticks + ticks;
    this.cutByBudget = ticks < DeadlineWatch.TICKS;
  }

  /** Counts against the request's `budget`, from now. */
  inBudget(budget: RequestBudget): void {
    this.budget = budget;
    this.startedMs = performance.now();
  }

  succeed(value: T): void {
    // A command that settles after its deadline no longer matters to anyone.
    if (this.policy.watch.release(this)) {
      this.breaker.succeed();
      this.resolve(value);
    }
  }

  fail(error: unknown): void {
    if (this.policy.watch.release(this)) this.policy.settle(this, error);
  }

  expire(): void {
    this.fail(this.policy.timedOut(this.breaker.server, this.cutByBudget));
  }
}

/** What a pending command needs of its cache, made once per cache. */
interface FailurePolicy {
  watch: DeadlineWatch;
  timedOut(server: string, cutByBudget: boolean): CacheServerError;
  settle<T>(pending: PendingCommand<T>, error: unknown): void;
}

/**
 * Deadlines for the commands in flight, checked by one interval timer that runs only while commands
 * are pending, instead of a timer per command (which costs more than the rest of a cache hit's CPU).
 * The timer ticks TICKS times per timeout; a command given n ticks fails at the n-th tick after its
 * start, so between (n - 1) / TICKS of `timeoutMs` and n / TICKS of it after it (n is TICKS unless
 * the request's budget cut it).
 */
class DeadlineWatch {
  ticks = 0;
  static readonly TICKS = 10;
  private readonly pending = new Set<Watched>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly timeoutMs: number) {}

  /** The whole ticks within `ms`, at most TICKS: how many a command that may wait `ms` is given. */
  ticksWithin(ms: number): number {
    if (ms >= this.timeoutMs) return DeadlineWatch.TICKS;
    return ms <= 0 ? 0 : Math.floor((ms * DeadlineWatch.TICKS) / this.timeoutMs);
  }

  add(watched: Watched): void {
    this.pending.add(watched);
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.sweep(), this.timeoutMs / DeadlineWatch.TICKS);
      this.timer.unref();
    }
  }

  /** Stops watching a command; false when it had already expired (or was released before). */
  release(watched: Watched): boolean {
    return this.pending.delete(watched);
  }

  private sweep(): void {
    this.ticks++;
    if (this.pending.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
      return;
    }
    for (const watched of this.pending) {
      if (this.ticks >= watched.dueAt) watched.expire();
    }
  }
}
