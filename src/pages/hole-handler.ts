/**
 * `holeHandler()`: serves each hole of a page sent with `holes: 'esi'` by its signed URL
 * (`/-/cachegrain/hole/<name>?args=…&sig=…`), for the CDN or proxy that assembles the page: the
 * hole's HTML for the request it forwards, `Cache-Control: private, no-store`, or its fallback, 200
 * all the same, when its builder fails or passes its deadline (reported once), as the proxy puts
 * whatever it is answered into the page; 403 when the signature does not match the name and
 * arguments, 404 for a hole no longer defined. It serves the script of streamed holes too. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { buildHole, definedHole, HOLE_PATH, HoleSigner, readHoleUrl, reportHoleFailure } from '../holes/index.js';
import { checkOptions, optionShape } from '../options/option-rules.js';
import { HOLE_SECRET } from './page-holes.js';
import { servesStreamScript } from './stream-script-file.js';

export interface HoleHandlerOptions {
  /**
   * The key the page cache signed the holes' URLs with (its own `secret`), the same in every
   * process. @default a random key of this process's own, which suits a site of one process
   */
  secret?: string;
}

const HOLE_HANDLER_OPTIONS = optionShape<HoleHandlerOptions>({ secret: HOLE_SECRET });

/**
 * Middleware answering the holes' URLs, and the script of streamed holes (its path under
 * `/-/cachegrain/`); anything else goes to `next`. Mount it at the site's root
 * (`app.use(holeHandler({ secret }))`), or at `/-/cachegrain/hole` for the ESI holes alone.
 */
export function holeHandler(options: HoleHandlerOptions = {}): (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void {
  checkOptions(options, HOLE_HANDLER_OPTIONS, 'holeHandler');
  const signer = new HoleSigner(options.secret);
  return function holeHandler(req, res, next) {
    if (servesStreamScript(req, res)) return;
    const target = holeTarget(req);
    const asked = target === undefined || (req.method !== 'GET' && req.method !== 'HEAD') ? undefined : readHoleUrl(target);
    if (asked === undefined) return next();
    // One visitor's, whatever the answer: never kept by a shared cache, nor by the browser.
    res.setHeader('Cache-Control', 'private, no-store');
    if (asked.args === undefined || !signer.verifies(asked.name, asked.argsJson, asked.signature)) {
      return answer(res, 403, 'the signature of this hole does not match its name and arguments');
    }
    if (definedHole(asked.name) === undefined) return answer(res, 404, `no hole '${asked.name}' is defined`);
    Promise.resolve(buildHole({ name: asked.name, args: asked.args }, req, reportHoleFailure)).then((html) => {
      // Said outright: a framework in front may have set another status before it knew of the hole (Koa starts at 404).
      res.statusCode = 200;
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      res.setHeader('Content-Length', Buffer.byteLength(html));
      res.end(req.method === 'HEAD' ? undefined : html);
    }, next);
  };
}

/** The hole's part of the request's path (`<name>?…`), whether the handler is mounted at the root or at the holes' path. */
function holeTarget(req: IncomingMessage): string | undefined {
  const url = req.url ?? '/';
  if (url.startsWith(HOLE_PATH)) return url.slice(HOLE_PATH.length);
  const mountedAt = (req as IncomingMessage & { baseUrl?: string }).baseUrl;
  return mountedAt !== undefined && `${mountedAt}/` === HOLE_PATH && url.startsWith('/') ? url.slice(1) : undefined;
}

function answer(res: ServerResponse, status: number, text: string): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.end(text);
}
