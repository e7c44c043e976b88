/**
 * The keys of the URLs a page-cache layer looks up, and of their variants: a URL's keys (its hash,
 * its header list's key, its path's tags and its unvaried page's key) are made once and found again
 * by the scheme, Host and path the request came with, so a hit hashes no URL. The variants of one
 * URL's pages are found by the request's values of what they vary on. A site's visitors send few
 * values (a few themes, languages, roles): each value found again leads straight to its variant's
 * hash and page key, so a hit on a varying page frames and hashes no text, and its page key is the
 * same string each time (whose hash the cache's key lookups keep).
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { BoundedMemo } from '../memos/bounded-memo.js';
import { contextValue } from '../cacheability/contexts.js';
import {
  absoluteUrl,
  headerKeyFor,
  headerValuesHash,
  hostUrlTag,
  type LearnedHeaders,
  md5,
  pageKeyFor,
  REMEMBERED_VARIANT_LENGTH,
  requestHeaderValue,
  requestHostname,
  requestPath,
  urlTag,
  variantHashOf,
} from './page-keys.js';

/** A variant of a URL's page: the hash of the request's values, and the key its page is stored under. */
export interface Variant {
  readonly hash: string;
  readonly pageKey: string;
}

/**
 * How many variants of one URL are remembered; past it they start afresh, as a `BoundedMemo` does.
 * Few: a URL's keys are remembered for thousands of URLs.
 */
const VARIANTS_PER_URL = 64;
const NO_CONTEXTS: readonly string[] = [];

/** One level per value, in the order they are framed: the last holds the variants. */
type Level = Map<string | undefined, Level | Variant>;

export class UrlVariants {
  /** What the remembered variants vary on: another list read for the URL starts them afresh. */
  private varies: LearnedHeaders | undefined;
  /**
   * The levels, made by the first lookup of a variant: most URLs' pages vary on nothing, and a
   * site's long tail of URLs would each keep an empty map.
   */
  private byValues: Level | undefined;
  private size = 0;
  /** The values read while walking the levels (a lookup runs to its end before another starts). */
  private readonly values: (string | undefined)[] = [];

  constructor(
    private readonly keyPrefix: string,
    private readonly urlHash: string,
  ) {}

  /** The request's variant of the URL's page under what its pages vary on (`learned`, which varies on something). */
  of(req: IncomingMessage, learned: LearnedHeaders): Variant {
    if (!this.remembersUnder(learned)) this.restart(learned);
    const { headers } = learned;
    const contexts = learned.contexts ?? NO_CONTEXTS;
    const values = this.values;
    const count = headers.length + contexts.length;
    let level = (this.byValues ??= new Map());
    let known: Level | Variant | undefined;
    let long = false;
    for (let i = 0; i < count; i++) {
      const value = i < headers.length ? requestHeaderValue(req, headers[i]!) : contextValue(contexts[i - headers.length]!, req);
      values[i] = value;
      if (value !== undefined && value.length > REMEMBERED_VARIANT_LENGTH) long = true;
      // Once a level lacks the value, the rest are only read.
      if (known !== undefined || i === 0) {
        known = level.get(value);
        if (known !== undefined && i < count - 1) level = known as Level;
      }
    }
    if (known !== undefined && !long && (known as Partial<Variant>).pageKey !== undefined) return known as Variant;
    values.length = count;
    const hash = variantHashOf(learned, values);
    const variant: Variant = { hash, pageKey: pageKeyFor(this.keyPrefix, 'GET', this.urlHash, hash) };
    // A long value (a whole Cookie header) is one visitor's: not remembered, so that the levels stay small.
    if (!long) this.remember(values, variant);
    return variant;
  }

  private remembersUnder(learned: LearnedHeaders): boolean {
    const varies = this.varies;
    if (varies === learned) return true;
    if (varies === undefined || !sameList(varies.headers, learned.headers) || !sameList(varies.contexts ?? NO_CONTEXTS, learned.contexts ?? NO_CONTEXTS))
      return false;
    // The same list read again (decoded anew from a cache on a server): the next lookup compares by identity.
    this.varies = learned;
    return true;
  }

