/**
 * Filling holes: every placeholder of a text replaced by its builder's HTML for the request at hand.
 * The builders run at once, each in a request scope of its own, so that what a hole depends on (its
 * contexts, its max-age 0) stays out of the page around it. Filling happens once per response, at the
 * outermost level that sends bytes: the page cache, or else the outermost render of the page.
 */
import type { IncomingMessage } from 'node:http';
import { caches } from '../config/cache-registry.js';
import { isThenable, type MaybePromise } from '../store/maybe-promise.js';
import { frameworkRequest } from '../cacheability/framework-request.js';
import { inScopeOfItsOwn, type RequestScope, ScopeSlot } from '../cacheability/request-scope.js';
import { changedPlaceholder, changedPlaceholderIn, cutAtHoles, type HoleCall, type HoleForm, holdsHoles } from './markers.js';
import { type DefinedHole, definedHole, HoleError } from './registry.js';

/**
 * How a page cache delivers holes: filled in place (the default), as ESI includes for a CDN or proxy
 * to fetch, or streamed: the shell at once, each hole after it as it is made.
 */
export type HoleMode = 'fill' | 'esi' | 'stream';

/** What delivers the holes of a response for a page-cache layer. */
export interface HoleDeliverer {
  readonly mode: HoleMode;
}

/** What a request's scope holds of the holes of its response. */
export interface ResponseHoles {
  /**
   * The page-cache layer's deliverer that fills the holes of this response (or sends them as ESI
   * includes): the outermost layer it passes, as the body it stores must still hold them. A render
   * leaves the placeholders to it; with none, the outermost render fills them itself.
   */
  deliveredBy: HoleDeliverer | undefined;
  /** Whether the body holds live hole placeholders left for `deliveredBy`. */
  left: boolean;
  /** Whether a render filled holes into this response: it is one visitor's page from then on. */
  filled: boolean;
}

export const RESPONSE_HOLES = new ScopeSlot<ResponseHoles>(() => ({ deliveredBy: undefined, left: false, filled: false }));

/** Where a builder's failure goes when its hole's fallback is sent instead: the reporting of a cache. */
export type HoleReport = (failure: HoleError) => void;

/**
 * `text` with each placeholder in `form` replaced by its hole's HTML for `request`. A builder that
 * fails puts its hole's fallback in, reported to `report`.
 */
export async function fillHoles(text: string, form: HoleForm, request: IncomingMessage, report: HoleReport): Promise<string> {
  const cut = cutAtHoles(text, form);
  if (cut === undefined) return text;
  const { pieces, calls } = cut;
  const outputs = await Promise.all(calls.map(([, call]) => buildHole(call, request, report)));
  for (let i = 0; i < calls.length; i++) pieces[calls[i]![0]] = outputs[i]!;
  return pieces.join('');
}

/**
 * One hole's HTML for `request`: its builder's answer, or, reported to `report`, its fallback when
 * the builder fails or has not answered within its hole's `timeout`, and nothing when no hole of that
 * name is defined any more. It never fails: a hole never puts an error in place of the page around
 * it. A builder that answers at once is answered at once, with no promise made.
 */
export function buildHole({ name, args }: HoleCall, request: IncomingMessage, report: HoleReport): MaybePromise<string> {
  const hole = definedHole(name);
  if (hole === undefined) {
    report(
      new HoleError(
        `the page holds hole '${name}', which is not defined: defineHole('${name}', builder) is missing, or was renamed since the page was stored; it was left empty`,
        name,
      ),
    );
    return '';
  }
  const failed = (error: unknown): string => {
    const failure = new HoleError(
      `hole '${name}' failed on ${request.method ?? 'GET'} ${requestTarget(request)}: ${error instanceof Error ? error.message : String(error)}`,
      name,
      undefined,
      { cause: error },
    );
    report(failure);
    return hole.fallback;
  };
  let output: unknown;
  try {
    output = inScopeOfItsOwn(request, () => hole.builder(frameworkRequest(request), ...args));
  } catch (error) {
    return failed(error);
  }
  return isThenable(output) ? withinDeadline(hole, output, { request, report, failed }) : asHtml(output);
}

/**
 * A builder's promised answer as its hole's HTML, or its fallback, reported once, when it has not
 * answered within the hole's `timeout`: whatever it answers later (or fails with) is dropped.
 */
function withinDeadline(
  hole: DefinedHole,
  output: PromiseLike<unknown>,
  on: { request: IncomingMessage; report: HoleReport; failed: (error: unknown) => string },
): Promise<string> {
  return new Promise((resolve) => {
    let answered = false;
    const answer = (html: () => string) => {
      if (answered) return;
      answered = true;
      clearTimeout(deadline);
      resolve(html());
    };
    const deadline = setTimeout(
      () =>
        answer(() => {
          const { request } = on;
          on.report(
            new HoleError(`hole '${hole.name}' passed its deadline of ${hole.timeout} s on ${request.method ?? 'GET'} ${requestTarget(request)}`, hole.name),
          );
          return hole.fallback;
        }),
      hole.timeout * 1000,
    );
    // A deadline keeps no process alive: the request it serves does.
    deadline.unref();
    output.then(
      (html) => answer(() => asHtml(html)),
      (error: unknown) => answer(() => on.failed(error)),
    );
  });
}

/** A builder's answer as the HTML put in its hole: nothing for undefined or null. */
const asHtml = (output: unknown): string => (output === undefined || output === null ? '' : String(output));

/**
 * What the outermost render of a page does with the holes in its output: leaves them to the page
 * cache that delivers them (noting that the body holds some), or fills them for the scope's request.
 * The same text when it holds none.
 */
export function deliverRenderedHoles(page: string, scope: RequestScope | undefined): string | Promise<string> {
  if (!holdsHoles(page, 'live')) {
    const changed = changedPlaceholderIn(page);
    return changed === undefined ? page : Promise.reject(changedPlaceholder(changed));
  }
  const holes = scope?.get(RESPONSE_HOLES);
  if (holes?.deliveredBy !== undefined) {
    holes.left = true;
    return page;
  }
  const request = scope?.request;
  if (holes === undefined || request === undefined) return Promise.reject(outsideRequest(cutAtHoles(page, 'live')!.calls[0]![1].name));
  holes.filled = true;
  return fillHoles(page, 'live', request, reportHoleFailure);
}

/** The error for a hole placed by a render that runs for no request: its builder needs one. */
export function outsideRequest(name: string, site?: { template: string; line: number }): HoleError {
  return new HoleError(
    `hole '${name}' is filled for the request being answered, and this render is outside any request: ` +
      'render it behind the page cache (cacheMiddleware, cachePage) or the request scope (cacheScope())',
    name,
    site,
  );
}

/** A failure behind a fallback where no page cache stands around the hole: reported by the default cache. */
export function reportHoleFailure(failure: HoleError): void {
  caches.get('default').reportError(failure);
}

function requestTarget(req: IncomingMessage): string {
  return (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '/';
}
