/**
 * `incr` and `decr` (the server adds where it can; otherwise, or for an integer stamped with tags,
 * the value is read and written back), and `incrVersion`, which reads what it moves. Read-modify-write goes one at a time per key in this
 * process, so that concurrent callers lose nothing.
 */
import type { SharedByParts } from './shared-by-parts.js';
import { cacheTypeError, describe, KeyNotFoundError } from '../errors/errors.js';
import { type CacheKey } from '../keys/cache-keys.js';
import { Unreadable } from '../encoding/payloads.js';
import { throwRefusal } from '../store/backend-primitives.js';
import { type Entry } from '../store/cache-types.js';
import type { VersionOption } from '../store/cache-types.js';
import { outlived } from '../tags/expiry-stamps.js';

export class Counters<P> {
  /** The read-modify-write in flight per made key: one entry per key being added to, gone once it settles. */
  private readonly pending = new Map<string, Promise<number>>();

  constructor(private readonly shared: SharedByParts<P>) {}

  async incr(key: CacheKey, delta: number, options: VersionOption | undefined): Promise<number> {
    const { calls, keys } = this.shared;
    calls.delta(delta, 'incr/decr');
    return this.add(key, keys.made(key, calls.versionOf(options, 'incr')), delta);
  }

  /** `incr` by `-delta`: observed as the decr it is, not as an incr too. */
  async decr(key: CacheKey, delta: number, options: VersionOption | undefined): Promise<number> {
    const { calls } = this.shared;
    calls.delta(delta, 'incr/decr');
    calls.versionOf(options, 'decr');
    return this.incr(key, -delta, options);
  }

  async incrVersion(key: CacheKey, delta: number, options: VersionOption | undefined): Promise<number> {
    const { calls, keys, cache } = this.shared;
    calls.delta(delta, 'incrVersion/decrVersion');
    const version = calls.versionOf(options, 'incrVersion') ?? cache.version;
    const oldKey = keys.made(key, version);
    const primitives = this.shared.primitives;
    const entry = (await primitives.readForUpdate([oldKey])).get(oldKey);
    if (entry === undefined || outlived(this.shared, entry.payload)) throw new KeyNotFoundError(String(key), this.shared.alias);
    throwRefusal(await primitives.write([[keys.made(key, version + delta), entry.payload]], this.expiryOf(entry)));
    await primitives.remove([oldKey]);
    return version + delta;
  }

  /** `incrVersion` by `-delta`: observed as the decrVersion it is, not as an incrVersion too. */
  async decrVersion(key: CacheKey, delta: number, options: VersionOption | undefined): Promise<number> {
    const { calls } = this.shared;
    calls.delta(delta, 'incrVersion/decrVersion');
    calls.versionOf(options, 'decrVersion');
    return this.incrVersion(key, -delta, options);
  }

  /** Adds `delta` to the integer under `made` (user key `key`); KeyNotFoundError when missing. */
  private async add(key: CacheKey, made: string, delta: number): Promise<number> {
    const { primitives, codec, payloads } = this.shared;
    if (primitives.incrBy === undefined) return this.inOrder(key, made, delta);
    let value: number | undefined;
    try {
      value = await primitives.incrBy(made, delta);
    } catch (error) {
      // Not a plain integer: an integer stamped with tags is added to by read-modify-write.
      if (!(error instanceof TypeError) || codec.unstamp === undefined) throw error;
      const entry = (await primitives.readForUpdate([made])).get(made);
      if (entry === undefined) throw error;
      if (codec.unstamp(entry.payload) !== undefined) return this.inOrder(key, made, delta);
      // One that cannot be decoded is removed, as a read removes it: then there is nothing to add to.
      const value = payloads.readable(made, entry.payload, false);
      if (!(value instanceof Unreadable)) throw error;
      await value.removal;
      throw new KeyNotFoundError(String(key), this.shared.alias);
    }
    if (value === undefined) throw new KeyNotFoundError(String(key), this.shared.alias);
    return value;
  }

  private async inOrder(key: CacheKey, made: string, delta: number): Promise<number> {
    const previous = this.pending.get(made) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => this.addToStored(key, made, delta));
    this.pending.set(made, next);
    try {
      return await next;
    } finally {
      if (this.pending.get(made) === next) this.pending.delete(made);
    }
  }

  private async addToStored(key: CacheKey, made: string, delta: number): Promise<number> {
    const { primitives, codec, payloads, tags, alias } = this.shared;
    const entry = (await primitives.readForUpdate([made])).get(made);
    if (entry === undefined) throw new KeyNotFoundError(String(key), this.shared.alias);
    const stamped = codec.unstamp?.(entry.payload);
    if (stamped !== undefined && (await tags.statesOf([stamped.stamp]))[0] !== 'fresh') throw new KeyNotFoundError(String(key), this.shared.alias);
    const current = payloads.readable(made, stamped?.payload ?? entry.payload, false);
    if (current instanceof Unreadable) {
      await current.removal;
      throw new KeyNotFoundError(String(key), this.shared.alias);
    }
    if (typeof current !== 'number' || !Number.isSafeInteger(current)) {
      throw cacheTypeError(alias, `cannot incr/decr key '${key}': its value is not an integer (got ${describe(current)})`);
    }
    const value = current + delta;
    const payload = stamped === undefined ? codec.encode(value) : codec.stamp!(codec.encode(value), stamped.stamp);
    throwRefusal(await primitives.write([[made, payload]], this.expiryOf(entry)));
    return value;
  }

  private expiryOf(entry: Entry<P>): number | null {
    if (entry.expiresAt === undefined) {
      throw new Error(`cache '${this.shared.alias}': backend ${this.shared.cache.constructor.name} returned an entry without expiresAt from read(keys, true)`);
    }
    return entry.expiresAt;
  }
}
