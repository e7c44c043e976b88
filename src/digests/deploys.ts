/**
 * A deploy that changes a template renews the pages rendered from it at the edge in front (the
 * cache's `purge`), as it renews them in the page cache (`pages.ts`). Such a page carries the tag
 * `template:<engine>:<name>` of each template it was rendered from, and the cache keeps a record of
 * those templates with the digest each had in the last process that changed it. A process compares
 * the record with its own digests once its page cache and an engine with digests are both made: each
 * template that differs has its tag invalidated, which purges every edge, and is recorded anew; one
 * gone is invalidated and dropped. Under a lock in the store, so that the processes of a deploy,
 * starting together, invalidate it once. The surprise: only its start makes a process invalidate
 * (or, for a template it could not compare then, its first render of it). A template the record
 * gains later (another process rendered it first) is taken as recorded, so the processes of two
 * releases running side by side in a rolling deploy never undo each other.
 */
import type { BaseCache } from '../cache/base-cache.js';
import { cacheForDigests } from './cache-for-digests.js';
import { edgesPurgedBy } from '../edge/cache-edges.js';
import { BoundedMemo } from '../memos/bounded-memo.js';
import { TAG_KEY_VERSION, TAG_KEYS } from '../store/key-maker.js';
import { lockOrWait, LOCK_SECONDS } from '../flight/index.js';
import { namedEngines, templateNow, templateTag, whenEngineNamed } from './pages.js';

/** The record's key, beside the tag versions (culls pass it by); `cachegrain.tag.<tag>` names a tag's version. */
const RECORD_KEY = `${TAG_KEYS}-templates`;
/** The lock every change of the record is made under. */
const RECORD_LOCK = 'cachegrain.templates';

/** The site's templates, each as `templateRef` names it, with its digest when it was last recorded. */
type TemplateRecord = Record<string, string>;

/**
 * The most templates a record holds: one entry in the store, under memcached's 1 MB with room to
 * spare. Templates past it (a site compiling template strings made per request, say) go unrecorded.
 */
const RECORD_LIMIT = 2000;

/** What one look at the record changes in it: each template's new digest, undefined to drop it, and whether its pages are to be invalidated. */
type RecordChange = { template: string; digest: string | undefined; invalidate: boolean };

