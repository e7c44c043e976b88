/**
 * Tag versions that expire, on a server that raises a number atomically and extends expiries without
 * shortening them (`incrBy`, `extendExpiry`): what a tagged write owes them before it stores, and what
 * an invalidation owes the versions it writes. Two promises are kept. An entry stamped with a version
 * outlives it on no account: that version's key is extended to the entry's stored expiry. And once a
 * version key expires its tag reads as first again, so every entry stamped first must be gone by
 * then: an invalidation gives its version the expiry of the cache's horizon, which every write stamped
 * first has raised to past its own expiry before checking, on the server, that its tags still have no
 * version (the horizon only grows, by atomic increments). Either the check comes before the
 * invalidation's write, and then so does the raise, which the invalidation reads after its write; or
 * the check sees the new version and the write is out. A write whose value takes long to make (a page
 * rendering) has that done ahead (`readyAhead`), so that once its value is made it only writes.
 */
import { CacheServerError } from '../errors/errors.js';
import { TAG_KEY_VERSION, TAG_KEYS } from '../store/key-maker.js';
import { lastsUntil } from '../store/call-options.js';
import { type MaybePromise, nothing } from '../store/maybe-promise.js';
import type { TagSnapshot } from '../store/cache-types.js';
import type { TagHost } from './tag-host.js';

/** A tag's version before its first invalidation: no key holds it. */
export const FIRST_VERSION = '';
/** The horizon of a cache with a tagged entry that never expires. */
const FOREVER_HORIZON = 2 ** 52;

/**
 * The horizon a write stored until `storedExpiry` needs: past it by a quarter of the entry's life,
 * rounded up to that, so that a stream of writes raises it once in that long, not on every write.
 */
function horizonAfter(storedExpiry: number | null, now: number): number {
  if (storedExpiry === null) return FOREVER_HORIZON;
  const step = Math.max(1, Math.ceil((storedExpiry - now) / 4));
  return Math.ceil((storedExpiry + step) / step) * step;
}

/** What `readyAhead` did for the writes stamped as of a snapshot. */
interface ReadiedAhead {
  /** The expiry it was done for: the versions of `extended` last until then. */
  storedExpiry: number | null;
  extended: ReadonlySet<string>;
  /** The tags without a version checked to have none still, under `horizon`; those of them that had one by then. */
  checked: ReadonlySet<string>;
  /** The horizon they were checked under: a write stored past what it allows checks again. */
  horizon: number;
  versionedSince: ReadonlySet<string>;
}

/** A check of first uses made beside a write's read of its tags (see `checkNow`), settled: what it found, or why it failed. */
type FirstUseCheck = { tags: ReadonlySet<string> } & ({ horizon: number; versioned: ReadonlySet<string> } | { error: unknown });

export class VersionExpiry<P> {
  private madeHorizonKey: string | undefined;
  /** What was done ahead of the writes stamped as of each snapshot (see `readyAhead`): undefined where it failed. */
  private readonly readiedAhead = new WeakMap<TagSnapshot, Promise<ReadiedAhead | undefined>>();
  /** The snapshots a joined one was made of (see `join`): what was done ahead for each holds for it. */
  private readonly joinedFrom = new WeakMap<TagSnapshot, readonly TagSnapshot[]>();

  constructor(
    private readonly host: TagHost<P>,
    /** Where a tag's version is kept (`TagVersions.keyOf`). */
    private readonly keyOf: (tag: string) => string,
  ) {}

  /** Whether tag versions expire here. */
  get expiring(): boolean {
    return this.host.primitives.incrBy !== undefined && this.host.primitives.extendExpiry !== undefined;
  }

  /** Where this cache keeps its tag horizon. */
  private get horizonKey(): string {
    return (this.madeHorizonKey ??= this.host.keys.made(`${TAG_KEYS}-horizon`, TAG_KEY_VERSION));
  }

  /**
   * `versions` (null: the tag's write is out) once what a write stamped with them and stored until
   * `storedExpiry` owes them is done, where it was not done ahead as of `asOf` or `checkedNow`
   * beside the write's read: versions extended, first uses checked (a tag that got a version is out).
   */
  async keep(
    versions: Map<string, string | null>,
    asOf: TagSnapshot | undefined,
    storedExpiry: number | null,
    checkedNow?: FirstUseCheck,
  ): Promise<Map<string, string | null>> {
    const aheads = asOf === undefined ? [] : await this.doneAheadOf(asOf);
    const needed = horizonAfter(storedExpiry, this.host.cache.now());
    const extendedAhead = aheads.filter((ahead) => lastsUntil(ahead.storedExpiry, storedExpiry));
    const checkedAhead = aheads.filter((ahead) => ahead.horizon >= needed);
    const toExtend: string[] = [];
    const first: string[] = [];
    const firstCheckedNow: string[] = [];
    for (const [tag, version] of versions) {
      if (version === null) continue;
      if (version !== FIRST_VERSION) {
        if (!extendedAhead.some((ahead) => ahead.extended.has(tag))) toExtend.push(tag);
        continue;
      }
      const checked = checkedAhead.find((ahead) => ahead.checked.has(tag));
      if (checked !== undefined) {
        if (checked.versionedSince.has(tag)) versions.set(tag, null);
      } else if (checkedNow?.tags.has(tag)) firstCheckedNow.push(tag);
      else first.push(tag);
    }
    if (checkedNow !== undefined && firstCheckedNow.length > 0) {
      if ('error' in checkedNow) this.leaveOut(checkedNow.error, firstCheckedNow, versions);
      else for (const tag of firstCheckedNow) if (checkedNow.versioned.has(tag)) versions.set(tag, null);
    }
    await Promise.all([
      toExtend.length === 0 ? undefined : this.extendVersions(toExtend, storedExpiry),
      first.length === 0 ? undefined : this.checkFirstUses(first, versions, storedExpiry).catch((error) => this.leaveOut(error, first, versions)),
    ]);
    return versions;
  }

