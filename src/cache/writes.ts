/**
 * The writes besides `set` and `add`: many entries at once (`setMany`, `setEach`), written with as
 * few round trips as their expiries allow; `touch`, which rewrites an entry's stamp when it has stale
 * windows; and deletes.
 */
import { hasRunOut, latestStoredExpiry, storedExpiry } from '../store/call-options.js';
import { NO_TAGS, NOTHING_TO_STAMP } from '../encoding/stamps.js';
import { retimed, withOwnExpiry } from '../tags/expiry-stamps.js';
import type { SharedByParts } from './shared-by-parts.js';
import type { CacheKey } from '../keys/cache-keys.js';
import { failedKey, throwRefusal } from '../store/backend-primitives.js';
import type { ListOf, TagSnapshot, TimeoutArg, VersionOption } from '../store/cache-types.js';
import type { TouchArg } from '../store/cache-types.js';

/** One entry of `setEach`. */
export interface EachEntry {
  key: CacheKey;
  value: unknown;
  options?: TimeoutArg;
  /** The cache contexts a render's value varies on. */
  contexts?: readonly string[];
}

export class Writes<P> {
  constructor(private readonly shared: SharedByParts<P>) {}

  /** Stores every entry with one set of options; answers the keys that could not be stored. */
  async setMany(entries: Map<CacheKey, unknown> | Record<string, unknown>, timeoutOrOptions: TimeoutArg): Promise<string[]> {
    const { calls, keys, payloads, primitives, tags, codec, counts } = this.shared;
    calls.entries(entries, 'setMany');
    const { expiresAt, version, tags: tagList, windows, asOf } = calls.write(timeoutOrOptions, 'setMany');
    const pairs = entries instanceof Map ? [...entries] : Object.entries(entries);
    const byMade = new Map<string, CacheKey>();
    const encoded: Array<[string, P]> = [];
    for (const [key, value] of pairs) {
      const made = keys.made(key, version);
      byMade.set(made, key);
      encoded.push([made, payloads.encode(value, made)]);
    }
    if (encoded.length === 0) return [];
    if (hasRunOut(expiresAt)) {
      await primitives.remove([...byMade.keys()]);
      return [];
    }
    const stamp = tagList === undefined && windows === undefined ? NOTHING_TO_STAMP : await tags.stampFor({ tags: tagList, windows, expiresAt, asOf });
    if (stamp === undefined) return pairs.map(([key]) => String(key));
    for (const pair of encoded) pair[1] = stamp === NOTHING_TO_STAMP ? withOwnExpiry(this.shared, pair[1], expiresAt) : codec.stamp!(pair[1], stamp);
    const failed = await primitives.write(encoded, storedExpiry(expiresAt, windows));
    counts.sets += encoded.length - failed.length;
    return failed.map((failure) => {
      const made = failedKey(failure);
      return String(byMade.get(made) ?? made);
    });
  }

  /**
   * Stores entries that differ in timeout, tags or stale windows as one batch: the versions of all
   * their tags are settled once, then one write goes out per expiry. Answers the keys not stored. An
   * entry with `contexts` (a render's, even none) is stored with them and with when it stops being
   * fresh, for the renders that read it back (`readEntriesAndTags`).
   */
  async setEach(entries: ReadonlyArray<EachEntry>, tagsAsOf?: TagSnapshot): Promise<CacheKey[]> {
    const { calls, keys, payloads, primitives, tags, counts } = this.shared;
    const prepared = entries.map(({ key, value, options, contexts }) => {
      const { expiresAt, version, tags: tagList, windows } = calls.write(options, 'setEach');
      const made = keys.made(key, version);
      return { key, made, payload: payloads.encode(value, made), expiresAt, tags: tagList === undefined ? NO_TAGS : [...new Set(tagList)], windows, contexts };
    });
    const allTags = new Set<string>();
    for (const entry of prepared) for (const tag of entry.tags) allTags.add(tag);
    const versions = allTags.size === 0 ? new Map() : await tags.forWrite([...allTags], tagsAsOf, latestStoredExpiry(prepared));
    const notStored: CacheKey[] = [];
    const byExpiry = new Map<number | null, Array<[string, P]>>();
    const keyOf = new Map<string, CacheKey>();
    const expired: string[] = [];
    for (const entry of prepared) {
      const { expiresAt } = entry;
      if (typeof expiresAt === 'symbol') {
        expired.push(entry.made);
        continue;
      }
      const payload =
        entry.tags.length === 0 && entry.windows === undefined && entry.contexts === undefined
          ? withOwnExpiry(this.shared, entry.payload, expiresAt)
          : tags.stamped(entry, versions, expiresAt);
      if (payload === undefined) {
        notStored.push(entry.key);
        continue;
      }
      const expiry = storedExpiry(expiresAt, entry.windows);
      let batch = byExpiry.get(expiry);
      if (batch === undefined) byExpiry.set(expiry, (batch = []));
      batch.push([entry.made, payload]);
      keyOf.set(entry.made, entry.key);
    }
    const writes: Array<Promise<unknown>> = [...byExpiry].map(async ([expiry, batch]) => {
      const failed = await primitives.write(batch, expiry);
      counts.sets += batch.length - failed.length;
      for (const failure of failed) notStored.push(keyOf.get(failedKey(failure)) ?? failedKey(failure));
    });
    if (expired.length > 0) writes.push(Promise.resolve(primitives.remove(expired)));
    await Promise.all(writes);
    return notStored;
  }

  async delete(key: CacheKey, options: VersionOption | undefined): Promise<boolean> {
    const { calls, keys, primitives, counts } = this.shared;
    const made = keys.made(key, calls.versionOf(options, 'delete'));
    counts.deletes++;
    return (await primitives.remove([made])) > 0;
  }

  async deleteMany(keys: ListOf<CacheKey>, options: VersionOption | undefined): Promise<void> {
    const { calls, primitives, counts } = this.shared;
    const list = calls.keys(keys, 'deleteMany');
    const version = calls.versionOf(options, 'deleteMany');
    const made = [...list].map((key) => this.shared.keys.made(key, version));
    counts.deletes += made.length;
    if (made.length > 0) await primitives.remove(made);
  }

  /** Gives a live entry a new timeout, keeping its tags and stale windows; answers false when the key is missing. */
  async touch(key: CacheKey, timeoutOrOptions: TouchArg): Promise<boolean> {
    const { calls, keys, primitives, codec } = this.shared;
    const { expiresAt, version } = calls.touch(timeoutOrOptions);
    const made = keys.made(key, version);
    if (hasRunOut(expiresAt)) return (await primitives.remove([made])) > 0;
    if (codec.unstamp !== undefined) {
      // An entry whose stamp records when it stops being fresh has that moved with the timeout.
      const entry = await primitives.peekOne(made);
      const moved = entry === undefined ? undefined : retimed(this.shared, entry.payload, expiresAt);
      if (moved === 'outlived') return false;
      if (moved !== undefined) {
        throwRefusal(await primitives.write([[made, moved.payload]], moved.storedExpiry));
        return true;
      }
    }
    return primitives.retime(made, expiresAt);
  }
}
