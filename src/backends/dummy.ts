/**
 * dummy: implements the whole API and stores nothing, for development and for turning
 * caching off without touching code. Keys are still made and validated, so bad keys show up early.
 */
import { BaseCache, type CacheParams, type Entry } from '../core/base.js';

export class DummyCache extends BaseCache<unknown> {
  constructor(params: CacheParams = {}) {
    // Values are never kept, so they are never encoded either: a dummy cache validates keys, not values.
    super(params, { encode: (value) => value, decode: (payload) => payload });
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
