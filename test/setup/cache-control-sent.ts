import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

type Middleware = (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void;

/** The Cache-Control a real response carries once `middleware` ran before a view that set `viewSets` (if any). */
export async function cacheControlSent(middleware: Middleware, viewSets?: string): Promise<string> {
  const [reply] = await repliesSent(middleware, 1, viewSets);
  return reply!.get('cache-control') ?? '';
}

/** The X-Cache of each of `count` requests for one page, one after the other, through `middleware`. */
export async function cacheStatesSent(middleware: Middleware, count: number): Promise<string[]> {
  return (await repliesSent(middleware, count)).map((headers) => headers.get('x-cache') ?? '');
}

/** The headers of `count` responses to GET / in turn, from a server where `middleware` runs before a view. */
async function repliesSent(middleware: Middleware, count: number, viewSets?: string): Promise<Headers[]> {
  const server = createServer((req, res) =>
    middleware(req, res, () => {
      if (viewSets !== undefined) res.setHeader('Cache-Control', viewSets);
      res.end('page');
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const replies: Headers[] = [];
    for (let i = 0; i < count; i++) {
      const reply = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      await reply.text();
      replies.push(reply.headers);
    }
    return replies;
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}
