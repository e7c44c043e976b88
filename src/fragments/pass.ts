/**
 * One pass over a render's recorded fragments: reads them level by level (one round trip per cache
 * and level), renders the misses (tags met in their bodies form the next level), places every
 * fragment's HTML in the text around it, and writes the misses back. A stale fragment rendered again
 * behind its page is a pass of its own.
 */
import type { BaseCache, RenderEntry } from '../cache/base-cache.js';
import { cacheForFragments } from './cache-for-fragments.js';
import { Cacheability } from '../cacheability/record.js';
import { lockOrWait, type Release } from '../flight/index.js';
import { groupBy } from '../keys/group.js';
import { atTag } from './arguments.js';
import type { Fragment, Hit, Rendered } from './fragment.js';
import { cutAtPlaceholders, takeUncacheableMarks } from './placeholders.js';
import { countsOf } from './stats.js';
import { WriteBack } from './write-back.js';
import { isRedirect } from './variants.js';
import { unsealHoles } from '../holes/index.js';

/** How long a `lock=true` render waits for the lock's holder to store the fragment before rendering it anyway. */
const LOCK_WAIT_MS = 5000;

/** What a pass works on: the render's fragments by number, and those recorded and not yet read. */
export interface Recording {
  readonly fragments: readonly Fragment[];
  takePending(): Fragment[];
  /** Renders a fragment in a pass of its own (one that waited for another render's HTML, of another variant), answering its HTML. */
  renderAlone(fragment: Fragment): Promise<string>;
  /** Whether an `uncacheable()` mark was made since the render began: only then can its texts hold one. */
  marksMade(): boolean;
}

export class Pass {
  /** The misses this pass renders, which it writes back. */
  private readonly rendered: Fragment[] = [];
  private readonly writeBack = new WriteBack();
  /** The `lock=true` locks this pass holds, let go once its fragments are written. */
  private releases?: Release[];

  /** `recording`, the render, leads the flights of the misses this pass renders for other renders to wait on. */
  constructor(private readonly recording: Recording) {}

  /**
   * Renders `again` (stale fragments, without reading them), resolves the recorded fragments level by
   * level, and answers what `assemble` makes of them once the misses are written. `nested`: the
   * first level is inside a fragment (a refresh), so its misses are not shared with other renders.
   * Every flight this pass leads is settled either way.
   */
  async run(nested: boolean, assemble: () => string | Promise<string>, again: readonly Fragment[] = []): Promise<string> {
    try {
      if (again.length > 0) await this.renderAgain(again);
      for (let level = this.recording.takePending(); level.length > 0; level = this.recording.takePending(), nested = true) {
        await this.resolveLevel(level, nested);
      }
      const result = await assemble();
      // A pass that found every fragment stored has nothing to wait for or write.
      if (this.rendered.length > 0) {
        await Promise.all(this.rendered.map((fragment) => this.resultOf(fragment)));
        await this.writeBack.write(this.rendered);
      }
      return result;
    } catch (error) {
      for (const fragment of this.rendered) fragment.settle({ error });
      throw error;
    } finally {
      // Written, or failed: the keys of the flights this pass led are free for the next render.
      for (const fragment of this.rendered) fragment.leaveFlight();
      for (const release of this.releases ?? []) void release().catch(() => undefined);
    }
  }

  /**
   * Replaces the placeholders in `text`, waiting only for fragments whose HTML is not yet known, and
   * merges what each fragment placed depends on into `into`.
   */
  substitute(text: string, into: Cacheability): string | Promise<string> {
    if (this.recording.marksMade()) text = takeUncacheableMarks(text, () => into);
    const cut = cutAtPlaceholders(text, this.recording.fragments);
    if (cut === undefined) return text;
    const { pieces, slots } = cut;
    let waits: Array<Promise<string>> | undefined;
    for (const [, fragment] of slots) {
      const html = this.resultOf(fragment);
      if (typeof html !== 'string') (waits ??= []).push(html);
    }
    const assemble = () => {
      for (const [index, fragment] of slots) {
        fragment.placed = true;
        pieces[index] = fragment.html;
        fragment.mergeInto(into);
      }
      return pieces.join('');
    };
    return waits === undefined ? assemble() : Promise.all(waits).then(assemble);
  }

