/**
 * dummy: implements the whole API and stores nothing, for development and for turning
 * caching off without touching code. Keys are still made and validated, so bad keys show up early.
 */
import { BaseCache, type CacheParams, type Entry } from '../cache/base-cache.js';
import { type Codec, memoryCodec } from '../encoding/codec.js';

/**
 * Values are never kept, so they are never encoded either: a dummy cache validates keys, not values.
 * A write's tags, stale windows and record are stamped on as locmem stamps them, and dropped with it.
 */
const passThrough: Codec<unknown> = {
  encode: (value) => value,
  decode: (payload) => payload,
  stamp: memoryCodec.stamp,
  unstamp: memoryCodec.unstamp,
};

export class DummyCache extends BaseCache<unknown> {
  constructor(params: CacheParams = {}) {
    super(params, passThrough);
  }

  protected read(): Map<string, Entry<unknown>> {
    return new Map();
  }

  protected write(): string[] {
    return [];
  }

  protected insert(): boolean {
    return true;
  }

  protected remove(): number {
    return 0;
  }

  protected retime(): boolean {
    return false;
  }

  protected removeAll(): void {}
}
