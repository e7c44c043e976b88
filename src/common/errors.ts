/**
 * The errors cachegrain throws. Each names what is at fault (alias, backend or key) in its message and
 * carries it as a field, so callers can branch without parsing text.
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