  private restart(learned: LearnedHeaders): void {
    this.varies = learned;
    this.byValues?.clear();
    this.size = 0;
  }

  private remember(values: readonly (string | undefined)[], variant: Variant): void {
    if (this.size >= VARIANTS_PER_URL) {
      this.byValues?.clear();
      this.size = 0;
    }
    let level = (this.byValues ??= new Map());
    for (let i = 0; i < values.length - 1; i++) {
      let next = level.get(values[i]) as Level | undefined;
      if (next === undefined) level.set(values[i], (next = new Map()));
      level = next;
    }
    level.set(values[values.length - 1], variant);
    this.size++;
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
/** The keys a URL's lookup reads. */
export interface UrlKeys {
  urlHash: string;
  headerKey: string;
  /** `url:<path>` and `url://<host><path>`: the tags every page of the path (on its host) carries. */
  urlTags: readonly [string, string];
  /** The page key when the URL's responses vary on no request header. */
  unvariedPageKey: string;
  /** The variants of the URL's page looked up, each with its page key, when its responses vary. */
  variants: UrlVariants;
}

/** How many URLs' keys a layer remembers; past it they start afresh. */
export const URL_KEYS_REMEMBERED = 10_000;

/** The keys of the URLs one layer looks up, remembered: the same strings each time, so each cache lookup hashes nothing new. */
export class UrlKeyring {
  /** Off a proxy: by the absolute URL. */
  private readonly byUrl = new BoundedMemo<UrlKeys>(URL_KEYS_REMEMBERED);
  private readonly byHost = new UrlKeysByHost();

  constructor(private readonly keyPrefix: string) {}

  /**
   * The keys of the request's URL. Off a proxy the URL is its scheme, Host and path, so the keys are
   * found by those as they came, with no absolute URL built (and hashed by the map) on every hit.
   * `headers`: the request's, where the caller has read them already.
   */
  keysOf(req: IncomingMessage, headers: IncomingHttpHeaders = req.headers): UrlKeys {
    if (headers['x-forwarded-proto'] !== undefined || headers['x-forwarded-host'] !== undefined)
      return this.byUrl.remember(absoluteUrl(req), () => this.keysFor(req));
    const secure = Boolean((req.socket as TLSSocket).encrypted);
    const host = headers.host ?? '';
    const path = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '/';
    return this.byHost.find(secure, host, path) ?? this.byHost.add(secure, host, path, this.keysFor(req));
  }

  private keysFor(req: IncomingMessage): UrlKeys {
    const hash = md5(absoluteUrl(req));
    return {
      urlHash: hash,
      headerKey: headerKeyFor(this.keyPrefix, hash),
      urlTags: [urlTag(requestPath(req)), hostUrlTag(requestHostname(req), requestPath(req))],
      unvariedPageKey: pageKeyFor(this.keyPrefix, 'GET', hash, headerValuesHash(req, [])),
      variants: new UrlVariants(this.keyPrefix, hash),
    };
  }
}

/**
 * URL keys by scheme, Host and path, as a request names them off a proxy: two lookups of the strings
 * the request came with. Bounded like a BoundedMemo: when full it starts afresh.
 */
class UrlKeysByHost {
  private readonly hosts = [new Map<string, Map<string, UrlKeys>>(), new Map<string, Map<string, UrlKeys>>()];
  private size = 0;

  constructor(private readonly limit = URL_KEYS_REMEMBERED) {}

  find(secure: boolean, host: string, path: string): UrlKeys | undefined {
    return this.hosts[secure ? 1 : 0]!.get(host)?.get(path);
  }

  add(secure: boolean, host: string, path: string, keys: UrlKeys): UrlKeys {
    if (this.size >= this.limit) {
      for (const hosts of this.hosts) hosts.clear();
      this.size = 0;
    }
    const hosts = this.hosts[secure ? 1 : 0]!;
    let byPath = hosts.get(host);
    if (byPath === undefined) hosts.set(host, (byPath = new Map()));
    byPath.set(path, keys);
    this.size++;
    return keys;
  }
}
