/**
 * Work a cache does behind its callers, once they were answered: a page stored after its response
 * went out, a stale entry computed again. Each is counted while it runs, so that whoever must see
 * what it wrote (a test, a process about to close the cache) can wait for all of it.
 */
export class WorkBehind {
  private readonly running = new Set<Promise<unknown>>();

  /** Counts `work` until it settles, however it settles. */
  add(work: Promise<unknown>): void {
    this.running.add(work);
    const done = () => this.running.delete(work);
    work.then(done, done);
  }

  /** Settles once no work is left, including work added while it waits; never rejects. */
  async settled(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled(this.running);
  }
}
