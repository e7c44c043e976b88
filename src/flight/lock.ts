/**
 * Locks across every process sharing a store, and the one way to wait for a lock's holder. A lock
 * is an entry added with `add` that expires on its own, so a holder that dies never blocks the
 * others for longer than the lock's lifetime.
 */

/** How often a process waiting on another's work looks for its result. */
export const LOCK_POLL_MS = 25;
/** How long a lock stands at most: a render or refresh still running after this is given up on. */
export const LOCK_SECONDS = 30;

/** Lets go of a lock; calling it again does nothing. */
export type Release = () => Promise<void>;

/** What a store offers for locks (every cache does). */
export interface Locks {
  /** Takes the lock `name` for at most `seconds`: answers its release, or undefined while another holds it. */
  acquireLock(name: string, seconds: number): Promise<Release | undefined>;
}

/**
 * How waiting for a lock ended: `held`, the caller holds it and computes; `found`, the holder's
 * result came; `unheld`, the wait ran out, and the caller computes without the lock.
 */
export type LockOutcome<T> = { is: 'held'; release: Release } | { is: 'found'; value: T } | { is: 'unheld' };

/**
 * Takes the lock `name`, or waits up to `waitMs` for the holder's result, looking it up every
 * LOCK_POLL_MS. A result stored by a holder that let go just before the lock was taken is found too,
 * and the lock let go again at once.
 */
export async function lockOrWait<T>(locks: Locks, name: string, waitMs: number, lookUp: () => Promise<T | undefined>): Promise<LockOutcome<T>> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const release = await locks.acquireLock(name, LOCK_SECONDS);
    if (release !== undefined) {
      const value = await lookUp();
      if (value === undefined) return { is: 'held', release };
      await release();
      return { is: 'found', value };
    }
    if (Date.now() >= deadline) return { is: 'unheld' };
    await pause(LOCK_POLL_MS);
    const value = await lookUp();
    if (value !== undefined) return { is: 'found', value };
  }
}

/** Resolves once `done()` answers true, or after `waitMs`: looking every LOCK_POLL_MS. */
export async function pollUntil(done: () => Promise<boolean>, waitMs: number): Promise<void> {
  const deadline = Date.now() + waitMs;
  while (!(await done()) && Date.now() < deadline) await pause(LOCK_POLL_MS);
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
