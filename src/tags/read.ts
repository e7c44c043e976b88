/**
 * The one batched tagged read, behind getMany, getEntries and a render level's read: the entries of
 * a batch and, in the same round trip, the versions of the tags asked for and of those the entries
 * carried when last read; the found entries' other tags in at most one more. Each entry is judged,
 * counted and built into the caller's answer, in the caller's order.
 */
import { stampOf } from '../encoding/codec.js';
import { type EntryStamp, type KnownStamp, NO_TAGS } from '../encoding/stamps.js';
import type { CacheKey } from '../keys/cache-keys.js';
import { MADE_KEYS_REMEMBERED, type MadeBatch } from '../store/key-maker.js';
import { BoundedMemo } from '../memos/bounded-memo.js';
import type { CacheStats } from '../observation/observation.js';
import { afterRemovals, type Payloads, Unreadable } from '../encoding/payloads.js';
import { type Entry } from '../store/cache-types.js';
import { andThen, type MaybePromise } from '../store/maybe-promise.js';
import type { CachedEntry, EntryState, RenderEntry, TagSnapshot } from '../store/cache-types.js';
import type { TagHost } from './tag-host.js';
import type { Judged, TagVersions } from './versions.js';

/**
 * Which entries a batch answers, and how it counts them: `fresh` ones only (getMany); every live
 * one, counted as a stale hit when not fresh (getEntries); every live one for a `render`, which
 * computes again an entry past its stale window (`error`), and so counts it as a miss.
 */
export type BatchMode = 'fresh' | 'live' | 'render';

/**
 * What a batch answers: the built entries by the caller's keys, and the version of every tag it
 * read; a `render` batch's, with the cache's generation (a render begins with it: see `TagSnapshot`).
 */
export interface BatchAnswer<V> {
  entries: Map<CacheKey, V>;
  versions: Map<string, string | undefined> & TagSnapshot;
}

/** Whether `versions` holds (a version or its absence for) every one of `tags`. */
function knowsEvery(versions: ReadonlyMap<string, unknown>, tags: readonly string[]): boolean {
  for (let i = 0; i < tags.length; i++) if (!versions.has(tags[i]!)) return false;
  return true;
}

/** One batch read: what was asked, what the store answered, and the removals to await before answering. */
interface Batch<P> {
  /** The caller's keys, and the keys as made, in the same order. */
  readonly keys: readonly CacheKey[];
  readonly made: readonly string[];
  readonly mode: BatchMode;
  /** The stamps the keys carried when last read (see `stampsByKey`). */
  readonly last: ReadonlyArray<KnownStamp | undefined> | undefined;
  /** The tags read with the entries, and their keys. */
  readonly tagList: readonly string[];
  readonly tagKeys: readonly string[];
  /** Whether the cache's generation was read with them. */
  readonly withGeneration: boolean;
  /** What the store answered, in the order asked: the entries', then their tags', then the generation. */
  payloads: ReadonlyArray<P | undefined>;
  /** The version of every tag read, and the generation once read. */
  readonly versions: Map<string, string | undefined>;
  /** Of entries that cannot be decoded (and replacements of such tag versions). */
  readonly removals: Array<MaybePromise<void>>;
  /** The cache's clock, read once the first entry's expiry is judged: the batch's entries are judged as of one reading. */
  now: number | undefined;
}

const NO_PAYLOADS: readonly never[] = Object.freeze([]);

/** What a single read finds where an entry is not fresh (a value may itself be undefined). */
const NOT_FRESH = Symbol('not fresh');

/**
 * What an entry of a batch is judged by: its long stamp, the expiry its short stamp records (epoch
 * seconds, Infinity: never; read as a number, with no stamp made), or nothing when it has no stamp.
 */
type StampRead = EntryStamp | number | undefined;

/** When an entry judged by `read` stops being fresh, as its answer records it (undefined: never). */
function freshUntilOf(read: StampRead): number | undefined {
  if (typeof read === 'number') return read === Infinity ? undefined : read;
  return read?.freshUntil;
}

/** What a render's read asks besides its entries: the versions of its tags, and the generation unless it has it. */
interface RenderAsk {
  readonly tags: readonly string[];
  readonly withGeneration: boolean;
}

/**
 * What a batch's entries carried when last read, as the batch asks by it: their stamps, the tags of
 * those (whose versions come in the same round trip), and the keys it asks when it asks no tags of
 * its own. Kept with the batch's made keys while no stamp read in this process has changed, so that a
 * batch read again (a page's fragments, a list's items) does not look up each of its keys' stamps.
 */
