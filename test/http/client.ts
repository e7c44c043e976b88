/** A raw HTTP client for the page-cache tests: exact bytes and headers, no decompression. */
import http, { type IncomingHttpHeaders, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eventually } from '../setup/eventually.js';

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  /** Name, value, name, value… as they came, one pair a header line. */
  rawHeaders: string[];
  body: Buffer;
  text: string;
}

/** Starts a server for the handler on a free loopback port. */
export async function listen(handler: RequestListener): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Resolves once `server` has received `count` requests in all. */
export function requestsArrived(server: Server, count: number): Promise<void> {
  let seen = 0;
  return new Promise((resolve) => {
    const onRequest = () => {
      if (++seen < count) return;
      server.off('request', onRequest);
      resolve();
    };
    server.on('request', onRequest);
  });
}

export function send(base: string, path: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const request = http.request(`${base}${path}`, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: response.statusCode!, headers: response.headers, rawHeaders: response.rawHeaders, body, text: body.toString('utf8') });
      });
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(options.body);
  });
}

/** The values of every line of a header, in order (a repeated header's lines, not joined). */
export function headerLines(reply: Reply, name: string): string[] {
  const lines: string[] = [];
  for (let i = 0; i < reply.rawHeaders.length; i += 2) if (reply.rawHeaders[i]!.toLowerCase() === name.toLowerCase()) lines.push(reply.rawHeaders[i + 1]!);
  return lines;
}

/** Waits until the page cache answers from a stored page (it stores behind the response), and answers that reply. */
export async function storedHit(base: string, path: string, options: Parameters<typeof send>[2] = {}): Promise<Reply> {
  let reply!: Reply;
  await eventually(async () => {
    reply = await send(base, path, options);
    if (reply.headers['x-cache'] !== 'HIT') throw new Error(`${path} answered X-Cache: ${String(reply.headers['x-cache'])}, not HIT`);
  });
  return reply;
}
