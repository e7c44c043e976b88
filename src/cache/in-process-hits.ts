/**
 * Hits answered from a store in this process (see the contract in `in-process-contract.ts`): a fresh entry
 * judged against its tags' versions as this process holds them, kept by a caller and answered again
 * while every entry it stands on still stands.
 */
import type { CacheStats } from '../observation/observation.js';
import { Unreadable } from '../encoding/payloads.js';
import type { CachedEntry, EntryState } from '../store/cache-types.js';
import type { Judged, TagVersions } from '../tags/versions.js';
import type { SharedByParts } from './shared-by-parts.js';
import type { HeldString, HeldStringKeeper, InProcessEntry, InProcessStanding, InProcessStore } from '../store/in-process-contract.js';

const NO_TAGS: readonly string[] = Object.freeze([]);
const NO_ENTRIES: ReadonlyArray<InProcessStanding> = Object.freeze([]);

/** An entry this process holds, judged against its tags' versions as this process holds them. */
interface JudgedInProcess<P> {
  judged: Judged<P>;
  tagKeys: readonly string[];
  tagEntries: ReadonlyArray<InProcessStanding>;
}

/** Hits answered from a store in this process: `peekFresh` of `BaseCache` and `peekFreshToKeep` of its integration, and a held string's `answerAgain`. */
export class InProcessHits<P> implements HeldStringKeeper {
  private readonly tags: TagVersions<P>;
  private readonly counts: CacheStats;

  constructor(
    private readonly shared: SharedByParts<P>,
    private readonly store: InProcessStore<P>,
  ) {
    this.tags = shared.tags;
    this.counts = shared.counts;
  }

  /** The fresh entry under a made key when this process can tell at once, else undefined. */
  peekFresh<T>(made: string): CachedEntry<T> | undefined {
    const entry = this.store.held(made);
    if (entry === undefined) return undefined;
    const inProcess = this.judged(entry);
    if (inProcess === undefined || inProcess.judged.state !== 'fresh') return undefined;
    const { payload, stamp } = inProcess.judged;
    const value = this.shared.payloads.readable(made, payload, true);
    if (value instanceof Unreadable) return undefined;
    // Only hits count here: an answer of undefined sends the caller to read the entry, which counts it.
    this.counts.hits++;
    return { value: value as T, tags: stamp?.tags ?? NO_TAGS, state: 'fresh' as EntryState };
  }

  /** A fresh string under a made key as a `HeldString` (anything else fresh as an entry), else undefined. */
  peekFreshToKeep(made: string): HeldString | CachedEntry<unknown> | undefined {
    const entry = this.store.held(made);
    if (entry === undefined) return undefined;
    const inProcess = this.judged(entry);
    if (inProcess === undefined || inProcess.judged.state !== 'fresh') return undefined;
    const { judged, tagKeys, tagEntries } = inProcess;
    const value = this.shared.payloads.readable(made, judged.payload, true);
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
    const stamp = judged.stamp;
    return {
      cache: this.shared.cache,
      keeper: this,
      key: made,
      value,
      entry: entry as InProcessEntry<unknown>,
      trustedUntil,
      recency,
      tags,
      contexts: stamp?.contexts ?? NO_TAGS,
      freshUntil: stamp?.freshUntil,
      tagKeys,
      tagEntries,
    };
  }

  /** The kept string again, counted as a hit, while everything it stands on is still the store's and fresh at `now`. */
  answerAgain(held: HeldString, now: number): string | undefined {
    const entry = held.entry;
    if (entry.retired) return undefined;
    if (held.trustedUntil <= now || (entry.expiresAt !== null && entry.expiresAt <= now)) return undefined;
    if (held.tagEntries.length > 0 && anyRetired(held.tagEntries)) return undefined;
    // Kept out of line: the recency of entries is kept only once the store is full enough to cull.
    if (held.recency.crowded) touchHeld(held);
    this.counts.hits++;
    return held.value;
  }

  /**
   * An entry this process holds, judged against its tags' versions as this process holds them, with
   * the entries of those versions (or the absence that stands for a tag never invalidated); undefined
   * when this process cannot tell a version.
   */
  private judged(entry: InProcessEntry<P>): JudgedInProcess<P> | undefined {
    const stamped = this.shared.codec.unstamp?.(entry.payload);
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

/** Marks a held string's entry, and its tags' versions with it, as just used. */
function touchHeld(held: HeldString): void {
  held.recency.touch(held.key);
  // The versions of its tags are in use as long as the entry is: they must not be culled first.
  for (let i = 0; i < held.tagKeys.length; i++) held.recency.touch(held.tagKeys[i]!);
}

/** Whether a new version retired one of a held string's tags' entries. */
function anyRetired(tagEntries: ReadonlyArray<InProcessStanding>): boolean {
  for (let i = 0; i < tagEntries.length; i++) if (tagEntries[i]!.retired) return true;
  return false;
}