interface BatchGuess {
  /** `TaggedReads.stampsChanged` when it was made. */
  readonly stampsChanged: number;
  readonly last: ReadonlyArray<KnownStamp | undefined> | undefined;
  readonly tags: readonly string[];
  readonly tagKeys: readonly string[];
  /** The keys the batch asks when it asks no tags of its own, where it guessed some: made at its first such read. */
  asked?: readonly string[];
}

/** The guess of every batch while no read in this process has found a stamp (most caches hold no tagged entries). */
const NOTHING_GUESSED: BatchGuess = Object.freeze({ stampsChanged: -1, last: undefined, tags: NO_TAGS, tagKeys: NO_TAGS });

/** An entry with the long stamp whose tags were not all read with it: judged after one more read. */
interface Late {
  index: number;
  stamp: EntryStamp;
}

export class TaggedReads<P> {
  /**
   * The stamp each recently read tagged entry carried, by made key: its tags for `guessTags`, and
   * not parsed again while it stays. Sized as the made keys: a batch whose keys it has forgotten
   * reads their tags' versions in a second round trip.
   */
  private readonly stampsByKey = new BoundedMemo<KnownStamp>(MADE_KEYS_REMEMBERED);
  /** How many times `stampsByKey` has changed: a batch's guess made before the last change is made again. */
  private stampsChanged = 0;
  private readonly guesses = new WeakMap<readonly string[], BatchGuess>();

  private readonly tags: TagVersions<P>;
  private readonly counts: CacheStats;
  private readonly payloads: Payloads<P>;

  constructor(private readonly host: TagHost<P> & { readonly tags: TagVersions<P> }) {
    this.tags = host.tags;
    this.counts = host.counts;
    this.payloads = host.payloads;
  }

  /** Remembers as many stamps as the cache's made keys, once those are sized by a store in this process. */
  rememberAsManyAsKeys(): void {
    this.stampsByKey.limitTo(this.host.keys.remembered);
    this.stampsChanged++;
  }

  /** `readShared` of the integration (see `CacheIntegration`): the value under `made`, one for every shared reader. */
  readShared<T>(made: string): MaybePromise<T | undefined> {
    const found = this.host.primitives.readOne(made);
    if (found instanceof Promise) return found.then((entry) => this.countedValue<T | undefined>(made, entry, true, undefined));
    return this.countedValue<T | undefined>(made, found, true, undefined);
  }

  /** The value of an entry read under `made` if it is fresh and readable, else `missing`; counted as a hit or a miss. */
  countedValue<T>(made: string, entry: Entry<P> | undefined, shared: boolean, missing: T): MaybePromise<T> {
    if (entry === undefined) {
      this.counts.misses++;
      return missing;
    }
    // Stamped with its expiry alone, as most entries on a server are: judged by it as a number, and
    // read past its stamp in place.
    const expiry = this.host.codec.expiryOf?.(entry.payload);
    if (expiry !== undefined) {
      return this.counted(expiry > this.host.cache.now() ? this.payloads.readable(made, entry.payload, shared, true) : NOT_FRESH, missing);
    }
    const own = this.tags.unstamped(entry.payload);
    if (own instanceof Promise) return own.then((live) => this.countedLive(made, live, shared, missing));
    return this.countedLive(made, own, shared, missing);
  }

  /** `countedValue` of the entry's own payload, undefined when it is not fresh. */
  private countedLive<T>(made: string, own: P | undefined, shared: boolean, missing: T): MaybePromise<T> {
    return this.counted(own === undefined ? NOT_FRESH : this.payloads.readable(made, own, shared), missing);
  }

  /** A read's value counted as a hit, or as a miss (`missing` answered) when not fresh or not decodable (removed first). */
  private counted<T>(value: unknown, missing: T): MaybePromise<T> {
    if (value === NOT_FRESH || value instanceof Unreadable) {
      this.counts.misses++;
      return value instanceof Unreadable ? andThen(value.removal, () => missing) : missing;
    }
    this.counts.hits++;
    return value as T;
  }

  /**
   * The entries under `keys` (of `version`, undefined for the cache's own), as `mode` says: values
   * for `fresh`, entries (`CachedEntry`) for `live`.
   */
  read<V>(keys: Iterable<CacheKey>, version: number | undefined, mode: 'fresh' | 'live'): MaybePromise<Map<CacheKey, V>> {
    return this.readBatch(this.host.keys.madeBatch(keys, version), mode, undefined, entriesOf<V>);
  }

