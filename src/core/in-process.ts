/**
 * The in-process hit contract: what a store in this process (locmem, an L1) promises so that a hit
 * may be answered from memory, without a read and without a turn of the event loop. The store hands
 * out its entries and standings, and retires each (`retired` turns true) the moment it stops
 * vouching for it; a caller that kept one checks that flag instead of reading again. A backend
 * hands its store to the base once, with `BaseCache.answerFromMemory`.
 */
import type { BaseCache } from './base.js';
import type { CacheStats } from './observe.js';
import { Unreadable } from './payloads.js';
import type { CachedEntry, EntryState } from './types.js';
import type { Entry } from './seam.js';
import type { Judged, TagVersions } from '../tags/versions.js';
import type { CacheContext } from './context.js';

/**
 * What a store in this process vouches for about one key: an entry it holds, or that the key has no
 * entry. `retired` turns true once that stops being so (the key is written, deleted, culled or
 * forgotten), so whoever kept an answer that stands on it knows to read again.
 */
export interface InProcessStanding {
  readonly retired: boolean;
  /**
   * Set by a caller that keeps it past the call that read it (`holdFresh`): from then on the key's
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
  /** Whether `entry`, answered for a key before, still holds that key's live value; if so the use is counted as a read counts it. */
  usedAgain(entry: InProcessEntry<P>): boolean;
  /**
   * Writes the value at once, given the entry `last` answered for the key before (written into, where
   * the store still holds it and nobody keeps it); answers the entry that now holds the value.
   */
  writeAfter(key: string, last: InProcessEntry<P> | undefined, payload: P, expiresAt: number | null): InProcessEntry<P>;
}

/** A fresh string a cache holds in this process, kept by a caller that asks for it again (`holdFresh`, `answerHeld`). */
export interface HeldString {
  readonly cache: BaseCache;
  readonly key: string;
  readonly value: string;
  readonly entry: InProcessEntry<unknown>;
  /** Until when it may be answered again: the soonest `trustedUntil` of the entries it stands on, its `freshUntil`, or Infinity. */
  readonly trustedUntil: number;
  readonly recency: InProcessRecency;
  /** The tags it was stored with, which go to whatever it is answered into. */
  readonly tags: readonly string[];
  /** The made keys of its tags' versions, and their entries as held when it was read: a new version retires one. */
  readonly tagKeys: readonly string[];
  readonly tagEntries: ReadonlyArray<InProcessStanding>;
}

const NO_TAGS: readonly string[] = Object.freeze([]);
const NO_ENTRIES: ReadonlyArray<InProcessStanding> = Object.freeze([]);

/** An entry this process holds, judged against its tags' versions as this process holds them. */
interface JudgedInProcess<P> {
  judged: Judged<P>;
  tagKeys: readonly string[];
  tagEntries: ReadonlyArray<InProcessStanding>;
}

/** Hits answered from a store in this process: `peekFresh`, `holdFresh` and `answerHeld` of `BaseCache`. */
export class InProcessHits<P> {
  private readonly tags: TagVersions<P>;
  private readonly counts: CacheStats;

  constructor(
    private readonly host: CacheContext<P>,
    private readonly store: InProcessStore<P>,
  ) {
    this.tags = host.tags;
    this.counts = host.counts;
  }

  /** The fresh entry under a made key when this process can tell at once, else undefined. */
  peekFresh<T>(made: string): CachedEntry<T> | undefined {
    const entry = this.store.held(made);
    if (entry === undefined) return undefined;
    const inProcess = this.judged(entry);
    if (inProcess === undefined || inProcess.judged.state !== 'fresh') return undefined;
    const { payload, stamp } = inProcess.judged;
    const value = this.host.payloads.readable(made, payload, true);
    if (value instanceof Unreadable) return undefined;
    // Only hits count here: an answer of undefined sends the caller to read the entry, which counts it.
    this.counts.hits++;
    return { value: value as T, tags: stamp?.tags ?? NO_TAGS, state: 'fresh' as EntryState };
  }

