/**
 * Refresh-behind: a stale entry is answered at once and computed again behind its caller, once per
 * key in this process and once across every process sharing the store (the first to take the
 * key's lock). No caller waits for a refresh; a failure keeps the stale entry and is reported.
 */
import type { WorkBehind } from './work-behind.js';
import { LOCK_SECONDS, type Locks, type Release } from './lock.js';

/** One thing to refresh: its key in this process and the name of its lock across processes. */
export interface Stale {
  key: string;
  lockName: string;
}

export class Refreshes {
  private readonly running = new Set<string>();

  /** `work` counts each refresh until it has settled and let go of its locks. */
  constructor(
    private readonly locks: Locks,
    private readonly work: WorkBehind,
  ) {}

  /** Whether a refresh of `key` runs in this process now. */
  has(key: string): boolean {
    return this.running.has(key);
  }

  /**
   * Starts refreshing what of `stale` is not being refreshed here already: `refresh` gets those whose
   * lock this process took (it is not called when it took none). A failure goes to `onError`, once
   * for the refresh. Locks are let go once the refresh settles.
   */
  behind<S extends Stale>(stale: readonly S[], refresh: (locked: S[]) => Promise<void>, onError: (error: Error) => void): void {
    const mine = stale.filter((item) => !this.running.has(item.key));
    if (mine.length === 0) return;
    for (const item of mine) this.running.add(item.key);
    const releases: Release[] = [];
    const run = async () => {
      const locked: S[] = [];
      for (const item of mine) {
        const release = await this.locks.acquireLock(item.lockName, LOCK_SECONDS);
        if (release === undefined) continue;
        releases.push(release);
        locked.push(item);
      }
      if (locked.length > 0) await refresh(locked);
    };
    this.work.add(
      run()
        .catch((error: unknown) => onError(error instanceof Error ? error : new Error(String(error))))
        .finally(async () => {
          for (const release of releases) await release().catch(() => undefined);
          for (const item of mine) this.running.delete(item.key);
        }),
    );
  }
}
