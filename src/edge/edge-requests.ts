/**
 * What one purge asks of each kind of edge, as HTTP requests kept under the edge's limits.
 * A page's `url:` tags name its URL, so a purge of them also goes by URL where the edge purges by URL:
 * `invalidatePage` is an invalidation of such a tag. The surprise: nginx purges one URL's copy at a
 * time and nothing else, so other tags and `clear` cannot reach it; the page cache keeps pages with
 * such tags out of it instead (`X-Accel-Expires`), and a clear is reported as not purged there.
 */
import type { CloudflarePurge, EdgePurgeConfig, FastlyPurge, HttpHookPurge, NginxPurge, Purge, VarnishPurge } from './purge-options.js';
import { purgeTokens } from './tokens.js';

/** One request to an edge, and what it purges, as a failure names it. */
export interface EdgeRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
  /** `tags a b`, `URL //shop.example/news`, `everything`: what is not purged if it fails. */
  purges: string;
  /** The status the edge answers when it held nothing to purge (the nginx module's 404): done too. */
  nothingHeld?: number;
  /** Why the edge cannot carry out this purge: it is reported as not purged, never sent. */
  unsendable?: string;
}

/** A page's URL as its `url:` tag names it: its path, on one host or (host undefined) on every host. */
export interface TaggedUrl {
  host: string | undefined;
  path: string;
}

// Cloudflare documents at most 100 operations (tags, URLs) per purge request on every plan
// (https://developers.cloudflare.com/cache/how-to/purge-cache/, "Max operations per request").
export const CLOUDFLARE_PER_REQUEST = 100;
// Fastly's batch purge by surrogate key takes at most 256 keys per request.
export const FASTLY_PER_REQUEST = 256;
/** Tokens per request of the HTTP hook, so that one body stays a reasonable size. */
export const HOOK_PER_REQUEST = 500;
/** Characters of one purge header sent to Varnish, well under its default 8 KB request header limit. */
export const VARNISH_HEADER_LENGTH = 4000;

/** The URL a tag names (`url:/news`, `url://shop.example/news`), or undefined for any other tag. */
export function taggedUrl(tag: string): TaggedUrl | undefined {
  if (tag.startsWith('url://')) {
    const slash = tag.indexOf('/', 'url://'.length);
    return slash < 0 ? undefined : { host: tag.slice('url://'.length, slash), path: tag.slice(slash) };
  }
  return tag.startsWith('url:/') ? { host: undefined, path: tag.slice('url:'.length) } : undefined;
}

/** The requests that carry `purge` to `edge`. */
export function edgeRequests(edge: EdgePurgeConfig, purge: Purge): EdgeRequest[] {
  switch (edge.edge) {
    case 'varnish':
      return varnishRequests(edge, purge);
    case 'nginx':
      return nginxRequests(edge, purge);
    case 'fastly':
      return fastlyRequests(edge, purge);
    case 'cloudflare':
      return cloudflareRequests(edge, purge);
    case 'http':
      return hookRequests(edge, purge);
  }
}

/** How a report names an edge: `varnish http://127.0.0.1:6081`, `fastly service abc`. */
export function edgeName(edge: EdgePurgeConfig): string {
  if (edge.edge === 'fastly') return `fastly service ${edge.serviceId}`;
  if (edge.edge === 'cloudflare') return `cloudflare zone ${edge.zoneId}`;
  return `${edge.edge} ${edge.url}`;
}

function varnishRequests(edge: VarnishPurge, purge: Purge): EdgeRequest[] {
  const root = new URL('/', edge.url).href;
  if (purge.kind === 'everything') return [{ method: 'BAN', url: root, headers: { 'Cachegrain-Ban-All': '1' }, purges: 'everything' }];
  const byUrl = purge.tags
    .map(taggedUrl)
    .flatMap((url) =>
      url?.host === undefined
        ? []
        : [{ method: 'PURGE', url: new URL(url.path, edge.url).href, headers: { Host: url.host }, purges: `URL //${url.host}${url.path}` }],
    );
  const tokens = purgeTokens(purge.tags);
  if (edge.tags === 'ban') {
    const bans = batchesByLength(tokens, VARNISH_HEADER_LENGTH, (token) => regexEscaped(token).length + 1);
    return [
      ...bans.map((batch) => ({ method: 'BAN', url: root, headers: { 'Cachegrain-Ban-Regex': banRegex(batch) }, purges: `tags ${batch.join(' ')}` })),
      ...byUrl,
    ];
  }
  const header = purge.soft || edge.soft === true ? 'xkey-softpurge' : 'xkey-purge';
  const keys = batchesByLength(tokens, VARNISH_HEADER_LENGTH, (token) => token.length + 1);
  return [...keys.map((batch) => ({ method: 'PURGE', url: root, headers: { [header]: batch.join(' ') }, purges: `tags ${batch.join(' ')}` })), ...byUrl];
}

/**
 * The regex a ban of `tokens` matches the `xkey` header with: each token whole, between spaces. The
 * spaces are `\s`: Varnish splits a ban expression at a space, quoted or not (7.1 refuses
 * `(^| )` as a regex missing its closing parenthesis), and a token holds no whitespace.
 */
export function banRegex(tokens: readonly string[]): string {
  return `(^|\\s)(${tokens.map(regexEscaped).join('|')})(\\s|$)`;
}

