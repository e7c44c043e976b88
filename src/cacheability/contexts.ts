/**
 * Cache contexts: what of the request a fragment or a page varies on, by name (Drupal's cache
 * contexts). Built in: `cookie` (the whole Cookie header) and `cookie:<name>`, `header:<name>`,
 * `url` (the absolute URL) with `url.path`, `url.query` and `query:<name>`, and `host`; the
 * application names its own with `defineCacheContext` (`user.roles`). A context folds its children:
 * where a set holds `cookie`, `cookie:theme` adds nothing, and `user` covers `user.roles`.
 */
import type { IncomingMessage } from 'node:http';
import { checkOptions, closestName, optionShape, ValueRule } from '../options/option-rules.js';
import { frameworkRequest } from './framework-request.js';
import { describe } from '../errors/errors.js';

/**
 * Answers a request's value of an application context: the same text for requests that may share a
 * result. It gets the request a user of the framework reads the visitor from: Express's `req`,
 * Fastify's `request`, Koa's `ctx`, Hono's `c`.
 */
export type ContextValue<Req extends object = IncomingMessage> = (req: Req) => string | number | boolean | null | undefined;

export interface CacheContextOptions {
  /**
   * The request headers a response varying on this context varies on downstream, for the `Vary`
   * header a browser or CDN sees. @default ['Cookie'] (an application's context mostly comes from
   * the session); `[]` for one computed from the URL alone
   */
  vary?: readonly string[];
}

/** `defineCacheContext` for the request of one framework: its functions are typed with it (Koa's context). */
export type DefineCacheContext<Req extends object> = (name: string, fn: ContextValue<Req>, options?: CacheContextOptions) => void;

const CACHE_CONTEXT_OPTIONS = optionShape<CacheContextOptions>({
  vary: new ValueRule('a list of header names', (value) => Array.isArray(value) && value.every((header) => typeof header === 'string' && header !== '')),
});

interface Defined {
  value: ContextValue<any>;
  vary: readonly string[];
}

const defined = new Map<string, Defined>();

/** The built-in contexts that take no argument. */
const BUILT_IN = ['cookie', 'url', 'url.path', 'url.query', 'host'] as const;
/** The built-in families: `cookie:theme`, `header:accept-language`, `query:page`. */
const FAMILIES = ['cookie', 'header', 'query'] as const;
const CONTEXT_NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** A context name the caller got wrong: unknown, or not a string. */
export class CacheContextError extends TypeError {
  override name = 'CacheContextError';
}

/**
 * Names an application's context: `fn(req)` answers the request's value of it. A dotted name folds
 * under the part before its last dot (`user.roles` under `user`) when that is a context too.
 * Defining a name again replaces it.
 */
export function defineCacheContext<Req extends object = IncomingMessage>(name: string, fn: ContextValue<Req>, options: CacheContextOptions = {}): void {
  if (typeof name !== 'string' || !CONTEXT_NAME.test(name)) {
    throw new CacheContextError(`defineCacheContext: the name must be dotted words such as 'user.roles' (got ${describe(name)})`);
  }
  if ((BUILT_IN as readonly string[]).includes(name)) throw new CacheContextError(`defineCacheContext: '${name}' is a built-in context`);
  if (typeof fn !== 'function')
    throw new CacheContextError(`defineCacheContext('${name}'): the second argument must be a function of the request (got ${describe(fn)})`);
  checkOptions(options, CACHE_CONTEXT_OPTIONS, `defineCacheContext('${name}')`);
  const vary = options.vary ?? ['Cookie'];
  defined.set(name, { value: fn, vary: [...vary] });
}

/** Whether `name` is an application's context (defined by `defineCacheContext`), not a built-in one. */
export function isApplicationContext(name: string): boolean {
  return defined.has(name);
}

/** The names of the application's contexts. */
export function applicationContexts(): string[] {
  return [...defined.keys()];
}

/** Forgets an application's context (for tests and reloads); answers whether there was one. */
export function forgetCacheContext(name: string): boolean {
  return defined.delete(name);
}

