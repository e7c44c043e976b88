/**
 * One cache's purges of the shared caches in front of it, one of its invalidation listeners: queued
 * once the application's own invalidation has landed, sent one request at a time per edge, tried
 * again with backoff on network errors, timeouts, 5xx and 429, and when given up reported through
 * the cache's reporting path naming the edge and what was not purged. The caller waits on no edge,
 * unless it asks to (`waitForEdges`): then for its own purge only, each edge's answer to the
 * requests that carried it, bounded.
 */
import { type ClientRequest, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { type CacheStats, PURGE_CHANNEL, type PurgeEvent } from '../observation/observation.js';
import type { InvalidationEvent, InvalidationListener, TagsInvalidatedEvent } from '../cache/invalidation-listeners.js';
import type { EdgePurgeConfig, Purge } from './purge-options.js';
import { edgeName, edgeRequests, type EdgeRequest } from './edge-requests.js';
import { tagHeadersReadBy } from './purge-config.js';

export const DEFAULT_PURGE_TIMEOUT_MS = 5_000;
export const DEFAULT_PURGE_TRIES = 3;
/** Milliseconds before the second try; each later one waits twice as long as the one before. */
const FIRST_BACKOFF_MS = 100;

/** A purge the edge did not take, reported as an `error` event (or logged) on the cache. */
export class EdgePurgeError extends Error {
  override name = 'EdgePurgeError';

  constructor(
    message: string,
    /** The edge, as `edgeName` names it: `varnish http://127.0.0.1:6081`. */
    readonly edge: string,
    /** What was not purged: `tags a b`, `URL //shop.example/news`, `everything`. */
    readonly notPurged: string,
    /** Why: `tried 3 times; last: PURGE http://127.0.0.1:6081/ answered 503`. */
    readonly why: string,
  ) {
    super(message);
  }
}

/**
 * A call made with `waitForEdges` whose purge an edge refused or had not taken in time. The cache's
 * own invalidation is done; the edges named may still answer with what it replaced. A refusal is
 * reported as an `EdgePurgeError` as well, as every failed purge is; a purge still under way goes on.
 */
export class EdgeWaitError extends Error {
  override name = 'EdgeWaitError';

  constructor(
    message: string,
    /** The purges refused or given up, each reported too. */
    readonly failures: readonly EdgePurgeError[],
    /** The edges that had not answered when the wait ended, as `edgeName` names them. */
    readonly unanswered: readonly string[],
  ) {
    super(message);
  }
}

/** A failed purge in words, after `cache '<alias>': `. */
const notPurgedWords = (edge: string, purges: string, why: string) => `the edge ${edge} did not purge ${purges} (${why})`;

/** A queued purge, and what settles once the requests that carry it were answered: the failures among them. */
interface QueuedPurge {
  purge: Purge;
  carried: (failures: readonly EdgePurgeError[]) => void;
}

/** How one try ended: taken, worth another try, or refused for good (a 4xx but 429). */
type TryOutcome = { taken: true } | { taken: false; again: boolean; reason: string };

/**
 * The purges of one edge, sent one request after another so that purges reach it in the order made:
 * idle, or draining its queue (`drained` settles when it is idle again). What is queued while a
 * request is in flight goes after it as one purge (see `coalesced`), so a slow edge gets a few
 * requests, never one per invalidation made meanwhile.
 */
class EdgeLine {
  private queue: QueuedPurge[] = [];
  private state: { is: 'idle' } | { is: 'draining'; drained: Promise<void> } = { is: 'idle' };
  readonly name: string;

  constructor(
    readonly config: EdgePurgeConfig,
    private readonly send: (line: EdgeLine, request: EdgeRequest) => Promise<EdgePurgeError | undefined>,
  ) {
    this.name = edgeName(config);
  }

  /**
   * Queues `purge`; answers, once the requests of the batch it went out in were answered, the
   * failures among them. Merged into that batch (see `coalesced`), it is carried by all its requests.
   */
  add(purge: Purge): Promise<readonly EdgePurgeError[]> {
    const carried = new Promise<readonly EdgePurgeError[]>((resolve) => this.queue.push({ purge, carried: resolve }));
    if (this.state.is === 'idle') this.state = { is: 'draining', drained: this.drain() };
    return carried;
  }

  /** Undefined when idle, else settles once this edge has nothing queued or in flight. */
  get drained(): Promise<void> | undefined {
    return this.state.is === 'draining' ? this.state.drained : undefined;
  }

  private async drain(): Promise<void> {
    // Let the invalidation that queued this return first: the caller never waits on an edge.
    await Promise.resolve();
    while (this.queue.length > 0) {
      const taken = this.queue;
      this.queue = [];
      const failures: EdgePurgeError[] = [];
      for (const purge of coalesced(taken.map((queued) => queued.purge))) {
        for (const request of edgeRequests(this.config, purge)) {
          const failure = await this.send(this, request);
          if (failure !== undefined) failures.push(failure);
        }
      }
      for (const queued of taken) queued.carried(failures);
    }
    this.state = { is: 'idle' };
  }
}

/**
 * Purges queued together, as few as do the same once sent: every one of them was made before any is
 * sent, so a purge of everything stands for all, and a tag purged hard needs no soft purge too.
 */
export function coalesced(purges: readonly Purge[]): Purge[] {
  if (purges.length === 1) return [...purges];
  if (purges.some((purge) => purge.kind === 'everything')) return [{ kind: 'everything' }];
  const hard = new Set<string>();
  const soft = new Set<string>();
  for (const purge of purges) if (purge.kind === 'tags') for (const tag of purge.tags) (purge.soft ? soft : hard).add(tag);
  for (const tag of hard) soft.delete(tag);
  const merged: Purge[] = [];
  if (hard.size > 0) merged.push({ kind: 'tags', tags: [...hard], soft: false });
  if (soft.size > 0) merged.push({ kind: 'tags', tags: [...soft], soft: true });
  return merged;
}

/** The edges one cache purges: the listener its alias's `purge` option adds to it. */
export class EdgePurges implements InvalidationListener {
  private readonly lines: EdgeLine[];
  /** The tag headers these edges read a page's tags from (`xkey`, `Surrogate-Key`, `Cache-Tag`). */
  readonly tagHeaders: readonly string[];

  constructor(
    private readonly alias: string,
    /** The edges purged, as the `purge` option names them. */
    readonly edges: readonly EdgePurgeConfig[],
    /** The cache purged for: a purge given up is reported as its own failures are. */
    private readonly reporter: { reportError(error: Error, cause?: string): void },
    /** The cache's counts, where `purgesSent` and `purgesFailed` are counted. */
    private readonly counts: CacheStats,
  ) {
    this.lines = edges.map((edge) => new EdgeLine(edge, (line, request) => this.sendWithRetries(line, request)));
    this.tagHeaders = tagHeadersReadBy(edges);
  }

  tagsInvalidated(tags: readonly string[], { soft, waitSeconds }: TagsInvalidatedEvent): Promise<void> | undefined {
    return this.purge({ kind: 'tags', tags, soft }, waitSeconds);
  }

  everythingCleared({ waitSeconds }: InvalidationEvent): Promise<void> | undefined {
    return this.purge({ kind: 'everything' }, waitSeconds);
  }

  /**
   * Queues `purge` on every edge. Answers at once; given `waitSeconds`, a promise that settles once
   * every edge took it, rejecting with an `EdgeWaitError` when one refused it or the wait ran out first.
   */
  private purge(purge: Purge, waitSeconds: number | undefined): Promise<void> | undefined {
    if (purge.kind === 'tags' && purge.tags.length === 0) return undefined;
    const carried = this.lines.map((line) => line.add(purge));
    return waitSeconds === undefined ? undefined : this.taken(carried, waitSeconds);
  }

  /** Settles once each line's `carried` answered, or `seconds` passed; rejects naming the edges that refused or had not answered. */
  private async taken(carried: ReadonlyArray<Promise<readonly EdgePurgeError[]>>, seconds: number): Promise<void> {
    const answered: Array<readonly EdgePurgeError[] | undefined> = carried.map(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const overdue = new Promise<void>((resolve) => (timer = setTimeout(resolve, seconds * 1000)));
    await Promise.race([Promise.all(carried.map((each, i) => each.then((failures) => void (answered[i] = failures)))), overdue]);
    clearTimeout(timer);
    const failures = answered.flatMap((each) => each ?? []);
    const unanswered = this.lines.filter((_, i) => answered[i] === undefined).map((line) => line.name);
    if (failures.length === 0 && unanswered.length === 0) return;
    const words = [
      ...failures.map((failure) => notPurgedWords(failure.edge, failure.notPurged, failure.why)),
      ...unanswered.map((edge) => `the edge ${edge} had not taken the purge within ${seconds} s`),
    ];
    throw new EdgeWaitError(`cache '${this.alias}': ${words.join('; ')}`, failures, unanswered);
  }

  /** Settles once every purge queued so far (and any queued meanwhile) was taken by its edge or given up and reported. */
  async settled(): Promise<void> {
    for (;;) {
      const draining = this.lines.map((line) => line.drained).filter((drained) => drained !== undefined);
      if (draining.length === 0) return;
      await Promise.all(draining);
    }
  }

  /** Sends `request` to `line`'s edge, trying it again where worth it; answers the failure reported when it is given up. */
  private async sendWithRetries(line: EdgeLine, request: EdgeRequest): Promise<EdgePurgeError | undefined> {
    if (request.unsendable !== undefined) return this.notPurged(line, request, `not sent: ${request.unsendable}`);
    const tries = line.config.tries ?? DEFAULT_PURGE_TRIES;
    const timeoutMs = line.config.timeoutMs ?? DEFAULT_PURGE_TIMEOUT_MS;
    for (let tried = 1; ; tried++) {
      const outcome = await sendOnce(request, timeoutMs);
      if (outcome.taken) {
        this.counted(line, 'sent');
        return undefined;
      }
      if (!outcome.again || tried >= tries) {
        return this.notPurged(line, request, `tried ${tried === 1 ? 'once' : `${tried} times`}; last: ${outcome.reason}`);
      }
      await new Promise((resolve) => setTimeout(resolve, FIRST_BACKOFF_MS * 2 ** (tried - 1)));
    }
  }

  /** Counts a purge request `line`'s edge took or that was given up, and publishes it to whoever listens. */
  private counted(line: EdgeLine, outcome: PurgeEvent['outcome']): void {
    if (outcome === 'sent') this.counts.purgesSent++;
    else this.counts.purgesFailed++;
    if (PURGE_CHANNEL.hasSubscribers) PURGE_CHANNEL.publish({ alias: this.alias, edge: line.name, outcome } satisfies PurgeEvent);
  }

  /** Reports `request` as not purged by `line`'s edge, and why, and counts it failed; answers the error reported. */
  private notPurged(line: EdgeLine, { purges }: EdgeRequest, why: string): EdgePurgeError {
    this.counted(line, 'failed');
    const failure = new EdgePurgeError(`cache '${this.alias}': ${notPurgedWords(line.name, purges, why)}`, line.name, purges, why);
    try {
      this.reporter.reportError(failure, `edge ${line.name}: ${purges}`);
    } catch {
      // An `error` listener that throws on a report must not stop the purges behind it.
    }
    return failure;
  }
}

/** One try of `request`, given up after `timeoutMs`. */
function sendOnce(request: EdgeRequest, timeoutMs: number): Promise<TryOutcome> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const settle = (outcome: TryOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    const target = new URL(request.url);
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const headers = request.body === undefined ? request.headers : { ...request.headers, 'Content-Length': String(Buffer.byteLength(request.body)) };
    let outgoing: ClientRequest;
    try {
      outgoing = send(target, { method: request.method, headers }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', (error) => settle({ taken: false, again: true, reason: error.message }));
        response.on('end', () => {
          const status = response.statusCode ?? 0;
          if ((status >= 200 && status < 300) || status === request.nothingHeld) return settle({ taken: true });
          const said = Buffer.concat(chunks).toString('utf8').replace(/\s+/g, ' ').trim().slice(0, 200);
          settle({
            taken: false,
            again: status >= 500 || status === 429,
            reason: `${request.method} ${request.url} answered ${status}${said === '' ? '' : `: ${said}`}`,
          });
        });
      });
    } catch (error) {
      // A header Node refuses to send (a character it does not allow): no try would do better.
      return settle({ taken: false, again: false, reason: `${request.method} ${request.url}: ${(error as Error).message}` });
    }
    timer = setTimeout(() => {
      settle({ taken: false, again: true, reason: `${request.method} ${request.url} had no answer within ${timeoutMs} ms` });
      outgoing.destroy();
    }, timeoutMs);
    outgoing.on('error', (error) => settle({ taken: false, again: true, reason: `${request.method} ${request.url}: ${error.message}` }));
    outgoing.end(request.body);
  });
}
