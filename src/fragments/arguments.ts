/**
 * The `cache` tag's argument rules (Django's `CacheNode`), shared by every engine: the
 * timeout, the cache chosen by `using=` or the `template_fragments` → `default` fallback, and the
 * error texts, which are Django's word for word. Surprise: the fallback is decided on every render,
 * so a later `configureCaches` that adds `template_fragments` takes effect at once.
 */
import type { BaseCache } from '../cache/base-cache.js';
import { caches } from '../config/cache-registry.js';
import { describe, InvalidCacheBackendError } from '../errors/errors.js';
import { contextList } from '../cacheability/contexts.js';
import { closestName, didYouMean } from '../options/option-rules.js';

/** Where a tag stands: its template file (or the name it was given) and the 1-based line of the tag. */
export interface TagSite {
  template: string;
  line: number;
}

/** Where a tag stands, when its adapter said. */
export function tagSiteOf(tag: Partial<TagSite>): TagSite | undefined {
  return tag.template === undefined ? undefined : { template: tag.template, line: tag.line ?? 0 };
}

/** A misused `cache` tag: too few arguments, a bad timeout, an unknown cache, a misplaced tag. */
export class TemplateSyntaxError extends Error {
  override name = 'TemplateSyntaxError';
  /** The fragment at fault, when the error concerns one. */
  readonly fragment?: string;
  /** The tag at fault, when known. */
  readonly site?: TagSite;

  constructor(message: string, fragment?: string, site?: TagSite) {
    super(site === undefined ? message : `${message} (${describeSite(site)})`);
    this.fragment = fragment;
    this.site = site;
  }
}

/** An error thrown while a fragment's body rendered, located at its tag; the original is its `cause`. */
export class FragmentRenderError extends Error {
  override name = 'FragmentRenderError';

