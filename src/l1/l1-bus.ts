/**
 * How the L1s of every process hear of each other's changes: over Redis pub/sub between processes,
 * and at once between the caches of one process that share a channel (their `keyPrefix`). A process
 * ignores its own messages: its L1s have applied them already.
 */
import { randomBytes } from 'node:crypto';

/** The connection the tier hears invalidations on: an ioredis client is one. */
export interface BusSubscriber {
  on(event: 'message', listener: (channel: string, message: string) => void): unknown;
  on(event: 'ready' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  subscribe(channel: string): Promise<unknown>;
  connect(): Promise<void>;
}

/** Where invalidations travel: a connection to publish on, and one (in subscriber mode) to listen on. */
export interface BusConnections {
  publisher: { publish(channel: string, message: string): Promise<unknown> };
  subscriber: BusSubscriber;
  /** Ends the connections opened for the bus (not a publisher that is the cache's own client). */
  close(): Promise<void>;
}

/** What a bus tells the L1 it serves: keys that changed elsewhere (null: everything of its cache). */
export type HeardChange = (keys: string[] | null) => void;

/** How the bus stands: `up` only while subscribed. */
export type BusState = 'none' | 'connecting' | 'up' | 'down' | 'closed';

/** One L1's place on its channel. */
export class L1Bus {
  state: BusState = 'none';
  private connections: BusConnections | undefined;
  /** Messages carry it so that a process ignores its own. */
  private static readonly sender = randomBytes(6).toString('base64url');
  /** The buses of this process by channel: a change reaches the others at once, without a server. */
  private static readonly siblings = new Map<string, Set<L1Bus>>();
  private readonly channel: string;

  /**
   * @param openBus connects the bus, called once on first use (undefined: no bus, only the caches of this process)
   * @param heard what a change made elsewhere does to the L1 this bus serves
   */
  constructor(
    channelName: string,
    private readonly openBus: (() => BusConnections) | undefined,
    private readonly heard: HeardChange,
    private readonly reportError: (error: Error) => void,
  ) {
    this.channel = `cachegrain:l1:${channelName}`;
    let siblings = L1Bus.siblings.get(this.channel);
    if (siblings === undefined) L1Bus.siblings.set(this.channel, (siblings = new Set()));
    siblings.add(this);
  }

  /** Tells every other L1 of the channel to drop `keys` (null: everything of this cache). */
  publish(keys: string[] | null): void {
    // A change that ends after its cache closed (a write the close failed) still reaches the caches of this process.
    for (const sibling of L1Bus.siblings.get(this.channel) ?? []) if (sibling !== this) sibling.heard(keys);
    // Closed, the cache has left the bus: other processes trust what they hold for l1.timeout at most, as with the bus down.
    if (this.connections === undefined || this.state === 'closed') return;
    const message = `${L1Bus.sender} ${keys === null ? '*' : JSON.stringify(keys)}`;
    // Not awaited: the write is done; the message only has to leave before anything else does.
    // One the close cuts short is lost as with the bus down: the other processes trust what they hold for l1.timeout at most.
    this.connections.publisher.publish(this.channel, message).catch((error: Error) => this.failed('publishing an invalidation failed: ', error));
  }

  private receive(message: string): void {
    const space = message.indexOf(' ');
    if (message.slice(0, space) === L1Bus.sender) return;
    const body = message.slice(space + 1);
    if (body === '*') return this.heard(null);
    try {
      this.heard(JSON.parse(body) as string[]);
    } catch {
      // Not ours (someone else publishing on the channel): the safe answer is to drop everything.
      this.heard(null);
    }
  }

  /** Opens the connections, once, on the L1's first use. */
  connect(): void {
    if (this.openBus === undefined) {
      this.state = 'down';
      return;
    }
    this.state = 'connecting';
    const connections = (this.connections = this.openBus());
    const subscriber = connections.subscriber;
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.channel) this.receive(message);
    });
    subscriber.on('ready', () => {
      subscriber.subscribe(this.channel).then(
        () => {
          if (this.state === 'closed') return;
          // Whatever was published while we were away is lost: start again from the server.
          this.heard(null);
          this.state = 'up';
        },
        (error: Error) => this.failed('subscribing failed: ', error),
      );
    });
    subscriber.on('close', () => {
      if (this.state !== 'closed') this.state = 'down';
    });
    subscriber.on('error', (error: Error) => this.failed('', error));
    subscriber.connect().catch(() => undefined);
  }

  /** Reports a failure of the bus, unless the cache's close caused it: a closed cache has left the bus on purpose. */
  private failed(what: string, error: Error): void {
    if (this.state !== 'closed') this.reportError(new Error(`L1 bus: ${what}${error.message}`, { cause: error }));
  }

  /** Leaves the channel and ends the connections it opened. */
  async close(): Promise<void> {
    this.state = 'closed';
    const siblings = L1Bus.siblings.get(this.channel)!;
    siblings.delete(this);
    if (siblings.size === 0) L1Bus.siblings.delete(this.channel);
    await this.connections?.close();
  }
}
