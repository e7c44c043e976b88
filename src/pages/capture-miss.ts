/**
 * The capture phase: watches the response of a request whose lookup missed, installed before the
 * view runs (and, with the split middleware, before the lookup: the miss is found when the head goes
 * out). At the head the update phase judges the response and keeps its body or not; at the view's
 * end it stores the page, before the end goes out. Around those it owns what changes the response
 * itself: the outermost layer a response passes delivers its holes (it holds the body back and sends
 * it filled, while each layer stores the page with its holes' placeholders), and a render that fails
 * while a page inside its `staleIfError` window is stored sends that page instead, decided at the head.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { keepFrameworkRequest } from '../cacheability/framework-request.js';
import { scopeOf } from '../cacheability/request-scope.js';
import { edgesPurgedBy } from '../edge/cache-edges.js';
import { fitForEdge } from '../edge/edge-contexts.js';
import { HOLD_BODY, KEEP_BODY, PASS_BODY, teeResponse } from '../headers/capture.js';
import { hitHeaders, putHeaders, type StoredPage } from './hit.js';
import { unsealedBody } from '../holes/index.js';
import { absoluteUrl, resolveCache } from './page-keys.js';
import type { PageLayer } from './page-settings.js';
import { PageMiss } from './page-miss.js';
import { reportPageFailure } from './page-failures.js';
import { RESPONSE_HOLES } from '../holes/index.js';
import { judgeHead, type PageToStore, storeOnEnd } from './update-cache.js';

/**
 * Watches the response for `layer`: stores it if a lookup of the layer's store missed for the request
 * and the update phase allows, before the end of the response goes out.
 */
export function captureMiss(layer: PageLayer, req: IncomingMessage, res: ServerResponse): void {
  let miss: PageMiss | undefined;
  /** The page the update phase will store, once the head said so. */
  let toStore: PageToStore | undefined;
  /** A stored page with holes, sent instead of a failed render (see `replaceWithFallback`). */
  let fallbackBody: Buffer | undefined;
  // The page is keyed by its contexts after the response ended, and its holes may be filled then.
  keepFrameworkRequest(req);
  // A layer that compresses negotiates the coding itself: what runs after it sees the identity asked for.
  layer.compression?.hideAcceptEncoding(req);
  const holes = scopeOf(res).get(RESPONSE_HOLES);
  holes.deliveredBy ??= layer.holeDelivery;
  const holds = () => holes.left && holes.deliveredBy === layer.holeDelivery;
  const missed = () => (miss ??= PageMiss.of(res, layer));
  teeResponse(res, layer.maxBodyBytes, {
    mayReplace: () => holds() || missed()?.fallback !== undefined,
    head: () => {
      layer.compression?.restoreAcceptEncoding(req);
      const hold = holds() ? HOLD_BODY : PASS_BODY;
      const miss = missed();
      if (miss === undefined) return hold;
      if (miss.fallback !== undefined && res.statusCode >= 500) {
        const body = replaceWithFallback(layer, miss, miss.fallback);
        if (miss.fallback.holes !== true) return { kind: 'replace', body };
        if (holes.deliveredBy !== layer.holeDelivery) {
          holes.left = true;
          return { kind: 'replace', body: unsealedBody(body) };
        }
        // Its holes are filled for this request before it goes out.
        fallbackBody = body;
        return HOLD_BODY;
      }
      toStore = judgeHead(layer, miss);
      if (toStore !== undefined) layer.compression?.negotiateFor(res, toStore);
      return hold === HOLD_BODY || toStore === undefined ? hold : KEEP_BODY;
    },
    done: (body) => (toStore === undefined ? undefined : storeOnEnd(toStore, body)),
    send: (body) => layer.holeDelivery.bodyFor(req, res, fallbackBody ?? body, fallbackBody === undefined ? 'live' : 'sealed'),
  });
}

/**
 * A render that failed (an error page, 5xx) while a page inside its `staleIfError` window is
 * stored: that page goes out instead, marked STALE, and the failure is reported. Answers its body;
 * the head is on the response.
 */
function replaceWithFallback(layer: PageLayer, miss: PageMiss, fallback: StoredPage): Buffer {
  const { req, res } = miss;
  reportPageFailure(resolveCache(layer.cacheOption), `the view for ${absoluteUrl(req)} answered ${res.statusCode}; the stale page was sent instead`);
  miss.settle();
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  res.statusCode = fallback.status;
  res.statusMessage = fallback.statusMessage;
  putHeaders(res, hitHeaders(fallback, 'STALE', layer.statusHeader, miss.cache.now()));
  fitForEdge(req, res, fallback.contextCookies, edgesPurgedBy(miss.cache));
  return fallback.body;
}
