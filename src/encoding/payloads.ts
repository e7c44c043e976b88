/**
 * Values to payloads and back, for one cache: encoding with the cache named in the error, decoding
 * to a fresh copy (or, for readers that never mutate, one shared value per payload of a store in
 * this process), and what a read does with a payload it cannot decode.
 */
import { type Codec, decodeStamped } from './codec.js';
import type { Reporter } from '../observation/reporting.js';
import { cacheTypeError } from '../errors/errors.js';
import { type BackendPrimitives } from '../store/backend-primitives.js';
import { andThen, type MaybePromise, nothing } from '../store/maybe-promise.js';

/**
 * What a read found under a key whose payload cannot be decoded (damaged, or written in a format
 * this process does not read): the read answers a miss, once the entry's `removal` has settled.
 */
export class Unreadable {
  constructor(
    readonly error: Error,
    readonly removal: MaybePromise<void>,
  ) {}
}

/** `answer`, once those of `removals` that are still under way have settled. */
export function afterRemovals<T>(removals: Array<MaybePromise<void>>, answer: T): MaybePromise<T> {
  if (removals.length === 0) return answer;
  const pending = removals.filter((removal) => removal instanceof Promise);
  return pending.length === 0 ? answer : Promise.all(pending).then(() => answer);
}

export class Payloads<P> {
  /** Decoded values for shared readers, by payload; they go when the payload is overwritten or culled. */
  private readonly sharedValues = new WeakMap<object, unknown>();
  /** Whether a stored entry's payload stays the same object from read to read (a store in this process). */
  sharesValues = false;

  constructor(
    private readonly alias: string,
    readonly codec: Codec<P>,
    private readonly primitives: BackendPrimitives<P>,
    private readonly reporter: Reporter,
  ) {}

  /** The payload of a value whose readers never mutate it: kept as it is where the store is in this process (`Codec.hold`). */
  encodeHeld(value: unknown, made: string): P {
    return this.codec.hold === undefined ? this.encode(value, made) : this.codec.hold(value);
  }

  encode(value: unknown, made: string): P {
    try {
      return this.codec.encode(value);
    } catch (error) {
      throw cacheTypeError(this.alias, `cannot store the value for key '${made}': ${(error as Error).message}`, error);
    }
  }

  /**
   * The value of a payload read under `made`; Unreadable when it cannot be decoded, which every
   * backend treats as filebased treats a damaged file: the entry is removed and read as a
   * miss, and reported once per cause. A payload from a serializer this process cannot read (a
   * rolling deploy across Node versions on one server) then costs one miss, not a failing read.
   * A `stamped` payload, its stamp judged already, is read past its stamp.
   */
  readable(made: string, payload: P, shared: boolean, stamped = false): unknown {
    try {
      return this.decode(payload, shared, stamped);
    } catch (cause) {
      return this.unreadable(made, cause, undefined);
    }
  }

  /**
   * `readable` of a payload that is overwritten by `replace` when it cannot be decoded, rather than
   * removed (a tag's version, see `TagVersions.versionIn`).
   */
  readableOrReplaced(made: string, payload: P, replace: () => MaybePromise<void>): unknown {
    try {
      return this.decode(payload, false, false);
    } catch (cause) {
      return this.unreadable(made, cause, replace);
    }
  }

  /** What a payload that cannot be decoded reads as: reported, and removed or replaced. */
  private unreadable(made: string, cause: unknown, replace: (() => MaybePromise<void>) | undefined): Unreadable {
    const reason = cause instanceof Error ? cause.message : String(cause);
    const outcome = replace === undefined ? 'removed and read as a miss' : 'replaced by a new version, and its entries read as misses';
    const error = cacheTypeError(this.alias, `the entry under key '${made}' cannot be decoded, so it was ${outcome}: ${reason}`, cause);
    this.reporter.report(error, `an entry cannot be decoded: ${reason}`);
    let removal: MaybePromise<void>;
    try {
      removal = replace === undefined ? andThen(this.primitives.remove([made]), nothing) : replace();
    } catch (failure) {
      removal = Promise.reject(failure);
    }
    if (removal instanceof Promise)
      removal = removal.catch((failure: unknown) => void this.reporter.report(failure instanceof Error ? failure : new Error(String(failure))));
    return new Unreadable(error, removal);
  }

  /** A stored payload's value: a fresh copy, or for shared readers one decoded value per payload. */
  private decode(payload: P, shared: boolean, stamped: boolean): unknown {
    if (!shared || !this.sharesValues || typeof payload !== 'object' || payload === null) return this.decodeOnce(payload, stamped);
    const held = this.codec.heldValue?.(payload, stamped);
    if (held !== undefined) return held;
    if (this.sharedValues.has(payload)) return this.sharedValues.get(payload);
    const value = this.decodeOnce(payload, stamped);
    this.sharedValues.set(payload, value);
    return value;
  }

  private decodeOnce(payload: P, stamped: boolean): unknown {
    return stamped ? decodeStamped(this.codec, payload) : this.codec.decode(payload);
  }
}
