/**
 * What the page-cache tests mount, on any stack: layers made by the functions below, each Express
 * middleware (what Express and node:http run) that also says what it is, so that a framework's stack
 * mounts its own adapter's equivalent in its own way; and views over Node's request and response.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as expressAdapter from '../../src/frameworks/express.js';
import type { CacheControlDirectives, ConditionalGetOptions, Middleware, PageCacheOptions } from '../../src/frameworks/express.js';

/**
 * A view as the tests write it, over Node's request and response; each stack runs it its own way. A
 * view that throws, or returns a promise that rejects, has failed: the stack answers 500 as its
 * framework does.
 */
export type View = (req: IncomingMessage, res: ServerResponse) => unknown;
export type Handler = (req: IncomingMessage, res: ServerResponse) => void;
/**
 * Mounts `middleware` (layers made below, or any Connect middleware) on the whole site and `route`
 * on the one route that serves every path, in front of `view`, on one stack.
 */
export type Build = (middleware: Middleware[], view: View, route?: Middleware[]) => Handler;

/** What a layer is, for a stack that mounts its own adapter's equivalent. */
export type LayerSpec =
  | { kind: 'cacheMiddleware'; options: PageCacheOptions }
  | { kind: 'updateCacheMiddleware'; options: PageCacheOptions }
  | { kind: 'fetchFromCacheMiddleware'; options: PageCacheOptions }
  | { kind: 'cachePage'; timeout: number; options: Omit<PageCacheOptions, 'seconds'> }
  | { kind: 'cacheControl'; directives: CacheControlDirectives }
  | { kind: 'neverCache' }
  | { kind: 'varyOnHeaders'; names: string[] }
  | { kind: 'varyOnCookie' }
  | { kind: 'conditionalGet'; options: ConditionalGetOptions }
  | { kind: 'visitor' };

/** Express middleware that says what it is. */
export interface Layer extends Middleware {
  readonly spec: LayerSpec;
}

const layer = (middleware: Middleware, spec: LayerSpec): Layer =>
  Object.defineProperties((...args: Parameters<Middleware>) => middleware(...args), { name: { value: middleware.name }, spec: { value: spec } }) as Layer;

/** The spec of a layer made below; undefined for other middleware (a stack runs those as Connect middleware). */
export const specOf = (middleware: Middleware): LayerSpec | undefined => (middleware as Partial<Layer>).spec;

export const cacheMiddleware = (options: PageCacheOptions = {}): Layer => layer(expressAdapter.cacheMiddleware(options), { kind: 'cacheMiddleware', options });
export const updateCacheMiddleware = (options: PageCacheOptions = {}): Layer =>
  layer(expressAdapter.updateCacheMiddleware(options), { kind: 'updateCacheMiddleware', options });
export const fetchFromCacheMiddleware = (options: PageCacheOptions = {}): Layer =>
  layer(expressAdapter.fetchFromCacheMiddleware(options), { kind: 'fetchFromCacheMiddleware', options });
export const cachePage = (timeout: number, options: Omit<PageCacheOptions, 'seconds'> = {}): Layer =>
  layer(expressAdapter.cachePage(timeout, options), { kind: 'cachePage', timeout, options });
export const cacheControl = (directives: CacheControlDirectives): Layer => layer(expressAdapter.cacheControl(directives), { kind: 'cacheControl', directives });
export const neverCache: Layer = layer(expressAdapter.neverCache, { kind: 'neverCache' });
export const varyOnHeaders = (...names: string[]): Layer => layer(expressAdapter.varyOnHeaders(...names), { kind: 'varyOnHeaders', names });
export const varyOnCookie: Layer = layer(expressAdapter.varyOnCookie, { kind: 'varyOnCookie' });
export const conditionalGet = (options: ConditionalGetOptions = {}): Layer =>
  layer(expressAdapter.conditionalGet(options), { kind: 'conditionalGet', options });

/** Answers a failed view or middleware as the tests expect of Express and node:http. */
export const failed = (error: unknown, res: ServerResponse): void => {
  res.statusCode = 500;
  res.end(`failed: ${error instanceof Error ? error.message : String(error)}`);
};

/**
 * The Cookie header of the request a cache context or a hole builder gets, on any stack: the
 * `headers` of Node's and Express's request, Fastify's request and Koa's context; Hono's context's `c.req`.
 */
export const cookieHeaderOf = (request: any): string | undefined =>
  (request.headers as Record<string, string | undefined> | undefined)?.cookie ??
  (request.req?.header as ((name: string) => string | undefined) | undefined)?.call(request.req, 'cookie');

/** Who the visitor is, as a site's middleware finds it: from the cookies `visitor` and `kind`. */
export interface Visitor {
  name: string;
  kind: string | undefined;
}

/** The cookies of a Cookie header, as cookie-parser and @fastify/cookie parse them. */
export function parseCookies(header: string | undefined): Record<string, string> {
  const cookies: Record<string, string> = {};
  for (const pair of (header ?? '').split(';')) {
    const equals = pair.indexOf('=');
    if (equals > 0) cookies[pair.slice(0, equals).trim()] ??= decodeURIComponent(pair.slice(equals + 1).trim());
  }
  return cookies;
}

/** The visitor the cookies name, if they name one. */
export const visitorIn = (cookies: Record<string, string>): Visitor | undefined =>
  cookies.visitor === undefined ? undefined : { name: cookies.visitor, kind: cookies.kind };

/** As cookie-parser and passport are on Express: `req.cookies`, and `req.user` when the cookies name a visitor. */
const expressVisitor: Middleware = (req, _res, next) => {
  const cookies = parseCookies(req.headers.cookie);
  Object.assign(req, { cookies });
  const user = visitorIn(cookies);
  if (user !== undefined) Object.assign(req, { user });
  next();
};

/** The middleware that finds the visitor, as each framework's sites mount it (a cookie parser, authentication). */
export const parseVisitor = (): Layer => layer(expressVisitor, { kind: 'visitor' });

/**
 * How a stack's cache contexts and hole builders read the visitor from the request they get, written
 * as a user of its framework writes it: `name` fails where the middleware that finds the visitor has
 * not run (`req.cookies.visitor`: "Cannot read properties of undefined").
 */
export interface VisitorReads {
  /** Where the middleware puts the visitor, as a user writes it (`req.cookies`). */
  gained: string;
  name(request: any): string;
  kind(request: any): string | undefined;
}

/** Express and node:http: what cookie-parser put on `req`. */
export const EXPRESS_READS: VisitorReads = {
  gained: 'req.cookies',
  name: (req: { cookies: Record<string, string> }) => req.cookies.visitor!,
  kind: (req: { cookies?: Record<string, string> }) => req.cookies?.kind,
};