  /** Renders stale fragments again without reading them, their tags' versions read first. */
  private async renderAgain(fragments: readonly Fragment[]): Promise<void> {
    await Promise.all(
      [...groupBy(fragments, (fragment) => fragment.cache)].map(async ([cache, group]) =>
        this.writeBack.remember(cache, await cache.readTagSnapshot(group.flatMap((fragment) => fragment.ownTags))),
      ),
    );
    for (const fragment of fragments) {
      fragment.lead(undefined);
      this.rendered.push(fragment);
    }
    await Promise.all(fragments.map((fragment) => this.render(fragment)));
  }

  /** Reads one level's keys and its own tags (one round trip per cache) and renders the bodies of its misses. */
  private async resolveLevel(level: Fragment[], nested: boolean): Promise<void> {
    const misses = level.filter((fragment) => !fragment.cached);
    let read = misses.length === 0 ? level : level.filter((fragment) => fragment.cached);
    // A fragment's own key may hold a redirect to its variants (see variants.ts): they are read in one more round trip.
    for (let round = 0; read.length > 0; round++) {
      const redirected: Fragment[] = [];
      await Promise.all(
        [...groupBy(read, (fragment) => fragment.cache)].map(async ([cache, group]) => {
          const { entries, versions } = await cache.readEntriesAndTags<unknown>(
            group.map((fragment) => fragment.key),
            round === 0 ? group.flatMap((fragment) => fragment.ownTags) : [],
            !this.writeBack.knowsGeneration(cache),
          );
          this.writeBack.remember(cache, versions);
          for (const fragment of group) {
            const entry = entries.get(fragment.key);
            // Past its stale window but inside staleIfError: a template has no use for it, render it.
            if (entry === undefined || entry.state === 'error') misses.push(fragment);
            else if (!isRedirect(entry.value)) fragment.found(counted(fragment, hitOf(entry)));
            else if (round > 0) misses.push(fragment);
            else {
              redirectTo(fragment, entry.value.cachegrainContexts);
              redirected.push(fragment);
            }
          }
        }),
      );
      read = redirected;
    }
    if (misses.length === 0) return;
    const owners = new Map<string, Fragment>();
    for (const fragment of misses) this.claim(fragment, nested, owners);
    await Promise.all(misses.map((fragment) => (fragment.state.is === 'renders' ? this.render(fragment) : undefined)));
  }

  /**
   * Decides who renders a miss: this pass, an earlier fragment of its level, or a concurrent
   * render. Only fragments of one level are shared, as one can never hold another (a fragment nested
   * in itself renders both, as Django does). Only outermost fragments are shared with other renders:
   * a render that waited for another inside a fragment it renders itself could wait in a circle (two
   * pages nesting two fragments in opposite orders), so a nested miss is always rendered by the
   * render that found it.
   */
  private claim(fragment: Fragment, nested: boolean, owners: Map<string, Fragment>): void {
    if (!fragment.cached) {
      // `if=` false: rendered here, every time, and never shared or stored.
      fragment.lead(undefined);
      this.rendered.push(fragment);
      return;
    }
    countsOf(fragment.name).misses++;
    const ownKey = `${fragment.cache.alias}\u0000${fragment.key}`;
    const earlier = owners.get(ownKey);
    if (earlier !== undefined) {
      fragment.state = { is: 'same', as: earlier };
      return;
    }
    if (nested) fragment.lead(undefined);
    else {
      const { flights } = cacheForFragments(fragment.cache);
      const generation = this.writeBack.generationOf(fragment.cache);
      const theirs = flights.find<Rendered>('fragment', fragment.key, generation);
      if (theirs !== undefined && theirs.leader !== this.recording) {
        fragment.waitFor(theirs, (alone) => this.recording.renderAlone(alone));
        return;
      }
      fragment.lead(flights.lead<Rendered>('fragment', fragment.key, this.recording, generation));
    }
    owners.set(ownKey, fragment);
    this.rendered.push(fragment);
  }

