/**
 * `getOrSet` and `add` over the flight engine (src/flight): the cached value, else one computation per
 * key in this process whose value is added; a stale entry answered at once while one refresh runs
 * behind it; an entry past its stale window standing in when computing fails. An entry that is there
 * but dead (invalidated, or kept only for its stale window) is replaced under a lock, so that one
 * adder in all processes wins.
 */
import { hasRunOut, storedExpiry, type WriteArgs } from '../store/call-options.js';
import type { SharedByParts } from './shared-by-parts.js';
import { LOCK_SECONDS } from '../flight/index.js';
import { Unreadable } from '../encoding/payloads.js';
import { throwRefusal } from '../store/backend-primitives.js';
import type { TimeoutArg } from '../store/cache-types.js';
import type { CacheKey } from '../keys/cache-keys.js';
import type { ToldOutcome } from '../observation/observation.js';
import { integrationOf } from './integration.js';
import { copyWith } from '../store/copies.js';

export class GetOrSet<P> {
  constructor(private readonly shared: SharedByParts<P>) {}

  /** `getOrSet`; `found`, when it is observed, is told whether the key was found fresh, found stale or not found (then computed). */
  async run<T>(key: CacheKey, valueOrFactory: unknown, timeoutOrOptions: TimeoutArg, found?: ToldOutcome): Promise<T> {
    const { primitives, tags, payloads, counts, cache, calls, keys } = this.shared;
    const args = calls.write(timeoutOrOptions, 'getOrSet');
    const made = keys.made(key, args.version);
    const lookedAt = integrationOf(cache).flights.mark();
    const hit = await primitives.readOne(made);
    const judged = hit === undefined ? undefined : await tags.judged(hit.payload);
    let state = judged?.state;
    let held: unknown;
    if (state !== undefined) {
      held = payloads.readable(made, judged!.payload, false);
      if (held instanceof Unreadable) {
        await held.removal;
        state = undefined;
      }
    }
    if (state === 'fresh') counts.hits++;
    else if (state === 'stale') counts.staleHits++;
    else counts.misses++;
    if (found !== undefined) found.outcome = state === 'fresh' ? 'hit' : state === 'stale' ? 'stale' : 'miss';
    if (state === 'fresh') return held as T;
    if (state === 'stale') {
      this.refreshBehind(made, valueOrFactory, timeoutOrOptions);
      return held as T;
    }
    // The tags' versions from before the value is computed: an invalidation during it drops the value,
    // and a caller that comes after that invalidation computes its own (see `Flight.answers`).
    const asOf = args.asOf ?? (args.tags === undefined || hasRunOut(args.expiresAt) ? undefined : await cache.readTagSnapshot(args.tags));
    let stored: P;
    try {
      stored = await integrationOf(cache).flights.share('getOrSet', made, () => this.computeAndAdd(made, valueOrFactory, copyWith(args, { asOf })), {
        since: lookedAt,
        asOf: asOf?.generation,
      });
    } catch (error) {
      if (state !== 'error') throw error;
      cache.reportError(error as Error);
      return held as T;
    }
    // What the cache then holds, read back: one that cannot be is removed, and nothing is answered.
    const value = payloads.readable(made, stored, false);
    if (!(value instanceof Unreadable)) return value as T;
    await value.removal;
    throw value.error;
  }

  /**
   * Stores the entry when no fresh entry holds the key (see the top of this file); counts it as a
   * write when it did.
   */
  async addOverDead(made: string, payload: P, expiresAt: number | null): Promise<boolean> {
    const added = await this.replaceDead(made, payload, expiresAt);
    if (added) this.shared.counts.sets++;
    return added;
  }

  private async replaceDead(made: string, payload: P, expiresAt: number | null): Promise<boolean> {
    const { primitives, tags, cache } = this.shared;
    if (await primitives.insert(made, payload, expiresAt)) return true;
    const entry = await primitives.readOne(made);
    if (entry === undefined) return primitives.insert(made, payload, expiresAt);
    if ((await tags.unstamped(entry.payload)) !== undefined) return false;
    const release = await cache.acquireLock(`replacing:${made}`, LOCK_SECONDS);
    if (release === undefined) return false;
    try {
      const again = await primitives.readOne(made);
      if (again !== undefined && (await tags.unstamped(again.payload)) !== undefined) return false;
      throwRefusal(await primitives.write([[made, payload]], expiresAt));
      return true;
    } finally {
      await release();
    }
  }

  /**
   * Recomputes a stale entry behind the callers that were answered with it: once per key in this
   * process, and once in every process sharing the store (the first to take the lock). A failure
   * leaves the stale entry and is reported as an `error` event.
   */
  private refreshBehind(made: string, valueOrFactory: unknown, timeoutOrOptions: TimeoutArg): void {
    const { primitives, tags, payloads, calls, cache } = this.shared;
    const refresh = async () => {
      // Read stale before another process's refresh wrote the entry and let go of the lock: done already.
      const current = await primitives.readOne(made);
      if (current !== undefined && (await tags.unstamped(current.payload)) !== undefined) return;
      const given = calls.write(timeoutOrOptions, 'getOrSet');
      const asOf = given.asOf ?? (given.tags === undefined ? undefined : await cache.readTagSnapshot(given.tags));
      const value = await (typeof valueOrFactory === 'function' ? valueOrFactory() : valueOrFactory);
      // The timeout counts from now, not from when the stale entry was read.
      const { expiresAt, tags: tagList, windows } = calls.write(timeoutOrOptions, 'getOrSet');
      if (hasRunOut(expiresAt)) return;
      const payload = await tags.stampedWith(payloads.encode(value, made), { tags: tagList, windows, expiresAt, asOf });
      if (payload !== undefined) throwRefusal(await primitives.write([[made, payload]], storedExpiry(expiresAt, windows)));
    };
    integrationOf(cache).refreshes.behind([{ key: `getOrSet\u0000${made}`, lockName: `refresh:${made}` }], refresh, (error) => cache.reportError(error));
  }

  /** Computes the value and adds it; answers the value's own payload of what the cache then holds. */
  private async computeAndAdd(made: string, valueOrFactory: unknown, { expiresAt, tags: tagList, windows, asOf }: WriteArgs): Promise<P> {
    const { primitives, tags, payloads, cache } = this.shared;
    const value = await (typeof valueOrFactory === 'function' ? valueOrFactory() : valueOrFactory);
    const payload = payloads.encode(value, made);
    if (hasRunOut(expiresAt) || cache.unreachable) return payload;
    const stamped = await tags.stampedWith(payload, { tags: tagList, windows, expiresAt, asOf });
    if (stamped === undefined) return payload;
    await this.addOverDead(made, stamped, storedExpiry(expiresAt, windows));
    const stored = await primitives.readOne(made);
    const live = stored === undefined ? undefined : await tags.unstamped(stored.payload);
    return live ?? payload;
  }
}