  /** A fresh string under a made key as a `HeldString` (anything else fresh as an entry), else undefined. */
  holdFresh(made: string): HeldString | CachedEntry<unknown> | undefined {
    const entry = this.store.held(made);
    if (entry === undefined) return undefined;
    const inProcess = this.judged(entry);
    if (inProcess === undefined || inProcess.judged.state !== 'fresh') return undefined;
    const { judged, tagKeys, tagEntries } = inProcess;
    const value = this.host.payloads.readable(made, judged.payload, true);
    if (value instanceof Unreadable) return undefined;
    // Only hits count here: an answer of undefined sends the caller to read the entry, which counts it.
    this.counts.hits++;
    const recency = this.store.recency;
    const tags = judged.stamp?.tags ?? NO_TAGS;
    if (typeof value !== 'string') return { value, tags, state: 'fresh' };
    // Held while every entry it stands on is trusted, and no longer than it is fresh.
    let trustedUntil = Math.min(entry.trustedUntil ?? Infinity, judged.stamp?.freshUntil ?? Infinity);
    entry.kept = true;
    for (const tagEntry of tagEntries) {
      trustedUntil = Math.min(trustedUntil, tagEntry.trustedUntil ?? Infinity);
      tagEntry.kept = true;
    }
    return { cache: this.host.cache, key: made, value, entry: entry as InProcessEntry<unknown>, trustedUntil, recency, tags, tagKeys, tagEntries };
  }

  /** The kept string again, counted as a hit, while everything it stands on is still the store's and fresh at `now`. */
  answerHeld(held: HeldString, now: number): string | undefined {
    const entry = held.entry;
    if (entry.retired) return undefined;
    if (held.trustedUntil <= now || (entry.expiresAt !== null && entry.expiresAt <= now)) return undefined;
    const tagEntries = held.tagEntries;
    for (let i = 0; i < tagEntries.length; i++) if (tagEntries[i]!.retired) return undefined;
    if (held.recency.crowded) {
      held.recency.touch(held.key);
      // The versions of its tags are in use as long as the entry is: they must not be culled first.
      for (let i = 0; i < held.tagKeys.length; i++) held.recency.touch(held.tagKeys[i]!);
    }
    this.counts.hits++;
    return held.value;
  }

  /**
   * An entry this process holds, judged against its tags' versions as this process holds them, with
   * the entries of those versions (or the absence that stands for a tag never invalidated); undefined
   * when this process cannot tell a version.
   */
  private judged(entry: InProcessEntry<P>): JudgedInProcess<P> | undefined {
    const stamped = this.host.codec.unstamp?.(entry.payload);
    if (stamped === undefined) return { judged: { payload: entry.payload, stamp: undefined, state: 'fresh' }, tagKeys: NO_TAGS, tagEntries: NO_ENTRIES };
    const versions = new Map<string, string | undefined>();
    const tagKeys: string[] = [];
    const tagEntries: InProcessStanding[] = [];
    for (const tag of stamped.stamp.tags) {
      const tagKey = this.tags.keyOf(tag);
      const held = this.store.held(tagKey);
      if (held !== undefined) {
        const version = this.tags.versionIn(tagKey, held);
        if (version === undefined) return undefined;
        versions.set(tag, version);
        tagEntries.push(held);
      } else {
        // A tag never invalidated has no version: its absence stands in for it, until the key is written.
        const absence = this.store.heldAbsence(tagKey);
        if (absence === undefined) return undefined;
        versions.set(tag, undefined);
        tagEntries.push(absence);
      }
      tagKeys.push(tagKey);
    }
    return { judged: { payload: stamped.payload, stamp: stamped.stamp, state: this.tags.stateOf(stamped.stamp, versions) }, tagKeys, tagEntries };
  }
}
