/**
 * Cache keys: the default key function, and the checks memcached's key rules impose.
 * The 250 limit counts code points, as the server counts characters of the made key.
 */
import { InvalidCacheKeyError } from './errors.js';

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

/** The longest list or plain object a message shows as JSON; a longer one is named by its kind. */
const SHOWN_JSON_LENGTH = 60;

/**
 * A bad value as error messages show it, the way Django's `%r` does: a string quoted (`'300'`, so it
 * cannot pass for the number 300), a number or boolean as written, a short list or plain object as JSON.
 */
export function describe(value: unknown): string {
  if (typeof value === 'string' || value instanceof String) return `'${String(value)}'`;
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol') return 'a symbol';
  if (value === null || typeof value !== 'object') return String(value);
  const prototype = Object.getPrototypeOf(value);
  if (Array.isArray(value) || prototype === Object.prototype || prototype === null) {
    const json = jsonOf(value);
    if (json !== undefined && json.length <= SHOWN_JSON_LENGTH) return json;
  }
  return Array.isArray(value) ? 'an array' : 'an object';
}

function jsonOf(value: object): string | undefined {
  try {
    return JSON.stringify(value);
  } catch {
    return undefined;
  }
}

/** A key as a warning shows it: at most its first 100 characters, and then its length. */
export function abbreviatedKey(key: string): string {
  return key.length <= 100 ? key : `${key.slice(0, 100)}…[${key.length} characters]`;
}