  /**
   * Does now, ahead of a write stamped as of `snapshot` that will store until about `storedExpiry`,
   * what `keep` does with the snapshot's versions before that write: each version is extended, and
   * each tag without one is checked to have none still, the horizon raised first. The write, once its
   * value is made, then only waits for what it needs beyond that: a later expiry, tags the snapshot
   * does not hold. What fails is left for the write to do. Resolves once done, failed or not.
   */
  readyAhead(snapshot: TagSnapshot, storedExpiry: number | null): Promise<void> {
    const readied = this.readiedAhead.get(snapshot);
    if (readied !== undefined) return readied.then(nothing);
    if (snapshot.size === 0) return Promise.resolve();
    const { versioned, first } = byVersion(snapshot);
    const extendedTo = this.extendedAheadTo(storedExpiry);
    const readying = Promise.all([
      versioned.length === 0 ? undefined : this.extendVersions(versioned, extendedTo),
      first.length === 0 ? undefined : this.firstUsesSince(first, storedExpiry),
    ]).then(
      ([, checked]): ReadiedAhead => ({
        storedExpiry: extendedTo,
        extended: new Set(versioned),
        checked: new Set(first),
        horizon: checked?.horizon ?? 0,
        versionedSince: checked?.versioned ?? new Set(),
      }),
      () => undefined,
    );
    this.readiedAhead.set(snapshot, readying);
    return readying.then(nothing);
  }

  /**
   * Reads the versions of `tags` (`read`, answering their snapshot) while it checks their first uses
   * (see `checkNow`), then extends the versions found, and keeps that as done ahead of the writes
   * stamped as of the snapshot (see `readyAhead`): what `keep` does for a write that reads its tags
   * itself, done before that write. Answers the snapshot; rejects where the read failed. What else
   * fails is left for the write to do.
   */
  async readAndReady(tags: readonly string[], storedExpiry: number | null, read: () => Promise<TagSnapshot>): Promise<TagSnapshot> {
    const checking = this.checkNow(tags, storedExpiry);
    const snapshot = await read();
    const checked = await checking;
    const { versioned, first } = byVersion(snapshot);
    const extendedTo = this.extendedAheadTo(storedExpiry);
    const extended = versioned.length === 0 || (await this.extendedAhead(versioned, extendedTo));
    const found = 'error' in checked ? undefined : checked;
    this.readiedAhead.set(
      snapshot,
      Promise.resolve({
        storedExpiry: extendedTo,
        extended: new Set(extended ? versioned : []),
        checked: new Set(found === undefined ? [] : first),
        horizon: found?.horizon ?? 0,
        versionedSince: found?.versioned ?? new Set<string>(),
      }),
    );
    return snapshot;
  }

  /**
   * How far a write's versions are extended ahead of it, for a write that will store until about
   * `storedExpiry`: past that as the horizon is, so that the write, which stores a little later, finds
   * them covered.
   */
  private extendedAheadTo(storedExpiry: number | null): number | null {
    return storedExpiry === null ? null : horizonAfter(storedExpiry, this.host.cache.now());
  }

  /**
   * A snapshot of the tags of all `snapshots` (each tag at the version the first of them that holds
   * it read), as of the first one's generation: what was done ahead for each of them (see
   * `readyAhead`) holds for the writes stamped as of it. A page is stamped as of the snapshot its
   * lookup read joined with those of the tags its view added as it rendered.
   */
  join(snapshots: readonly TagSnapshot[]): TagSnapshot {
    if (snapshots.length === 1) return snapshots[0]!;
    const versions = new Map<string, string | undefined>();
    for (const snapshot of snapshots) for (const [tag, version] of snapshot) if (!versions.has(tag)) versions.set(tag, version);
    const joined: TagSnapshot = Object.assign(versions, { generation: snapshots[0]!.generation });
    this.joinedFrom.set(joined, snapshots);
    return joined;
  }