  constructor(
    readonly fragment: string,
    readonly site: TagSite,
    cause: unknown,
  ) {
    super(`error in the body of cache fragment '${fragment}' (${describeSite(site)}): ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** `page.hbs, line 3`. */
export function describeSite(site: TagSite): string {
  return `${site.template}, line ${site.line}`;
}

/**
 * `error` located at the tag at `site`: a tag error gains the site, an error from the body is wrapped
 * in a FragmentRenderError. An error already located (at a tag nested in this one) is kept as it is.
 */
export function atTag(error: unknown, site: TagSite | undefined, fragment: string, fromBody: boolean): unknown {
  if (site === undefined || error instanceof FragmentRenderError) return error;
  if (error instanceof TemplateSyntaxError) return error.site !== undefined ? error : new TemplateSyntaxError(error.message, error.fragment ?? fragment, site);
  return fromBody ? new FragmentRenderError(fragment, site, error) : error;
}

/** The compile-time error for a tag with fewer than its two required arguments. */
export function tooFewArguments(tagName = 'cache', site?: TagSite): TemplateSyntaxError {
  return new TemplateSyntaxError(`'${tagName}' tag requires at least 2 arguments.`, undefined, site);
}

/** The compile-time error for a tag whose end tag never comes. */
export function missingEndTag(tagName: string, endTag: string, site?: TagSite): TemplateSyntaxError {
  return new TemplateSyntaxError(`'${tagName}' tag is never closed: ${endTag} is missing`, undefined, site);
}

/** The tag's timeout in seconds: an integer or an integer string; `null` is forever. */
export function fragmentTimeout(value: unknown): number | null {
  if (value === null) return null;
  const text = value instanceof String ? String(value) : value;
  if (typeof text === 'number' && Number.isSafeInteger(text)) return text;
  if (typeof text === 'string' && /^\s*[+-]?\d+\s*$/.test(text)) return Number.parseInt(text, 10);
  throw nonIntegerTimeout(value);
}

/** Django's error for a timeout that is no integer, saying what the tag wants. */
export function nonIntegerTimeout(value: unknown): TemplateSyntaxError {
  return new TemplateSyntaxError(`"cache" tag got a non-integer timeout value: ${describe(value)} (a number of seconds)`);
}

/** The tag's `tags=`: a string or an array of non-empty strings. */
const NO_TAGS: readonly string[] = [];

export function fragmentTags(value: unknown): readonly string[] {
  if (value === undefined) return NO_TAGS;
  const list = typeof value === 'string' || value instanceof String ? [String(value)] : value;
  if (Array.isArray(list) && list.every((tag) => (typeof tag === 'string' || tag instanceof String) && String(tag) !== '')) {
    // Checked on every render of the tag, hit or miss: an array of plain strings is taken as it is.
    return list.every((tag) => typeof tag === 'string') ? list : list.map(String);
  }
  throw new TemplateSyntaxError(`"cache" tag got invalid tags: ${describe(value)} (a string or an array of non-empty strings)`);
}

/** The tag's `stale=`: seconds, an integer ≥ 0 or an integer string, during which a stale copy is served. */
export function fragmentStale(value: unknown): number {
  if (value === undefined) return 0;
  const text = value instanceof String ? String(value) : value;
  const seconds = typeof text === 'string' && /^\s*\+?\d+\s*$/.test(text) ? Number.parseInt(text, 10) : text;
  if (typeof seconds === 'number' && Number.isSafeInteger(seconds) && seconds >= 0) return seconds;
  throw new TemplateSyntaxError(`"cache" tag got a stale value that is not a non-negative integer: ${describe(value)}`);
}

/** The tag's `lock=`: a boolean (`lock=true`). */
export function fragmentLock(value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === 'false') return value === 'true';
  throw new TemplateSyntaxError(`"cache" tag got a lock value that is not a boolean: ${describe(value)}`);
}

/** The tag's `contexts=`: a context name or a list of them, each known; answered folded and sorted. */
export function fragmentContexts(value: unknown): readonly string[] {
  if (value === undefined) return NO_TAGS;
  try {
    return contextList(value, '"cache" tag');
  } catch (error) {
    throw new TemplateSyntaxError(error instanceof Error ? error.message : String(error));
  }
}

/** The tag's `if=` (Rails' `cache_if`): absent is true; else the value's truth, as the template language has it. */
export function fragmentCondition(value: unknown): boolean {
  if (value === undefined) return true;
  if (value instanceof String) return value.length > 0;
  if (Array.isArray(value)) return value.length > 0;
  return Boolean(value);
}

/** The keyword arguments a tag takes after its vary-on values, in any order. */
export const KEYWORDS = ['using', 'tags', 'stale', 'lock', 'contexts', 'if'] as const;
export type Keyword = (typeof KEYWORDS)[number];

/**
 * The error for a keyword `tag` (`'cache' tag`) does not take, or undefined for one it takes: a
 * misspelt keyword silently ignored would cache under the wrong cache, tags or lifetime.
 */
export function unknownKeyword(name: string, tag: string, site?: TagSite): TemplateSyntaxError | undefined {
  if ((KEYWORDS as readonly string[]).includes(name)) return undefined;
  const closest = closestName(name, KEYWORDS);
  const hint = closest === undefined ? '' : ` (did you mean '${closest}'?)`;
  return new TemplateSyntaxError(`${tag}: unknown keyword '${name}'${hint}; the keywords are ${KEYWORDS.join(', ')}`, undefined, site);
}

/** A tag's keyword arguments as evaluated; absent ones are undefined. */
export type TagKeywords = Partial<Record<Keyword, unknown>>;

/**
 * A `cache` tag as its template evaluated it, with where it stands when the adapter knows it (its
 * `template` and `line`, which name every error of the tag and its body). The site's fields are the
 * tag's own, not an object of their own: an engine whose every render calls `tag` (Nunjucks) then
 * builds one object for a tag, not two.
 */
export interface FragmentTag extends Partial<TagSite> {
  /** As evaluated: checked where it is read. */
  readonly timeout: unknown;
  /** The literal fragment name. */
  readonly name: string;
  readonly varyOn: readonly unknown[];
  readonly keywords: TagKeywords;
  /** Its template's digest key, with digests on. */
  readonly digest?: string;
}

/** The cache a tag writes to: `using`'s alias, else `template_fragments` when configured, else `default`. */
export function fragmentCache(using: unknown): BaseCache {
  if (using === undefined) return caches.fragmentCache();
  const alias = String(using);
  try {
    return caches.get(alias);
  } catch (error) {
    if (error instanceof InvalidCacheBackendError && !caches.has(alias)) {
      throw new TemplateSyntaxError(`Invalid cache name specified for cache tag: ${describe(alias)}${didYouMean(caches.closestAlias(alias))}`);
    }
    throw error;
  }
}