function regexEscaped(token: string): string {
  return token.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/**
 * nginx purges the copies of a `url:` tag's URL, each its own request: on the tag's host (a path
 * alone: on each of the edge's `hosts`), under either scheme (a tag does not record one), for a
 * visitor without the context cookies and for each context value listed. Other tags reach nothing
 * there (a page carrying one is kept no longer than `keepTaggedFor`), and there is no purge of everything.
 */
function nginxRequests(edge: NginxPurge, purge: Purge): EdgeRequest[] {
  if (purge.kind === 'everything') {
    const why = "Debian's cache-purge module purges one URL at a time and cannot list what it keeps";
    return [{ method: 'PURGE', url: edge.url, headers: {}, purges: 'everything', unsendable: why }];
  }
  const copies = NGINX_SCHEMES.flatMap((scheme) => [undefined, ...(edge.contexts ?? [])].map((context) => ({ scheme, context })));
  return purge.tags.flatMap((tag) => {
    const url = taggedUrl(tag);
    if (url === undefined) return [];
    const hosts = url.host === undefined ? (edge.hosts ?? [new URL(edge.url).host]) : [url.host];
    return hosts.flatMap((host) =>
      copies.map(({ scheme, context }) => ({
        method: 'PURGE',
        url: new URL(url.path, edge.url).href,
        headers: { Host: host, 'Cachegrain-Purge-Scheme': scheme, ...(context === undefined ? {} : { 'Cachegrain-Purge-Context': context }) },
        nothingHeld: 404,
        purges: `URL ${scheme}://${host}${url.path}${context === undefined ? '' : ` for ${context}`}`,
      })),
    );
  });
}

/** The schemes a copy nginx keeps may be filed under: a page's `url:` tags name none. */
const NGINX_SCHEMES = ['http', 'https'] as const;

function fastlyRequests(edge: FastlyPurge, purge: Purge): EdgeRequest[] {
  const service = `${edge.apiUrl ?? 'https://api.fastly.com'}/service/${encodeURIComponent(edge.serviceId)}`;
  const auth = { 'Fastly-Key': edge.token, Accept: 'application/json' };
  if (purge.kind === 'everything') return [{ method: 'POST', url: `${service}/purge_all`, headers: auth, purges: 'everything' }];
  const soft: Record<string, string> = purge.soft || edge.soft === true ? { 'Fastly-Soft-Purge': '1' } : {};
  return batches(purgeTokens(purge.tags), FASTLY_PER_REQUEST).map((keys) => ({
    method: 'POST',
    url: `${service}/purge`,
    headers: { ...auth, ...soft, 'Surrogate-Key': keys.join(' ') },
    purges: `tags ${keys.join(' ')}`,
  }));
}

function cloudflareRequests(edge: CloudflarePurge, purge: Purge): EdgeRequest[] {
  const json = (body: object, purges: string): EdgeRequest => ({
    method: 'POST',
    url: `${edge.apiUrl ?? 'https://api.cloudflare.com'}/client/v4/zones/${encodeURIComponent(edge.zoneId)}/purge_cache`,
    headers: { Authorization: `Bearer ${edge.token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    purges,
  });
  if (purge.kind === 'everything') return [json({ purge_everything: true }, 'everything')];
  const files = purge.tags.flatMap((tag) => absoluteUrls(taggedUrl(tag), edge.siteUrl));
  return [
    ...batches(purgeTokens(purge.tags), CLOUDFLARE_PER_REQUEST).map((tags) => json({ tags }, `tags ${tags.join(' ')}`)),
    ...batches(files, CLOUDFLARE_PER_REQUEST).map((urls) => json({ files: urls }, `URLs ${urls.join(' ')}`)),
  ];
}

/**
 * The absolute URLs a tagged URL stands for: on its host under both schemes (a tag does not
 * record one), or on `siteUrl` for a path of every host; none when neither is known.
 */
function absoluteUrls(url: TaggedUrl | undefined, siteUrl: string | undefined): string[] {
  if (url === undefined) return [];
  if (url.host !== undefined) return [`https://${url.host}${url.path}`, `http://${url.host}${url.path}`];
  return siteUrl === undefined ? [] : [new URL(url.path, siteUrl).href];
}

function hookRequests(edge: HttpHookPurge, purge: Purge): EdgeRequest[] {
  const post = (body: object, purges: string): EdgeRequest => ({
    method: 'POST',
    url: edge.url,
    headers: { ...edge.headers, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    purges,
  });
  if (purge.kind === 'everything') return [post({ everything: true }, 'everything')];
  const urls = purge.tags.flatMap((tag) => {
    const url = taggedUrl(tag);
    return url === undefined ? [] : [`${url.host === undefined ? '' : `//${url.host}`}${url.path}`];
  });
  const soft = purge.soft ? { soft: true } : {};
  return batches(purgeTokens(purge.tags), HOOK_PER_REQUEST).map((tags, i) =>
    i === 0 && urls.length > 0
      ? post({ tags, urls, ...soft }, `tags ${tags.join(' ')} and URLs ${urls.join(' ')}`)
      : post({ tags, ...soft }, `tags ${tags.join(' ')}`),
  );
}

/** `list` in runs of at most `size`. */
function batches<T>(list: readonly T[], size: number): T[][] {
  const runs: T[][] = [];
  for (let i = 0; i < list.length; i += size) runs.push(list.slice(i, i + size));
  return runs;
}

/** `tokens` in runs whose summed `cost` stays within `limit` (a token costlier than it alone in its run). */
function batchesByLength(tokens: readonly string[], limit: number, cost: (token: string) => number): string[][] {
  const runs: string[][] = [];
  let run: string[] = [];
  let length = 0;
  for (const token of tokens) {
    if (run.length > 0 && length + cost(token) > limit) {
      runs.push(run);
      run = [];
      length = 0;
    }
    run.push(token);
    length += cost(token);
  }
  if (run.length > 0) runs.push(run);
  return runs;
}
