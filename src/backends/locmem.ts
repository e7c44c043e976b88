/**
 * locmem: an in-process cache on `lru-cache`. Aliases with the same location share one
 * store. Expiry is kept beside each entry and checked on read (no timers, no lru-cache `ttl`);
 * a full store culls its least recently used entries first.
 */
import { LRUCache } from 'lru-cache';
import { BaseCache, type CacheParams, type InProcessEntry, type InProcessRecency, type InProcessStanding } from '../base.js';
import { memoryCodec, type MemoryPayload } from '../codec.js';
import { CULLING_OPTIONS, cullCount, type CullingOptions, cullingOptions } from '../culling.js';

export type LocMemOptions = CullingOptions;

type LocMemEntry = InProcessEntry<MemoryPayload>;
/** One location's entries; `lru` is replaced, entries kept, when an alias needs more room. */
interface Store {
  lru: LRUCache<string, LocMemEntry>;
  /** Keys someone stands on having no entry (a tag never invalidated): retired when one is written. */
  absences: LRUCache<string, { retired: boolean }>;
  recency: InProcessRecency;
}

/** How many absences a store vouches for at once; one that leaves is retired, and is asked for again. */
const ABSENCES_REMEMBERED = 10_000;

/** An entry leaving its store, for whoever kept it (see `BaseCache.holdFresh`). */
function retire(entry: { retired: boolean }): void {
  entry.retired = true;
}

function newLru(capacity: number): LRUCache<string, LocMemEntry> {
  return new LRUCache<string, LocMemEntry>({ max: capacity, dispose: retire });
}

/** Stores by location, shared by every alias that names it, for the life of the process. */
const stores = new Map<string, Store>();

function storeFor(location: string, maxEntries: number): Store {
  // Culling keeps a store at maxEntries; lru-cache's own bound only has to stay out of its way.
  const capacity = maxEntries + 1;
  let store = stores.get(location);
  if (store === undefined) {
    const created: Store = {
      lru: newLru(capacity),
      absences: new LRUCache({ max: ABSENCES_REMEMBERED, dispose: retire }),
      recency: { crowded: false, touch: (key) => void created.lru.get(key) },
    };
    stores.set(location, (store = created));
  } else if (store.lru.max < capacity) {
    const grown = newLru(capacity);
    for (const [key, entry] of [...store.lru.entries()].reverse()) grown.set(key, entry);
    store.lru = grown;
  }
  return store;
}

export class LocMemCache extends BaseCache<MemoryPayload> {
  static override readonly optionNames = CULLING_OPTIONS;
  protected override readonly payloadsStayInProcess = true;
  private readonly culling: Required<CullingOptions>;
  private readonly store: Store;

  constructor(params: CacheParams<LocMemOptions> = {}) {
    super(params, memoryCodec);
    this.culling = cullingOptions(this.alias, params.options ?? {});
    this.store = storeFor(this.location.join(','), this.culling.maxEntries);
  }

  protected override readOne(key: string): LocMemEntry | undefined {
    const entry = this.store.lru.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt !== null && entry.expiresAt <= this.now()) {
      this.store.lru.delete(key);
      return undefined;
    }
    return entry;
  }

  override async countEntries(): Promise<number> {
    return this.store.lru.size;
  }

  protected override inProcess(key: string): LocMemEntry | undefined {
    return this.readOne(key);
  }

  protected override inProcessAbsence(key: string): InProcessStanding | undefined {
    if (this.live(key) !== undefined) return undefined;
    let absence = this.store.absences.get(key);
    if (absence === undefined) this.store.absences.set(key, (absence = { retired: false }));
    return absence;
  }

  protected override get inProcessRecency(): InProcessRecency {
    return this.store.recency;
  }

  protected read(keys: string[]): Map<string, LocMemEntry> {
    const found = new Map<string, LocMemEntry>();
    for (const key of keys) {
      const entry = this.readOne(key);
      if (entry !== undefined) found.set(key, entry);
    }
    return found;
  }

  protected override peekOne(key: string): LocMemEntry | undefined {
    return this.live(key);
  }

  protected override contains(key: string): boolean {
    return this.live(key) !== undefined;
  }

  protected write(entries: Array<[string, MemoryPayload]>, expiresAt: number | null): string[] {
    for (const [key, payload] of entries) this.put(key, payload, expiresAt);
    return [];
  }

  protected override writeOne(key: string, payload: MemoryPayload, expiresAt: number | null): void {
    this.put(key, payload, expiresAt);
  }

  protected insert(key: string, payload: MemoryPayload, expiresAt: number | null): boolean {
    if (this.live(key) !== undefined) return false;
    this.put(key, payload, expiresAt);
    return true;
  }

  protected remove(keys: string[]): number {
    let removed = 0;
    for (const key of keys) {
      if (this.live(key) !== undefined) removed++;
      this.store.lru.delete(key);
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
    this.store.lru.clear();
  }

  /** The live entry without touching its recency (Django's has_key and touch don't). */
  private live(key: string): LocMemEntry | undefined {
    const entry = this.store.lru.peek(key);
    return entry === undefined || this.isExpired(entry.expiresAt) ? undefined : entry;
  }

  private put(key: string, payload: MemoryPayload, expiresAt: number | null): void {
    const lru = this.store.lru;
    // Whoever stood on the key having no entry must read again.
    if (this.store.absences.size > 0) this.store.absences.delete(key);
    // An entry nobody keeps takes the new value in place: replacing it would allocate an entry per
    // write and leave the old one for the collector (a store of many keys sits in its old generation).
    const current = lru.get(key);
    if (current !== undefined && !current.kept) {
      current.payload = payload;
      current.expiresAt = expiresAt;
      return;
    }
    const before = lru.size;
    lru.set(key, { payload, expiresAt, retired: false, kept: false });
    // Only a new key in a full store culls (an overwrite leaves the count as it is), as many as a
    // cull before adding it would: the least recently used go first, so the new entry stays.
    if (current === undefined && before >= this.culling.maxEntries) for (let n = cullCount(before, this.culling); n > 0; n--) lru.pop();
    // Past half full, culling draws near: kept entries report their hits from then on.
    this.store.recency.crowded = lru.size * 2 >= lru.max;
  }
}
