/**
 * The request a cache call belongs to. The page cache opens one scope per request; everything that
 * runs for that request (the view, its cache calls, its fragment renders) finds it through
 * `currentScope()`. It carries the cacheability of what was rendered into the response, and a slot
 * for each concern that keeps something for the request (the budget of its server calls, the holes
 * left in its body, its page lookups): the concern declares its slot, so this layer knows none of
 * them. Outside a scope every call stands alone.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Cacheability } from './record.js';
import { isThenable } from '../store/maybe-promise.js';

/**
 * A value the request scope holds for one concern (the page cache's lookups, the holes left in a
 * response, the budget of a request's server calls), declared by the concern that owns it: the scope
 * holds it without knowing what it is, and the concern reads it back with its own type. Made on
 * first use, one per scope.
 */
export class ScopeSlot<T extends object> {
  private static declared = 0;
  /** Where the scopes hold this slot's value: slots are declared once, as modules load. */
  readonly index = ScopeSlot.declared++;

  constructor(
    /** Makes the value a scope holds in this slot until the request ends. */
    readonly initial: () => T,
  ) {}
}

export class RequestScope {
  constructor(
    /** The request the scope is for: the one whose values of cache contexts fragments and pages vary on. */
    readonly request: IncomingMessage | undefined,
  ) {}

  /** What everything rendered into this response depends on: its fragments, and what the view added (`addCacheTags`). */
  readonly cacheability = new Cacheability();
  /** The value of each slot used in this request, at the slot's index. */
  private readonly slots: object[] = [];
  private ended = false;

  /** What this request holds in `slot`, made on first use. */
  get<T extends object>(slot: ScopeSlot<T>): T {
    // Only `slot` writes at its index, and it writes a T there: the cast restores what it wrote.
    return (this.slots[slot.index] ??= slot.initial()) as T;
  }

  /**
   * Whether the request is over: its response went out whole, or its hole's builder answered. Code
   * it left running (a job its handler started once it had answered) still carries the scope in
   * its async context, and runs in none (see `currentScope`).
   */
  get over(): boolean {
    return this.ended;
  }

  /** The request is over; never undone. */
  end(): void {
    this.ended = true;
  }
}

const storage = new AsyncLocalStorage<RequestScope>();
/** Requests in a scope right now; a while after there are none, the storage is switched off (see `leaveScope`). */
let openScopes = 0;

/** The scope of the request this code runs for, if one was opened and the request is not over. */
export function currentScope(): RequestScope | undefined {
  // With no request in a scope the storage is off and holds nothing: asking it would cost a lookup.
  if (openScopes === 0) return undefined;
  const scope = storage.getStore();
  return scope === undefined || scope.over ? undefined : scope;
}

/**
 * Each response's scope, for code that holds the response rather than runs in its scope
 * (`addCacheTags`). Kept beside the response, not on it: asking a response that has none (every hit)
 * is then one look at the response itself, where a property it lacks is looked for along its
 * prototypes, which a framework lengthens (Express re-prototypes each response).
 */
const scopes = new WeakMap<ServerResponse, RequestScope>();

/** The scope of the request `res` answers, made on first use. */
export function scopeOf(res: ServerResponse): RequestScope {
  let scope = scopes.get(res);
  if (scope === undefined) scopes.set(res, (scope = new RequestScope((res as ServerResponse & { req?: IncomingMessage }).req)));
  return scope;
}

/** The scope of the request `res` answers if one was made: a hit answered from memory makes none. */
export function openedScope(res: ServerResponse): RequestScope | undefined {
  return scopes.get(res);
}

/**
 * Runs `fn` in a scope of its own for `request`, inside whatever scope it is called from: a hole's
 * builder renders and caches for the request, and what it depends on stays in its own record. A
 * `fn` that answers at once is answered at once, with no promise made.
 */
export function inScopeOfItsOwn<T>(request: IncomingMessage, fn: () => T | Promise<T>): T | Promise<T> {
  const scope = new RequestScope(request);
  openScopes++;
  let answer: T | Promise<T>;
  try {
    answer = storage.run(scope, fn);
  } catch (error) {
    answered(scope);
    throw error;
  }
  if (!isThenable(answer)) {
    answered(scope);
    return answer;
  }
  return Promise.resolve(answer).finally(() => answered(scope));
}

/** A hole's builder answered: its scope is over, and left. */
function answered(scope: RequestScope): void {
  scope.end();
  leaveScope();
}

/**
 * How long the storage stays on once no request is in a scope. Switching it on and off costs a
 * microsecond and more, which a hole's builder on every hit would pay twice; left on, it costs each
 * promise made meanwhile a fraction of that.
 */
const SWITCH_OFF_AFTER_MS = 100;
/** The check that switches the storage off, while one is pending. */
let switchingOff: NodeJS.Timeout | undefined;

/** A scope ended: once no request has been in one for `SWITCH_OFF_AFTER_MS`, the storage is switched off. */
function leaveScope(): void {
  if (--openScopes === 0) switchingOff ??= setTimeout(switchOffIfIdle, SWITCH_OFF_AFTER_MS).unref();
}

function switchOffIfIdle(): void {
  switchingOff = undefined;
  if (openScopes === 0) storage.disable();
}

/**
 * Runs `fn` in the scope of the request `res` answers, opening one if it runs in none: nested page-cache
 * layers and a site middleware in front of a route share one scope per request. A request handled in
 * process from another's async context (Fastify's `inject()` in a route, a request made by code that
 * runs after another ended) carries that request's scope in with it, and gets its own all the same:
 * what its fragments depend on is its page's, and its holes are its own. The request is over once
 * its response went out whole (see `currentScope`), and the scope is left when the response closes.
 * On Node 20 an enabled AsyncLocalStorage slows every promise in the process (async hooks), so the
 * storage is switched off once no request has been in a scope for a moment.
 */
export function inRequestScope<T>(res: ServerResponse, fn: () => T): T {
  const running = storage.getStore();
  if (running !== undefined && running === openedScope(res)) return fn();
  const scope = scopeOf(res);
  openScopes++;
  res.once('finish', () => scope.end());
  res.once('close', () => closed(res, scope));
  return storage.run(scope, fn);
}

/**
 * Work a request leaves running past its response that reads what its render put in its scope: its
 * page's store, which a cache in this process makes behind the response.
 */
const WORK_BEHIND = new ScopeSlot<Set<Promise<unknown>>>(() => new Set());

/** Keeps the scope of the request `res` answers until `work` settles, however long its response lasts. */
export function keepScopeFor(res: ServerResponse, work: Promise<unknown>): void {
  openedScope(res)?.get(WORK_BEHIND).add(work);
}

/**
 * The response closed: the scope is left, and let go once the response went out whole and the work
 * behind it settled. Kept past that, the scope (it holds the request and the response) would keep
 * each request's objects past young collections, which keep an entry of a WeakMap whose value leads
 * back to its key: they would all be moved to the old generation. A response whose client left
 * before it went out whole keeps its scope for the render under way.
 */
function closed(res: ServerResponse, scope: RequestScope): void {
  leaveScope();
  if (!res.writableFinished) return;
  const letGo = () => {
    if (scopes.get(res) === scope) scopes.delete(res);
  };
  const behind = scope.get(WORK_BEHIND);
  if (behind.size === 0) letGo();
  else void Promise.allSettled(behind).then(letGo);
}
