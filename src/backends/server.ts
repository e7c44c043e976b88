/**
 * What every backend that talks to a server shares (SPEC §4): a deadline on each command
 * (`timeoutMs`, covering time spent waiting to reconnect) and `failOpen`, which turns a server's
 * errors and timeouts into misses and no-ops reported as `error` events instead of rejections.
 */
import { BaseCache, type CacheParams } from '../base.js';
import type { Codec } from '../codec.js';
import { CacheServerError } from '../errors.js';
import { describe } from '../keys.js';

export interface ServerOptions {
  /** How long one command may take, waiting for a connection included, in milliseconds. @default 1000 */
  timeoutMs?: number;
  /** Answer a server failure with a miss (reads) or a no-op (writes) and an `error` event, instead of rejecting. @default false */
  failOpen?: boolean;
}

export const DEFAULT_TIMEOUT_MS = 1000;

export abstract class ServerCache<P> extends BaseCache<P> {
  protected readonly timeoutMs: number;
  protected readonly failOpen: boolean;

  constructor(params: CacheParams<ServerOptions>, codec: Codec<P>) {
    super(params, codec);
    const options = (params.options ?? {}) as ServerOptions;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (typeof this.timeoutMs !== 'number' || !(this.timeoutMs > 0) || !Number.isFinite(this.timeoutMs)) {
      throw this.typeError(`options.timeoutMs must be a positive number of milliseconds (got ${describe(this.timeoutMs)})`);
    }
    this.failOpen = options.failOpen ?? false;
    if (typeof this.failOpen !== 'boolean') throw this.typeError(`options.failOpen must be a boolean (got ${describe(this.failOpen)})`);
  }

  /**
   * Runs one server command under the deadline. On failure: with failOpen, reports the error and
   * answers `fallback` (a miss or a no-op); without, rejects with a CacheServerError naming `server`.
   * Errors that are the caller's fault (`isServerError` false) are always rethrown as they are.
   */
  protected guard<T>(server: string, fallback: T, command: () => Promise<T>): Promise<T> {
    // One promise and one timer per command, no Promise.race: this runs on every cache call.
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const fail = (error: unknown) => {
        // A command that settles after its deadline no longer matters to anyone.
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (!this.isServerError(error)) return reject(error);
        const failure =
          error instanceof CacheServerError
            ? error
            : new CacheServerError(`cache '${this.alias}': server ${server} failed: ${(error as Error).message}`, server, error);
        if (!this.failOpen) return reject(failure);
        this.reportError(failure);
        resolve(fallback);
      };
      const timer = setTimeout(
        () => fail(new CacheServerError(`cache '${this.alias}': server ${server} did not answer within ${this.timeoutMs} ms`, server)),
        this.timeoutMs,
      );
      const succeed = (value: T) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(value);
      };
      try {
        command().then(succeed, fail);
      } catch (error) {
        fail(error);
      }
    });
  }

  /** Whether an error came from the server or the connection (true), or from the call itself (false). */
  protected isServerError(error: unknown): boolean {
    return !(error instanceof TypeError) && !(error instanceof RangeError);
  }
}
