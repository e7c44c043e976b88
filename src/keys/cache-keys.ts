/**
 * Cache keys: the default key function, and the checks memcached's key rules impose.
 * The 250 limit counts code points, as the server counts characters of the made key.
 */
import { describe, InvalidCacheKeyError } from '../errors/errors.js';

/** What users pass as a key; numbers are converted to their decimal text. */
export type CacheKey = string | number;

/** Builds the stored key from the user's key, the cache's prefix and the version. */
export type KeyFunction = (key: string, keyPrefix: string, version: number) => string;

/**
 * Joined rather than concatenated: a concatenation of 13 characters or more is a rope (V8's
 * ConsString), which a server backend's client measures and writes on its slow path, command after
 * command; a joined string is flat from the start.
 */
export const defaultKeyFunction: KeyFunction = (key, keyPrefix, version) => [keyPrefix, version, key].join(':');

export const MEMCACHED_MAX_KEY_LENGTH = 250;

const MEMCACHED_BAD_CHARACTERS = /[\x00-\x20\x7f]/;
const NO_PROBLEMS: string[] = [];

/** Normalizes a user key of the cache `alias` to a string, refusing what no backend could store. */
export function userKeyToString(key: unknown, alias?: string): string {
  if (typeof key === 'string') {
    if (!key.isWellFormed()) {
      throw new InvalidCacheKeyError(`Cache key is not well-formed Unicode (it holds a lone surrogate): '${key}'`, key, alias);
    }
    return key;
  }
  if (typeof key === 'number') return String(key);
  throw new TypeError(`cache key must be a string or a number (got ${describe(key)})`);
}

/** The reasons memcached would refuse a made key, in Django's order and wording. */
export function memcachedKeyProblems(key: string, shown = key): string[] {
  if (key.length <= MEMCACHED_MAX_KEY_LENGTH && !MEMCACHED_BAD_CHARACTERS.test(key)) return NO_PROBLEMS;
  const problems: string[] = [];
  // `length` counts UTF-16 units, never fewer than code points: only a long key needs the exact count.
  if (key.length > MEMCACHED_MAX_KEY_LENGTH && codePointLength(key) > MEMCACHED_MAX_KEY_LENGTH) {
    problems.push(`Cache key will cause errors if used with memcached: '${shown}' (longer than ${MEMCACHED_MAX_KEY_LENGTH})`);
  }
  if (MEMCACHED_BAD_CHARACTERS.test(key)) {
    problems.push(`Cache key contains characters that will cause errors if used with memcached: '${shown}'`);
  }
  return problems;
}

function codePointLength(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

/** A key as a warning shows it: at most its first 100 characters, and then its length. */
export function abbreviatedKey(key: string): string {
  return key.length <= 100 ? key : `${key.slice(0, 100)}…[${key.length} characters]`;
}
