/**
 * Answers that come at once from a store in this process and later from a server: one type, and
 * the two ways to go on from one without a turn of the event loop when it is already there.
 */
export type MaybePromise<T> = T | Promise<T>;

const RESOLVED: Promise<void> = Promise.resolve();

/** The answer as a promise: one already settled for an answer given at once. */
export function promised<T>(answer: MaybePromise<T>): Promise<T> {
  if (answer instanceof Promise) return answer;
  return answer === undefined ? (RESOLVED as Promise<T>) : Promise.resolve(answer);
}

/** `next` of the value, at once when it is already there: a store in this process answers without a turn of the event loop. */
export function andThen<A, B>(value: MaybePromise<A>, next: (value: A) => MaybePromise<B>): MaybePromise<B> {
  return value instanceof Promise ? value.then(next) : next(value);
}

export const nothing = (): void => undefined;

/** Whether `value` is a promise of any make (a thenable), to be awaited rather than used as it is. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';
}
