/**
 * locmem: an in-process cache. Aliases with the same location share one store. Expiry is kept
 * beside each entry and checked on read (no timers); a full store culls its least recently used
 * entries first, never a tag's version.
 */
import { LRUCache } from 'lru-cache';
import { BaseCache, type CacheParams } from '../cache/base-cache.js';
import type { InProcessEntry, InProcessRecency, InProcessStanding, LocalStore } from '../store/in-process-contract.js';
import { memoryCodec, type MemoryPayload } from '../encoding/codec.js';
import { CULLING_OPTIONS, cullCount, type CullingOptions, cullingOptions } from './culling.js';

export type LocMemOptions = CullingOptions;

/** An entry, linked to its neighbours in the order of use: the store moves it to the newest end on each use without a lookup. */
interface LocMemEntry extends InProcessEntry<MemoryPayload> {
  readonly key: string;
  older: LocMemEntry | undefined;
  newer: LocMemEntry | undefined;
}

/**
 * One location's entries by made key, least recently used first. Its own list rather than
 * lru-cache's: a caller that kept an entry (see `MadeKey`) reports a use of it, or writes
 * into it, without looking its key up again. An entry that leaves is retired.
 */
class Entries {
  private readonly byKey = new Map<string, LocMemEntry>();
  private oldest: LocMemEntry | undefined;
  private newest: LocMemEntry | undefined;

  get size(): number {
    return this.byKey.size;
  }

  /** The entry under `key`, as it stands (expired or not), without counting a use. */
  peek(key: string): LocMemEntry | undefined {
    return this.byKey.get(key);
  }

  /** The entry under `key`, counted as used. */
  use(key: string): LocMemEntry | undefined {
    const entry = this.byKey.get(key);
    if (entry !== undefined) this.used(entry);
    return entry;
  }

  /** Moves an entry of this store to the newest end. */
  used(entry: LocMemEntry): void {
    if (entry === this.newest) return;
    this.unlink(entry);
    this.link(entry);
  }

  /** Adds an entry under a key that has none, or replaces (and retires) the one it has. */
  add(entry: LocMemEntry): void {
    const replaced = this.byKey.get(entry.key);
    if (replaced !== undefined) this.drop(replaced);
    this.byKey.set(entry.key, entry);
    this.link(entry);
  }

  delete(key: string): void {
    const entry = this.byKey.get(key);
    if (entry === undefined) return;
    this.byKey.delete(key);
    this.drop(entry);
  }

  /** Removes the `count` least recently used entries, passing over those `survives` keeps. */
  dropOldest(count: number, survives: (key: string) => boolean): void {
    let entry = this.oldest;
    while (count > 0 && entry !== undefined) {
      const newer = entry.newer;
      if (!survives(entry.key)) {
        this.delete(entry.key);
        count--;
      }
      entry = newer;
    }
  }

  clear(): void {
    for (const entry of this.byKey.values()) entry.retired = true;
    this.byKey.clear();
    this.oldest = this.newest = undefined;
  }

  private drop(entry: LocMemEntry): void {
    this.unlink(entry);
    entry.retired = true;
  }

  private link(entry: LocMemEntry): void {
    entry.older = this.newest;
    entry.newer = undefined;
    if (this.newest === undefined) this.oldest = entry;
    else this.newest.newer = entry;
    this.newest = entry;
  }

  private unlink(entry: LocMemEntry): void {
    if (entry.older === undefined) this.oldest = entry.newer;
    else entry.older.newer = entry.newer;
    if (entry.newer === undefined) this.newest = entry.older;
    else entry.newer.older = entry.older;
    entry.older = entry.newer = undefined;
  }
}

interface Store {
  entries: Entries;
  /** The most entries an alias of this location keeps. */
  capacity: number;
  /** Keys someone stands on having no entry (a tag never invalidated): retired when one is written. */
  absences: LRUCache<string, { retired: boolean }>;
  recency: InProcessRecency;
}

/** How many absences a store vouches for at once; one that leaves is retired, and is asked for again. */
const ABSENCES_REMEMBERED = 10_000;

/** Stores by location, shared by every alias that names it, for the life of the process. */
const stores = new Map<string, Store>();

function storeFor(location: string, maxEntries: number): Store {
  let store = stores.get(location);
  if (store === undefined) {
    const entries = new Entries();
    store = {
      entries,
      capacity: maxEntries,
      absences: new LRUCache({ max: ABSENCES_REMEMBERED, dispose: (absence) => void (absence.retired = true) }),
      recency: { crowded: false, touch: (key) => void entries.use(key) },
    };
    stores.set(location, store);
  } else store.capacity = Math.max(store.capacity, maxEntries);
  return store;
}

/** The in-process cache; it is its own `LocalStore`, so that its hits are answered from memory. */
export class LocMemCache extends BaseCache<MemoryPayload> implements LocalStore<MemoryPayload> {
  static override readonly optionNames = CULLING_OPTIONS;
  private readonly culling: Required<CullingOptions>;
  private readonly store: Store;

  constructor(params: CacheParams<LocMemOptions> = {}) {
    super(params, memoryCodec);
    this.culling = cullingOptions(this.alias, params.options ?? {});
    this.store = storeFor(this.location.join(','), this.culling.maxEntries);
    this.answerFromMemory(this);
  }

