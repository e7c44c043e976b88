/**
 * Tag versions: each tag has a version stored beside the entries, under a key of its own;
 * an entry is stamped with its tags' versions when written, and is judged against the current ones
 * when read. `invalidateTags` gives a tag a new version, so nothing is scanned. How entries stand is
 * judged here too: fresh, stale inside a window, or dead.
 */
import { randomBytes } from 'node:crypto';
import { type Expiry, hasRunOut, type StaleWindows, storedExpiry } from '../store/call-options.js';
import { type EntryStamp, NO_TAGS, NOTHING_TO_STAMP } from '../encoding/stamps.js';
import { CacheServerError, cacheTypeError } from '../errors/errors.js';
import { md5 } from '../keys/hash.js';
import { memcachedKeyProblems } from '../keys/cache-keys.js';
import { checkOptionNames } from '../options/option-rules.js';
import { TAG_KEY_VERSION, TAG_KEYS } from '../store/key-maker.js';
import { BoundedMemo } from '../memos/bounded-memo.js';
import { afterRemovals, Unreadable } from '../encoding/payloads.js';
import { throwRefusal } from '../store/backend-primitives.js';
import { type Entry } from '../store/cache-types.js';
import { andThen, type MaybePromise } from '../store/maybe-promise.js';
import { withOwnExpiry } from './expiry-stamps.js';
import { GenerationCount, generationIn, generationOf } from './generation.js';
import { type EntryState, INVALIDATE_OPTIONS, type InvalidateOptions, type ListOf, type TagSnapshot } from '../store/cache-types.js';
import type { TagHost } from './tag-host.js';
import { FIRST_VERSION, VersionExpiry } from './version-expiry.js';
import type { WriteArgs } from '../store/call-options.js';

/** What a write stamps its payload with: its tags (as of `asOf`), its stale windows and when it expires (not at once). */
export type StampedWrite = Pick<WriteArgs, 'tags' | 'windows' | 'asOf'> & { readonly expiresAt: number | null };

/** An entry of a batch write, with what its stamp records besides its tags' versions. */
export interface StampedEntry<P> {
  readonly payload: P;
  readonly tags: readonly string[];
  readonly windows: StaleWindows | undefined;
  /** The cache contexts a render's value varies on. */
  readonly contexts?: readonly string[];
}

/** How many tags' version keys each cache remembers: a site's tags are far fewer than its keys. */
export const TAG_KEYS_REMEMBERED = 10_000;
/** Tags whose version key can hold them as they are, on every backend. */
const PLAIN_TAG = /^[A-Za-z0-9:_.\/-]{1,40}$/;

/**
 * A tag's new version: random, so no clock is compared anywhere, after the generation of the
 * invalidation that wrote it (`7.` + random; see generation.ts). A soft invalidation keeps the
 * part before the colon (`hard:soft`): an entry whose version differs only after it is stale, not dead.
 */
const newTagVersion = (generation?: number): string => `${generation === undefined ? '' : `${generation}.`}${randomBytes(8).toString('hex')}`;
const hardPart = (version: string): string => {
  const colon = version.indexOf(':');
  return colon === -1 ? version : version.slice(0, colon);
};

/** A stored payload's value payload, its stamp if it has one, and how it stands (undefined: dead). */
export interface Judged<P> {
  payload: P;
  stamp: EntryStamp | undefined;
  state: EntryState | undefined;
}

export class TagVersions<P> {
  /** Made keys of tag versions, by tag: a tagged read makes one per tag of its batch. */
  private readonly keysByTag = new BoundedMemo<string>(TAG_KEYS_REMEMBERED);
  /** The tags' made version keys, the other way round (see `isTagKey`). */
  private readonly madeTagKeys = new BoundedMemo<true>(TAG_KEYS_REMEMBERED);
  /** How versions expire, where they do (see `forWrite`). */
  private readonly expiry: VersionExpiry<P>;
  private madeGenerationKey: string | undefined;
  private readonly generation: GenerationCount<P>;

  constructor(private readonly host: TagHost<P>) {
    this.generation = new GenerationCount(host);
    this.expiry = new VersionExpiry(host, (tag) => this.keyOf(tag));
  }

