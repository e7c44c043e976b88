import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

type Middleware = (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void;

/** The Cache-Control a real response carries once `middleware` ran before a view that set `viewSets` (if any). */
export async function cacheControlSent(middleware: Middleware, viewSets?: string): Promise<string> {
  const server = createServer((req, res) =>
    middleware(req, res, () => {
      if (viewSets !== undefined) res.setHeader('Cache-Control', viewSets);
      res.end('page');
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const reply = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    await reply.text();
    return reply.headers.get('cache-control') ?? '';
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}
