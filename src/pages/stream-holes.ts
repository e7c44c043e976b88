/**
 * The body of a page whose holes are streamed (`holes: 'stream'`): its shell goes out at
 * once and each hole after it as it is made, in one response, each part flushed as it is written.
 * Two orders, by what the client runs:
 * - Out of order, to a browser that ran the holes' script before (it sends its cookie) and that the
 *   application does not ask to serve in order: each hole the shell reaches before it is made stands
 *   as a placeholder holding its fallback, the shell goes out whole up to its `</body>`, then the
 *   script's tag, then each hole as a `<template>` as it is made, in the order they come, which the
 *   script moves into its placeholder; then the rest of the page.
 * - In order, to any other client (a first visit, a crawler, a browser with scripts off): the page
 *   as `'fill'` sends it, each part flushed as soon as it and the holes before it are made, with the
 *   script's tag before its `</body>`: a browser that runs it (and sets its cookie) gets its next
 *   pages out of order.
 * The surprise: a hole an element cannot stand in for (in an attribute, a script, a table's rows,
 * the head: see `streamShapeOf`) is filled in place in both orders, the shell waiting for it there.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { frameworkRequest } from '../cacheability/framework-request.js';
import type { MaybePromise } from '../store/maybe-promise.js';
import { definedHole, type HolePlan, type HoleReport } from '../holes/index.js';
import {
  SCRIPT_RUNS_COOKIE,
  SCRIPT_RUNS_VALUE,
  STREAMED_TEMPLATE_CLOSE,
  streamedPlaceholder,
  streamedTemplateOpening,
  streamScriptTag,
} from '../holes/stream-script.js';
import { streamShapeOf } from '../holes/stream-shape.js';
import type { BodyWriter } from '../headers/body-writer.js';

/**
 * Whether the holes of a request go out in order, whatever its client runs: `(req) => boolean`, given
 * the request as the framework's users read it (a crawler by its User-Agent, a request the site marks).
 */
export type HolesInOrder = (req: any) => boolean;

/** How a page's holes go out: see the top of this file; a body that is not HTML gets them in order, with no script. */
type Order = 'out of order' | 'in order' | 'not html';

const HTML = /^\s*(text\/html|application\/xhtml\+xml)\s*(;|$)/i;
const SCRIPT_RAN = new RegExp(`(?:^|;)\\s*${SCRIPT_RUNS_COOKIE}=${SCRIPT_RUNS_VALUE}\\s*(?:;|$)`);
const TEMPLATE_CLOSE = Buffer.from(STREAMED_TEMPLATE_CLOSE);
/** The script's tag in a page with no placeholder: it sets the cookie, so that the browser's next pages come out of order. */
const PLAIN_SCRIPT_TAG = Buffer.from(streamScriptTag(''));

export class HoleStreamer {
  constructor(
    /** Reports a builder whose hole's fallback was sent in its place. */
    private readonly reportFallback: HoleReport,
    /** Reports a stream that failed (the response is ended where it stands). */
    private readonly report: (what: string, error: unknown) => void,
    private readonly inOrder: HolesInOrder | undefined,
  ) {}

  /**
   * Sends the page `plan` cuts through `out`, its head gone out with `contentType`: the holes'
   * builders run now, for `req`, and the page ends once the last of them has answered (or passed its
   * deadline). A body that is not HTML (JSON, text) gets its holes in order, and no script. A HEAD's
   * body is not sent, and no builder runs for it.
   */
  send(req: IncomingMessage, plan: HolePlan, out: BodyWriter, contentType: string | undefined): void {
    if (req.method === 'HEAD') return out.end();
    const order: Order = !HTML.test(contentType ?? '') ? 'not html' : this.outOfOrder(req) ? 'out of order' : 'in order';
    const built = plan.build(req, this.reportFallback);
    writeStreamed(plan, built, out, order).catch((error: unknown) => {
      this.report(`streaming the holes of ${req.method ?? 'GET'} ${req.url ?? '/'} failed; the page was ended there`, error);
      out.end();
    });
  }

  /** Whether `req`'s holes may come out of order: its browser ran the script, and the application does not mark it for holes in order. */
  private outOfOrder(req: IncomingMessage): boolean {
    const cookie = req.headers.cookie;
    if (cookie === undefined || !SCRIPT_RAN.test(cookie)) return false;
    if (this.inOrder === undefined) return true;
    try {
      return !this.inOrder(frameworkRequest(req));
    } catch (error) {
      this.report(`holesInOrder failed on ${req.method ?? 'GET'} ${req.url ?? '/'}; its holes were sent in order`, error);
      return false;
    }
  }
}

/** A response's nonce: what its placeholders' ids begin with, and what the script takes templates for. */
const newNonce = () => randomBytes(9).toString('base64url');

/**
 * Writes the page `plan` cuts with its holes' HTML as `built` answers it (see the top of this file),
 * flushing each part as it is written, and ends it.
 */
async function writeStreamed(plan: HolePlan, built: ReadonlyArray<MaybePromise<string>>, out: BodyWriter, order: Order): Promise<void> {
  const { parts, calls } = plan;
  const last = parts.length - 1;
  const shape = order === 'not html' ? { streamable: [], lastInBody: parts[last]!, afterBody: Buffer.alloc(0) } : streamShapeOf(plan);
  // Each hole's bytes once made: a hole made while the shell waited on another is written in place.
  const made = built.map((html) => (typeof html === 'string' ? Buffer.from(html) : undefined));
  built.forEach((html, i) => typeof html !== 'string' && void html.then((answer) => (made[i] = Buffer.from(answer))));
  const placed: number[] = [];
  let nonce = '';
  out.writeShell(parts[0]!);
  for (let i = 0; i < built.length; i++) {
    if (made[i] === undefined && order === 'out of order' && shape.streamable[i]) {
      nonce ||= newNonce();
      out.write(Buffer.from(streamedPlaceholder(`${nonce}-${i}`, definedHole(calls[i]!.name)?.fallback ?? '')));
      placed.push(i);
    } else {
      if (made[i] === undefined) {
        out.flush();
        await built[i];
      }
      out.write(made[i]!);
    }
    out.writeShell(i + 1 === last ? shape.lastInBody : parts[i + 1]!);
  }
  if (placed.length === 0) {
    if (order !== 'not html') out.write(PLAIN_SCRIPT_TAG);
  } else {
    out.write(Buffer.from(streamScriptTag(nonce)));
    out.flush();
  }
  await Promise.all(
    placed.map(async (i) => {
      await built[i];
      out.write(Buffer.from(streamedTemplateOpening(`${nonce}-${i}`)));
      out.write(made[i]!);
      out.write(TEMPLATE_CLOSE);
      out.flush();
    }),
  );
  out.writeShell(shape.afterBody);
  out.end();
}
