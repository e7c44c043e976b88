/**
 * What every backend that talks to a server shares (SPEC §4): a deadline on each command
 * (`timeoutMs`, covering time spent waiting to reconnect) and `failOpen`, which turns a server's
 * errors and timeouts into misses and no-ops reported as `error` events instead of rejections.
 */
import { BaseCache, type CacheParams } from '../base.js';
import type { Codec } from '../codec.js';
import { CacheServerError } from '../errors.js';
import { describe } from '../keys.js';
import { loadRedisClients } from './ioredis.js';
import { type BusConnections, type L1Options, type L1Settings, L1Tier, l1Settings, type Primitives } from './l1.js';

export interface ServerOptions {
  /** How long one command may take, waiting for a connection included, in milliseconds. @default 1000 */
  timeoutMs?: number;
  /** Answer a server failure with a miss (reads) or a no-op (writes) and an `error` event, instead of rejecting. @default false */
  failOpen?: boolean;
  /** An in-process copy of recent entries in front of the server, invalidated across processes (SPEC §10). */
  l1?: L1Options;
}

export const DEFAULT_TIMEOUT_MS = 1000;

export abstract class ServerCache<P> extends BaseCache<P> {
  protected readonly timeoutMs: number;
  protected readonly failOpen: boolean;
  private readonly failures: FailurePolicy;
  /** The in-process tier in front of the server, when `options.l1` asks for one. */
  readonly l1: L1Tier<P> | undefined;

  constructor(params: CacheParams<ServerOptions>, codec: Codec<P>) {
    super(params, codec);
    const options = (params.options ?? {}) as ServerOptions;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (typeof this.timeoutMs !== 'number' || !(this.timeoutMs > 0) || !Number.isFinite(this.timeoutMs)) {
      throw this.typeError(`options.timeoutMs must be a positive number of milliseconds (got ${describe(this.timeoutMs)})`);
    }
    this.failOpen = options.failOpen ?? false;
    if (typeof this.failOpen !== 'boolean') throw this.typeError(`options.failOpen must be a boolean (got ${describe(this.failOpen)})`);
    this.failures = {
      watch: new DeadlineWatch(this.timeoutMs),
      timedOut: (server) => new CacheServerError(`cache '${this.alias}': server ${server} did not answer within ${this.timeoutMs} ms`, server),
      settle: (pending, error) => this.settleFailure(pending, error),
    };
    const l1 = l1Settings(options.l1, (message) => this.typeError(message));
    if (l1 !== undefined) {
      this.l1 = L1Tier.install(this as unknown as Primitives<P>, l1, {
        clock: () => this.now(),
        keep: codec.forKeeping?.bind(codec),
        channelName: this.keyPrefix,
        readsCarryExpiry: this.readsCarryExpiry,
        openBus: l1.bus === undefined && !this.hasOwnBus ? undefined : () => this.openL1Bus(l1),
        reportError: (error) => this.reportError(error),
      });
    }
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
    const connect = () => new ioredis.Redis(settings.bus!, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: (attempt: number) => Math.min(attempt * 100, 1000) });
    const publisher = connect();
    publisher.on('error', () => undefined); // the subscriber reports the bus's troubles
    publisher.connect().catch(() => undefined);
    return { publisher, subscriber: connect(), ownsPublisher: true };
  }

  /**
   * Runs one server command under the deadline. On failure: with failOpen, reports the error and
   * answers `fallback` (a miss or a no-op); without, rejects with a CacheServerError naming `server`.
   * Errors that are the caller's fault (`isServerError` false) are always rethrown as they are.
   */
  protected guard<T>(server: string, fallback: T, command: () => Promise<T>): Promise<T>;
  /** The same, with `answer` turning the server's reply into the result (saving a `.then` per call). */
  protected guard<T, R>(server: string, fallback: T, command: () => Promise<R>, answer: (reply: R) => T): Promise<T>;
  protected guard<T, R>(server: string, fallback: T, command: () => Promise<R>, answer?: (reply: R) => T): Promise<T> {
    // This runs on every cache call: one promise, one small object, no timer of its own (the
    // watch sweeps deadlines).
    const watch = this.failures.watch;
    const pending = new PendingCommand<T>(this.failures, server, fallback, watch.ticks);
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

  /** Settles a command that failed or ran out of time: a rejection, or with failOpen a fallback. */
  private settleFailure<T>(pending: PendingCommand<T>, error: unknown): void {
    if (!this.isServerError(error)) return pending.reject(error);
    const server = pending.server;
    const failure =
      error instanceof CacheServerError ? error : new CacheServerError(`cache '${this.alias}': server ${server} failed: ${(error as Error).message}`, server, error);
    if (!this.failOpen) return pending.reject(failure);
    this.reportError(failure);
    pending.resolve(pending.fallback);
  }

  /** Whether an error came from the server or the connection (true), or from the call itself (false). */
  protected isServerError(error: unknown): boolean {
    return !(error instanceof TypeError) && !(error instanceof RangeError);
  }
}

interface Watched {
  /** The watch's tick count when the command started. */
  startedAt: number;
  expire(): void;
}

/** One command in flight under `guard`: settled once, by its outcome or by its deadline. */
class PendingCommand<T> implements Watched {
  resolve!: (value: T) => void;
  reject!: (error: unknown) => void;

  constructor(
    private readonly policy: FailurePolicy,
    readonly server: string,
    readonly fallback: T,
    readonly startedAt: number,
  ) {}

  succeed(value: T): void {
    // A command that settles after its deadline no longer matters to anyone.
    if (this.policy.watch.release(this)) this.resolve(value);
  }

  fail(error: unknown): void {
    if (this.policy.watch.release(this)) this.policy.settle(this, error);
  }

  expire(): void {
    this.fail(this.policy.timedOut(this.server));
  }
}

/** What a pending command needs of its cache, made once per cache. */
interface FailurePolicy {
  watch: DeadlineWatch;
  timedOut(server: string): CacheServerError;
  settle<T>(pending: PendingCommand<T>, error: unknown): void;
}

/**
 * Deadlines for the commands in flight, checked by one interval timer that runs only while commands
 * are pending, instead of a timer per command (which costs more than the rest of a cache hit's CPU).
 * The timer ticks TICKS times per timeout; a command fails at the TICKS-th tick after its start,
 * so between (TICKS - 1) / TICKS of `timeoutMs` and `timeoutMs` after it.
 */
class DeadlineWatch {
  ticks = 0;
  private static readonly TICKS = 10;
  private readonly pending = new Set<Watched>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly timeoutMs: number) {}

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
      if (this.ticks - watched.startedAt >= DeadlineWatch.TICKS) watched.expire();
    }
  }
}
