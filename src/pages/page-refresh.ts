/**
 * Renders a stale page again behind the visitor who was served it. A page cache is a
 * middleware: it cannot run the view without a request, so it sends one, the visitor's own GET, to
 * the server that received it, over loopback, as a CDN's background fetch would. The surprise: the
 * request proves it is a refresh with a one-time token stored in the cache, so any process sharing
 * the cache (a cluster's other worker, say) honours it, and nobody outside can force renders.
 */
import { randomBytes } from 'node:crypto';
import http, { type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { BaseCache } from '../cache/base-cache.js';
import { cacheForPages } from './cache-for-pages.js';
import { LOCK_SECONDS, pollUntil } from '../flight/index.js';
import { absoluteUrl } from './page-keys.js';
import { reportPageFailure } from './page-failures.js';

/** The request header carrying a refresh's token. */
export const REFRESH_HEADER = 'x-cachegrain-refresh';
/** How long a refresh keeps its lock after its response, waiting for its page to be stored. */
const REFRESH_STORE_WAIT_MS = 1000;
/** Request headers a refresh does not copy: they describe the visitor's connection or ask for less than the whole page. */
const NOT_COPIED = [
  'connection',
  'keep-alive',
  'content-length',
  'transfer-encoding',
  'expect',
  'upgrade',
  'range',
  'if-range',
  'if-match',
  'if-none-match',
  'if-modified-since',
  'if-unmodified-since',
];

const tokenKey = (token: string) => `cachegrain.refresh.${token}`;

/**
 * The key under which the cache holds the token `req` carries as a refresh, or undefined when it
 * carries none that could be one: the request is a refresh this cache (or a process sharing it)
 * asked for when that key holds `true`.
 */
export function refreshTokenKey(headers: IncomingHttpHeaders): string | undefined {
  const token = headers[REFRESH_HEADER];
  return typeof token === 'string' && /^[0-9a-f]{32}$/.test(token) ? tokenKey(token) : undefined;
}

/** Whether `req` carries a refresh header at all (a refresh never asks for another one). */
export function carriesRefreshHeader(req: IncomingMessage): boolean {
  return req.headers[REFRESH_HEADER] !== undefined;
}

/** Where and how to send a request again: taken from it while its connection is open. */
export interface RefreshTarget {
  host: string;
  port: number;
  secure: boolean;
  path: string;
  headers: OutgoingHttpHeaders;
}

/**
 * The refresh of `req`, read at once: the visitor's socket forgets its local address when it
 * closes, which a client that closes after the response (`Connection: close`) does before a
 * refresh lock on a server store is taken.
 */
export function refreshTarget(req: IncomingMessage): RefreshTarget {
  const { localAddress, localPort } = req.socket;
  if (localAddress === undefined || localPort === undefined)
    throw new Error('cannot refresh a stale page: the request came on a socket without a local address');
  const headers: OutgoingHttpHeaders = { ...req.headers };
  for (const name of NOT_COPIED) delete headers[name];
  return {
    host: localAddress.startsWith('::ffff:') ? localAddress.slice(7) : localAddress,
    port: localPort,
    secure: (req.socket as TLSSocket).encrypted === true,
    path: (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '/',
    headers,
  };
}

/** Sends the request of `target` again to the server that received it, as a refresh, and resolves once its response has ended. */
export async function requestRefresh(target: RefreshTarget, cache: BaseCache): Promise<void> {
  const token = randomBytes(16).toString('hex');
  await cache.set(tokenKey(token), true, LOCK_SECONDS);
  try {
    const { host, port, secure, path } = target;
    await new Promise<void>((resolve, reject) => {
      const request = (secure ? https : http).request(
        {
          host,
          port,
          method: 'GET',
          path,
          headers: { ...target.headers, [REFRESH_HEADER]: token },
          agent: false,
          // Its own certificate, reached by address: the name cannot match, and nothing leaves the machine.
          rejectUnauthorized: false,
          timeout: LOCK_SECONDS * 1000,
        },
        (response) => {
          response.resume();
          response.once('end', resolve);
          response.once('error', reject);
        },
      );
      request.once('timeout', () => request.destroy(new Error(`refreshing ${path} took over ${LOCK_SECONDS} s`)));
      request.once('error', reject);
      request.end();
    });
  } finally {
    await cache.delete(tokenKey(token));
  }
}

/**
 * Renders the stale page under `pageKey` again behind the visitor `req` was just sent it to: once per
 * page in this process, and once across every process sharing the cache (the first to take the
 * refresh lock). Where to send it is read now, while the visitor's connection is open.
 */
export function refreshBehind(cache: BaseCache, req: IncomingMessage, pageKey: string): void {
  const key = `page\u0000${pageKey}`;
  if (cacheForPages(cache).refreshes.has(key)) return;
  const failed = (error: unknown) => reportPageFailure(cache, `refreshing the stale page ${absoluteUrl(req)} failed`, error);
  let target: RefreshTarget;
  try {
    target = refreshTarget(req);
  } catch (error) {
    return failed(error);
  }
  const isFresh = async () => (await cacheForPages(cache).readSharedEntry(pageKey))?.state === 'fresh';
  const refresh = async () => {
    // Read stale before another process's refresh stored its page and let go of the lock: done already.
    if (await isFresh()) return;
    await requestRefresh(target, cache);
    // The page is stored behind the refresh's response: until it is, visitors are still sent the
    // stale one, and one of them would start another refresh if the lock were let go now.
    await pollUntil(isFresh, REFRESH_STORE_WAIT_MS);
  };
  cacheForPages(cache).refreshes.behind([{ key, lockName: `refresh:${pageKey}` }], refresh, failed);
}
