/** What the behaviour files of the conformance kit share: the backend under test, its traits, and the test's cache and clock. */
import type { BaseCache, CacheParams } from '../../../src/index.js';

export interface BackendTraits {
  /** Stores nothing (the dummy backend): reads miss, add answers true, incr fails. */
  storesNothing?: boolean;
  /** Expected entry counts after setting keys 1..49 with maxEntries 30, by cullFrequency; false when it does not cull. */
  culling?: false | { 3: number; 0: number };
  /** Throws InvalidCacheKeyError for keys memcached refuses, instead of warning (memcached). */
  strictKeys?: boolean;
  /**
   * The store expires entries by a server's clock, which the `now` hook does not move: the cache
   * judges entries by their own expiry, but what the server alone expires (see store-expiry.ts) is
   * waited for. The number is the clock's granularity in seconds (memcached: 1).
   */
  serverClock?: number;
  /** `close()` ends the cache's connections, after which it refuses every call. @default true for a backend with `makeDown` */
  closes?: boolean;
}

export interface BackendUnderTest {
  /** Builds a cache over the backend's shared test store; overrides add prefix, version, key function, options. */
  make(overrides?: Partial<CacheParams<any>>): BaseCache | Promise<BaseCache>;
  /** For a backend on a server: a cache of it whose server is down, with the options given. */
  makeDown?(options: Record<string, unknown>): BaseCache | Promise<BaseCache>;
  traits?: BackendTraits;
  /**
   * Writes bytes under a made key straight into the store, past the codec, as another process (or
   * another version of this package) might have. @default the backend's protected `write` primitive
   */
  storeRaw?(cache: BaseCache, made: string, bytes: Buffer): Promise<void>;
}

/** One backend's run of the kit, as each behaviour file sees it. */
export interface Kit {
  readonly backend: BackendUnderTest;
  readonly traits: BackendTraits;
  /** The test's cache over the shared store: made and cleared before each test, closed after it. */
  readonly cache: BaseCache;
  /** Another cache over the shared store, cleared now and closed after the test. */
  make(overrides?: Partial<CacheParams<any>>): Promise<BaseCache>;
  /** Moves the clock of every cache the test made on by `seconds`: what they judge by it expires. */
  advance(seconds: number): Promise<void>;
  /** `advance`, and on a server (`traits.serverClock`) a wait as long, so that what the server alone expires expires too. */
  elapse(seconds: number): Promise<void>;
}