/** The record of one cache's templates, as this process compares them and adds to it. */
class SiteTemplates {
  /** The engines whose templates in the record this process compared, or is comparing, with its own. */
  private readonly comparedEngines = new Set<string>();
  /** Whether a comparison failed (its store down, say): the next page stored tries it again. */
  private comparisonFailed = false;
  /** The templates this process is done with: compared, taken as recorded, or recorded. */
  private readonly done = new BoundedMemo<true>(RECORD_LIMIT);
  /**
   * Templates in the record that reached a template not found when this process compared them (a
   * partial its engine is handed only at a render): compared at the first render of a page from them.
   */
  private readonly deferred = new Set<string>();
  /** Whether this process reported the record full. */
  private reportedFull = false;
  /** The record's work in this process, one step after the other. */
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly cache: BaseCache) {}

  /** Compares the record's templates of each engine made since the last call with this process's. */
  compareNewEngines(): void {
    const engines = namedEngines().filter((engine) => !this.comparedEngines.has(engine));
    if (engines.length === 0) return;
    for (const engine of engines) this.comparedEngines.add(engine);
    this.step(
      () => this.changeRecord((record) => this.compared(record, engines)),
      () => {
        for (const engine of engines) this.comparedEngines.delete(engine);
        this.comparisonFailed = true;
      },
    );
  }

  /** A page was rendered from `templates`: those this process is not done with are recorded (see `recorded`). */
  rendered(templates: ReadonlySet<string>): void {
    if (this.comparisonFailed) {
      this.comparisonFailed = false;
      this.compareNewEngines();
    }
    const fresh = [...templates].filter((template) => this.done.get(template) === undefined);
    if (fresh.length === 0) return;
    for (const template of fresh) this.done.set(template, true);
    this.step(
      () => this.changeRecord((record) => this.recorded(record, fresh)),
      () => fresh.forEach((template) => this.done.delete(template)),
    );
  }

  /** The record's templates of `engines`, compared with this process's digests. */
  private compared(record: TemplateRecord, engines: readonly string[]): RecordChange[] {
    const changes: RecordChange[] = [];
    for (const [template, digest] of Object.entries(record)) {
      const now = templateNow(template);
      if (now === undefined || !engines.includes(now.engine)) continue;
      if (now.reachesMissing) {
        this.deferred.add(template);
        continue;
      }
      this.done.set(template, true);
      if (now.digest !== digest) changes.push({ template, digest: now.digest, invalidate: true });
    }
    return changes;
  }

  /**
   * `templates` rendered: a deferred one compared now, one the record lacks recorded, and one
   * recorded since this process's comparison (by a process of this release or another) left as it is.
   */
  private recorded(record: TemplateRecord, templates: readonly string[]): RecordChange[] {
    const changes: RecordChange[] = [];
    let room = RECORD_LIMIT - Object.keys(record).length;
    for (const template of templates) {
      const digest = templateNow(template)?.digest;
      if (this.deferred.delete(template)) {
        if (digest !== record[template]) changes.push({ template, digest, invalidate: true });
      } else if (record[template] === undefined && digest !== undefined) {
        if (room-- > 0) changes.push({ template, digest, invalidate: false });
        else this.reportFull(template);
      }
    }
    return changes;
  }

  private reportFull(template: string): void {
    if (this.reportedFull) return;
    this.reportedFull = true;
    const message = `the record of templates a deploy compares holds ${RECORD_LIMIT} already: the pages of ${template} and of the templates after it are not renewed at the edge when a deploy changes them`;
    this.cache.reportError(new Error(message));
  }

  /**
   * Reads the record under its lock, invalidates the tags of the templates `decide` says to, then
   * writes the record as it changed it: a process that dies in between leaves the record as it was,
   * and the next to start invalidates them again.
   */
  private async changeRecord(decide: (record: TemplateRecord) => RecordChange[]): Promise<void> {
    const lock = await lockOrWait(this.cache, RECORD_LOCK, LOCK_SECONDS * 1000, nothingToFind);
    try {
      const record = recordOf(await this.cache.get(RECORD_KEY, undefined, { version: TAG_KEY_VERSION }));
      const changes = decide(record);
      if (changes.length === 0) return;
      const invalidated = changes.filter((change) => change.invalidate).map((change) => templateTag(change.template));
      if (invalidated.length > 0) await this.cache.invalidateTags(invalidated);
      for (const { template, digest } of changes) {
        if (digest === undefined) delete record[template];
        else record[template] = digest;
      }
      await this.cache.set(RECORD_KEY, record, { timeout: null, version: TAG_KEY_VERSION });
    } finally {
      // Unheld: the wait ran out on a holder that never let go, and this process went ahead without it.
      if (lock.is === 'held') await lock.release();
    }
  }

  /** Runs `work` after the record's work queued before it, counted as the cache's work behind; `undo` lets a failed step be tried again. */
  private step(work: () => Promise<void>, undo: () => void): void {
    const run = this.queue.then(work).catch((error: unknown) => {
      undo();
      this.cache.reportError(error instanceof Error ? error : new Error(String(error)));
    });
    this.queue = run;
    cacheForDigests(this.cache).behind.add(run);
  }
}

const nothingToFind = (): Promise<undefined> => Promise.resolve(undefined);

/** A record as read: a stored value this version did not write is an empty record. */
function recordOf(value: unknown): TemplateRecord {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return {};
  return Object.fromEntries(Object.entries(value).filter(([, digest]) => typeof digest === 'string')) as TemplateRecord;
}

/** The record of each cache that purges edges, as this process holds it. */
const sites = new WeakMap<BaseCache, SiteTemplates>();
/** The same, to be told of engines made later; let go with their caches. */
const watched = new Set<WeakRef<SiteTemplates>>();

whenEngineNamed(() => {
  for (const site of watched) {
    const held = site.deref();
    if (held === undefined) watched.delete(site);
    else held.compareNewEngines();
  }
});

/** The record of `cache`'s templates; undefined for a cache that purges no edge, whose pages nothing renews downstream. */
function siteOf(cache: BaseCache): SiteTemplates | undefined {
  if (edgesPurgedBy(cache).length === 0) return undefined;
  let site = sites.get(cache);
  if (site === undefined) {
    sites.set(cache, (site = new SiteTemplates(cache)));
    watched.add(new WeakRef(site));
    site.compareNewEngines();
  }
  return site;
}

/**
 * A page cache stores its pages in `cache`: where it purges edges, the record of its templates is
 * compared with this process's digests, now for the engines made and later for each made after.
 */
export function compareDeployedTemplates(cache: BaseCache): void {
  siteOf(cache);
}

/**
 * The tags a page rendered from `templates` (as `templateRef` names them) and stored in `cache`
 * carries for the edges it purges, one a template; none where it purges none. The templates this
 * process has not yet met in the record are recorded behind.
 */
export function deployedTemplateTags(cache: BaseCache, templates: ReadonlySet<string>): string[] {
  if (templates.size === 0) return [];
  const site = siteOf(cache);
  if (site === undefined) return [];
  site.rendered(templates);
  return Array.from(templates, templateTag);
}
