/** A store for fragment tests that holds nothing in process, as a server does. */
import { memoryCodec, type MemoryPayload } from '../../src/encoding/codec.js';
import { BaseCache, type CacheParams, type Entry } from '../../src/index.js';
import type { MaybePromise } from '../../src/store/maybe-promise.js';

/** Stores of `RemoteLikeStore`, by location: aliases with the same location share one, as locmem's do. */
const remoteLikeStores = new Map<string, Map<string, { payload: MemoryPayload; expiresAt: number | null }>>();

/**
 * A custom backend over a map that, like a server, offers no entry held in process (it implements
 * only the backend contract's primitives), so every fragment hit is read after the engine's pass, one batch per
 * level. It counts its batch reads as `CountingLocMem` does (a read of one key, as `get` makes, is
 * answered apart, as locmem answers it).
 */
export class RemoteLikeStore extends BaseCache<MemoryPayload> {
  reads = 0;
  private readonly map: Map<string, { payload: MemoryPayload; expiresAt: number | null }>;
  constructor(params: CacheParams) {
    super(params, memoryCodec);
    const location = String(params.location ?? '');
    this.map = remoteLikeStores.get(location) ?? new Map();
    remoteLikeStores.set(location, this.map);
  }
  protected read(keys: string[]) {
    this.reads++;
    return this.live(keys);
  }
  protected override readOne(key: string): MaybePromise<Entry<MemoryPayload> | undefined> {
    return this.live([key]).get(key);
  }
  private live(keys: string[]) {
    const found = new Map<string, Entry<MemoryPayload>>();
    for (const key of keys) {
      const entry = this.map.get(key);
      if (entry !== undefined && !this.isExpired(entry.expiresAt)) found.set(key, { payload: entry.payload, expiresAt: entry.expiresAt });
    }
    return found;
  }
  protected write(entries: Array<[string, MemoryPayload]>, expiresAt: number | null): string[] | Promise<string[]> {
    for (const [key, payload] of entries) this.map.set(key, { payload, expiresAt });
    return [];
  }
  protected insert(key: string, payload: MemoryPayload, expiresAt: number | null) {
    if (this.live([key]).size > 0) return false;
    this.map.set(key, { payload, expiresAt });
    return true;
  }
  protected remove(keys: string[]) {
    return keys.filter((key) => this.live([key]).size > 0 && this.map.delete(key)).length;
  }
  protected retime(key: string, expiresAt: number | null) {
    const entry = this.live([key]).size > 0 ? this.map.get(key) : undefined;
    if (entry !== undefined) entry.expiresAt = expiresAt;
    return entry !== undefined;
  }
  protected removeAll() {
    this.map.clear();
  }
}