  /** What was done ahead for the writes stamped as of `snapshot`, or of each snapshot it was joined from, where it was not left undone. */
  private async doneAheadOf(snapshot: TagSnapshot): Promise<ReadiedAhead[]> {
    const readied = await Promise.all((this.joinedFrom.get(snapshot) ?? [snapshot]).map((part) => this.readiedAhead.get(part)));
    return readied.filter((ahead) => ahead !== undefined);
  }

  /**
   * Checks now that `tags` still have no version (see `firstUsesSince`), for a write stored until
   * `storedExpiry` that reads their versions meanwhile: settled, never rejected.
   */
  checkNow(tags: readonly string[], storedExpiry: number | null): Promise<FirstUseCheck> {
    const checked = new Set(tags);
    return this.firstUsesSince(tags, storedExpiry).then(
      ({ horizon, versioned }) => ({ tags: checked, horizon, versioned }),
      (error: unknown) => ({ tags: checked, error }),
    );
  }

  /** Whether the tags' versions were extended to `storedExpiry` (see `extendVersions`): where they were not, the write extends them. */
  private async extendedAhead(tags: readonly string[], storedExpiry: number | null): Promise<boolean> {
    try {
      await this.extendVersions(tags, storedExpiry);
      return true;
    } catch {
      return false;
    }
  }

  /** Extends the expiry of the tags' version keys to `storedExpiry`, never shortening one. */
  private extendVersions(tags: readonly string[], storedExpiry: number | null): MaybePromise<void> {
    return this.host.primitives.extendExpiry!(
      tags.map((tag) => this.keyOf(tag)),
      storedExpiry,
    );
  }

  /**
   * A first use that could not be checked: with failOpen, where a failed write is a no-op, the write
   * is left out (its server's failure reported where it happened); otherwise it rejects.
   */
  private leaveOut(error: unknown, tags: string[], versions: Map<string, string | null>): void {
    if (!(error instanceof CacheServerError) || !this.host.failsOpen) throw error;
    for (const tag of tags) versions.set(tag, null);
  }

  /** Marks out of the write every tag among `tags` that got a version by now (see `firstUsesSince`). */
  private async checkFirstUses(tags: string[], versions: Map<string, string | null>, storedExpiry: number | null): Promise<void> {
    const { versioned } = await this.firstUsesSince(tags, storedExpiry);
    for (const tag of versioned) versions.set(tag, null);
  }

  /**
   * Raises the horizon past `storedExpiry` if it is not there yet, then reads which of `tags` got a
   * version meanwhile: answers those, and the horizon it found or raised to.
   */
  private async firstUsesSince(tags: readonly string[], storedExpiry: number | null): Promise<{ horizon: number; versioned: Set<string> }> {
    const { primitives, codec } = this.host;
    const keys = tags.map((tag) => this.keyOf(tag));
    const needed = horizonAfter(storedExpiry, this.host.cache.now());
    const horizonKey = this.horizonKey;
    let found = await primitives.readForUpdate([horizonKey, ...keys]);
    const horizon = found.get(horizonKey);
    let known = horizon === undefined ? undefined : Number(codec.decode(horizon.payload));
    if (known === undefined || !(known >= needed)) {
      for (let attempt = 0; ; attempt++) {
        if (
          known === undefined
            ? await primitives.insert(horizonKey, codec.encode(needed), null)
            : (await primitives.incrBy!(horizonKey, needed - known)) !== undefined
        )
          break;
        if (attempt === 3) throw new CacheServerError(`cache '${this.host.alias}': the tag horizon '${horizonKey}' could not be raised`, '');
        // Created or dropped by someone else meanwhile: read it again.
        const again = (await primitives.readForUpdate([horizonKey])).get(horizonKey);
        known = again === undefined ? undefined : Number(codec.decode(again.payload));
      }
      known = needed;
      found = await primitives.readForUpdate(keys);
    }
    return { horizon: known, versioned: new Set(tags.filter((_, i) => found.has(keys[i]!))) };
  }

  /**
   * Gives new version keys the horizon's expiry, read after they were written. No horizon (never
   * raised, or lost) leaves them without one.
   */
  async expireAtHorizon(keys: string[]): Promise<void> {
    const { primitives, codec } = this.host;
    const horizon = (await primitives.readForUpdate([this.horizonKey])).get(this.horizonKey);
    if (horizon === undefined) return;
    const expiresAt = Number(codec.decode(horizon.payload));
    if (!(expiresAt < FOREVER_HORIZON)) return;
    await Promise.all(keys.map((key) => primitives.retime(key, Math.max(expiresAt, this.host.cache.now() + 1))));
  }
}

/** A snapshot's tags that have a version, and those that have none yet (their first use is to be checked). */
function byVersion(snapshot: TagSnapshot): { versioned: string[]; first: string[] } {
  const versioned: string[] = [];
  const first: string[] = [];
  for (const [tag, version] of snapshot) (version === undefined ? first : versioned).push(tag);
  return { versioned, first };
}
