/**
 * The L1 tier: a layer over a server cache's primitives that keeps their contract
 * (`BackendPrimitives`), holding an in-process copy of recently read and written entries, answered
 * synchronously, kept honest by invalidations that every process publishes over Redis pub/sub (`L1Bus`). The surprise: a read or
 * write that was in flight when its key changed (here or in another process) is not kept, as it may
 * carry what the change replaced.
 */
import { LRUCache } from 'lru-cache';
import type { InProcessEntry, InProcessRecency, InProcessStanding, InProcessStore } from '../store/in-process-contract.js';
import { failedKey, payloadsInOrder, type BackendPrimitives, throwRefusal, type WriteFailure } from '../store/backend-primitives.js';
import { type Entry } from '../store/cache-types.js';
import { andThen, type MaybePromise } from '../store/maybe-promise.js';
import { type BusConnections, L1Bus } from './l1-bus.js';
import type { L1Settings } from './l1-settings.js';

interface L1Entry<P> extends InProcessEntry<P> {
  /** The entry's own expiry on the server (epoch seconds, null = never). */
  expiresAt: number | null;
  /** `l1.timeout` after this process learned the entry, by the cache's clock. */
  trustedUntil: number;
}

/** What the L1 is told of the cache whose backend it stands in front of. */
export interface L1Context<P> {
  clock: () => number;
  /** Turns a payload read from the server into the form that is cheapest to decode on every hit. */
  keep?: (payload: P) => P;
  /** The keys whose absence is worth keeping too (tag version keys). */
  remembersAbsence?: (key: string) => boolean;
  channelName: string;
  /** Whether `read(keys, false)` fills in `expiresAt` anyway (SQL rows do). */
  readsCarryExpiry: boolean;
  /** Connects the bus, called once on first use (undefined: no bus). */
  openBus: (() => BusConnections) | undefined;
  reportError: (error: Error) => void;
}

/** Past this many remembered changes, the oldest are forgotten by treating everything as changed. */
const CHANGES_REMEMBERED = 10_000;

/**
 * The L1 over a backend: the same contract (`BackendPrimitives`) as the backend it is given, so a
 * cache composed with it calls it where it would call its backend. Its hits are answered from memory (see `InProcessStore`).
 */
export class L1Tier<P> implements BackendPrimitives<P>, InProcessStore<P> {
  private readonly entries: LRUCache<string, L1Entry<P>>;
  /** How the entries' hits reach their order of use, for callers that keep an entry (the integration's `peekFreshToKeep`). */
  readonly recency: InProcessRecency;
  /** Counts every change seen here (local writes, invalidations from others). */
  private tick = 0;
  /** The tick of each key's latest change, so that a fill that started before it is not kept. */
  private readonly changedAt = new Map<string, number>();
  /** The tick of the latest change to every key (a clear, the bus reconnecting). */
  private everythingChangedAt = 0;
  /** How it hears of changes made elsewhere, and tells others of its own. */
  private readonly bus: L1Bus;
  /** Turns a payload read from the server into the form that is cheapest to decode on every hit. */
  private readonly keep: ((payload: P) => P) | undefined;
  /**
   * The keys whose absence is worth keeping too: tag version keys, which a tag never invalidated
   * does not have, and which every read of its entries asks for.
   */
  private readonly remembersAbsence: (key: string) => boolean;
  /** Keys the server had no entry for, trusted until `trustedUntil`; retired once the key changes. */
  private readonly absent: LRUCache<string, { retired: boolean; trustedUntil: number }>;
  private readonly clock: () => number;
  /** Whether `read(keys, false)` fills in `expiresAt` anyway (SQL rows do). */
  private readonly readsCarryExpiry: boolean;

