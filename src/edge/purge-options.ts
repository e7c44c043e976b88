/**
 * The shape of the `purge` option of a cache alias, one entry per shared cache in front of the
 * application, and what an invalidation asks of them: the configuration that names them, the
 * listener that purges them and the page cache read these types. Checked by `purge-config.ts`.
 */

/** Options every edge takes: how long one request may take, and how many times it is tried. */
interface EdgeRequestOptions {
  /** Milliseconds one purge request may take before it counts as failed (and is tried again). @default 5000 */
  timeoutMs?: number;
  /** Tries of one purge request on network errors, timeouts, 5xx and 429, with backoff between them. @default 3 */
  tries?: number;
}

/** A Varnish running the shipped VCL: purges by tag with `BAN` on its `xkey` header, or with the xkey vmod. */
export interface VarnishPurge extends EdgeRequestOptions {
  edge: 'varnish';
  /** Where Varnish listens, as the application reaches it: `http://127.0.0.1:6081`. */
  url: string;
  /** `ban`: a ban on the tag header (any Varnish); `xkey`: `xkey.purge`, where the xkey vmod is loaded. */
  tags: 'ban' | 'xkey';
  /** With `tags: 'xkey'`, every tag purge is an `xkey.softpurge` (stale, refetched), not only a soft invalidation's. @default false */
  soft?: boolean;
}

/**
 * An nginx running the shipped `edge/nginx.conf` with Debian's cache-purge module: it purges one
 * copy of one URL per request, so it keeps only copies a purge can name.
 */
export interface NginxPurge extends EdgeRequestOptions {
  edge: 'nginx';
  url: string;
  /**
   * Every context value nginx keeps a copy for, as its `Cachegrain-Context` spells it (`'theme=dark'`,
   * `'theme=dark; lang=en'`): the values listed in the shipped `nginx-http.conf`. A purge by URL
   * drops the copy of a visitor without those cookies and one copy per value listed here. @default []
   */
  contexts?: string[];
  /**
   * Seconds nginx may keep a page carrying a tag other than its `url:` tags, which no purge reaches
   * there: the staleness accepted after an invalidation of such a tag. With 0, such a page is not
   * kept by nginx (`X-Accel-Expires: 0`). @default 0
   */
  keepTaggedFor?: number;
  /**
   * The hosts nginx serves the site under (`['shop.example', 'www.shop.example']`): a page invalidated
   * by path alone is purged on each. @default the host of `url`
   */
  hosts?: string[];
}

/** Fastly: purge by surrogate key over its API. */
export interface FastlyPurge extends EdgeRequestOptions {
  edge: 'fastly';
  serviceId: string;
  /** An API token with purge rights, sent as `Fastly-Key`. */
  token: string;
  /** Every tag purge is a soft purge (stale, refetched), not only a soft invalidation's. @default false */
  soft?: boolean;
  /** @default 'https://api.fastly.com' */
  apiUrl?: string;
}

/** Cloudflare: purge by cache tag and by URL over its API. */
export interface CloudflarePurge extends EdgeRequestOptions {
  edge: 'cloudflare';
  zoneId: string;
  /** An API token with the Cache Purge permission, sent as `Authorization: Bearer`. */
  token: string;
  /** The site's origin (`https://shop.example`): a page invalidated by path is purged at this origin too. */
  siteUrl?: string;
  /** @default 'https://api.cloudflare.com' */
  apiUrl?: string;
}

/** Anything else: a POST of JSON `{ tags?, urls?, everything?, soft? }` to `url`. */
export interface HttpHookPurge extends EdgeRequestOptions {
  edge: 'http';
  url: string;
  /** Sent with every request (an authorization header, say). */
  headers?: Record<string, string>;
}

export type EdgePurgeConfig = VarnishPurge | NginxPurge | FastlyPurge | CloudflarePurge | HttpHookPurge;
export type EdgeName = EdgePurgeConfig['edge'];

/** What an invalidation asks the edges to purge. */
export type Purge = { kind: 'tags'; tags: readonly string[]; soft: boolean } | { kind: 'everything' };