/** Why `name` is no context, or undefined when it is one. */
function problemWith(name: unknown): string | undefined {
  if (typeof name !== 'string' || name === '') return `a cache context must be a non-empty string (got ${describe(name)})`;
  if ((BUILT_IN as readonly string[]).includes(name) || defined.has(name)) return undefined;
  const colon = name.indexOf(':');
  if (colon > 0) {
    const family = name.slice(0, colon);
    if ((FAMILIES as readonly string[]).includes(family)) return colon < name.length - 1 ? undefined : `cache context '${name}' names no ${family}`;
  }
  const known = [...BUILT_IN, ...FAMILIES.map((family) => `${family}:<name>`), ...defined.keys()];
  const closest = closestName(name, known);
  return `unknown cache context '${name}'${closest === undefined ? '' : ` (did you mean '${closest}'?)`}; the built-in ones are ${known.slice(0, 8).join(', ')}, and defineCacheContext(name, fn) names others`;
}

/**
 * The contexts `value` names (a name or a list of names), checked: each known, folded, sorted.
 * `where` starts the message of the error for a bad one.
 */
export function contextList(value: unknown, where: string): string[] {
  // A string may name several, separated by commas: the one way to write a list in every engine.
  const names = typeof value === 'string' || value instanceof String ? splitNames(String(value)) : value;
  if (!Array.isArray(names)) throw new CacheContextError(`${where}: contexts must be a context name or a list of them (got ${describe(value)})`);
  for (const name of names) {
    const problem = problemWith(typeof name === 'object' && name instanceof String ? String(name) : name);
    if (problem !== undefined) throw new CacheContextError(`${where}: ${problem}`);
  }
  return foldContexts(names.map(String));
}

function splitNames(text: string): string[] {
  const names = text.split(',').map((name) => name.trim());
  return names.length > 1 ? names.filter((name) => name !== '') : names;
}

/** The context `name` folds under, if any: `cookie:theme` → `cookie`, `query:page` → `url.query`, `user.roles` → `user`. */
export function parentContext(name: string): string | undefined {
  const colon = name.indexOf(':');
  if (colon > 0) {
    const family = name.slice(0, colon);
    if (family === 'cookie') return 'cookie';
    if (family === 'query') return 'url.query';
    if (family === 'header') return undefined;
  }
  if (name === 'host') return 'url';
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(0, dot) : undefined;
}

/** `names` without duplicates and without any a context among them folds (`cookie` covers `cookie:theme`), sorted. */
export function foldContexts(names: Iterable<string>): string[] {
  const all = new Set(names);
  const kept: string[] = [];
  for (const name of all) {
    let covered = false;
    for (let parent = parentContext(name); parent !== undefined && !covered; parent = parentContext(parent)) covered = all.has(parent);
    if (!covered) kept.push(name);
  }
  return kept.sort();
}