  /** Renders a miss's body; with `lock`, only once the lock is taken, or takes the holder's HTML once it is stored. */
  private async render(fragment: Fragment): Promise<void> {
    if (fragment.lock && (await this.foundUnderLock(fragment))) return;
    try {
      const body = String(await fragment.runBody());
      if (fragment.state.is === 'renders') fragment.state.body = body;
    } catch (error) {
      throw atTag(error, fragment.site, fragment.name, true);
    }
  }

  /**
   * `lock=true`: takes the fragment's lock across processes, or waits for its holder to store the
   * fragment; answers true when the stored fragment came (a hit now, not written back), false when
   * this pass renders it (lock taken, or waited long enough).
   */
  private async foundUnderLock(fragment: Fragment): Promise<boolean> {
    const outcome = await lockOrWait(fragment.cache, `fragment:${fragment.key}`, LOCK_WAIT_MS, () => storedCopy(fragment.cache, fragment.key));
    if (outcome.is === 'held') (this.releases ??= []).push(outcome.release);
    if (outcome.is !== 'found') return false;
    this.rendered.splice(this.rendered.indexOf(fragment), 1);
    fragment.found(counted(fragment, outcome.value));
    // Found stored already: nothing of this pass to wait for.
    fragment.settle('known');
    fragment.leaveFlight();
    return true;
  }

  /** The fragment's HTML, or a promise of it once the fragments inside it are placed. */
  private resultOf(fragment: Fragment): string | Promise<string> {
    const { state } = fragment.owner;
    switch (state.is) {
      case 'hit':
      case 'rendered':
        return state.html;
      case 'waits':
        return state.result;
      case 'renders':
        return (state.result ??= this.place(fragment.owner, state.body!));
      default:
        throw new Error(`fragment '${fragment.name}' was placed before it was read`);
    }
  }

  /** Places the fragments inside a rendered body: the fragment is rendered, with its HTML and record. */
  private async place(fragment: Fragment, body: string): Promise<string> {
    const cacheability = fragment.ownRecord();
    const html = await this.substitute(body, cacheability);
    fragment.state = { is: 'rendered', html, cacheability, variant: fragment.variantOf(cacheability) };
    fragment.settle('known');
    return html;
  }
}

/** A fragment found in the cache, counted as a hit (or stale hit) of its name. */
function counted(fragment: Fragment, hit: Hit): Hit {
  const counts = countsOf(fragment.name);
  if (hit.stale) counts.staleHits++;
  else counts.hits++;
  return hit;
}

/**
 * The fragment as its lock's holder stored it, for a render waiting on that lock; undefined while
 * there is none. Only a fresh copy counts: a refresh takes the lock over its own stale one.
 */
async function storedCopy(cache: BaseCache, key: string): Promise<Hit | undefined> {
  const { entries } = await cache.readEntriesAndTags<unknown>([key], [], false);
  const entry = entries.get(key);
  return entry === undefined || entry.state !== 'fresh' || isRedirect(entry.value) ? undefined : hitOf(entry);
}

/** Points a fragment at its variant, its error located at its tag. */
function redirectTo(fragment: Fragment, contexts: readonly string[]): void {
  try {
    fragment.redirect(contexts);
  } catch (error) {
    throw atTag(error, fragment.site, fragment.name, false);
  }
}

/** A fragment as its entry was read, its holes' placeholders live in this process. */
function hitOf(entry: RenderEntry<unknown>): Hit {
  return {
    is: 'hit',
    html: unsealHoles(String(entry.value)),
    tags: entry.tags,
    contexts: entry.contexts,
    freshUntil: entry.freshUntil,
    stale: entry.state === 'stale',
  };
}