  /**
   * Moves the expiry of live keys later, where the backend can: what is held here stays safe, as it is
   * trusted until the earlier expiry at most.
   */
  readonly extendExpiry?: (keys: string[], expiresAt: number | null) => MaybePromise<void>;
  /** Adds to a stored integer, where the backend can do it atomically: a change like any other. */
  readonly incrBy?: (key: string, delta: number) => MaybePromise<number | undefined>;

  /** `backend` is what the L1 stands in front of: every read it cannot answer, and every change, goes on to it. */
  constructor(
    private readonly backend: BackendPrimitives<P>,
    private readonly settings: L1Settings,
    context: L1Context<P>,
  ) {
    this.entries = new LRUCache<string, L1Entry<P>>({
      max: settings.maxEntries,
      dispose: (entry) => {
        entry.retired = true;
      },
    });
    this.absent = new LRUCache<string, { retired: boolean; trustedUntil: number }>({
      max: settings.maxEntries,
      dispose: (absence) => {
        absence.retired = true;
      },
    });
    const entries = this.entries;
    this.recency = { crowded: false, touch: (key) => void entries.get(key) };
    this.clock = context.clock;
    this.keep = context.keep;
    this.remembersAbsence = context.remembersAbsence ?? (() => false);
    this.readsCarryExpiry = context.readsCarryExpiry;
    const heard = (keys: string[] | null) => (keys === null ? this.forgetEverything() : this.forget(keys));
    this.bus = new L1Bus(context.channelName, context.openBus, heard, context.reportError);
    if (backend.extendExpiry !== undefined) this.extendExpiry = (keys, expiresAt) => backend.extendExpiry!(keys, expiresAt);
    if (backend.incrBy !== undefined) this.incrBy = (key, delta) => this.changing([key], () => backend.incrBy!(key, delta));
  }

  /** How many entries the tier holds (for tests and stats). */
  get size(): number {
    return this.entries.size;
  }

  /** Whether a trusted entry for the made key is held here, without touching its recency. */
  holds(key: string): boolean {
    const entry = this.entries.peek(key);
    if (entry === undefined) return false;
    return this.trusted(entry);
  }

  /** Whether invalidations from other processes are arriving right now. */
  get busUp(): boolean {
    return this.bus.state === 'up';
  }

  // ---- Reads ---------------------------------------------------------------------------------

  /** The entry this process holds for `key`, if it still trusts it; never asks the server. */
  held(key: string): InProcessEntry<P> | undefined {
    return this.trustedEntry(key);
  }

  /** That the server has no entry for `key`, while this process knows and still trusts it. */
  heldAbsence(key: string): InProcessStanding | undefined {
    const absence = this.absent.get(key);
    if (absence === undefined) return undefined;
    if (absence.trustedUntil > this.clock() && this.bus.state !== 'closed') return absence;
    this.absent.delete(key);
    return undefined;
  }

