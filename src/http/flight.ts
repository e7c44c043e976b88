/**
 * A page render in flight. Concurrent misses of one page wait for the render
 * that leads, and never longer than it lasts: every way a render can end (the response sent, a skip
 * decided at its head, an error, `res.destroy()`, a client gone) settles the flight, exactly once.
 * The flight hands waiters the page itself, so they never wait for the store behind it.
 */
import type { IncomingMessage } from 'node:http';
import { headerValuesHash } from './keys.js';

/** A page as the leading render sent it, with what a waiter needs to tell whether it is its variant. */
export interface RenderedPage<P> {
  page: P;
  /** The request headers the page varies on (lower-cased, sorted), and the leader's hash of their values. */
  varyHeaders: readonly string[];
  variant: string;
}

export class PageFlight<P> {
  private state: 'rendering' | 'settled' = 'rendering';
  private resolve!: (rendered: RenderedPage<P> | undefined) => void;
  /** The leader's page, or undefined when its render ended without one that others may share. */
  readonly settled: Promise<RenderedPage<P> | undefined>;

  constructor(
    /** The request that renders; its own other page-cache layers never wait on it. */
    readonly leader: IncomingMessage,
    private readonly onSettle: (flight: PageFlight<P>) => void,
  ) {
    this.settled = new Promise((resolve) => (this.resolve = resolve));
  }

  get rendering(): boolean {
    return this.state === 'rendering';
  }

  /** Ends the flight with the page, or without one; later calls change nothing. */
  settle(rendered?: RenderedPage<P>): void {
    if (this.state === 'settled') return;
    this.state = 'settled';
    this.onSettle(this);
    this.resolve(rendered);
  }

  /** The leader's page if it is the variant `req` asks for. */
  static pageFor<P>(rendered: RenderedPage<P> | undefined, req: IncomingMessage): P | undefined {
    if (rendered === undefined) return undefined;
    return headerValuesHash(req, rendered.varyHeaders) === rendered.variant ? rendered.page : undefined;
  }
}

/** The flights of one cache, by page identity (key prefix, URL, variant when known). */
export class PageFlights<P> {
  private readonly running = new Map<string, PageFlight<P>>();

  find(key: string): PageFlight<P> | undefined {
    return this.running.get(key);
  }

  /** Starts the flight `leader` renders; it leaves the map when it settles. */
  lead(key: string, leader: IncomingMessage): PageFlight<P> {
    const flight = new PageFlight<P>(leader, (settled) => {
      if (this.running.get(key) === settled) this.running.delete(key);
    });
    this.running.set(key, flight);
    return flight;
  }
}
