/**
 * The L1 tier: an in-process copy of recently read and written entries in front of a
 * server cache, answered synchronously, kept honest by invalidations that every process publishes
 * over Redis pub/sub. The surprise: a read or write that was in flight when its key changed (here
 * or in another process) is not kept, as it may carry what the change replaced.
 */
import { randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { InProcessEntry, InProcessRecency, InProcessStanding, InProcessStore } from '../core/in-process.js';
import { failedKey, payloadsInOrder, type Seam, type WriteFailure } from '../core/seam.js';
import { type Entry } from '../core/types.js';
import { andThen, type MaybePromise } from '../core/maybe.js';
import type { L1Settings } from './l1-settings.js';

/** The primitives of a server cache that the L1 sits in front of. */
export type Primitives<P> = Pick<
  Seam<P>,
  'read' | 'readPayloads' | 'readOne' | 'contains' | 'write' | 'insert' | 'remove' | 'retime' | 'extendExpiry' | 'removeAll' | 'incrBy' | 'disconnect'
>;

/** Where invalidations travel: a connection to publish on, and one (in subscriber mode) to listen on. */
/** The connection the tier hears invalidations on: an ioredis client is one. */
export interface BusSubscriber {
  on(event: 'message', listener: (channel: string, message: string) => void): unknown;
  on(event: 'ready' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  subscribe(channel: string): Promise<unknown>;
  connect(): Promise<void>;
}

export interface BusConnections {
  publisher: { publish(channel: string, message: string): Promise<unknown> };
  subscriber: BusSubscriber;
  /** Ends the connections opened for the bus (not a publisher that is the cache's own client). */
  close(): Promise<void>;
}

interface L1Entry<P> extends InProcessEntry<P> {
  /** The entry's own expiry on the server (epoch seconds, null = never). */
  expiresAt: number | null;
  /** `l1.timeout` after this process learned the entry, by the cache's clock. */
  trustedUntil: number;
}

/** What the L1 is told of the cache it sits in front of (see `L1Tier.install`). */
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

/** How the bus stands: `up` only while subscribed; entries outlive `timeout` only then. */
type BusState = 'none' | 'connecting' | 'up' | 'down' | 'closed';

/** Past this many remembered changes, the oldest are forgotten by treating everything as changed. */
const CHANGES_REMEMBERED = 10_000;

/** The L1 is a store in this process: its hits may be answered from memory (see `InProcessStore`). */
export class L1Tier<P> implements InProcessStore<P> {
  /**
   * Puts an L1 in front of `cache`'s primitives (its own methods, replaced on the instance), so
   * that every read and change of the base class passes through it.
   */
  static install<P>(cache: Primitives<P>, settings: L1Settings, context: L1Context<P>): L1Tier<P> {
    const inner: Primitives<P> = {
      read: cache.read.bind(cache),
      readPayloads: cache.readPayloads.bind(cache),
      readOne: cache.readOne.bind(cache),
      contains: cache.contains.bind(cache),
      write: cache.write.bind(cache),
      insert: cache.insert.bind(cache),
      remove: cache.remove.bind(cache),
      retime: cache.retime.bind(cache),
      extendExpiry: cache.extendExpiry?.bind(cache),
      removeAll: cache.removeAll.bind(cache),
      incrBy: cache.incrBy?.bind(cache),
      disconnect: cache.disconnect?.bind(cache),
    };
    const tier = new L1Tier(settings, inner, context);
    Object.assign(cache, tier.primitives());
    return tier;
  }

  private readonly entries: LRUCache<string, L1Entry<P>>;
  /** How the entries' hits reach their order of use, for callers that keep an entry (`BaseCache.holdFresh`). */
  readonly recency: InProcessRecency;
  /** Counts every change seen here (local writes, invalidations from others). */
  private tick = 0;
  /** The tick of each key's latest change, so that a fill that started before it is not kept. */
  private readonly changedAt = new Map<string, number>();
  /** The tick of the latest change to every key (a clear, the bus reconnecting). */
  private everythingChangedAt = 0;
  private busState: BusState = 'none';
  private bus: BusConnections | undefined;
  /** Messages carry it so that a process ignores its own: its tiers have applied them already. */
  private static readonly sender = randomBytes(6).toString('base64url');
  /** The tiers of this process by channel: a change reaches the others at once, without the bus. */
  private static readonly siblings = new Map<string, Set<L1Tier<unknown>>>();
  private readonly channel: string;
  /** Turns a payload read from the server into the form that is cheapest to decode on every hit. */
  private readonly keep: ((payload: P) => P) | undefined;
  /**
   * The keys whose absence is worth keeping too: tag version keys, which a tag never invalidated
   * does not have, and which every read of its entries asks for.
   */
  private readonly remembersAbsence: (key: string) => boolean;
  private readonly clock: () => number;
  private readonly readsCarryExpiry: boolean;
  private readonly openBus: (() => BusConnections) | undefined;
  private readonly reportError: (error: Error) => void;
  /** Keys the server had no entry for, trusted until `trustedUntil`; retired once the key changes. */
  private readonly absent: LRUCache<string, { retired: boolean; trustedUntil: number }>;

  /** `inner`: the cache's own primitives, bound. */
  constructor(
    private readonly settings: L1Settings,
    private readonly inner: Primitives<P>,
    context: L1Context<P>,
  ) {
    this.clock = context.clock;
    this.keep = context.keep;
    this.remembersAbsence = context.remembersAbsence ?? (() => false);
    this.readsCarryExpiry = context.readsCarryExpiry;
    this.openBus = context.openBus;
    this.reportError = context.reportError;
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
    this.channel = `cachegrain:l1:${context.channelName}`;
    let siblings = L1Tier.siblings.get(this.channel);
    if (siblings === undefined) L1Tier.siblings.set(this.channel, (siblings = new Set()));
    siblings.add(this as L1Tier<unknown>);
  }

  /** The primitives with the L1 in front, to install over the cache's own. */
  primitives(): Primitives<P> {
    const inner = this.inner;
    return {
      read: (keys, withExpiry) => this.read(keys, withExpiry),
      // What the L1 holds, merged with what the server answers: the batch in order comes from the merged Map.
      readPayloads: (keys) => andThen(this.read(keys, false), (found) => payloadsInOrder(keys, found)),
      readOne: (key) => this.readOne(key),
      contains: (key) => (this.lookup(key) !== undefined ? true : inner.contains(key)),
      write: (entries, expiresAt) => this.write(entries, expiresAt),
      insert: (key, payload, expiresAt) => this.insert(key, payload, expiresAt),
      remove: (keys) => this.changing(keys, () => inner.remove(keys)),
      retime: (key, expiresAt) => this.changing([key], () => inner.retime(key, expiresAt)),
      // A later expiry leaves what is held here safe: it is trusted until the earlier one at most.
      ...(inner.extendExpiry === undefined ? {} : { extendExpiry: (keys: string[], expiresAt: number | null) => inner.extendExpiry!(keys, expiresAt) }),
      removeAll: () => this.changingEverything(() => inner.removeAll()),
      ...(inner.incrBy === undefined ? {} : { incrBy: (key: string, delta: number) => this.changing([key], () => inner.incrBy!(key, delta)) }),
      disconnect: () => this.close(),
    };
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
    return this.busState === 'up';
  }

  // ---- Reads ---------------------------------------------------------------------------------

  /** The entry this process holds for `key`, if it still trusts it; never asks the server. */
  held(key: string): InProcessEntry<P> | undefined {
    return this.lookup(key);
  }

  /** That the server has no entry for `key`, while this process knows and still trusts it. */
  heldAbsence(key: string): InProcessStanding | undefined {
    const absence = this.absent.get(key);
    if (absence === undefined) return undefined;
    if (absence.trustedUntil > this.clock() && this.busState !== 'closed') return absence;
    this.absent.delete(key);
    return undefined;
  }

  private lookup(key: string): L1Entry<P> | undefined {
    if (this.busState === 'none') this.connect();
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

  private readOne(key: string): MaybePromise<Entry<P> | undefined> {
    const held = this.lookup(key);
    if (held !== undefined) return held;
    const started = this.tick;
    const found = this.inner.read([key], !this.readsCarryExpiry);
    const keep = (entries: Map<string, Entry<P>>) => {
      const entry = entries.get(key);
      if (entry !== undefined) this.fill(key, entry, started);
      return entry;
    };
    return found instanceof Promise ? found.then(keep) : keep(found);
  }

  private read(keys: string[], withExpiry: boolean): MaybePromise<Map<string, Entry<P>>> {
    // incr and incrVersion read to write: they go to the server, which is the truth.
    if (withExpiry) return this.inner.read(keys, true);
    const found = new Map<string, Entry<P>>();
    let missing: string[] | undefined;
    for (const key of keys) {
      const held = this.lookup(key);
      if (held !== undefined) found.set(key, held);
      else if (this.absent.size === 0 || this.heldAbsence(key) === undefined) (missing ??= []).push(key);
    }
    if (missing === undefined) return found;
    const started = this.tick;
    const asked = missing;
    const fetched = this.inner.read(asked, !this.readsCarryExpiry);
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

  private write(entries: Array<[string, P]>, expiresAt: number | null): MaybePromise<WriteFailure[]> {
    if (this.busState === 'none') this.connect();
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
      this.publish(keys);
      return failed;
    };
    const failed = this.settle(keys, () => this.inner.write(entries, expiresAt));
    return failed instanceof Promise ? failed.then(keep) : keep(failed);
  }

  private insert(key: string, payload: P, expiresAt: number | null): MaybePromise<boolean> {
    if (this.busState === 'none') this.connect();
    const started = this.markChanged([key]);
    const keep = (stored: boolean) => {
      if (stored && !this.changedSince(key, started)) this.keepEntry(key, payload, expiresAt);
      else if (stored) this.entries.delete(key);
      this.markChanged([key]);
      if (stored) this.publish([key]);
      return stored;
    };
    const stored = this.settle([key], () => this.inner.insert(key, payload, expiresAt));
    return stored instanceof Promise ? stored.then(keep) : keep(stored);
  }

  /** A change the L1 cannot mirror: the keys are dropped here, before and after, and in every other process. */
  private changing<T>(keys: string[], change: () => MaybePromise<T>): MaybePromise<T> {
    if (this.busState === 'none') this.connect();
    this.forget(keys);
    const done = (result: T) => {
      this.forget(keys);
      this.publish(keys);
      return result;
    };
    const result = this.settle(keys, change);
    return result instanceof Promise ? result.then(done) : done(result);
  }

  private changingEverything(change: () => MaybePromise<void>): MaybePromise<void> {
    if (this.busState === 'none') this.connect();
    this.forgetEverything();
    const done = () => {
      this.forgetEverything();
      this.publish(null);
    };
    const result = change();
    return result instanceof Promise ? result.then(done) : done();
  }

  /** Runs a change; when it fails, the keys are dropped everywhere, as the server may hold either value. */
  private settle<T>(keys: string[], change: () => MaybePromise<T>): MaybePromise<T> {
    const fail = (error: unknown): never => {
      this.forget(keys);
      this.publish(keys);
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

  // ---- The bus -------------------------------------------------------------------------------

  /** Tells every other process to drop `keys` (null: everything of this cache). */
  private publish(keys: string[] | null): void {
    // A change that ends after its cache closed (a write the close failed) still reaches the caches of this process.
    for (const sibling of L1Tier.siblings.get(this.channel) ?? []) {
      if (sibling === this) continue;
      if (keys === null) sibling.forgetEverything();
      else sibling.forget(keys);
    }
    // Closed, the cache has left the bus: other processes trust what they hold for l1.timeout at most, as with the bus down.
    if (this.bus === undefined || this.busState === 'closed') return;
    const message = `${L1Tier.sender} ${keys === null ? '*' : JSON.stringify(keys)}`;
    // Not awaited: the write is done; the message only has to leave before anything else does.
    // One the close cuts short is lost as with the bus down: the other processes trust what they hold for l1.timeout at most.
    this.bus.publisher.publish(this.channel, message).catch((error: Error) => this.busFailed('publishing an invalidation failed: ', error));
  }

  private receive(message: string): void {
    const space = message.indexOf(' ');
    if (message.slice(0, space) === L1Tier.sender) return;
    const body = message.slice(space + 1);
    if (body === '*') return this.forgetEverything();
    try {
      this.forget(JSON.parse(body) as string[]);
    } catch {
      // Not ours (someone else publishing on the channel): the safe answer is to drop everything.
      this.forgetEverything();
    }
  }

  private connect(): void {
    if (this.openBus === undefined) {
      this.busState = 'down';
      return;
    }
    this.busState = 'connecting';
    const bus = this.openBus();
    this.bus = bus;
    const subscriber = bus.subscriber;
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.channel) this.receive(message);
    });
    subscriber.on('ready', () => {
      subscriber.subscribe(this.channel).then(
        () => {
          if (this.busState === 'closed') return;
          // Whatever was published while we were away is lost: start again from the server.
          this.forgetEverything();
          this.busState = 'up';
        },
        (error: Error) => this.busFailed('subscribing failed: ', error),
      );
    });
    subscriber.on('close', () => {
      if (this.busState !== 'closed') this.busState = 'down';
    });
    subscriber.on('error', (error: Error) => this.busFailed('', error));
    subscriber.connect().catch(() => undefined);
  }

  /** Reports a failure of the bus, unless the cache's close caused it: a closed cache has left the bus on purpose. */
  private busFailed(what: string, error: Error): void {
    if (this.busState !== 'closed') this.reportError(new Error(`L1 bus: ${what}${error.message}`, { cause: error }));
  }

  private async close(): Promise<void> {
    const bus = this.bus;
    this.busState = 'closed';
    this.entries.clear();
    this.absent.clear();
    const siblings = L1Tier.siblings.get(this.channel)!;
    siblings.delete(this as L1Tier<unknown>);
    if (siblings.size === 0) L1Tier.siblings.delete(this.channel);
    await bus?.close();
    await this.inner.disconnect?.();
  }
}
