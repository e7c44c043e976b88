/**
 * Entries that carry their expiry in their stamp, where the store expires them by a server's clock
 * that the cache's own does not move (see `BackendContract.expiresByServerClock`): a read judges the
 * stamp by the cache's clock (`TagVersions.stateOf`), as Rails judges an entry's own `expires_at`,
 * and the server, told the same expiry, frees the entry. An integer the server adds to in place
 * carries none: INCRBY keeps the server's expiry, which alone judges it.
 */
import { storedExpiry } from '../store/call-options.js';
import { type EntryStamp, NO_TAGS } from '../encoding/stamps.js';
import type { TagHost } from './tag-host.js';
import { copyWith } from '../store/copies.js';

type StampingHost<P> = Pick<TagHost<P>, 'codec' | 'stampsExpiry' | 'cache'>;

/** `payload` as a write with neither tags nor stale windows stores it until `expiresAt`: stamped with that where entries carry their expiry. */
export function withOwnExpiry<P>(host: StampingHost<P>, payload: P, expiresAt: number | null): P {
  const codec = host.codec;
  if (!host.stampsExpiry || expiresAt === null || codec.isCounter?.(payload)) return payload;
  if (codec.stampExpiry !== undefined) return codec.stampExpiry(payload, expiresAt);
  return codec.stamp!(payload, { tags: NO_TAGS as string[], versions: NO_TAGS as string[], freshUntil: expiresAt });
}

/** Whether an entry's stamp records when it stops being fresh, or stale windows past that. */
function recordsFreshness(stamp: EntryStamp): boolean {
  return stamp.freshUntil !== undefined || (stamp.staleWhileRevalidate ?? 0) > 0 || (stamp.staleIfError ?? 0) > 0;
}

/** Whether the entry stamped `stamp` is past the end of its stored life at `now` (its stale windows too): dead, wherever it is still held. */
export function hasOutlived(stamp: EntryStamp, now: number): boolean {
  const { freshUntil, staleWhileRevalidate = 0, staleIfError = 0 } = stamp;
  return freshUntil !== undefined && freshUntil + Math.max(staleWhileRevalidate, staleIfError) <= now;
}

/** Whether a stored payload's stamp says its entry is past its life (see `hasOutlived`). */
export function outlived<P>(host: StampingHost<P>, payload: P): boolean {
  const stamped = host.codec.unstamp?.(payload);
  return stamped !== undefined && hasOutlived(stamped.stamp, host.cache.now());
}

/** What `touch` does to a stored entry: writes it again (its stamp moved) until `storedExpiry`, or leaves it dead. */
export type Retimed<P> = { payload: P; storedExpiry: number | null } | 'outlived';

/**
 * The stored `payload` as `touch` gives it the expiry `expiresAt`, when its stamp must move with
 * the timeout: where it records when it stops being fresh (stale windows, or entries that carry
 * their expiry), or where entries carry their expiry and it has no stamp yet. Undefined where the
 * store's own expiry is all there is to move; 'outlived' for an entry past its life, which a touch
 * does not revive.
 */
export function retimed<P>(host: StampingHost<P>, payload: P, expiresAt: number | null): Retimed<P> | undefined {
  const codec = host.codec;
  const stamped = codec.unstamp!(payload);
  if (stamped === undefined) {
    const carrying = withOwnExpiry(host, payload, expiresAt);
    return carrying === payload ? undefined : { payload: carrying, storedExpiry: expiresAt };
  }
  const { stamp } = stamped;
  if (hasOutlived(stamp, host.cache.now())) return 'outlived';
  if (!host.stampsExpiry && !recordsFreshness(stamp)) return undefined;
  const moved: EntryStamp = copyWith(stamp, { freshUntil: expiresAt ?? undefined });
  if (expiresAt === null) delete moved.freshUntil;
  const { staleWhileRevalidate = 0, staleIfError = 0 } = stamp;
  return { payload: codec.stamp!(stamped.payload, moved), storedExpiry: storedExpiry(expiresAt, { staleWhileRevalidate, staleIfError }) };
}
