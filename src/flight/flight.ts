/**
 * Something being computed that others may wait for: a value for getOrSet, a fragment, a page. It is
 * one object with an explicit state, settled exactly once by whichever ending comes first (done,
 * failed, given up), so a waiter never waits longer than the work lasts.
 */
import { BoundedMemo } from '../core/memo.js';

export type FlightState = 'running' | 'landed' | 'failed';

/** How many keys' last landed flights `Flights.share` keeps for callers that looked before they landed. */
const LANDED_REMEMBERED = 1_000;

export class Flight<T> {
  private current: FlightState = 'running';
  private resolveOutcome!: (value: T) => void;
  private rejectOutcome!: (error: unknown) => void;
  /** What the flight ended with, for those waiting on it; it rejects when the flight failed. */
  readonly outcome: Promise<T>;

  constructor(
    /** Who computes it (a request, a render): it never waits on its own flight. */
    readonly leader: unknown,
    private readonly onSettle: (flight: Flight<T>) => void,
  ) {
    this.outcome = new Promise<T>((resolve, reject) => {
      this.resolveOutcome = resolve;
      this.rejectOutcome = reject;
    });
    // The leader reports its own failure; a waiter sees it where it awaits the outcome.
    this.outcome.catch(() => undefined);
  }

  get state(): FlightState {
    return this.current;
  }

  /** Ends the flight with its value; a flight already settled stays as it is. */
  land(value: T): void {
    if (this.current !== 'running') return;
    this.current = 'landed';
    this.onSettle(this);
    this.resolveOutcome(value);
  }

  /**
   * Ends the flight with its value while that value is being stored: those waiting get it now, and
   * the flight stays its key's until `stored` settles, so a caller that comes before the value can
   * be read joins it rather than computing it again. A flight already settled stays as it is.
   */
  landWhileStoring(value: T, stored: Promise<unknown>): void {
    if (this.current !== 'running') return;
    this.current = 'landed';
    this.resolveOutcome(value);
    const leave = () => this.onSettle(this);
    stored.then(leave, leave);
  }

  /** Ends the flight with a failure; a flight already settled stays as it is. */
  fail(error: unknown): void {
    if (this.current !== 'running') return;
    this.current = 'failed';
    this.onSettle(this);
    this.rejectOutcome(error);
  }
}

/**
 * The flights of one cache in this process, at most one per key. Each level names its keys apart
 * (`getOrSet`, `fragment`, `page`), so one map serves them all. A flight leaves the map as it settles.
 */
export class Flights {
  private readonly running = new Map<string, Flight<unknown>>();
  /**
   * The last flight of each key that `share` landed, with the count of landings when it landed: a
   * caller that found the key missing before that flight landed takes its outcome rather than
   * computing the value again, though the flight has left `running`.
   */
  private readonly landed = new BoundedMemo<{ at: number; flight: Flight<unknown> }>(LANDED_REMEMBERED);
  private landings = 0;

  /** A mark of this moment for `share`: flights that land after it are joined by a caller that looked before. */
  mark(): number {
    return this.landings;
  }

  /** The flight running for `key`, if any. */
  find<T>(key: string): Flight<T> | undefined {
    return this.running.get(key) as Flight<T> | undefined;
  }

  /** Starts the flight for `key` that `leader` computes; the caller settles it. */
  lead<T>(key: string, leader?: unknown): Flight<T> {
    const flight = new Flight<T>(leader, (settled) => {
      if (this.running.get(key) === settled) this.running.delete(key);
    });
    this.running.set(key, flight as Flight<unknown>);
    return flight;
  }

  /**
   * The outcome of the flight running for `key`, else of one that runs `work`: concurrent callers
   * compute once. `since` (a `mark()` taken before the caller looked the key up) joins a flight that
   * landed after it too: the caller's lookup may have been answered before that flight stored its value.
   */
  share<T>(key: string, work: () => Promise<T>, since?: number): Promise<T> {
    const running = this.find<T>(key);
    if (running !== undefined) return running.outcome;
    if (since !== undefined) {
      const last = this.landed.get(key);
      if (last !== undefined && last.at > since) return last.flight.outcome as Promise<T>;
    }
    const flight = this.lead<T>(key);
    work().then(
      (value) => {
        this.landed.set(key, { at: ++this.landings, flight: flight as Flight<unknown> });
        flight.land(value);
      },
      (error: unknown) => flight.fail(error),
    );
    return flight.outcome;
  }
}
