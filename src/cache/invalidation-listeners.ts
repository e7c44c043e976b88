/**
 * What a cache tells of its invalidations once they have landed (Drupal's cache tags invalidators):
 * each listener added with `addInvalidationListener` hears every `invalidateTags` (and so every
 * `invalidatePage`, whose tags are `url:` tags) and every `clear`, in the order added. The purges of
 * the edges in front are one such listener, added where the `purge` configuration is read; a search
 * index or a message bus is another, and the cache knows none of them.
 */
import { DEFAULT_EDGE_WAIT_SECONDS } from '../store/cache-types.js';
import { describe } from '../errors/errors.js';
import type { Reporter } from '../observation/reporting.js';
import { WorkBehind } from '../flight/work-behind.js';

/** What every listener is told with an invalidation. */
export interface InvalidationEvent {
  /** The alias of the cache invalidated. */
  readonly alias: string;
  /**
   * At most how many seconds the caller waits for what the listener answers (its `waitForEdges`):
   * a listener still at it by then rejects, naming what it had not done. Undefined when the caller
   * does not wait.
   */
  readonly waitSeconds: number | undefined;
}

/** What a listener is told with an invalidation of tags. */
export interface TagsInvalidatedEvent extends InvalidationEvent {
  /** Whether the entries were made stale (`{ soft: true }`) rather than gone. */
  readonly soft: boolean;
}

/**
 * Hears a cache's invalidations, each once the cache's own has landed: a read of the cache then sees
 * the new state. It answers at once, or with a promise of its part in this invalidation: the caller
 * waits for that promise only when it asked to (`waitForEdges`); otherwise a rejection is reported
 * as the cache reports its own failures (an `error` event, else logged), and `settled()` waits for it.
 */
export interface InvalidationListener {
  /** After `invalidateTags(tags)` (and `invalidatePage`, whose tags are `url:` tags). */
  tagsInvalidated?(tags: readonly string[], event: TagsInvalidatedEvent): void | Promise<void>;
  /** After `clear()` emptied the cache. */
  everythingCleared?(event: InvalidationEvent): void | Promise<void>;
  /** Settles once the work it goes on doing behind the callers it answered has ended: the cache's `settled()` waits for it. */
  settled?(): Promise<void>;
}

/** How long the caller waits at most, in seconds, for `waitForEdges`; undefined when it does not. */
function waitSecondsOf(waitForEdges: boolean | number | undefined): number | undefined {
  if (waitForEdges === undefined || waitForEdges === false) return undefined;
  return waitForEdges === true ? DEFAULT_EDGE_WAIT_SECONDS : waitForEdges;
}

/** The listeners of one cache, told of each invalidation in the order added. */
export class InvalidationListeners {
  private readonly listeners: InvalidationListener[] = [];
  /** What the listeners answered to callers that did not wait, until it settles. */
  private readonly behind = new WorkBehind();

  constructor(
    private readonly alias: string,
    private readonly reporter: Reporter,
  ) {}

  /** Every listener, in the order added. */
  get all(): readonly InvalidationListener[] {
    return this.listeners;
  }

  /** Adds `listener`, told after those added before it; refuses one that hears nothing. */
  add(listener: InvalidationListener): void {
    const methods = ['tagsInvalidated', 'everythingCleared', 'settled'] as const;
    const hears =
      listener !== null &&
      typeof listener === 'object' &&
      (typeof listener.tagsInvalidated === 'function' || typeof listener.everythingCleared === 'function') &&
      methods.every((name) => listener[name] === undefined || typeof listener[name] === 'function');
    if (!hears) {
      throw new TypeError(
        `cache '${this.alias}': addInvalidationListener: a listener must be an object with a tagsInvalidated(tags, event) or everythingCleared(event) method (got ${describe(listener)})`,
      );
    }
    this.listeners.push(listener);
  }

  /** Tells each listener that `tags` were invalidated; with `waitForEdges`, settles once each took it. */
  tagsInvalidated(tags: readonly string[], soft: boolean, waitForEdges: boolean | number | undefined): Promise<void> {
    const event: TagsInvalidatedEvent = { alias: this.alias, waitSeconds: waitSecondsOf(waitForEdges), soft };
    return this.tell(`tags ${tags.join(' ')}`, event, (listener) => listener.tagsInvalidated?.(tags, event));
  }

  /** Tells each listener that the cache was cleared; with `waitForEdges`, settles once each took it. */
  everythingCleared(waitForEdges: boolean | number | undefined): Promise<void> {
    const event: InvalidationEvent = { alias: this.alias, waitSeconds: waitSecondsOf(waitForEdges) };
    return this.tell('clear', event, (listener) => listener.everythingCleared?.(event));
  }

  /** Settles once what the listeners do behind the callers they answered has ended. Never rejects. */
  async settled(): Promise<void> {
    await this.behind.settled();
    await Promise.allSettled(this.listeners.map((listener) => listener.settled?.()));
  }

  /**
   * Calls `hear` on each listener in order. A caller that waits gets the first failure among their
   * answers; one that does not is answered at once, each failure reported naming `what` was invalidated.
   */
  private async tell(what: string, { waitSeconds }: InvalidationEvent, hear: (listener: InvalidationListener) => void | Promise<void>): Promise<void> {
    const answers: Array<Promise<void>> = [];
    for (const listener of this.listeners) {
      let answer: void | Promise<void>;
      try {
        answer = hear(listener);
      } catch (error) {
        answer = Promise.reject(error);
      }
      if (answer !== undefined) answers.push(Promise.resolve(answer));
    }
    if (waitSeconds !== undefined) {
      await Promise.all(answers);
      return;
    }
    for (const answer of answers) this.behind.add(answer.catch((error: unknown) => this.failed(what, error)));
  }

  /** Reports a listener's failure that no caller waited for. */
  private failed(what: string, error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    try {
      this.reporter.report(new Error(`cache '${this.alias}': an invalidation listener failed on ${what}: ${message}`, { cause: error }));
    } catch {
      // An `error` listener that throws on a report must not stop the invalidation listeners behind it.
    }
  }
}
