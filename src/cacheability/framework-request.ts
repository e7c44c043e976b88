/**
 * The request a framework's users read the visitor from (Express's `req`, Fastify's `request`, Koa's
 * `ctx`, Hono's `c`): what application contexts and hole builders receive, on a hit as on a miss. A
 * framework's adapter ties it to Node's request as the request passes, with the places middleware
 * put the visitor in (`request.cookies`, `ctx.state.user`), so that the page cache can tell when
 * middleware mounted after it set them: a hit never runs that middleware.
 */
import type { IncomingMessage } from 'node:http';

/** Where a framework's middleware put the visitor, each named as a user writes it (`ctx.state`). */
export type VisitorPlaces = () => ReadonlyArray<readonly [name: string, place: object]>;

interface Tied {
  request: object;
  places: VisitorPlaces;
}

const tied = new WeakMap<IncomingMessage, Tied>();

/**
 * The names under which middleware sets who the visitor is: a cookie parser (`cookies`,
 * `signedCookies`), a session (`session`), authentication (`user`).
 */
const VISITOR_NAMES = ['cookies', 'signedCookies', 'session', 'user'] as const;

/** Ties `request`, the framework's object for `req`, to it; `places` lists where its middleware put the visitor (the request itself by default). */
export function tieFrameworkRequest(req: IncomingMessage, request: object, places?: VisitorPlaces): void {
  if (tied.get(req)?.request === request) return;
  tied.set(req, { request, places: places ?? (() => [['request', request]]) });
}

/** The request a user of the framework serving `req` reads: the one tied to it, else `req` itself (Express, node:http). */
export function frameworkRequest(req: IncomingMessage): object {
  return tied.get(req)?.request ?? req;
}

/** What says who the visitor is, as the request holds it now: each place's name and property (`request.cookies`) with its value. */
export type Visitor = ReadonlyMap<string, unknown>;

/** The visitor's properties the request holds now; only own values are read, so no getter runs. */
export function visitorOf(req: IncomingMessage): Visitor {
  const places = tied.get(req)?.places() ?? [['req', req] as const];
  const found = new Map<string, unknown>();
  for (const [placeName, place] of places) {
    if (place === null || typeof place !== 'object') continue;
    for (const name of VISITOR_NAMES) {
      const value = Object.getOwnPropertyDescriptor(place, name)?.value as unknown;
      if (value !== undefined && value !== null) found.set(`${placeName}.${name}`, value);
    }
  }
  return found;
}

/** The visitor's properties `req` holds now and did not hold when `before` was taken (`request.cookies`). */
export function visitorGainedSince(before: Visitor, req: IncomingMessage): string[] {
  return [...visitorOf(req).keys()].filter((name) => !before.has(name));
}
