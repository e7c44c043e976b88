/**
 * The holes' script as a file: what a page-cache layer streaming holes and `holeHandler()`
 * answer for its path, cacheable for a year (its name changes with its text), with an ETag for the
 * browser that asks again anyway. One external file, so that a page under
 * `Content-Security-Policy: script-src 'self'` runs it with no nonce.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { STREAM_SCRIPT, STREAM_SCRIPT_DIGEST, STREAM_SCRIPT_PATH } from '../holes/stream-script.js';
import { preconditionStatus } from '../headers/conditional.js';
import { requestPath } from './page-keys.js';

const SCRIPT_BYTES = Buffer.from(STREAM_SCRIPT);
const SCRIPT_ETAG = `"${STREAM_SCRIPT_DIGEST}"`;
const SCRIPT_HEADERS = {
  'Content-Type': 'text/javascript; charset=utf-8',
  'Cache-Control': 'public, max-age=31536000, immutable',
  ETag: SCRIPT_ETAG,
  'X-Content-Type-Options': 'nosniff',
};

/** Answers a GET or HEAD of the script's path (a 304 to a request that holds it); false, answering nothing, for any other request. */
export function servesStreamScript(req: IncomingMessage, res: ServerResponse): boolean {
  if ((req.method !== 'GET' && req.method !== 'HEAD') || requestPath(req) !== STREAM_SCRIPT_PATH) return false;
  // Said outright: a framework in front may have set another status before it knew of the script (Koa starts at 404).
  if (preconditionStatus(req.method, req.headers, { etag: SCRIPT_ETAG }) === 304) {
    res.writeHead(304, { 'Cache-Control': SCRIPT_HEADERS['Cache-Control'], ETag: SCRIPT_ETAG });
    res.end();
    return true;
  }
  res.writeHead(200, { ...SCRIPT_HEADERS, 'Content-Length': SCRIPT_BYTES.length });
  res.end(req.method === 'HEAD' ? undefined : SCRIPT_BYTES);
  return true;
}