/** The request's value of a context; undefined where the request has none (no such cookie, header or query parameter). */
export function contextValue(name: string, req: IncomingMessage): string | undefined {
  const colon = name.indexOf(':');
  if (colon > 0) {
    const family = name.slice(0, colon);
    const argument = name.slice(colon + 1);
    if (family === 'cookie') return cookieValue(req, argument);
    if (family === 'header') return headerValue(req, argument.toLowerCase());
    if (family === 'query') return queryValue(req, argument);
  }
  switch (name) {
    case 'cookie':
      return headerValue(req, 'cookie');
    case 'url':
      return `${requestScheme(req)}://${req.headers.host ?? ''}${requestTarget(req)}`;
    case 'url.path':
      return pathOf(requestTarget(req));
    case 'url.query':
      return queryOf(requestTarget(req));
    case 'host':
      return (req.headers.host ?? '').toLowerCase();
  }
  const context = defined.get(name);
  if (context === undefined) throw new CacheContextError(`unknown cache context '${name}': it was defined once and forgotten since`);
  let value: unknown;
  try {
    value = context.value(frameworkRequest(req));
  } catch (error) {
    throw new Error(
      `cache context '${name}' failed on ${req.method ?? 'GET'} ${requestTarget(req)}: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'object' || typeof value === 'function' || typeof value === 'symbol') {
    throw new CacheContextError(`cache context '${name}' answered ${describe(value)}: it must answer a string, a number, a boolean or nothing`);
  }
  return String(value);
}

/**
 * The request's values of `contexts`, framed so that no two lists of values spell the same text:
 * each `|<length>:<name>` then `=<length>:<value>` or `-` for none. Its first character is never a
 * digit, so it cannot be read as the netstrings of a fragment's vary-on values it follows.
 */
export function framedContextValues(contexts: readonly string[], req: IncomingMessage): string {
  let framed = '';
  for (const name of contexts) framed += framedContextValue(name, contextValue(name, req));
  return framed;
}

/** Contexts with their values, framed (see `framedContextValues`). */
export function framedValues(values: ReadonlyArray<readonly [name: string, value: string | undefined]>): string {
  let framed = '';
  for (const [name, value] of values) framed += framedContextValue(name, value);
  return framed;
}

/** One context with its value, framed (see `framedContextValues`). */
export function framedContextValue(name: string, value: string | undefined): string {
  return `|${Buffer.byteLength(name)}:${name}${value === undefined ? '-' : `=${Buffer.byteLength(value)}:${value}`}`;
}

/** The request headers a response varying on `contexts` varies on downstream (`Vary`), once each whatever their case. */
export function varyHeadersOf(contexts: Iterable<string>): string[] {
  const headers = new Map<string, string>();
  const add = (header: string) => headers.set(header.toLowerCase(), headers.get(header.toLowerCase()) ?? header);
  for (const name of contexts) {
    const colon = name.indexOf(':');
    const family = colon > 0 ? name.slice(0, colon) : name;
    if (family === 'cookie') add('Cookie');
    else if (family === 'header') add(name.slice(colon + 1));
    else if (family !== 'query' && !(BUILT_IN as readonly string[]).includes(name)) for (const header of defined.get(name)?.vary ?? ['Cookie']) add(header);
  }
  return [...headers.values()];
}

/**
 * The cookies a page's `Vary: Cookie` stands for alone: the names of its `cookie:<name>` contexts,
 * where nothing else it varies on reads the Cookie header (the whole `cookie` context, an
 * application's context that varies on it, the view's own `ownVary`). Undefined where it names none
 * or something else reads the header: such a page varies on `Cookie` at the edge too.
 */
export function cookiesStoodForByVary(contexts: readonly string[], ownVary: readonly string[]): string[] | undefined {
  const named = contexts.filter((name) => name.startsWith('cookie:'));
  if (named.length === 0) return undefined;
  const others = [...ownVary, ...varyHeadersOf(contexts.filter((name) => !name.startsWith('cookie:')))];
  return others.some((header) => header.toLowerCase() === 'cookie') ? undefined : named.map((name) => name.slice('cookie:'.length));
}

/** Whether a context reads cookies: it stands for the named cookies instead of the whole Cookie header. */
export function isCookieContext(name: string): boolean {
  return name === 'cookie' || name.startsWith('cookie:');
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** A cookie's value as the Cookie header sends it (the first of its name, as browsers send the most specific first). */
function cookieValue(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (header === undefined) return undefined;
  // Read in place, pair by pair: only the value found is cut out of the header.
  for (let start = 0; start < header.length;) {
    const semicolon = header.indexOf(';', start);
    const end = semicolon === -1 ? header.length : semicolon;
    const equals = header.indexOf('=', start);
    if (equals !== -1 && equals < end && namedAt(header, start, equals, name)) return header.slice(equals + 1, end).trim();
    start = end + 1;
  }
  return undefined;
}

/** Whether `text` between `start` and `end`, less the spaces around it, is `name`. */
function namedAt(text: string, start: number, end: number, name: string): boolean {
  while (start < end && isSpace(text.charCodeAt(start))) start++;
  while (end > start && isSpace(text.charCodeAt(end - 1))) end--;
  return end - start === name.length && text.startsWith(name, start);
}

/** The white space `String.prototype.trim` removes that a header may hold (its characters are Latin-1). */
const isSpace = (code: number): boolean => code === 0x20 || (code >= 0x09 && code <= 0x0d) || code === 0xa0;

/** Every value of a query parameter, in order, joined by commas; undefined when the URL has none. */
function queryValue(req: IncomingMessage, name: string): string | undefined {
  const query = queryOf(requestTarget(req));
  if (query === undefined) return undefined;
  const values = new URLSearchParams(query).getAll(name);
  return values.length === 0 ? undefined : values.join(',');
}

/** The path and query as the application sees them (Express's `originalUrl` under a mounted router). */
function requestTarget(req: IncomingMessage): string {
  return (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '/';
}

function requestScheme(req: IncomingMessage): string {
  return (req.socket as { encrypted?: boolean } | null)?.encrypted ? 'https' : 'http';
}

function pathOf(target: string): string {
  const query = target.indexOf('?');
  return query === -1 ? target : target.slice(0, query);
}

function queryOf(target: string): string | undefined {
  const query = target.indexOf('?');
  return query === -1 ? undefined : target.slice(query + 1);
}
