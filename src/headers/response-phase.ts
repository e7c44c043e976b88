/**
 * Changes made to a response just before its head goes out, as Django's view decorators make them
 * after the view returns: Cache-Control, Vary, never-cache, and conditional GET. The surprise:
 * conditional GET must hold the whole body back (up to a limit) to hash it before the head is sent.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { applyHead, holdResponse } from './capture.js';
import { judgeFreshnessHere, preconditionStatus, strongEtag } from './conditional.js';
import { directiveNames, headerText } from './header-values.js';

/** Runs `change(res)` once, right before the response's head is sent (whatever sends it). */
export function beforeHeaders(res: ServerResponse, change: (res: ServerResponse) => void): void {
  const writeHead = res.writeHead;
  res.writeHead = function writeHeadAfterChange(this: ServerResponse, statusCode: number, ...rest: unknown[]) {
    res.writeHead = writeHead;
    // Frameworks (Fastify, Hono's Node server) pass every header to writeHead: the change must see
    // them, and they must not overwrite what it sets.
    applyHead(res, statusCode, rest);
    change(res);
    return writeHead.call(res, res.statusCode);
  } as ServerResponse['writeHead'];
}

/**
 * Conditional GET (Django's ConditionalGetMiddleware): a GET response without `no-store` and
 * without an ETag gets a strong one over its body; then If-Match/If-None-Match and the date
 * preconditions answer 304 or 412 for 2xx responses. Bodies beyond `maxBodyBytes` pass untouched.
 */
export function conditionalGetResponse(req: IncomingMessage, res: ServerResponse, maxBodyBytes: number): void {
  if (req.method !== 'GET') return;
  judgeFreshnessHere(req, res);
  holdResponse(res, maxBodyBytes, (body, release) => {
    if (!res.hasHeader('etag') && body.length > 0 && !directiveNames(headerText(res, 'cache-control')).includes('no-store')) {
      res.setHeader('ETag', strongEtag(body));
    }
    const etag = headerText(res, 'etag');
    const lastModified = headerText(res, 'last-modified');
    const ok = res.statusCode >= 200 && res.statusCode < 300;
    const status = ok && (etag !== undefined || lastModified !== undefined) ? preconditionStatus(req.method, req.headers, { etag, lastModified }) : 200;
    if (status === 200) return release();
    res.statusCode = status;
    // The body's own description goes; headers of other layers (X-Cache, say) stay.
    for (const name of res.getHeaderNames()) {
      const describesBody = name.startsWith('content-') && name !== 'content-location';
      if (describesBody || (status === 412 && (name === 'etag' || name === 'last-modified'))) res.removeHeader(name);
    }
    release(Buffer.alloc(0));
  });
}