  /**
   * A render's entries (`RenderEntry`) under `keys` with the versions of `tags`, and the cache's
   * generation too unless the render has it already (`withGeneration` false).
   */
  readForRender<V>(keys: Iterable<CacheKey>, tags: readonly string[], withGeneration: boolean): MaybePromise<BatchAnswer<V>> {
    return this.readBatch(this.host.keys.madeBatch(keys, undefined), 'render', { tags, withGeneration }, same<BatchAnswer<V>>);
  }

  /**
   * Reads a batch and answers it as `answerAs` shapes it: in the same step, so that an answer given
   * as the read comes back costs no promise of its own.
   */
  private readBatch<V, R>(batchOfKeys: MadeBatch, mode: BatchMode, render: RenderAsk | undefined, answerAs: (answer: BatchAnswer<V>) => R): MaybePromise<R> {
    const { keys: originals, made } = batchOfKeys;
    const tags = render?.tags ?? NO_TAGS;
    const withGeneration = render?.withGeneration ?? false;
    // The stamps these keys carried when last read: their tags travel with them (usually no second
    // read), and a stamp read again is not parsed again.
    const guess = this.guessFor(batchOfKeys);
    const { last } = guess;
    let { tags: tagList, tagKeys } = guess;
    if (tags.length > 0) {
      // `guess.tags` holds each tag once already.
      tagList = [...new Set(guess.tags.length === 0 ? tags : [...tags, ...guess.tags])];
      tagKeys = tagList.map((tag) => this.tags.keyOf(tag));
    }
    let asked: readonly string[];
    // A render begins here: the cache's generation comes in the same round trip (see `TagSnapshot`).
    if (withGeneration) asked = [...made, ...tagKeys, this.tags.generationKey];
    else if (tags.length > 0) asked = [...made, ...tagKeys];
    else asked = tagKeys.length === 0 ? made : (guess.asked ??= [...made, ...tagKeys]);
    if (made.length === 0 && tagList.length === 0) return answerAs({ entries: new Map(), versions: new Map() });
    const batch: Batch<P> = {
      keys: originals,
      made,
      mode,
      last,
      tagList,
      tagKeys,
      withGeneration,
      payloads: NO_PAYLOADS,
      versions: new Map(),
      removals: [],
      now: undefined,
    };
    // Made keys of a remembered batch, which the store reads and never changes.
    return andThen(this.host.primitives.readPayloads(asked as string[]), (payloads) => {
      batch.payloads = payloads;
      return andThen(this.answer<V>(batch), answerAs);
    });
  }

  /**
   * `readShared` of one entry that may be stale: its shared value, its tags and how it stands, counted.
   * Tags found in `known` (read in the same lookup) are not read again.
   */
  readSharedEntry<T>(made: string, known: TagSnapshot | undefined): MaybePromise<RenderEntry<T> | undefined> {
    const entry = this.host.primitives.readOne(made);
    return entry instanceof Promise ? entry.then((read) => this.sharedEntryOf<T>(made, read, known)) : this.sharedEntryOf<T>(made, entry, known);
  }

  /** `readSharedEntry` once the entry is read. */
  private sharedEntryOf<T>(made: string, entry: Entry<P> | undefined, known: TagSnapshot | undefined): MaybePromise<RenderEntry<T> | undefined> {
    if (entry === undefined) {
      this.counts.misses++;
      return undefined;
    }
    const judged = this.tags.judged(entry.payload, known);
    return judged instanceof Promise
      ? judged.then((read) => this.countedShared<T>(made, entry.payload, read))
      : this.countedShared<T>(made, entry.payload, judged);
  }

  /** A judged shared entry as `readSharedEntry` answers it, counted as a hit, a stale hit or a miss. */
  private countedShared<T>(made: string, payload: P, { stamp, state }: Judged<P>): MaybePromise<RenderEntry<T> | undefined> {
    const answer = state === undefined ? undefined : this.renderEntryOf<T>(made, payload, stamp, state);
    if (answer === undefined || answer instanceof Unreadable) {
      this.counts.misses++;
      return answer === undefined ? undefined : andThen(answer.removal, () => undefined);
    }
    if (state === 'fresh') this.counts.hits++;
    else if (state === 'stale') this.counts.staleHits++;
    else this.counts.misses++;
    return answer;
  }

