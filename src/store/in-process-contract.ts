/**
 * The in-process hit contract: what a store in this process (locmem, an L1) promises so that a hit
 * may be answered from memory, without a read and without a turn of the event loop. The store hands
 * out its entries and standings, and retires each (`retired` turns true) the moment it stops
 * vouching for it; a caller that kept one checks that flag instead of reading again. A backend
 * hands its store to the base once, with `BaseCache.answerFromMemory`.
 */
import type { Entry } from './cache-types.js';

/**
 * What a store in this process vouches for about one key: an entry it holds, or that the key has no
 * entry. `retired` turns true once that stops being so (the key is written, deleted, culled or
 * forgotten), so whoever kept an answer that stands on it knows to read again.
 */
export interface InProcessStanding {
  readonly retired: boolean;
  /**
   * Set by a caller that keeps it past the call that read it (`peekFreshToKeep`): from then on the key's
   * next write retires it, where a store would otherwise write into an entry nobody keeps.
   */
  kept?: boolean;
  /** Until when the store vouches for it, when that is sooner than forever (an L1's `timeout`). */
  readonly trustedUntil?: number;
}

/**
 * An entry of a store in this process, which a caller may keep and check again instead of reading it
 * again: the store sets `retired` once the entry leaves it (replaced, deleted, culled, cleared) and
 * changes `expiresAt` in place when the key is touched. A store may write a new value into an entry
 * nobody keeps (`kept` false) instead of replacing it.
 */
export interface InProcessEntry<P> extends Entry<P> {
  expiresAt: number | null;
  retired: boolean;
  kept: boolean;
  /** Until when the store vouches for the entry, when that is sooner than its expiry (an L1's `timeout`). */
  trustedUntil?: number;
}

/** How a store in this process learns which of its entries are in use, for culling the others first. */
export interface InProcessRecency {
  /**
   * Whether the store is full enough for the order of use to matter soon. While it is not, kept
   * entries answer without reporting their hits: nothing is culled before it fills up.
   */
  crowded: boolean;
  /** Reports a hit on a made key. */
  touch(key: string): void;
}

/** A store in this process whose hits may be answered from memory (an L1 in front of a server). */
export interface InProcessStore<P> {
  /** The live entry under a made key, if this process holds it and vouches for it; never asks a server. */
  held(key: string): InProcessEntry<P> | undefined;
  /** That no live entry holds the made key, while this process knows it without a server; undefined when it cannot tell. */
  heldAbsence(key: string): InProcessStanding | undefined;
  readonly recency: InProcessRecency;
}

/**
 * A store that is wholly in this process (locmem): its entries are the store's own objects, so a
 * payload stays the same object from read to read, and an entry a caller remembers (see `MadeKey`)
 * is used again or written into without looking its key up.
 */
export interface LocalStore<P> extends InProcessStore<P> {
  /** The most entries it holds: what remembers its entries by key is sized by it (see `KeyMaker.holdEntriesOf`). */
  readonly capacity: number;
  /** Whether `entry`, answered for a key before, still holds that key's live value; if so the use is counted as a read counts it. */
  usedAgain(entry: InProcessEntry<P>): boolean;
  /**
   * Writes the value at once, given the entry `last` answered for the key before (written into, where
   * the store still holds it and nobody keeps it); answers the entry that now holds the value.
   */
  writeAfter(key: string, last: InProcessEntry<P> | undefined, payload: P, expiresAt: number | null): InProcessEntry<P>;
}

/** What answers a `HeldString` again: the in-process hits of the cache that held it. */
export interface HeldStringKeeper {
  /** The kept string again, counted as a hit, while everything it stands on is still the store's and fresh at `now`; else undefined. */
  answerAgain(held: HeldString, now: number): string | undefined;
}

/** A fresh string a cache holds in this process, kept by a caller that asks for it again (`peekFreshToKeep`, then `held.keeper.answerAgain`). */
export interface HeldString {
  /** The cache that holds it: only that cache answers it again. */
  readonly cache: object;
  /** Its cache's part that answers it again: called straight from the caller's hot path, with no hop through the cache. */
  readonly keeper: HeldStringKeeper;
  readonly key: string;
  readonly value: string;
  readonly entry: InProcessEntry<unknown>;
  /** Until when it may be answered again: the soonest `trustedUntil` of the entries it stands on, its `freshUntil`, or Infinity. */
  readonly trustedUntil: number;
  readonly recency: InProcessRecency;
  /** The tags it was stored with, which go to whatever it is answered into. */
  readonly tags: readonly string[];
  /** The cache contexts it was stored varying on, which go there too. */
  readonly contexts: readonly string[];
  /** Epoch seconds when it stops being fresh, where it was stored saying so: what is left of its lifetime goes there too. */
  readonly freshUntil: number | undefined;
  /** The made keys of its tags' versions, and their entries as held when it was read: a new version retires one. */
  readonly tagKeys: readonly string[];
  readonly tagEntries: ReadonlyArray<InProcessStanding>;
}
