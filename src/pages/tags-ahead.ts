/**
 * What a page's store does with tag versions, done while its view renders, on a cache whose calls
 * wait on a server: for the versions its lookup read (its path's `url:` tags), as the render begins;
 * for each tag the view adds (`addCacheTags`, a fragment's) and each template's (with digests on,
 * where edges are purged), as it is added. Once the view is done,
 * the store then only writes: a page is as far from its render as one round trip.
 */
import type { BaseCache, TagSnapshot } from '../cache/base-cache.js';
import type { RecordWatcher } from '../cacheability/record.js';
import { deployedTemplateTags } from '../digests/index.js';
import { cacheForPages } from './cache-for-pages.js';

/** One read of the versions of tags a view added, settled once: to their snapshot, or failed (the store then reads those tags itself). */
class TagRead {
  private state: { is: 'reading' } | { is: 'read'; snapshot: TagSnapshot } | { is: 'failed' } = { is: 'reading' };
  /** Settles with the read, never rejected. */
  readonly settled: Promise<void>;

  constructor(reading: Promise<TagSnapshot>) {
    this.settled = reading.then(
      (snapshot) => {
        this.state = { is: 'read', snapshot };
      },
      () => {
        this.state = { is: 'failed' };
      },
    );
  }

  /** The versions read, once they were. */
  get snapshot(): TagSnapshot | undefined {
    return this.state.is === 'read' ? this.state.snapshot : undefined;
  }
}

export class TagsAhead implements RecordWatcher {
  /** What was done as the render began with the versions the lookup read: the store waits for it first. */
  private readonly readied: Promise<void>;
  /** Tags added since the last read began: read together, once the code that added them has run. */
  private toRead: string[] = [];
  /** Each read begun. */
  private readonly reads: TagRead[] = [];

  constructor(
    private readonly cache: BaseCache,
    /** The versions of the page's `url:` tags and the cache's generation, read by its lookup. */
    private readonly snapshot: TagSnapshot,
    /** When the page would expire if stored now, with the layer's timeout and stale windows. */
    private readonly storedExpiry: number | null,
  ) {
    const pages = cacheForPages(cache);
    this.readied = pages.readyTagsAhead(snapshot, storedExpiry);
    // Waited for by the cache's settled() too: a render that stores nothing still had it done.
    pages.behind.add(this.readied);
  }

  tagsAdded(tags: readonly string[]): void {
    const waiting = this.toRead.length > 0;
    for (const tag of tags) if (!this.snapshot.has(tag)) this.toRead.push(tag);
    if (!waiting && this.toRead.length > 0) queueMicrotask(() => this.readNow());
  }

  templatesAdded(templates: readonly string[]): void {
    this.tagsAdded(deployedTemplateTags(this.cache, new Set(templates)));
  }

  private readNow(): void {
    const tags = this.toRead;
    if (tags.length === 0) return;
    this.toRead = [];
    const pages = cacheForPages(this.cache);
    // Begun once what was readied is done, failed or not: a server gone silent meanwhile then fails
    // one call, and the request's budget answers the others at once. A read that fails is not
    // reported: the store reads those tags itself, and reports what fails then.
    const read = new TagRead(this.readied.then(() => pages.readTagsAhead(this.snapshot, tags, this.storedExpiry)));
    this.reads.push(read);
    pages.behind.add(read.settled);
  }

  /**
   * The versions to stamp the page with, once what was done with them while the view rendered is:
   * the lookup's snapshot joined with each read of the tags the view added. A read still under way
   * is waited for, as it does what the store would do for its tags, in as many round trips; the store
   * reads the tags of a read that failed itself, and a server that failed in the request is not
   * waited for again.
   */
  async asOf(): Promise<TagSnapshot> {
    // Tags added in the code that sent the page, not read yet.
    this.readNow();
    await Promise.all([this.readied, ...this.reads.map((read) => read.settled)]);
    const read: TagSnapshot[] = [];
    for (const each of this.reads) if (each.snapshot !== undefined) read.push(each.snapshot);
    return read.length === 0 ? this.snapshot : cacheForPages(this.cache).joinTagSnapshots([this.snapshot, ...read]);
  }
}
