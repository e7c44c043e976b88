/**
 * A TCP proxy in front of a server that counts the round trips its clients wait for in turn. It holds
 * the server's answers until the clients have sent nothing for a moment, then passes them all on: the
 * commands a client sends together, before it waits for any answer, make one round however their
 * packets fall, and a command sent only once an answer came starts the next round. Holding answers
 * only slows the clients; what is counted does not depend on how fast the machine is.
 */
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';

export interface RoundTripProxy {
  /** The target's URL with the proxy's loopback host and port in it. */
  url: string;
  /** The rounds so far: each began with a client sending after the answers of the last were passed on. */
  readonly rounds: number;
  close(): Promise<void>;
}

/** A proxy to the server at `target` (its host and port), answering once its clients were quiet for `quietMs`. */
export async function roundTripProxy(target: URL, quietMs = 25): Promise<RoundTripProxy> {
  const sockets = new Set<Socket>();
  const held: Array<{ to: Socket; chunk: Buffer }> = [];
  let rounds = 0;
  let roundOpen = false;
  let quiet: NodeJS.Timeout | undefined;
  const passAnswersOn = () => {
    quiet = undefined;
    roundOpen = false;
    for (const { to, chunk } of held.splice(0)) if (!to.destroyed) to.write(chunk);
  };
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => sockets.delete(socket));
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('data', (chunk) => {
      if (!roundOpen) {
        roundOpen = true;
        rounds++;
      }
      clearTimeout(quiet);
      quiet = setTimeout(passAnswersOn, quietMs);
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      held.push({ to: client, chunk });
      // An answer to a round whose client already went quiet (a slow server) goes on at once.
      if (quiet === undefined) passAnswersOn();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(target);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as AddressInfo).port);
  return {
    url: url.href,
    get rounds() {
      return rounds;
    },
    async close() {
      clearTimeout(quiet);
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
