/**
 * ioredis, loaded when the first Redis connection is made (a Redis cache, or an L1 invalidation
 * bus), so that importing cachegrain stays light.
 */
import { createRequire } from 'node:module';
import { resolvePeer } from './peer.js';

export interface RedisClients {
  ioredis: typeof import('ioredis');
  /** The cluster slot of a key, by the same module ioredis routes with. */
  keySlot: (key: string) => number;
}

let clients: RedisClients | undefined;

export function loadRedisClients(): RedisClients {
  if (clients === undefined) {
    const ioredisPath = resolvePeer('ioredis', 'The redis backend');
    // cluster-key-slot is what ioredis itself routes by; resolved from ioredis so both always agree.
    const fromIORedis = createRequire(ioredisPath);
    clients = { ioredis: fromIORedis(ioredisPath), keySlot: fromIORedis('cluster-key-slot') };
  }
  return clients;
}

/**
 * Ends a connection once the replies in flight on it arrive (QUIT), waiting no longer than
 * `deadlineMs` for them: a server that stopped answering would otherwise hold `close()` until it came
 * back. One that is not connected has nothing to wait for and ends at once.
 */
export async function quit(client: Pick<import('ioredis').Redis, 'status' | 'quit' | 'disconnect'>, deadlineMs: number): Promise<void> {
  if (client.status === 'ready') {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((resolve) => (timer = setTimeout(resolve, deadlineMs, false)));
    const answered = await Promise.race([
      client.quit().then(
        () => true,
        () => false,
      ),
      late,
    ]);
    clearTimeout(timer);
    if (answered) return;
  }
  client.disconnect();
}

/**
 * How long ioredis lets a disconnected socket end politely before destroying it. Ending is `quit`'s
 * to wait for, under its deadline; past that ioredis's own wait (2 s) only held the process open, or
 * longer: it waits for a socket that had already closed when the server was gone.
 */
export const DISCONNECT_TIMEOUT_MS = 0;

/**
 * Makes the commands a busy client sends within one tick leave in one write: the first one sent
 * while replies are awaited corks the connection, and the tick's end uncorks it. Many requests in
 * flight each send their next command as their replies come in, one batch of replies after another;
 * one system call per batch instead of one per command is most of what a busy client spends. An idle
 * client writes at once, so a lone command waits for nothing.
 */
export function coalesceWrites(client: import('ioredis').Redis): void {
  if (coalescing.has(client)) return;
  coalescing.add(client);
  const send = client.sendCommand.bind(client);
  // The replies it awaits (replaced on every reconnect, so looked up each time).
  const internals = client as unknown as { commandQueue: { length: number } };
  let corked: Corkable | undefined;
  const uncork = () => {
    const stream = corked!;
    corked = undefined;
    stream.uncork();
  };
  client.sendCommand = (command, stream) => {
    // A command to a given stream (a pipeline's, a MULTI's) or to a connection not ready yet goes as it would.
    if (corked === undefined && internals.commandQueue.length > 0 && stream === undefined && client.status === 'ready') {
      corked = client.stream as unknown as Corkable;
      corked.cork();
      process.nextTick(uncork);
    }
    return send(command, stream);
  };
}

/** The clients whose writes coalesce: held apart, as an ioredis client is the application's object (it may pass its own) and gets no field of ours. */
const coalescing = new WeakSet<object>();

interface Corkable {
  cork(): void;
  uncork(): void;
}
