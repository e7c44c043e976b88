/**
 * Contexts at the edge: a shared cache in front of the application (the shipped Varnish and nginx
 * configurations) sends the named cookies a site's pages vary on in one request header,
 * `Cachegrain-Context: theme=dark; lang=`, set by the edge alone. A page whose contexts read only
 * those cookies then varies on that header instead of `Cookie`, so the edge keeps one copy per theme
 * rather than one per visitor. The surprise: the page must be rendered from the values the edge keys
 * it by, so a cookie the header names is read from the header, never parsed again from `Cookie`
 * (two parsers could disagree on a crafted header, and file one theme's page under the other).
 */
import type { IncomingMessage, OutgoingMessage } from 'node:http';
import { headerText, splitHeaderValue } from '../http/headers.js';

export const EDGE_CONTEXT_HEADER = 'Cachegrain-Context';

/** The cookies the request's `Cachegrain-Context` names, with their values (an absent cookie's is ''); undefined without the header. */
function edgeContextCookies(req: IncomingMessage): Map<string, string> | undefined {
  const header = req.headers['cachegrain-context'];
  if (header === undefined) return undefined;
  const cookies = new Map<string, string>();
  for (const pair of (Array.isArray(header) ? header.join(';') : header).split(';')) {
    const equals = pair.indexOf('=');
    if (equals === -1) continue;
    const name = pair.slice(0, equals).trim();
    if (name !== '' && !cookies.has(name)) cookies.set(name, pair.slice(equals + 1).trim());
  }
  return cookies;
}

/**
 * A cookie's value as the edge in front read it, where the request's `Cachegrain-Context` names the
 * cookie: its value, or null for a cookie the visitor does not have (the edge sends it empty).
 * Undefined where the header does not name it: the cookie is read from `Cookie`.
 */
export function edgeCookieValue(req: IncomingMessage, name: string): string | null | undefined {
  const value = edgeContextCookies(req)?.get(name);
  return value === '' ? null : value;
}

/**
 * Makes the response vary on `Cachegrain-Context` instead of `Cookie` when the request's header names
 * every cookie in `cookies` (the cookies the page's `Vary: Cookie` stands for, see
 * `cookiesStoodForByVary`); otherwise, and without the header, it keeps `Vary: Cookie`.
 */
export function varyOnEdgeContext(req: IncomingMessage, res: OutgoingMessage, cookies: readonly string[] | undefined): void {
  if (cookies === undefined) return;
  const named = edgeContextCookies(req);
  if (named === undefined || !cookies.every((cookie) => named.has(cookie))) return;
  const vary = splitHeaderValue(headerText(res, 'vary'));
  if (!vary.some((header) => header.toLowerCase() === 'cookie')) return;
  const rest = vary.filter((header) => header.toLowerCase() !== 'cookie' && header.toLowerCase() !== 'cachegrain-context');
  res.setHeader('Vary', [...rest, EDGE_CONTEXT_HEADER].join(', '));
}