  /** Whether a fresh entry holds the made key: present, its tags not invalidated, its timeout not passed. */
  async hasFresh(made: string): Promise<boolean> {
    if (this.host.codec.unstamp === undefined) return this.host.primitives.contains(made);
    const entry = await this.host.primitives.peekOne(made);
    const own = entry === undefined ? undefined : await this.tags.unstamped(entry.payload);
    if (own === undefined) return false;
    // Decoded, as a read would: an entry that cannot be is no entry (and is removed).
    const value = this.payloads.readable(made, own, true);
    if (!(value instanceof Unreadable)) return true;
    await value.removal;
    return false;
  }

  /**
   * The answer for an entry read under `made` (its payload as stored, read past the stamp it was
   * judged by, `read`, if it has one), or Unreadable when its payload cannot be decoded.
   */
  private entryOf<T>(made: string, payload: P, read: StampRead, state: EntryState): CachedEntry<T> | Unreadable {
    const value = this.payloads.readable(made, payload, false, read !== undefined);
    if (value instanceof Unreadable) return value;
    return { value: value as T, tags: typeof read === 'object' ? read.tags : NO_TAGS, state };
  }

  /** `entryOf` for a render: its value shared, not copied, and with what its stamp recorded. */
  private renderEntryOf<T>(made: string, payload: P, read: StampRead, state: EntryState): RenderEntry<T> | Unreadable {
    const value = this.payloads.readable(made, payload, true, read !== undefined);
    if (value instanceof Unreadable) return value;
    const stamp = typeof read === 'object' ? read : undefined;
    return { value: value as T, tags: stamp?.tags ?? NO_TAGS, state, contexts: stamp?.contexts ?? NO_TAGS, freshUntil: freshUntilOf(read) };
  }

  /** What the batch answers for its entry `index`: its value for `fresh`, else the entry (shared for a render). */
  private built(batch: Batch<P>, index: number, read: StampRead, state: EntryState): unknown {
    const made = batch.made[index]!;
    const payload = batch.payloads[index]!;
    if (batch.mode === 'fresh') return this.payloads.readable(made, payload, false, read !== undefined);
    return batch.mode === 'render' ? this.renderEntryOf(made, payload, read, state) : this.entryOf(made, payload, read, state);
  }

  private answer<V>(batch: Batch<P>): MaybePromise<BatchAnswer<V>> {
    const { keys, made, last, tagList, tagKeys, payloads, versions } = batch;
    const codec = this.host.codec;
    const tagsAt = made.length;
    if (batch.withGeneration) this.tags.asOf(versions, entryAt(payloads, tagsAt + tagKeys.length));
    for (let i = 0; i < tagList.length; i++) versions.set(tagList[i]!, this.tags.versionIn(tagKeys[i]!, entryAt(payloads, tagsAt + i), batch.removals));
    const answers = new Map<CacheKey, V>();
    let late: Late[] | undefined;
    let unread: Set<string> | undefined;
    for (let i = 0; i < made.length; i++) {
      const payload = payloads[i];
      if (payload === undefined) {
        this.counts.misses++;
        continue;
      }
      // Most entries on a server carry the short stamp of their expiry alone: judged by it as a
      // number, with no stamp made for each.
      const expiry = codec.expiryOf?.(payload);
      if (expiry !== undefined) {
        this.judge(batch, answers, i, expiry);
        continue;
      }
      const stamp = this.stampRead(made[i]!, payload, last?.[i]);
      // A stamp read again is the one whose tags the batch read with it (see `tagsOf`).
      if (stamp === undefined || stamp === last?.[i]?.stamp || knowsEvery(versions, stamp.tags)) {
        this.judge(batch, answers, i, stamp);
      } else {
        (late ??= []).push({ index: i, stamp });
        for (const tag of stamp.tags) if (!versions.has(tag)) (unread ??= new Set()).add(tag);
      }
    }
    if (late === undefined) return afterRemovals(batch.removals, { entries: answers, versions });
    const judgedLate = late;
    return andThen(this.tags.read([...unread!]), (more) => {
      for (const [tag, version] of more) versions.set(tag, version);
      const lateAnswers = new Map<CacheKey, V>();
      for (const { index, stamp } of judgedLate) this.judge(batch, lateAnswers, index, stamp);
      // In the caller's order, as the others are.
      const ordered = new Map<CacheKey, V>();
      for (const key of keys) {
        if (lateAnswers.has(key)) ordered.set(key, lateAnswers.get(key)!);
        else if (answers.has(key)) ordered.set(key, answers.get(key)!);
      }
      return afterRemovals(batch.removals, { entries: ordered, versions });
    });
  }

