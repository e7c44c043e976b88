/**
 * What the page cache may answer and store (Django's `UpdateCacheMiddleware.process_response`), as
 * Drupal's page cache asks it: a list of named request policies and one of response policies, each
 * naming why not, which a site extends with its own (the page cache's `policies` option) rather than
 * with an option per case. They read the response as the view left it, before the page cache adds
 * Expires and max-age. The surprise, as in Django: a 304 is not stored but still gets the cache's
 * Expires and max-age when every other rule lets it through.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { directiveNames, headerText } from '../headers/header-values.js';
import { getMaxAge, hasVaryHeader, patchVaryHeaders } from '../headers/headers.js';
import { scopeOf } from '../cacheability/request-scope.js';
import { DEFAULT_MAX_BODY_BYTES } from '../headers/capture.js';

const REFUSING_DIRECTIVES = new Set(['private', 'no-cache', 'no-store']);

/** Seconds a page is kept when its response names no max-age. */
export const DEFAULT_SECONDS = 600;

/** The page cache's settings that the rules read. */
export interface StorageRules {
  /** A route's own timeout (`cachePage`): wins over the response's max-age, `max-age=0` included. */
  pageTimeout?: number | null;
  /** Seconds to keep a page whose response names no max-age. @default 600 */
  defaultSeconds?: number;
  /** Bodies larger than this many bytes are not stored. @default 1048576 (1 MiB), as the page cache's */
  maxBodyBytes?: number;
}

/** The page cache's decision about one response: store it for `timeout` seconds, or why not. */
export type StorageDecision =
  /** `partsMaxAge`: the shortest time any part rendered into the page has left, when one has a bound; `timeout` is within it. */
  | { store: true; timeout: number; partsMaxAge?: number }
  /** `patchTimeout`: a response that is not stored still gets Expires and max-age for this many seconds. */
  | { store: false; reason: string; patchTimeout?: number };

/** The reason a body that outgrew `maxBodyBytes` is not stored. */
export function bodyTooLargeReason(maxBodyBytes: number): string {
  return `body over ${maxBodyBytes} bytes`;
}

/**
 * A rule of whether a request may use the page cache (Drupal's `RequestPolicyInterface`): a request
 * it refuses is neither answered from the cache nor stored, and goes out marked BYPASS with its
 * reason. A site adds its own with the page cache's `policies` option.
 */
export interface RequestPolicy {
  /** What the rule is, for a reader of the list. */
  readonly name: string;
  /** Why `req` may not use the page cache (`X-Cache-Reason` under `debug`); undefined when the rule lets it. */
  check(req: IncomingMessage): string | undefined;
}

/** What a response policy reads: the request and its response as the view left it, and the lifetime the page would be stored for. */
export interface PolicyContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The response's own `max-age` (its `s-maxage` aside), null when it names none. */
  readonly maxAge: number | null;
  /** The seconds the page would be kept for: the route's timeout, else its max-age, else the page cache's default. */
  readonly timeout: number;
  readonly rules: Required<StorageRules>;
}

/**
 * Why a response policy refuses to store a response. `lifetime`: it still goes out with `Expires` and
 * `max-age` for this many seconds (Django's `patch_response_headers`, which a 304 gets too);
 * otherwise they are left as the view set them.
 */
export interface Refusal {
  reason: string;
  lifetime?: number;
}

/**
 * A rule of whether a response may be stored (Drupal's `ResponsePolicyInterface`): a response it
 * refuses goes out marked BYPASS with its reason. A site adds its own with the page cache's
 * `policies` option; they are asked after the built-in ones.
 */
export interface ResponsePolicy {
  /** What the rule is, for a reader of the list. */
  readonly name: string;
  /** Why the response may not be stored: a reason (`X-Cache-Reason` under `debug`), or a `Refusal`; undefined when the rule lets it. */
  check(context: PolicyContext): string | Refusal | undefined;
}

/** The request policies every page cache asks first. */
export const REQUEST_POLICIES: readonly RequestPolicy[] = [
  // Only GET (and HEAD, answered from GET) are safe to replay.
  { name: 'a safe method', check: (req) => (req.method === 'GET' || req.method === 'HEAD' ? undefined : `method ${req.method}`) },
];

/**
 * The response policies every page cache asks first, in this order (Django's
 * `UpdateCacheMiddleware.process_response`, then what cachegrain's parts add).
 */
