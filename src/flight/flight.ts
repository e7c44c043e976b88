/**
 * Something being computed that others may wait for: a value for getOrSet, a fragment, a page. It is
 * one object with an explicit state, settled exactly once by whichever ending comes first (done,
 * failed, given up), so a waiter never waits longer than the work lasts. The surprise: a flight is
 * joined only by callers that know of no invalidation it began before (see `answers`): one that an
 * invalidation overtook answers the caller that started it and those that came before the
 * invalidation, never a caller that began after it.
 */
import { BoundedMemo } from '../memos/bounded-memo.js';

export type FlightState = 'running' | 'landed' | 'failed';

/** How many keys' last landed flights `Flights.share` keeps for callers that looked before they landed. */
const LANDED_REMEMBERED = 1_000;

export class Flight<T> {
  /** What it landed with, or failed with; undefined while it runs. */
  private ending?: { value: T } | { error: unknown };
  /** The promise of its outcome, made when someone first waits: most flights land with nobody waiting. */
  private waited?: { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void };

  constructor(
    /** Who computes it (a request, a render): it never waits on its own flight. */
    readonly leader: unknown,
    /**
     * The generation of its cache (the count of invalidations, see src/tags/generation.ts) its work
     * began as of; undefined for work that carries no tag, which no invalidation of a tag overtakes.
     */
    readonly asOf: number | undefined,
    private readonly onSettle: (flight: Flight<T>) => void,
  ) {}

  /**
   * Whether a caller that read its cache's generation as `generation` may take this flight's outcome:
   * every invalidation it knows of had raised the generation before this work began. A caller that
   * began after an invalidation resolved reads a generation past that of work the invalidation overtook.
   */
  answers(generation: number | undefined): boolean {
    return generation === undefined || this.asOf === undefined || generation <= this.asOf;
  }

  /** What the flight ended with, for those waiting on it; it rejects when the flight failed. */
  get outcome(): Promise<T> {
    if (this.waited === undefined) {
      let resolve!: (value: T) => void;
      let reject!: (error: unknown) => void;
      const promise = new Promise<T>((settle, fail) => {
        resolve = settle;
        reject = fail;
      });
      // The leader reports its own failure; a waiter sees it where it awaits the outcome.
      promise.catch(() => undefined);
      this.waited = { promise, resolve, reject };
      if (this.ending !== undefined) this.tell(this.ending);
    }
    return this.waited.promise;
  }

  get state(): FlightState {
    return this.ending === undefined ? 'running' : 'error' in this.ending ? 'failed' : 'landed';
  }

  /** Ends the flight with its value; a flight already settled stays as it is. */
  land(value: T): void {
    if (this.ending !== undefined) return;
    this.ending = { value };
    this.onSettle(this);
    this.tell(this.ending);
  }

  /**
   * Ends the flight with its value while that value is being stored: those waiting get it now, and
   * the flight stays its key's until `leave()`, so a caller that comes before the value can be read
   * joins it rather than computing it again. A flight already settled stays as it is.
   */
  landWhileStoring(value: T): void {
    if (this.ending !== undefined) return;
    this.tell((this.ending = { value }));
  }

  /** Gives its key up, once what it landed with is stored (or could not be): the next caller computes it again. */
  leave(): void {
    this.onSettle(this);
  }

  /** Ends the flight with a failure; a flight already settled stays as it is. */
  fail(error: unknown): void {
    if (this.ending !== undefined) return;
    this.ending = { error };
    this.onSettle(this);
    this.tell(this.ending);
  }

  /** Settles the promise of those waiting, if anyone has asked for it. */
  private tell(ending: { value: T } | { error: unknown }): void {
    if (this.waited === undefined) return;
    if ('error' in ending) this.waited.reject(ending.error);
    else this.waited.resolve(ending.value);
  }
}

/** What a flight computes: a getOrSet value, a fragment or a page. Each level names its keys apart. */
export type FlightLevel = 'getOrSet' | 'fragment' | 'page';

/**
 * The flights of one cache in this process, at most one per level and key that a caller may join: a
 * flight an invalidation overtook is replaced by the next caller's, and runs on for its own. A
 * flight leaves its level as it settles.
 */
export class Flights {
  private readonly running: Record<FlightLevel, Map<string, Flight<unknown>>> = { getOrSet: new Map(), fragment: new Map(), page: new Map() };
  /**
   * The last flight of each key that `share` landed, with the count of landings when it landed: a
   * caller that found the key missing before that flight landed takes its outcome rather than
   * computing the value again, though the flight has left `running`.
   */
  private readonly landed: Partial<Record<FlightLevel, BoundedMemo<{ at: number; flight: Flight<unknown> }>>> = {};
  private landings = 0;

  /** A mark of this moment for `share`: flights that land after it are joined by a caller that looked before. */
  mark(): number {
    return this.landings;
  }

  /**
   * The flight running for `key` at `level` that a caller who read its cache's generation as
   * `generation` may join (see `Flight.answers`), if any.
   */
  find<T>(level: FlightLevel, key: string, generation: number | undefined): Flight<T> | undefined {
    const flight = this.running[level].get(key) as Flight<T> | undefined;
    return flight !== undefined && flight.answers(generation) ? flight : undefined;
  }

  /**
   * Starts the flight for `key` at `level` that `leader` computes as of the generation `asOf`, in
   * place of any the caller may not join; the caller settles it.
   */
  lead<T>(level: FlightLevel, key: string, leader: unknown, asOf: number | undefined): Flight<T> {
    const running = this.running[level];
    const flight = new Flight<T>(leader, asOf, (settled) => {
      if (running.get(key) === settled) running.delete(key);
    });
    running.set(key, flight as Flight<unknown>);
    return flight;
  }

  /**
   * Lets no caller from now on join the flights running or landed (a `clear` resolved in this
   * process): each runs on for those already waiting.
   */
  overtakeAll(): void {
    for (const level of Object.values(this.running)) level.clear();
    for (const landed of Object.values(this.landed)) landed.clear();
  }

  /**
   * The outcome of the flight running for `key` at `level` that the caller may join, else of one
   * that runs `work` as of the generation `asOf` (the caller's; see `Flight.answers`): concurrent
   * callers compute once. `since` (a `mark()` taken before the caller looked the key up) joins a
   * flight that landed after it too: the caller's lookup may have been answered before that flight
   * stored its value.
   */
  share<T>(level: FlightLevel, key: string, work: () => Promise<T>, { since, asOf }: { since?: number; asOf?: number } = {}): Promise<T> {
    const running = this.find<T>(level, key, asOf);
    if (running !== undefined) return running.outcome;
    const landed = (this.landed[level] ??= new BoundedMemo(LANDED_REMEMBERED));
    if (since !== undefined) {
      const last = landed.get(key);
      if (last !== undefined && last.at > since && last.flight.answers(asOf)) return last.flight.outcome as Promise<T>;
    }
    const flight = this.lead<T>(level, key, undefined, asOf);
    work().then(
      (value) => {
        landed.set(key, { at: ++this.landings, flight: flight as Flight<unknown> });
        flight.land(value);
      },
      (error: unknown) => flight.fail(error),
    );
    return flight.outcome;
  }
}