  /**
   * Where a tag's version is kept: a short tag of plain characters names its key as it is (a tagged
   * read fetches one key per tag, so their length is what it sends), any other one by its md5. Read
   * on every tagged hit, so remembered (when memcached would take it, as made keys are).
   */
  keyOf(tag: string): string {
    const known = this.keysByTag.get(tag);
    if (known !== undefined) return known;
    const made = this.host.keys.made(`${TAG_KEYS}.${PLAIN_TAG.test(tag) ? tag : `#${md5(tag)}`}`, TAG_KEY_VERSION);
    if (memcachedKeyProblems(made).length === 0) this.keysByTag.set(tag, made);
    this.madeTagKeys.set(made, true);
    return made;
  }

  /** Whether a made key is where a tag's version is kept (one this process made lately): an L1 remembers that none is there. */
  isTagKey(made: string): boolean {
    return this.madeTagKeys.get(made) === true;
  }

  /**
   * Where this cache counts its invalidations (see generation.ts); never expires. An L1 in front
   * may answer it from memory: a count behind the server's only keeps more writes out, never fewer.
   */
  get generationKey(): string {
    if (this.madeGenerationKey !== undefined) return this.madeGenerationKey;
    const made = (this.madeGenerationKey = this.host.keys.made(`${TAG_KEYS}-generation`, TAG_KEY_VERSION));
    // Its absence, before the first invalidation, is remembered as a tag's is.
    this.madeTagKeys.set(made, true);
    return made;
  }

  /**
   * `versions` as of the cache's generation stored in `entry`, read with them: the snapshot of a
   * render or computation that begins now (see `forWrite`).
   */
  asOf(versions: Map<string, string | undefined>, entry: Entry<P> | undefined): Map<string, string | undefined> & TagSnapshot {
    return Object.assign(versions, { generation: generationIn(this.host.codec, entry) });
  }

  /** The current version of each tag and the cache's generation, in one read: see `asOf`. */
  snapshot(tags: readonly string[]): MaybePromise<TagSnapshot> {
    // The tags' keys, then the generation's: one read of them all.
    const asked = new Array<string>(tags.length + 1);
    for (let i = 0; i < tags.length; i++) asked[i] = this.keyOf(tags[i]!);
    asked[tags.length] = this.generationKey;
    const found = this.host.primitives.read(asked, false);
    return found instanceof Promise ? found.then((entries) => this.snapshotIn(tags, asked, entries)) : this.snapshotIn(tags, asked, found);
  }

  /** The snapshot of `tags` found among `entries`, read under `asked` (their keys, then the generation's). */
  private snapshotIn(tags: readonly string[], asked: readonly string[], entries: Map<string, Entry<P>>): MaybePromise<TagSnapshot> {
    const generation = entries.get(asked[tags.length]!);
    const versions = this.versionsIn(tags, asked, entries);
    return versions instanceof Promise ? versions.then((read) => this.asOf(read, generation)) : this.asOf(versions, generation);
  }

  // ---- Reading and judging --------------------------------------------------------------------

  /** The current version of each tag, in one read; a tag without one maps to undefined. */
  read(tags: readonly string[]): MaybePromise<Map<string, string | undefined>> {
    const made = tags.map((tag) => this.keyOf(tag));
    return andThen(this.host.primitives.read(made, false), (found) => this.versionsIn(tags, made, found));
  }

  /**
   * The versions of `tags`, stored under `keys`, found among `entries` (undefined for a tag without
   * one): answered once the replacement of any that cannot be decoded has settled.
   */
  versionsIn(tags: readonly string[], keys: readonly string[], entries: Map<string, Entry<P>>): MaybePromise<Map<string, string | undefined>> {
    const versions = new Map<string, string | undefined>();
    const removals: Array<MaybePromise<void>> = [];
    for (let i = 0; i < tags.length; i++) versions.set(tags[i]!, this.versionIn(keys[i]!, entries.get(keys[i]!), removals));
    return afterRemovals(removals, versions);
  }

  /**
   * A tag's version as read under `made`; undefined for none. One that cannot be decoded is replaced
   * by a new version, as an invalidation would (the write goes into `removals`), and answered as that:
   * removed, it would read as the first version and revive every entry written before the tag's
   * first invalidation.
   */
  versionIn(made: string, entry: Entry<P> | undefined, removals?: Array<MaybePromise<void>>): string | undefined {
    if (entry === undefined) return undefined;
    let replacement: string | undefined;
    const version = this.host.payloads.readableOrReplaced(made, entry.payload, () =>
      this.writeVersions([[made, this.host.codec.encode((replacement = newTagVersion()))]]),
    );
    if (!(version instanceof Unreadable)) return String(version);
    removals?.push(version.removal);
    return replacement;
  }

  /** The value's own payload of a stored payload if the entry is fresh, else undefined. An unstamped entry answers at once. */
  unstamped(payload: P): MaybePromise<P | undefined> {
    const stamped = this.host.codec.unstamp?.(payload);
    if (stamped === undefined) return payload;
    // Without tags (its expiry alone, say) it is judged at once: there is no version to read.
    if (stamped.stamp.tags.length === 0) return this.stateOf(stamped.stamp, undefined) === 'fresh' ? stamped.payload : undefined;
    return andThen(this.statesOf([stamped.stamp]), ([state]) => (state === 'fresh' ? stamped.payload : undefined));
  }

  /** A stored payload's own payload, stamp and state. */
  judged(payload: P, known?: TagSnapshot): MaybePromise<Judged<P>> {
    const stamped = this.host.codec.unstamp?.(payload);
    if (stamped === undefined) return { payload, stamp: undefined, state: 'fresh' };
    const { stamp } = stamped;
    // Judged at once when its tags were all read with the lookup (a page's, whose tags are its URL's).
    if (known !== undefined && knowsEvery(known, stamp.tags)) return { payload: stamped.payload, stamp, state: this.stateOf(stamp, known) };
    return andThen(this.statesOf([stamp], known), ([state]) => ({ payload: stamped.payload, stamp, state }));
  }

  /** How each stamped entry stands now (undefined: dead), after one read of every tag among them. */
  statesOf(stamps: EntryStamp[], known?: TagSnapshot): MaybePromise<Array<EntryState | undefined>> {
    let tags: Set<string> | undefined;
    for (const stamp of stamps) for (const tag of stamp.tags) if (known === undefined || !known.has(tag)) (tags ??= new Set()).add(tag);
    if (tags === undefined) return this.statesAt(stamps, known);
    return andThen(this.read([...tags]), (versions) => {
      if (known !== undefined) for (const [tag, version] of known) versions.set(tag, version);
      return this.statesAt(stamps, versions);
    });
  }

  /** How each of `stamps` stands against `versions`, as of one reading of the clock taken once they are at hand. */
  private statesAt(stamps: EntryStamp[], versions: TagSnapshot | undefined): Array<EntryState | undefined> {
    const now = this.host.cache.now();
    return stamps.map((stamp) => this.stateOf(stamp, versions, now));
  }

  /**
   * How an entry with `stamp` stands against `versions` (which holds every one of its tags) at `now`
   * (the cache's clock read afresh when not given: a batch judges its entries as of one reading).
   */
  stateOf(stamp: EntryStamp, versions: TagSnapshot | undefined, now?: number): EntryState | undefined {
    let soft = false;
    for (let i = 0; i < stamp.tags.length; i++) {
      // No version is a version: the first one, before any invalidation (or after the last one expired).
      const current = versions!.get(stamp.tags[i]!) ?? FIRST_VERSION;
      const recorded = stamp.versions[i]!;
      if (current === recorded) continue;
      if (hardPart(current) !== hardPart(recorded)) return undefined;
      soft = true;
    }
    const { freshUntil, staleWhileRevalidate = 0, staleIfError = 0 } = stamp;
    // Without stale windows an entry's freshUntil is its expiry (written, and touched, with it): a
    // store that judges expiry by the cache's clock would not have answered it past that, and one
    // whose server's clock does may still hold it (see `expiry-stamps.ts`).
    if (staleWhileRevalidate === 0 && staleIfError === 0)
      return soft || (freshUntil !== undefined && freshUntil <= (now ?? this.host.cache.now())) ? undefined : 'fresh';
    const pastFresh = freshUntil === undefined ? 0 : (now ?? this.host.cache.now()) - freshUntil;
    if (!soft && (freshUntil === undefined || pastFresh < 0)) return 'fresh';
    const staleFor = Math.max(0, pastFresh);
    if (staleFor < staleWhileRevalidate) return 'stale';
    if (staleFor < staleIfError) return 'error';
    return undefined;
  }

  // ---- Writing stamped entries ----------------------------------------------------------------

  /**
   * The payload to store for a write with tags or stale windows: stamped with the tags' versions and
   * when it stops being fresh. Undefined when the write must not happen (see `forWrite`).
   */
  async stampedWith(payload: P, write: StampedWrite): Promise<P | undefined> {
    const stamp = await this.stampFor(write);
    if (stamp === undefined) return undefined;
    return stamp === NOTHING_TO_STAMP ? withOwnExpiry(this.host, payload, write.expiresAt) : this.host.codec.stamp!(payload, stamp);
  }

  /**
   * The stamp of a write with tags or stale windows (`NOTHING_TO_STAMP` when it has neither), for one
   * payload or many. Undefined when the write must not happen (see `forWrite`).
   */
  async stampFor({ tags, windows, expiresAt, asOf }: StampedWrite): Promise<EntryStamp | typeof NOTHING_TO_STAMP | undefined> {
    if ((tags === undefined || tags.length === 0) && windows === undefined) return NOTHING_TO_STAMP;
    const list = tags === undefined ? [] : [...new Set(tags)];
    const versions = list.length === 0 ? new Map() : await this.forWrite(list, asOf, storedExpiry(expiresAt, windows));
    return this.stampToWrite({ tags: list, windows }, versions, expiresAt);
  }

  /**
   * `entry`'s payload stamped with its tags at `versions`; undefined when the write is out (a version
   * is null). A codec that cannot stamp stores a render's entry with no tags or contexts as it is: a
   * render that reads it back takes its tag's whole timeout as what is left of its lifetime.
   */
  stamped(entry: StampedEntry<P>, versions: ReadonlyMap<string, string | null>, expiresAt: Expiry): P | undefined {
    const { payload, tags, windows, contexts } = entry;
    const plain = tags.length === 0 && windows === undefined && (contexts === undefined || contexts.length === 0);
    if (plain && this.host.codec.stamp === undefined) return payload;
    const stamp = this.stampToWrite(entry, versions, expiresAt);
    return stamp === undefined ? undefined : this.host.codec.stamp!(payload, stamp);
  }

  /**
   * The stamp of `tags` at `versions`; undefined when the write is out (a version is null). An entry
   * with stale windows or `contexts` (a render's, even none) records when it stops being fresh,
   * which a render reads back as what is left of its lifetime; so does every entry where entries
   * carry their expiry.
   */
  private stampToWrite(
    { tags, windows, contexts }: Omit<StampedEntry<P>, 'payload'>,
    versions: ReadonlyMap<string, string | null>,
    expiresAt: Expiry,
  ): EntryStamp | undefined {
    if (this.host.codec.stamp === undefined) throw cacheTypeError(this.host.alias, "this backend's codec cannot store tags, stale windows or contexts");
    if (tags.some((tag) => versions.get(tag) === null)) return undefined;
    const stamp: EntryStamp =
      tags.length === 0
        ? { tags: NO_TAGS as string[], versions: NO_TAGS as string[] }
        : { tags: [...tags], versions: tags.map((tag) => versions.get(tag) ?? FIRST_VERSION) };
    if ((windows !== undefined || contexts !== undefined || this.host.stampsExpiry) && expiresAt !== null && !hasRunOut(expiresAt))
      stamp.freshUntil = expiresAt;
    if (windows !== undefined) {
      stamp.staleWhileRevalidate = windows.staleWhileRevalidate;
      stamp.staleIfError = windows.staleIfError;
    }
    if (contexts !== undefined && contexts.length > 0) stamp.contexts = [...contexts];
    return stamp;
  }

  /**
   * The version of each tag to stamp a write with: as of `asOf` where it has them, else current; a
   * tag without a version stamps as the first one (''). Writers never create a version, so first uses
   * do not race: only `invalidate` writes one. A tag whose write is out maps to null: one whose
   * version came from an invalidation that began after `asOf.generation` was read, when the render
   * or computation began. Its tags need not be known then (a page's are added as it renders), and no
   * clock is read: the generation is a count on the server, raised before any version is written.
   *
   * Where tag versions expire, what the write owes them is done first (see version-expiry.ts).
   */
  async forWrite(tags: string[], asOf: TagSnapshot | undefined, storedExpiry: number | null): Promise<Map<string, string | null>> {
    const unknown = asOf === undefined ? tags : tags.filter((tag) => !asOf.has(tag));
    // Where versions expire, the tags read are checked for first uses at once: one round trip, not two.
    const checking = unknown.length > 0 && this.expiry.expiring ? this.expiry.checkNow(unknown, storedExpiry) : undefined;
    const current = unknown.length === 0 ? undefined : await this.read(unknown);
    const versions = new Map<string, string | null>();
    const began = asOf?.generation;
    for (const tag of tags) {
      const version = (asOf !== undefined && asOf.has(tag) ? asOf.get(tag) : current!.get(tag)) ?? FIRST_VERSION;
      versions.set(tag, began !== undefined && generationOf(version) > began ? null : version);
    }
    return this.expiry.expiring ? this.expiry.keep(versions, asOf, storedExpiry, await checking) : versions;
  }

  /** Does now what `forWrite` will do with the snapshot's versions, for a write that will store until about `storedExpiry` (see `VersionExpiry.readyAhead`). */
  readyAhead(snapshot: TagSnapshot, storedExpiry: number | null): Promise<void> {
    return this.expiry.expiring ? this.expiry.readyAhead(snapshot, storedExpiry) : Promise.resolve();
  }

  /**
   * Reads now, for a write stamped as of `asOf` that will store until about `storedExpiry`, the
   * versions of `tags` that `asOf` lacks, and does with them what the write would (as `forWrite` does,
   * in as many round trips): answers their snapshot as of `asOf`'s generation, for `join`. A page's
   * view adds tags as it renders; read as they are added, they leave its store nothing to read.
   * Rejects where the read failed: the write reads them itself.
   */
  async readAhead(asOf: TagSnapshot, tags: readonly string[], storedExpiry: number | null): Promise<TagSnapshot> {
    const unread = tags.filter((tag) => !asOf.has(tag));
    // Nothing to read: a check of first uses would still cost a round trip for the horizon.
    if (unread.length === 0) return Object.assign(new Map<string, string | undefined>(), { generation: asOf.generation });
    const read = async (): Promise<TagSnapshot> => Object.assign(await this.read(unread), { generation: asOf.generation });
    return this.expiry.expiring ? this.expiry.readAndReady(unread, storedExpiry, read) : read();
  }

  /** The snapshots joined into one, as of the first one's generation (see `VersionExpiry.join`). */
  join(snapshots: readonly TagSnapshot[]): TagSnapshot {
    return this.expiry.join(snapshots);
  }

  // ---- Invalidating ---------------------------------------------------------------------------

  /** `BaseCache.invalidateTags`: its arguments checked, then `invalidate`. */
  async invalidateTags(tags: ListOf<string>, options: InvalidateOptions | undefined): Promise<void> {
    const { alias, calls } = this.host;
    const list = calls.tags([...calls.tagList(tags, 'invalidateTags')], 'invalidateTags');
    const unknownOption = options === undefined ? undefined : checkOptionNames(options, INVALIDATE_OPTIONS);
    if (unknownOption !== undefined) throw cacheTypeError(alias, `invalidateTags: ${unknownOption}`);
    const soft = options?.soft ?? false;
    if (list.length === 0) return;
    await this.invalidate(list, soft);
    // Once the application's own invalidation has landed: a listener reading now (an edge refetching a page) sees the new state.
    await this.host.listeners.tagsInvalidated(list, soft, options?.waitForEdges);
  }

  /**
   * Gives each tag a new version (with `soft`, one that keeps the hard part of the current one),
   * of a generation raised first: a render that read the generation before it is written as of
   * then, and one that read it after began after the data changed (see `forWrite`).
   */
  private async invalidate(tags: string[], soft: boolean): Promise<void> {
    const generation = await this.generation.raise(this.generationKey);
    // A soft version keeps the hard part readers compare first. Read, then written: a hard
    // invalidation landing in between is softened, which serves stale (and refreshes) instead of missing.
    const current = soft ? await this.read(tags) : undefined;
    const entries = tags.map((tag): [string, P] => {
      const version = soft ? `${hardPart(current!.get(tag) ?? FIRST_VERSION)}:${newTagVersion(generation)}` : newTagVersion(generation);
      return [this.keyOf(tag), this.host.codec.encode(version)];
    });
    await this.writeVersions(entries);
  }

  /**
   * Writes new tag versions under their made keys; where versions expire, they expire at the horizon.
   * A version not written rejects, failOpen or not: an invalidation is never forgotten unheard.
   */
  private async writeVersions(entries: Array<[string, P]>): Promise<void> {
    const failed = await this.host.primitives.write(entries, null);
    throwRefusal(failed);
    if (failed.length > 0) {
      throw new CacheServerError(
        `cache '${this.host.alias}': invalidateTags: the new versions of ${failed.length} tag${failed.length === 1 ? '' : 's'} were not written: the server failed (reported as an 'error' event)`,
        '',
      );
    }
    if (this.expiry.expiring) await this.expiry.expireAtHorizon(entries.map(([key]) => key));
  }
}

/** Whether `known` holds a version (or its absence) of every one of `tags`. */
function knowsEvery(known: TagSnapshot, tags: readonly string[]): boolean {
  for (let i = 0; i < tags.length; i++) if (!known.has(tags[i]!)) return false;
  return true;
}
