/**
 * The `cache` tag's argument rules (SPEC §5, Django's `CacheNode`), shared by every engine: the
 * timeout, the cache chosen by `using=` or the `template_fragments` → `default` fallback, and the
 * error texts, which are Django's word for word. Surprise: the fallback is decided on every render,
 * so a later `configureCaches` that adds `template_fragments` takes effect at once.
 */
import type { BaseCache } from '../base.js';
import { caches } from '../config.js';
import { InvalidCacheBackendError } from '../errors.js';

/** A misused `cache` tag: too few arguments, a bad timeout, an unknown cache, a misplaced tag. */
export class TemplateSyntaxError extends Error {
  override name = 'TemplateSyntaxError';
  /** The fragment at fault, when the error concerns one. */
  readonly fragment?: string;

  constructor(message: string, fragment?: string) {
    super(message);
    this.fragment = fragment;
  }
}

/** The compile-time error for a tag with fewer than its two required arguments. */
export function tooFewArguments(tagName = 'cache'): TemplateSyntaxError {
  return new TemplateSyntaxError(`'${tagName}' tag requires at least 2 arguments.`);
}

/** The tag's timeout in seconds: an integer or an integer string; `null` is forever. */
export function fragmentTimeout(value: unknown): number | null {
  if (value === null) return null;
  const text = value instanceof String ? String(value) : value;
  if (typeof text === 'number' && Number.isSafeInteger(text)) return text;
  if (typeof text === 'string' && /^\s*[+-]?\d+\s*$/.test(text)) return Number.parseInt(text, 10);
  throw new TemplateSyntaxError(`"cache" tag got a non-integer timeout value: ${show(value)}`);
}

/** The cache a tag writes to: `using`'s alias, else `template_fragments` when configured, else `default`. */
export function fragmentCache(using: unknown): BaseCache {
  if (using === undefined) return caches.get(caches.has('template_fragments') ? 'template_fragments' : 'default');
  const alias = String(using);
  try {
    return caches.get(alias);
  } catch (error) {
    if (error instanceof InvalidCacheBackendError && !caches.has(alias)) {
      throw new TemplateSyntaxError(`Invalid cache name specified for cache tag: ${show(alias)}`);
    }
    throw error;
  }
}

/** A value as Django's `%r` would show it: strings quoted, lists and objects as JSON. */
function show(value: unknown): string {
  if (typeof value === 'string' || value instanceof String) return `'${String(value)}'`;
  if (value !== null && typeof value === 'object') {
    try {
      return JSON.stringify(value);
    } catch {
      return String(value);
    }
  }
  return String(value);
}
