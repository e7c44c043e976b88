/**
 * The request a cache call belongs to. The page cache opens one scope per request; everything that
 * runs for that request (the view, its cache calls, its fragment renders) finds it through
 * `currentScope()`. It carries the request's cache budget (SPEC §4: a request whose cache is down
 * waits at most `timeoutMs` in all) and the tags of what was rendered into the response (SPEC §8).
 * Outside a scope every call stands alone.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { ServerResponse } from 'node:http';

export class RequestScope {
  /** Servers (or caches) that failed during this request: later calls skip them at once. */
  private readonly down = new Set<unknown>();
  /** Tags of everything rendered into this response: fragments, and `addCacheTags` from the view. */
  readonly tags = new Set<string>();
  /** Whether a stale fragment went into this response: it is then not stored as a page. */
  servedStale = false;

  /** Records that `server` failed in this request. */
  markDown(server: unknown): void {
    this.down.add(server);
  }

  /** Whether `server` already failed in this request. */
  isDown(server: unknown): boolean {
    return this.down.size > 0 && this.down.has(server);
  }

  addTags(tags: Iterable<string>): void {
    for (const tag of tags) this.tags.add(tag);
  }
}

const storage = new AsyncLocalStorage<RequestScope>();
/** Requests in a scope right now; at none, the storage is switched off (see `inRequestScope`). */
let openScopes = 0;

/** The scope of the request this code runs for, if one was opened. */
export function currentScope(): RequestScope | undefined {
  return storage.getStore();
}

/** Each response's scope, for code that holds the response rather than runs in its scope (`addCacheTags`). */
const SCOPE = Symbol('cachegrain.scope');
type WithScope = ServerResponse & { [SCOPE]?: RequestScope };

/** The scope of the request `res` answers, made on first use. */
export function scopeOf(res: ServerResponse): RequestScope {
  return ((res as WithScope)[SCOPE] ??= new RequestScope());
}

/**
 * Runs `fn` in the scope of the request `res` answers, opening one if there is none: nested page-cache
 * layers and a site middleware in front of a route share one scope per request. The scope ends when
 * the response closes. On Node 20 an enabled AsyncLocalStorage slows every promise in the process
 * (async hooks), so the storage is switched off whenever no request is in a scope.
 */
export function inRequestScope<T>(res: ServerResponse, fn: () => T): T {
  if (storage.getStore() !== undefined) return fn();
  openScopes++;
  res.once('close', () => {
    if (--openScopes === 0) storage.disable();
  });
  return storage.run(scopeOf(res), fn);
}
