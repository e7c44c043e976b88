/**
 * The errors cachegrain throws. Each names what is at fault (alias, backend or key) in its message and
 * carries it as a field, so callers can branch without parsing text. Below them, how every message
 * names its cache and shows the bad value it refuses.
 */

/** A cache alias that is not configured, or a backend that cannot be found or built. */
export class InvalidCacheBackendError extends Error {
  override name = 'InvalidCacheBackendError';
  readonly alias?: string;
  readonly backend?: string;

  constructor(message: string, fields: { alias?: string; backend?: string; cause?: unknown } = {}) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.alias = fields.alias;
    this.backend = fields.backend;
  }
}

/**
 * A key that no backend can store (a lone surrogate; for memcached, any key it would refuse). Given
 * an alias, the message begins `cache '<alias>': ` as every other error about one cache does.
 */
export class InvalidCacheKeyError extends Error {
  override name = 'InvalidCacheKeyError';
  readonly key: string;
  readonly alias?: string;

  constructor(message: string, key: string, alias?: string) {
    super(alias === undefined ? message : `cache '${alias}': ${message}`);
    this.key = key;
    this.alias = alias;
  }
}

/** `incr`, `decr`, `incrVersion` or `decrVersion` on a key that holds no live entry. */
export class KeyNotFoundError extends Error {
  override name = 'KeyNotFoundError';
  readonly key: string;
  readonly alias?: string;

  constructor(key: string, alias?: string) {
    super(`${alias === undefined ? '' : `cache '${alias}': `}Key '${key}' not found`);
    this.key = key;
    this.alias = alias;
  }
}

/** The `type` of the process warnings emitted for keys memcached would refuse. */
export const CacheKeyWarning = 'CacheKeyWarning';

/** A cache server that failed, timed out or could not be reached; `server` names it (host:port, URL, path). */
export class CacheServerError extends Error {
  override name = 'CacheServerError';
  readonly server: string;

  constructor(message: string, server: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.server = server;
  }
}

/** The message, starting with the name of cache `alias` once (messages of the backends name it already). */
export function named(alias: string, message: string): string {
  const name = `cache '${alias}': `;
  return message.startsWith(name) ? message : name + message;
}

/** A TypeError whose message starts by naming cache `alias`. */
export function cacheTypeError(alias: string, message: string, cause?: unknown): TypeError {
  return new TypeError(named(alias, message), cause === undefined ? undefined : { cause });
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
