/**
 * Contexts at the edge: a shared cache in front of the application (the shipped Varnish and nginx
 * configurations) sends the named cookies a site's pages vary on in one request header,
 * `Cachegrain-Context: theme=dark; lang=`, set by the edge alone. A page whose contexts read only
 * those cookies then varies on that header instead of `Cookie`, so the edge keeps one copy per theme
 * rather than one per visitor. The surprise: the header is only the edge's reading of the cookies,
 * while the page is rendered from the cookies themselves, and a header can come from anyone where
 * no edge stands in front: a page varies on it only where it agrees with the application's own
 * reading of every cookie it names, or a crafted `Cookie` (or header) would file one theme's page
 * under the other's.
 */
import type { IncomingMessage, OutgoingMessage, ServerResponse } from 'node:http';
import { headerText, splitHeaderValue } from '../headers/header-values.js';
import { contextValue } from '../cacheability/contexts.js';
import { keepNoUnpurgedContext } from './nginx-lifetime.js';
import type { EdgePurgeConfig } from './purge-options.js';

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
 * Makes the response vary on `Cachegrain-Context` instead of `Cookie` when the request's header names
 * every cookie in `cookies` (the cookies the page's `Vary: Cookie` stands for, see
 * `cookiesStoodForByVary`) with the value the application reads from `Cookie` (an absent cookie
 * empty); otherwise, and without the header, it keeps `Vary: Cookie`.
 */
export function varyOnEdgeContext(req: IncomingMessage, res: OutgoingMessage, cookies: readonly string[] | undefined): void {
  if (cookies === undefined) return;
  const named = edgeContextCookies(req);
  if (named === undefined || !cookies.every((cookie) => named.get(cookie) === (contextValue(`cookie:${cookie}`, req) ?? ''))) return;
  const vary = splitHeaderValue(headerText(res, 'vary'));
  if (!vary.some((header) => header.toLowerCase() === 'cookie')) return;
  const rest = vary.filter((header) => header.toLowerCase() !== 'cookie' && header.toLowerCase() !== 'cachegrain-context');
  res.setHeader('Vary', [...rest, EDGE_CONTEXT_HEADER].join(', '));
}

/**
 * What a response, stored or not, hit or miss, owes the edge its request came through: its `Vary`
 * on `Cachegrain-Context` where that stands for its cookies (`varyOnEdgeContext`), and no copy kept
 * by an nginx whose purges do not name that context (`keepNoUnpurgedContext`).
 */
export function fitForEdge(req: IncomingMessage, res: ServerResponse, cookies: readonly string[] | undefined, edges: readonly EdgePurgeConfig[]): void {
  varyOnEdgeContext(req, res, cookies);
  keepNoUnpurgedContext(req, res, edges);
}