export const RESPONSE_POLICIES: readonly ResponsePolicy[] = [
  ...REQUEST_POLICIES.map((policy): ResponsePolicy => ({ name: policy.name, check: ({ req }) => policy.check(req) })),
  { name: 'status 200 or 304', check: ({ res }) => (res.statusCode === 200 || res.statusCode === 304 ? undefined : `status ${res.statusCode}`) },
  // A cookie set for one visitor must never be replayed to the next, whatever Vary says.
  { name: 'no Set-Cookie', check: ({ res }) => (res.hasHeader('set-cookie') ? 'Set-Cookie' : undefined) },
  {
    name: 'no Cache-Control that refuses',
    // Any letter case, bare or qualified (`private="Set-Cookie"`).
    check: ({ res }) => {
      const refusing = directiveNames(headerText(res, 'cache-control')).find((name) => REFUSING_DIRECTIVES.has(name));
      return refusing === undefined ? undefined : `Cache-Control: ${refusing}`;
    },
  },
  { name: 'no Vary: *', check: ({ res }) => (hasVaryHeader(res, '*') ? 'Vary: *' : undefined) },
  { name: 'a max-age', check: ({ maxAge, rules }) => (rules.pageTimeout === null && maxAge === 0 ? 'max-age=0' : undefined) },
  { name: 'not a 304', check: ({ res, timeout }) => (res.statusCode === 304 ? { reason: 'status 304', lifetime: timeout } : undefined) },
  { name: 'a lifetime', check: ({ timeout }) => (timeout <= 0 ? { reason: `timeout ${timeout}`, lifetime: timeout } : undefined) },
  // Its stale fragments are being rendered again: the next request gets them fresh, not this page.
  { name: 'no stale part', check: ({ res }) => (scopeOf(res).cacheability.stale ? 'a stale fragment' : undefined) },
  {
    name: 'cacheable parts',
    // A part that may not be kept (a fragment with timeout 0, `uncacheable(why)`) keeps the page out of every cache.
    check: ({ res }) => {
      const parts = scopeOf(res).cacheability;
      return parts.cacheable ? undefined : { reason: parts.reason ?? 'max-age 0', lifetime: 0 };
    },
  },
  {
    name: 'a body within maxBodyBytes',
    check: ({ res, rules, timeout }) =>
      Number(res.getHeader('content-length') ?? 0) > rules.maxBodyBytes ? { reason: bodyTooLargeReason(rules.maxBodyBytes), lifetime: timeout } : undefined,
  },
];

/**
 * Whether and for how long to store the response, with the one reason when not: the first of
 * `RESPONSE_POLICIES`, then of `policies` (a page cache's own), that refuses it. A request with
 * `Authorization` must have been given `varyOnCredentials` first.
 */
export function storageDecision(
  req: IncomingMessage,
  res: ServerResponse,
  rules: StorageRules = {},
  policies: readonly ResponsePolicy[] = [],
): StorageDecision {
  const given: Required<StorageRules> = {
    pageTimeout: rules.pageTimeout ?? null,
    defaultSeconds: rules.defaultSeconds ?? DEFAULT_SECONDS,
    maxBodyBytes: rules.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
  };
  const maxAge = getMaxAge(res);
  const context: PolicyContext = { req, res, maxAge, timeout: given.pageTimeout ?? maxAge ?? given.defaultSeconds, rules: given };
  const refusal = refusedBy(RESPONSE_POLICIES, context) ?? refusedBy(policies, context);
  if (refusal !== undefined) return refusal;
  const { timeout } = context;
  const parts = scopeOf(res).cacheability;
  if (parts.maxAge === Infinity) return { store: true, timeout };
  // No longer than its shortest-lived part has left (a whole second at least: headers count in seconds).
  const partsMaxAge = Math.max(1, Math.floor(parts.maxAge));
  return { store: true, timeout: Math.min(timeout, partsMaxAge), partsMaxAge };
}

/** The decision of the first of `policies` that refuses the response, if one does. */
function refusedBy(policies: readonly ResponsePolicy[], context: PolicyContext): StorageDecision | undefined {
  for (const policy of policies) {
    const refusal = policy.check(context);
    if (refusal === undefined) continue;
    if (typeof refusal === 'string') return { store: false, reason: refusal };
    return refusal.lifetime === undefined ? { store: false, reason: refusal.reason } : { store: false, reason: refusal.reason, patchTimeout: refusal.lifetime };
  }
  return undefined;
}

/** Why the request may not use the page cache: the first of `REQUEST_POLICIES`, then of `policies`, that refuses it. */
export function requestRefusal(req: IncomingMessage, policies: readonly RequestPolicy[] = []): string | undefined {
  for (const policy of REQUEST_POLICIES) {
    const reason = policy.check(req);
    if (reason !== undefined) return reason;
  }
  for (const policy of policies) {
    const reason = policy.check(req);
    if (reason !== undefined) return reason;
  }
  return undefined;
}

/** Why the response must not be stored, or null when it may be (`storageDecision`'s reason). */
export function uncacheableReason(
  req: IncomingMessage,
  res: ServerResponse,
  rules: StorageRules = {},
  policies: readonly ResponsePolicy[] = [],
): string | null {
  const decision = storageDecision(req, res, rules, policies);
  return decision.store ? null : decision.reason;
}

/**
 * Makes a response to a request with credentials vary on them, unless it says it is the same for
 * everyone (`public`): one visitor's page is never served to another.
 */
export function varyOnCredentials(req: IncomingMessage, res: ServerResponse): void {
  if (req.headers.authorization && !directiveNames(headerText(res, 'cache-control')).includes('public')) patchVaryHeaders(res, ['Authorization']);
}

/** How long to keep a response: the route's timeout, else its max-age, else the middleware's default. */
export function cacheTimeout(res: ServerResponse, pageTimeout: number | null, defaultSeconds: number): number {
  return pageTimeout ?? getMaxAge(res) ?? defaultSeconds;
}