  protected override readOne(key: string, now?: number): InProcessEntry<MemoryPayload> | undefined {
    const entry = this.store.entries.use(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt !== null && entry.expiresAt <= (now ?? this.now())) {
      this.store.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  protected override async countEntries(): Promise<number> {
    return this.store.entries.size;
  }

  /** Its reads and writes, tagged ones too, are done within the call's own turn: they touch nothing outside memory. */
  protected override get answersAtOnce(): boolean {
    return true;
  }

  /** The live entry under a made key, counted as used (see `InProcessStore`). */
  held(key: string): InProcessEntry<MemoryPayload> | undefined {
    return this.readOne(key);
  }

  usedAgain(entry: InProcessEntry<MemoryPayload>): boolean {
    if (entry.retired) return false;
    if (entry.expiresAt !== null && entry.expiresAt <= this.now()) return false;
    this.store.entries.used(entry as LocMemEntry);
    return true;
  }

  heldAbsence(key: string): InProcessStanding | undefined {
    if (this.live(key) !== undefined) return undefined;
    let absence = this.store.absences.get(key);
    if (absence === undefined) this.store.absences.set(key, (absence = { retired: false }));
    return absence;
  }

  get recency(): InProcessRecency {
    return this.store.recency;
  }

  /** The most entries its store holds (the largest `maxEntries` of the aliases sharing it). */
  get capacity(): number {
    return this.store.capacity;
  }

  /** The live entries under `keys`, their expiries judged as of one reading of the clock. */
  protected read(keys: string[]): Map<string, InProcessEntry<MemoryPayload>> {
    const found = new Map<string, InProcessEntry<MemoryPayload>>();
    const now = this.now();
    for (const key of keys) {
      const entry = this.readOne(key, now);
      if (entry !== undefined) found.set(key, entry);
    }
    return found;
  }

  protected override peekOne(key: string): InProcessEntry<MemoryPayload> | undefined {
    return this.live(key);
  }

  protected override contains(key: string): boolean {
    return this.live(key) !== undefined;
  }

  protected write(entries: Array<[string, MemoryPayload]>, expiresAt: number | null): string[] {
    for (const [key, payload] of entries) this.put(key, this.store.entries.use(key), payload, expiresAt);
    return [];
  }

  protected override writeOne(key: string, payload: MemoryPayload, expiresAt: number | null): void {
    this.put(key, this.store.entries.use(key), payload, expiresAt);
  }

  writeAfter(key: string, last: InProcessEntry<MemoryPayload> | undefined, payload: MemoryPayload, expiresAt: number | null): InProcessEntry<MemoryPayload> {
    let current: LocMemEntry | undefined;
    if (last !== undefined && !last.retired) this.store.entries.used((current = last as LocMemEntry));
    else current = this.store.entries.use(key);
    return this.put(key, current, payload, expiresAt);
  }

  protected insert(key: string, payload: MemoryPayload, expiresAt: number | null): boolean {
    if (this.live(key) !== undefined) return false;
    this.put(key, this.store.entries.use(key), payload, expiresAt);
    return true;
  }

  protected remove(keys: string[]): number {
    let removed = 0;
    for (const key of keys) {
      if (this.live(key) !== undefined) removed++;
      this.store.entries.delete(key);
    }
    return removed;
  }

  protected retime(key: string, expiresAt: number | null): boolean {
    const entry = this.live(key);
    if (entry === undefined) return false;
    entry.expiresAt = expiresAt;
    return true;
  }

  protected removeAll(): void {
    this.store.entries.clear();
  }

  /** The live entry without touching its recency (Django's has_key and touch don't). */
  private live(key: string): LocMemEntry | undefined {
    const entry = this.store.entries.peek(key);
    return entry === undefined || this.isExpired(entry.expiresAt) ? undefined : entry;
  }

  /** Writes under `key`, whose entry (already counted as used) is `current`, if it has one. */
  private put(key: string, current: LocMemEntry | undefined, payload: MemoryPayload, expiresAt: number | null): LocMemEntry {
    const { entries, absences } = this.store;
    // Whoever stood on the key having no entry must read again.
    if (absences.size > 0) absences.delete(key);
    // An entry nobody keeps takes the new value in place: replacing it would allocate an entry per
    // write and leave the old one for the collector (a store of many keys sits in its old generation).
    if (current !== undefined && !current.kept) {
      current.payload = payload;
      current.expiresAt = expiresAt;
      return current;
    }
    const before = entries.size;
    // Only a new key in a full store culls (an overwrite leaves the count as it is), as many as a
    // cull before adding it would: the least recently used go first, so the new entry stays.
    if (current === undefined && before >= this.culling.maxEntries) entries.dropOldest(cullCount(before, this.culling), (made) => this.survivesCulls(made));
    const entry: LocMemEntry = { key, payload, expiresAt, retired: false, kept: false, older: undefined, newer: undefined };
    entries.add(entry);
    // Past half full, culling draws near: kept entries report their hits from then on.
    this.store.recency.crowded = entries.size * 2 >= this.store.capacity;
    return entry;
  }
}
