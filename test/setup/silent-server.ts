import { type AddressInfo, createServer, type Socket } from 'node:net';

/** A TCP listener on loopback that accepts connections and never answers: a server gone silent. */
export interface SilentServer {
  port: number;
  /** How many connections it accepted so far: a client that answers without one never reached it. */
  readonly connections: number;
  /** How many of those connections have closed since. */
  readonly closed: number;
  close(): Promise<void>;
}

export async function silentServer(): Promise<SilentServer> {
  const sockets = new Set<Socket>();
  let connections = 0;
  let closed = 0;
  const server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.resume(); // reads and drops every command
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed++;
      sockets.delete(socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    get connections() {
      return connections;
    },
    get closed() {
      return closed;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
