/**
 * Writing a pass's rendered misses back, one batch per cache, stamped with the tag versions read
 * before their bodies ran and as of the earliest generation read for the render (its page's lookup,
 * in a page request), so that an invalidation during the render drops them too.
 */
import type { BaseCache, TagSnapshot } from '../cache/base-cache.js';
import { currentScope, ScopeSlot } from '../cacheability/request-scope.js';
import { groupBy } from '../keys/group.js';
import type { Fragment } from './fragment.js';
import { foldContexts } from '../cacheability/contexts.js';
import type { EachEntry } from '../cache/writes.js';
import { type ContextRedirect, contextsBeyond } from './variants.js';
import { sealHoles } from '../holes/index.js';

/**
 * The generation of each cache (see `TagSnapshot`) as the request's first page lookup in it read it,
 * before the view ran: a fragment the view renders is written as of it, as the data the view hands
 * it may have been read since.
 */
export const RENDER_GENERATIONS = new ScopeSlot(() => new Map<BaseCache, number>());

export class WriteBack {
  /** Every tag version read in the pass, first read kept, and the earliest generation, by cache: what its writes are stamped with. */
  private readonly versions = new Map<BaseCache, Map<string, string | undefined> & { generation?: number }>();

  /** Notes the tag versions (and the generation) a read of `cache` answered. */
  remember(cache: BaseCache, versions: TagSnapshot): void {
    let known = this.versions.get(cache);
    if (known === undefined) this.versions.set(cache, (known = new Map()));
    for (const [tag, version] of versions) if (!known.has(tag)) known.set(tag, version);
    known.generation = earliest(known.generation, versions.generation);
  }

  /**
   * Whether the render's writes to `cache` have the generation they are written as of: read by an
   * earlier level, or by the page lookup the render runs in. A level read then leaves it out.
   */
  knowsGeneration(cache: BaseCache): boolean {
    return this.versions.get(cache)?.generation !== undefined || currentScope()?.get(RENDER_GENERATIONS).has(cache) === true;
  }

  /**
   * The generation of `cache` the render's writes are made as of: the earliest it read, or its page's
   * lookup read. Undefined while it read none (a render with no tags does not).
   */
  generationOf(cache: BaseCache): number | undefined {
    return earliest(this.versions.get(cache)?.generation, currentScope()?.get(RENDER_GENERATIONS).get(cache));
  }

  /**
   * Writes the fragments of `rendered` whose HTML was made here; one holding a stale fragment is not
   * written (it would keep that copy).
   */
  async write(rendered: readonly Fragment[]): Promise<void> {
    const writable = rendered.filter(({ state, cached }) => cached && state.is === 'rendered' && !state.cacheability.stale && state.cacheability.cacheable);
    await Promise.all(
      [...groupBy(writable, (fragment) => fragment.cache)].map(([cache, group]) => {
        const asOf = this.versions.get(cache);
        if (asOf !== undefined) asOf.generation = this.generationOf(cache);
        return cache.setEach(entriesOf(group), asOf);
      }),
    );
  }
}

/** The earlier of two generations, where either is known. */
function earliest(one: number | undefined, other: number | undefined): number | undefined {
  return one === undefined ? other : other === undefined ? one : Math.min(one, other);
}

/**
 * What `setEach` stores for `fragments`, in the order they were rendered: a fragment nested in itself
 * is written once, with the outer HTML (Django's last write), which the outer one, rendered first, holds.
 */
function entriesOf(fragments: readonly Fragment[]): EachEntry[] {
  const byKey = new Map<EachEntry['key'], EachEntry>();
  for (const fragment of fragments) for (const entry of storedEntries(fragment)) if (!byKey.has(entry.key)) byKey.set(entry.key, entry);
  return [...byKey.values()];
}

/**
 * What `setEach` stores for a rendered fragment: its HTML for no longer than anything in it may live,
 * with its record (tags, contexts, and so when it stops being fresh) for the renders that read it.
 */
function storedEntries(fragment: Fragment): EachEntry[] {
  const { timeout, staleWindow, state } = fragment;
  const record = state.is === 'rendered' ? state.cacheability : fragment.ownRecord();
  const lifetime = record.maxAge === Infinity ? timeout : Math.min(timeout ?? Infinity, record.maxAge);
  const contexts = record.contexts.size === 0 && fragment.learned.length === 0 ? [] : foldContexts([...record.contexts, ...fragment.learned]);
  const options = { timeout: lifetime, tags: record.tags.size === 0 ? undefined : [...record.tags], staleWhileRevalidate: staleWindow || undefined };
  const beyond = contexts.length === 0 ? contexts : contextsBeyond(fragment.ownContexts, contexts);
  // Stored with its holes' placeholders sealed: a hole's HTML is never stored.
  const html = sealHoles(fragment.html);
  if (beyond.length === 0) return [{ key: fragment.key, value: html, options, contexts }];
  // Its HTML varies on contexts met inside it: its own key names them, and the variant holds the HTML.
  const redirect: ContextRedirect = { cachegrainContexts: beyond };
  return [
    { key: fragment.baseKey, value: redirect, options: timeout },
    { key: fragment.variants.keyIn(beyond), value: html, options, contexts },
  ];
}