  /**
   * Answers the batch's entry `index` into `answers` if the batch's mode takes it as it stands (by
   * `read`: its long stamp, all of whose tags' versions the batch holds, or its short stamp's expiry;
   * none: fresh); counts the read.
   */
  private judge<V>(batch: Batch<P>, answers: Map<CacheKey, V>, index: number, read: StampRead): void {
    const mode = batch.mode;
    const now = (batch.now ??= this.host.cache.now());
    const state = typeof read === 'object' ? this.tags.stateOf(read, batch.versions, now) : read === undefined || read > now ? 'fresh' : undefined;
    if (state === undefined || (state !== 'fresh' && mode === 'fresh')) {
      this.counts.misses++;
      return;
    }
    const answer = this.built(batch, index, read, state) as V | Unreadable;
    if (answer instanceof Unreadable) {
      batch.removals.push(answer.removal);
      this.counts.misses++;
      return;
    }
    answers.set(batch.keys[index]!, answer);
    if (state === 'fresh') this.counts.hits++;
    else if (state === 'error' && mode === 'render') this.counts.misses++;
    else this.counts.staleHits++;
  }

  /**
   * The batch's guess (see `BatchGuess`): the one kept with a remembered batch's made keys, or made
   * again if a stamp has changed since.
   */
  private guessFor({ made, remembered }: MadeBatch): BatchGuess {
    if (this.stampsByKey.size === 0) return NOTHING_GUESSED;
    const kept = remembered ? this.guesses.get(made) : undefined;
    if (kept !== undefined && kept.stampsChanged === this.stampsChanged) return kept;
    const last = made.map((key) => this.stampsByKey.get(key));
    const tags = tagsOf(last) ?? NO_TAGS;
    const tagKeys = tags.map((tag) => this.tags.keyOf(tag));
    const guess: BatchGuess = { stampsChanged: this.stampsChanged, last, tags, tagKeys };
    if (remembered) this.guesses.set(made, guess);
    return guess;
  }

  /**
   * A read entry's stamp, remembered under its made key (see `stampsByKey`); its payload is decoded
   * past the stamp, in place.
   */
  private stampRead(made: string, payload: P, last: KnownStamp | undefined): EntryStamp | undefined {
    const known = stampOf(this.host.codec, payload, last);
    // Kept as the stamp and its stored form alone: a store in process answers its payload as the
    // known stamp. A stamp with neither tags nor a stored form (the earlier short form, or a store
    // in process's of stale windows alone) has nothing to lend the next read: it is not remembered.
    if (known !== undefined && known.stamp !== last?.stamp && (known.stored !== undefined || known.stamp.tags.length > 0)) {
      this.stampsByKey.set(made, { stamp: known.stamp, stored: known.stored });
      this.stampsChanged++;
    }
    return known?.stamp;
  }
}

/** The entry of the payload read at `index` of a batch, as the tag versions read it. */
function entryAt<P>(payloads: ReadonlyArray<P | undefined>, index: number): Entry<P> | undefined {
  const payload = payloads[index];
  return payload === undefined ? undefined : { payload };
}

/** The tags a batch's entries carried when last read, if any did: their versions, read in the same round trip as the entries, spare a second one. */
function tagsOf(stamps: ReadonlyArray<KnownStamp | undefined>): string[] | undefined {
  let tags: Set<string> | undefined;
  // Neighbours in a batch often carry the same tags (a page's items, a group's entries): those are added once.
  let previous: readonly string[] = NO_TAGS;
  for (const known of stamps) {
    if (known === undefined || sameTags(previous, known.stamp.tags)) continue;
    previous = known.stamp.tags;
    for (const tag of previous) (tags ??= new Set()).add(tag);
  }
  return tags === undefined ? undefined : [...tags];
}

function sameTags(previous: readonly string[], tags: readonly string[]): boolean {
  if (previous.length !== tags.length) return false;
  for (let i = 0; i < tags.length; i++) if (previous[i] !== tags[i]) return false;
  return true;
}

function entriesOf<V>(answer: BatchAnswer<V>): Map<CacheKey, V> {
  return answer.entries;
}

function same<T>(value: T): T {
  return value;
}
