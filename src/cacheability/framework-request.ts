/**
 * The request a framework's users read the visitor from (Express's `req`, Fastify's `request`, Koa's
 * `ctx`, Hono's `c`): what application contexts and hole builders receive, on a hit as on a miss. A
 * framework's adapter ties it to Node's request as the request passes, with the places middleware
 * put the visitor in (`request.cookies`, `ctx.state.user`), so that the page cache can tell when
 * middleware mounted after it set them: a hit never runs that middleware.
 */
import type { IncomingMessage } from 'node:http';

/** Where a framework's middleware put the visitor on its request, each named as a user writes it (`ctx.state`). */
export type VisitorPlaces<Request extends object = object> = (request: Request) => ReadonlyArray<readonly [name: string, place: object]>;

interface Tied {
  request: object;
  places: VisitorPlaces;
  /** Whether something reads the request after the response ended (a page stored, holes filled): then it is not let go. */
  keptPastEnd: boolean;
}

/**
 * The tie, kept on Node's request itself: every request of a framework is tied as it passes, and a
 * property of its own costs a tenth of an entry in a WeakMap, which would also keep every request
 * it ties past young collections (they keep an entry whose value leads back to its key). The key is
 * a symbol, so nothing else reads it.
 */
const TIED = Symbol('cachegrain.frameworkRequest');
type TiedRequest = IncomingMessage & { [TIED]?: Tied };

/**
 * The tie of `req`, if it has one. Asked of the request's own properties first: a request no
 * framework tied (Express's, node:http's) lacks the property, which a read would look for along its
 * prototypes, and Express gives each request a shape of its own, so each such read starts afresh.
 */
function tieOf(req: IncomingMessage): Tied | undefined {
  return Object.hasOwn(req, TIED) ? (req as TiedRequest)[TIED] : undefined;
}

const ON_THE_REQUEST: VisitorPlaces = (request) => [['request', request]];

/**
 * The names under which middleware sets who the visitor is: a cookie parser (`cookies`,
 * `signedCookies`), a session (`session`), authentication (`user`).
 */
const VISITOR_NAMES = ['cookies', 'signedCookies', 'session', 'user'] as const;

/**
 * Ties `request`, the framework's object for `req`, to it; `places` lists where its middleware put
 * the visitor on it (the request itself by default): one function for every request, not one each.
 */
export function tieFrameworkRequest<Request extends object>(req: IncomingMessage, request: Request, places: VisitorPlaces<Request> = ON_THE_REQUEST): void {
  if (tieOf(req)?.request === request) return;
  // The places are read only with the request they were tied with.
  (req as TiedRequest)[TIED] = { request, places: places as VisitorPlaces, keptPastEnd: false };
}

/** Keeps the framework's request tied to `req` after its response ends: a page is stored, or holes are filled, from it later. */
export function keepFrameworkRequest(req: IncomingMessage): void {
  const known = tieOf(req);
  if (known !== undefined) known.keptPastEnd = true;
}

/**
 * Lets go of the framework's request once the page cache has answered `req` and nothing keeps it:
 * Node holds a request until its connection's next one, and the framework's request (with all its
 * middleware set on it) should not live on with it.
 */
export function releaseFrameworkRequest(req: IncomingMessage): void {
  const known = tieOf(req);
  // Set, not deleted: deleting would leave every request in a slower shape.
  if (known !== undefined && !known.keptPastEnd) (req as TiedRequest)[TIED] = undefined;
}

/** The request a user of the framework serving `req` reads: the one tied to it, else `req` itself (Express, node:http). */
export function frameworkRequest(req: IncomingMessage): object {
  return tieOf(req)?.request ?? req;
}

/** What says who the visitor is, as the request holds it now: each place's name and property (`request.cookies`) with its value. */
export type Visitor = ReadonlyMap<string, unknown>;

/** The visitor's properties the request holds now; only own values are read, so no getter runs. */
export function visitorOf(req: IncomingMessage): Visitor {
  const known = tieOf(req);
  const places = known === undefined ? [['req', req] as const] : known.places(known.request);
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
