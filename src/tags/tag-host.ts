/**
 * What the tags need of the cache they serve, declared here so that the tags stand below the cache
 * and never see its class: its alias, clock and failOpen, its backend's primitives, codec, payloads,
 * made keys, call options and counts, and who it tells of its invalidations. The cache's parts
 * (`SharedByParts`) are one.
 */
import type { BackendPrimitives } from '../store/backend-primitives.js';
import type { CallOptions } from '../store/call-options.js';
import type { Codec } from '../encoding/codec.js';
import type { KeyMaker } from '../store/key-maker.js';
import type { CacheStats } from '../observation/observation.js';
import type { Payloads } from '../encoding/payloads.js';

export interface TagHost<P> {
  readonly alias: string;
  /** The cache's clock (which tests replace). */
  readonly cache: { now(): number };
  /** Whether a server's failure answers as a miss or a no-op rather than rejecting. */
  readonly failsOpen: boolean;
  readonly primitives: BackendPrimitives<P>;
  readonly codec: Codec<P>;
  /** Whether entries carry their expiry in their stamp, where the store expires them by a server's clock (see `BackendContract.expiresByServerClock`). */
  readonly stampsExpiry: boolean;
  readonly payloads: Payloads<P>;
  readonly keys: KeyMaker<P>;
  readonly calls: CallOptions;
  readonly counts: CacheStats;
  /**
   * Who it tells of its invalidations once they have landed (the edges' purges among them): answers
   * at once, or with `waitForEdges` once each took it (see `EdgeWaitOptions`).
   */
  readonly listeners: { tagsInvalidated(tags: readonly string[], soft: boolean, waitForEdges: boolean | number | undefined): Promise<void> };
}