  /** The entry this process holds for `key`, if it still trusts it (dropped when it does not). */
  private trustedEntry(key: string): L1Entry<P> | undefined {
    if (this.bus.state === 'none') this.bus.connect();
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (!this.trusted(entry)) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  /**
   * Live on the server, and learned at most `timeout` seconds ago. The bound holds with the bus up
   * too: nothing announces what a server drops by itself (an eviction, a cull), and an invalidation
   * can be lost while the bus is down before anyone notices.
   */
  private trusted(entry: L1Entry<P>): boolean {
    const now = this.clock();
    return (entry.expiresAt === null || entry.expiresAt > now) && entry.trustedUntil > now;
  }

  // ---- The contract, in front of the backend's ----------------------------------------------

  readOne(key: string): MaybePromise<Entry<P> | undefined> {
    const held = this.trustedEntry(key);
    if (held !== undefined) return held;
    const started = this.tick;
    const found = this.backend.read([key], !this.readsCarryExpiry);
    const keep = (entries: Map<string, Entry<P>>) => {
      const entry = entries.get(key);
      if (entry !== undefined) this.fill(key, entry, started);
      return entry;
    };
    return found instanceof Promise ? found.then(keep) : keep(found);
  }

  /** Peeking fills the L1 as a read does: a later read of the key is answered here. */
  peekOne(key: string): MaybePromise<Entry<P> | undefined> {
    return this.readOne(key);
  }

  contains(key: string): MaybePromise<boolean> {
    return this.trustedEntry(key) !== undefined ? true : this.backend.contains(key);
  }

  read(keys: string[], withExpiry: boolean): MaybePromise<Map<string, Entry<P>>> {
    // incr and incrVersion read to write: they go to the server, which is the truth.
    if (withExpiry) return this.backend.read(keys, true);
    const found = new Map<string, Entry<P>>();
    let missing: string[] | undefined;
    for (const key of keys) {
      const held = this.trustedEntry(key);
      if (held !== undefined) found.set(key, held);
      else if (this.absent.size === 0 || this.heldAbsence(key) === undefined) (missing ??= []).push(key);
    }
    if (missing === undefined) return found;
    const started = this.tick;
    const asked = missing;
    const fetched = this.backend.read(asked, !this.readsCarryExpiry);
    const merge = (entries: Map<string, Entry<P>>) => {
      for (const [key, entry] of entries) {
        this.fill(key, entry, started);
        found.set(key, entry);
      }
      for (const key of asked) if (!entries.has(key) && this.remembersAbsence(key) && !this.changedSince(key, started)) this.keepAbsence(key);
      return found;
    };
    return fetched instanceof Promise ? fetched.then(merge) : merge(fetched);
  }

  /** What the L1 holds, merged with what the server answers: the batch in order comes from the merged Map. */
  readPayloads(keys: string[]): MaybePromise<ReadonlyArray<P | undefined>> {
    return andThen(this.read(keys, false), (found) => payloadsInOrder(keys, found));
  }

  /** A read to write (the `incr` fallback, `incrVersion`): the server is the truth. */
  readForUpdate(keys: string[]): MaybePromise<Map<string, Entry<P>>> {
    return this.backend.readForUpdate(keys);
  }

  /** Keeps what the server answered, unless the key changed since the read started. */
  private fill(key: string, entry: Entry<P>, started: number): void {
    if (this.changedSince(key, started)) return;
    // Without a known expiry the entry is trusted only for the L1 timeout, bus or not.
    const expiresAt = entry.expiresAt === undefined ? this.clock() + this.settings.timeout : entry.expiresAt;
    this.keepEntry(key, this.keep === undefined ? entry.payload : this.keep(entry.payload), expiresAt);
  }

  private keepAbsence(key: string): void {
    this.absent.set(key, { retired: false, trustedUntil: this.clock() + this.settings.timeout });
  }

  private keepEntry(key: string, payload: P, expiresAt: number | null): void {
    this.entries.set(key, { payload, expiresAt, retired: false, kept: false, trustedUntil: this.clock() + this.settings.timeout });
    // Past half full, culling draws near: kept entries report their hits from then on.
    this.recency.crowded = this.entries.size * 2 >= this.entries.max;
  }

  private changedSince(key: string, tick: number): boolean {
    return this.everythingChangedAt > tick || (this.changedAt.get(key) ?? 0) > tick;
  }

  // ---- Changes -------------------------------------------------------------------------------

  write(entries: Array<[string, P]>, expiresAt: number | null): MaybePromise<WriteFailure[]> {
    if (this.bus.state === 'none') this.bus.connect();
    const keys = entries.map(([key]) => key);
    const started = this.markChanged(keys);
    const keep = (failed: WriteFailure[]) => {
      for (const [key, payload] of entries) {
        // Only our own write may fill: a later change (ours or another process's) wins, and what was
        // held before the write is what both replaced.
        if (!this.changedSince(key, started)) this.keepEntry(key, payload, expiresAt);
        else this.entries.delete(key);
      }
      for (const failure of failed) this.entries.delete(failedKey(failure));
      this.markChanged(keys);
      this.bus.publish(keys);
      return failed;
    };
    const failed = this.settle(keys, () => this.backend.write(entries, expiresAt));
    return failed instanceof Promise ? failed.then(keep) : keep(failed);
  }

  /**
   * A batch of one through `write`, whatever the backend's own `writeOne`: only `write` answers
   * which keys the server did not store (with failOpen, `writeOne` resolves either way).
   */
  writeOne(key: string, payload: P, expiresAt: number | null): MaybePromise<void> {
    return andThen(this.write([[key, payload]], expiresAt), throwRefusal);
  }

  insert(key: string, payload: P, expiresAt: number | null): MaybePromise<boolean> {
    if (this.bus.state === 'none') this.bus.connect();
    const started = this.markChanged([key]);
    const keep = (stored: boolean) => {
      if (stored && !this.changedSince(key, started)) this.keepEntry(key, payload, expiresAt);
      else if (stored) this.entries.delete(key);
      this.markChanged([key]);
      if (stored) this.bus.publish([key]);
      return stored;
    };
    const stored = this.settle([key], () => this.backend.insert(key, payload, expiresAt));
    return stored instanceof Promise ? stored.then(keep) : keep(stored);
  }

  remove(keys: string[]): MaybePromise<number> {
    return this.changing(keys, () => this.backend.remove(keys));
  }

  retime(key: string, expiresAt: number | null): MaybePromise<boolean> {
    return this.changing([key], () => this.backend.retime(key, expiresAt));
  }

  removeAll(): MaybePromise<void> {
    if (this.bus.state === 'none') this.bus.connect();
    this.forgetEverything();
    const done = () => {
      this.forgetEverything();
      this.bus.publish(null);
    };
    const result = this.settle(null, () => this.backend.removeAll());
    return result instanceof Promise ? result.then(done) : done();
  }

  /** Leaves the bus, then lets the backend release its own connections. */
  async disconnect(): Promise<void> {
    this.entries.clear();
    this.absent.clear();
    await this.bus.close();
    await this.backend.disconnect?.();
  }

  /** A change the L1 cannot mirror: the keys are dropped here, before and after, and in every other process. */
  private changing<T>(keys: string[], change: () => MaybePromise<T>): MaybePromise<T> {
    if (this.bus.state === 'none') this.bus.connect();
    this.forget(keys);
    const done = (result: T) => {
      this.forget(keys);
      this.bus.publish(keys);
      return result;
    };
    const result = this.settle(keys, change);
    return result instanceof Promise ? result.then(done) : done(result);
  }

  /**
   * Runs a change of `keys` (null: every key); when it fails, they are dropped everywhere, as the
   * server may hold either value (a clear cut short has removed some of them).
   */
  private settle<T>(keys: string[] | null, change: () => MaybePromise<T>): MaybePromise<T> {
    const fail = (error: unknown): never => {
      if (keys === null) this.forgetEverything();
      else this.forget(keys);
      this.bus.publish(keys);
      throw error;
    };
    try {
      const result = change();
      return result instanceof Promise ? result.catch(fail) : result;
    } catch (error) {
      return fail(error);
    }
  }

  private markChanged(keys: string[]): number {
    const tick = ++this.tick;
    if (this.changedAt.size + keys.length > CHANGES_REMEMBERED) {
      this.changedAt.clear();
      this.everythingChangedAt = tick;
    }
    for (const key of keys) {
      this.changedAt.set(key, tick);
      if (this.absent.size > 0) this.absent.delete(key);
    }
    return tick;
  }

  private forget(keys: string[]): void {
    for (const key of keys) this.entries.delete(key);
    this.markChanged(keys);
  }

  private forgetEverything(): void {
    this.entries.clear();
    this.absent.clear();
    this.changedAt.clear();
    this.everythingChangedAt = ++this.tick;
  }
}
