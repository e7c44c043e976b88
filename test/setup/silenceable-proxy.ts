/**
 * A TCP proxy in front of a server that can go silent at a moment a test chooses (a view running, a
 * handler called): from then on it passes nothing on either way, as a server that stopped answering.
 */
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';

export interface SilenceableProxy {
  /** The target's URL with the proxy's loopback host and port in it. */
  url: string;
  /** From now on nothing is passed on either way: a server that stopped answering. */
  silence(): void;
  close(): Promise<void>;
}

/** A proxy to the server at `target` (its host and port). */
export async function silenceableProxy(target: URL): Promise<SilenceableProxy> {
  let silent = false;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(from);
      from.on('data', (chunk) => silent || to.write(chunk));
      from.on('error', () => undefined);
      from.on('close', () => to.destroy());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `${target.protocol}//127.0.0.1:${(server.address() as AddressInfo).port}`,
    silence: () => (silent = true),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
