/**
 * What a result depends on, carried from a fragment to the fragment or page around it and on to the
 * page's headers: its tags (what invalidates it), its contexts (what of the request it varies on),
 * its max-age (how long it may live), whether a stale part went into it (it is then not stored,
 * as it would keep that copy) and the templates it was rendered from (with digests on: a page whose
 * templates changed is rendered again). Drupal's CacheableMetadata, with its one merge rule: tags,
 * contexts and templates are unions, max-age the smallest (0: not kept at all), a stale part taints
 * all around it. Contexts are kept as named; they are folded where they are used (`foldContexts`).
 */
/** The tags, contexts or templates of a record that has none: never added to (a record makes its own sets on its first). */
const NONE: ReadonlySet<string> = new Set();

/** Who a record tells of each tag and template added to it (see `Cacheability.watch`). */
export interface RecordWatcher {
  /** `tags` were added to the record, none of them in it before. */
  tagsAdded(tags: readonly string[]): void;
  /** `templates` were added to the record, none of them in it before. */
  templatesAdded(templates: readonly string[]): void;
}

export class Cacheability {
  // Made on the first tag, context or template: most fragments carry none, and a render makes a record for each.
  private ownTags?: Set<string>;
  private ownContexts?: Set<string>;
  private ownTemplates?: Set<string>;
  private watchers?: RecordWatcher[];
  /** Seconds it may live at most; Infinity when nothing in it set a bound. */
  maxAge = Infinity;
  /** Whether a stale part (served while it is rendered again) went into it. */
  stale = false;
  /** Why it may not be kept at all (max-age 0): the first part that said so, by its template and line or its call. */
  reason: string | undefined = undefined;

  /** A record of `tags` alone. */
  static ofTags(tags: Iterable<string>): Cacheability {
    return new Cacheability().addTags(tags);
  }

  get tags(): ReadonlySet<string> {
    return this.ownTags ?? NONE;
  }

  get contexts(): ReadonlySet<string> {
    return this.ownContexts ?? NONE;
  }

  /** The templates renders started from, as their engines' digests name them (`src/digests/pages.ts`). */
  get templates(): ReadonlySet<string> {
    return this.ownTemplates ?? NONE;
  }

  addTemplates(templates: Iterable<string>): this {
    this.ownTemplates = this.added(this.ownTemplates, templates, 'templatesAdded');
    return this;
  }

  addTags(tags: Iterable<string>): this {
    this.ownTags = this.added(this.ownTags, tags, 'tagsAdded');
    return this;
  }

  /** `own` (made on the first item) with `items` added; the watchers are told of those it did not hold. */
  private added(own: Set<string> | undefined, items: Iterable<string>, tell: keyof RecordWatcher): Set<string> | undefined {
    const watchers = this.watchers;
    const added: string[] | undefined = watchers === undefined ? undefined : [];
    for (const item of items) {
      own ??= new Set();
      if (added !== undefined && !own.has(item)) added.push(item);
      own.add(item);
    }
    if (added !== undefined && added.length > 0) for (const watcher of watchers!) watcher[tell](added);
    return own;
  }

  /**
   * Tells `watcher` of each tag and template added from now on, by a call or by a part merged in: a
   * page's store reads the versions of its tags while its view renders (see `TagsAhead`).
   */
  watch(watcher: RecordWatcher): void {
    (this.watchers ??= []).push(watcher);
  }

  addContexts(contexts: Iterable<string>): this {
    for (const context of contexts) (this.ownContexts ??= new Set()).add(context);
    return this;
  }

  /** Bounds the max-age to `seconds` (0: it may not be kept; `reason` says why). */
  limitMaxAge(seconds: number, reason?: string): this {
    if (seconds < this.maxAge) {
      this.maxAge = Math.max(0, seconds);
      if (this.maxAge === 0 && this.reason === undefined) this.reason = reason;
    }
    return this;
  }

  /** Makes it one that may not be kept, saying why. */
  markUncacheable(reason: string): this {
    return this.limitMaxAge(0, reason);
  }

  /** Whether it may be kept at all. */
  get cacheable(): boolean {
    return this.maxAge > 0;
  }

  /** Takes in what a part put into this one depends on. */
  merge(part: Cacheability): this {
    if (part.ownTags !== undefined) this.addTags(part.ownTags);
    if (part.ownContexts !== undefined) this.addContexts(part.ownContexts);
    if (part.ownTemplates !== undefined) this.addTemplates(part.ownTemplates);
    this.limitMaxAge(part.maxAge, part.reason);
    if (part.stale) this.stale = true;
    return this;
  }
}
