/**
 * One render's fragments. Each `cache` tag records its fragment and leaves a placeholder; `finish`
 * reads every key of the render in one round trip per cache, renders only the misses (tags inside
 * them form the next level, read the same way), writes them back, and puts the HTML in place (see
 * `Pass`). A fragment's cacheability holds its own tags and those of every fragment inside it, and
 * the page gets them all. A stale fragment is served as it is and rendered again behind the page.
 * Surprise: bodies run after the engine's pass, so an adapter must hand over a body that still sees
 * the variables of the moment its tag ran.
 */
import type { BaseCache } from '../cache/base-cache.js';
import { cacheForFragments } from './cache-for-fragments.js';
import { Cacheability } from '../cacheability/record.js';
import { currentScope } from '../cacheability/request-scope.js';
import { groupBy } from '../keys/group.js';
import {
  atTag,
  fragmentCache,
  fragmentCondition,
  fragmentContexts,
  fragmentLock,
  fragmentStale,
  fragmentTags,
  fragmentTimeout,
  type FragmentTag,
  type TagKeywords,
  type TagSite,
  tagSiteOf,
  TemplateSyntaxError,
} from './arguments.js';
import { Fragment, type RenderBody } from './fragment.js';
import { fragmentKeyInContexts, type KeyNode, type KeyRoot, nameNode, nodeAfter } from './fragment-keys.js';
import { RenderKeys } from './render-keys.js';
import type { TemplateDigests } from '../digests/engine-digests.js';
import { Pass, type Recording } from './pass.js';
import { placeholder, takeUncacheableMarks, uncacheableMarksMade } from './placeholders.js';
import { foldContexts } from '../cacheability/contexts.js';
import { FragmentVariants, isRedirect } from './variants.js';
import { countInlineHit } from './stats.js';
import { deliverRenderedHoles, holeArguments, holeNamed, livePlaceholder, outsideRequest, unsealHoles } from '../holes/index.js';
import { copyWith } from '../store/copies.js';

export type { RenderBody } from './fragment.js';

/**
 * A copy of a render's data (`undefined`: none) with one more property, which carries the render's
 * fragment state to the tags. Not `{ ...data, [name]: render }`: V8 builds a spread with a computed
 * key by its slow path, and this runs for every render and every template it includes.
 */
export function withRenderState(data: object | null | undefined, name: string, state: unknown): Record<string, unknown> {
  // Object.assign would set the copy's prototype from an own `__proto__` (JSON.parse makes one).
  const copy: Record<string, unknown> =
    data != null && Object.hasOwn(data, '__proto__') ? { ...data } : Object.assign<Record<string, unknown>, unknown>({}, data);
  copy[name] = state;
  return copy;
}

/** Whether a tag's timeout is one `keptHitVaryingOn*` may take as it is: an integer or null (anything else goes to `tag`, which checks it). */
function plainTimeout(timeout: unknown): boolean {
  return timeout === null || (typeof timeout === 'number' && Number.isSafeInteger(timeout));
}

function sameTags(tags: readonly string[], others: readonly string[] | undefined): boolean {
  if (others === undefined || others.length !== tags.length) return false;
  for (let i = 0; i < tags.length; i++) if (tags[i] !== others[i]) return false;
  return true;
}

/** The key as `cache` stores it. */
const storedIn = (cache: BaseCache, key: string): string => cacheForFragments(cache).storedKey(key);

/** What a hit answered while the engine rendered tells of what it depends on. */
interface HitCacheability {
  readonly tags: readonly string[];
  readonly contexts: readonly string[];
  readonly freshUntil: number | undefined;
}

export class FragmentRender implements Recording {
  /** Every fragment recorded, by number. */
  readonly fragments: Fragment[] = [];
  /** Fragments recorded and not yet read: the next level of the pass under way. */
  private pending: Fragment[] = [];
  /**
   * What the page depends on of the hits answered while the engine rendered (their tags), and of
   * every fragment placed after it; it goes to the request's scope when the render finishes.
   */
  private cacheability?: Cacheability;
  /** The request this render runs for, if it runs in one: what its hits depend on goes there, and nowhere else. */
  private readonly scope = currentScope();
  /** How many `uncacheable()` marks had been made when this render began: its output holds one only if more have been since. */
  private readonly marksBefore = uncacheableMarksMade();
  /**
   * Whether a fresh hit this process holds (a store in process, an L1 holding it) is answered while
   * the engine renders the page; not once the engine's pass is over (tags met then are inside bodies
   * of misses, which are read with their level).
   */
  private inline = true;
  /** The cache of tags without `using=`, looked up once per render (every hit asks for it). */
  private defaultCache?: BaseCache;
  /** The cache the last `using=` named, by the value it was given. */
  private lastUsing?: { alias: unknown; cache: BaseCache };
  /** The tags the last inline hit passed on to the page: the fragments of a loop mostly carry the same. */
  private lastPassedOn?: readonly string[];
  /** The cache whose clock was read for this pass, and the reading. */
  private clockOf?: BaseCache;
  private clockReading = 0;
  /** The last pass of this render's own after the page's (see `passAlone`). */
  private refreshQueue?: Promise<unknown>;
  /** Whether a hole's placeholder went into the output while the engine rendered: placed by a tag, or in a hit answered then. */
  private holesSeen = false;
  /** The fragment memos of the caches its tags use. */
  private readonly keys: RenderKeys;

  /** `digests`: the template digests of the engine instance rendering, when its installer was given `digests: true`. */
  constructor(digests?: TemplateDigests) {
    this.keys = new RenderKeys(digests);
  }

  /** Takes the template digests a tag's engine instance keeps, for a render started without them. */
  useDigests(digests: TemplateDigests): void {
    this.keys.useDigests(digests);
  }

  /**
   * Answers a fragment's HTML when it is a fresh hit this process holds (and the engine is still on
   * the page itself, outside any fragment's body); else records the fragment and answers its
   * placeholder. `bodyOf` makes the body to render later (called only when it may be needed, as it
   * copies the variables in scope).
   */
  tag(call: FragmentTag, bodyOf: () => RenderBody): string {
    const { name, varyOn, keywords, digest } = call;
    let fragment: Fragment;
    try {
      const ownContexts = fragmentContexts(keywords.contexts);
      const cached = fragmentCondition(keywords.if);
      const cache = keywords.using === undefined ? (this.defaultCache ??= fragmentCache(undefined)) : this.cacheNamed(keywords.using);
      const keys = this.keys.of(cache);
      const root = this.keys.rootFor(cache, digest, call.template);
      // How its variants' keys are made, made only when asked for: most fragments vary on no context.
      let variants: FragmentVariants | undefined;
      const key =
        ownContexts.length === 0
          ? keys.key(name, varyOn, root)
          : fragmentKeyInContexts(name, varyOn, (variants = this.variantsOf(name, varyOn, root)).valuesOf(ownContexts), root.digest);
      const timeout = fragmentTimeout(call.timeout);
      const ownTags = fragmentTags(keywords.tags);
      const staleWindow = fragmentStale(keywords.stale);
      const lock = fragmentLock(keywords.lock);
      let redirect: readonly string[] | undefined;
      if (this.inline && cached) {
        const html = this.heldHtml(key, cache, name);
        if (html !== undefined) return html;
        // The integration of the cache `keys.of` was last asked for: this tag's.
        const integration = this.keys.integration!;
        let hit = integration.peekFreshToKeep(keys.stored(key, cache));
        // Its own key names the contexts its variants are keyed by: the variant is held too, or read with the level.
        if (hit !== undefined && !('entry' in hit) && isRedirect(hit.value)) {
          redirect = hit.value.cachegrainContexts;
          hit = integration.peekFreshToKeep(
            storedIn(cache, (variants ??= this.variantsOf(name, varyOn, root)).keyIn(foldContexts([...ownContexts, ...redirect]))),
          );
        }
        if (hit !== undefined && ('entry' in hit || !isRedirect(hit.value))) {
          countInlineHit(name);
          const now = this.clockOf === cache ? this.clockReading : this.readClock(cache);
          const stored = typeof hit.value === 'string' ? hit.value : String(hit.value);
          // Kept as this process uses it: its holes' placeholders live, found once, not on each hit.
          const html = unsealHoles(stored);
          const holes = html !== stored;
          if (holes) this.holesSeen = true;
          if ('entry' in hit) {
            if (redirect === undefined) {
              key.held = holes ? copyWith(hit, { value: html }) : hit;
              key.heldHoles = holes;
            }
            this.passOn(hit, now);
          } else this.passOn({ tags: hit.tags, contexts: [], freshUntil: timeout === null ? undefined : now + timeout }, now);
          return html;
        }
      }
      variants ??= this.variantsOf(name, varyOn, root);
      const site = tagSiteOf(call);
      const baseKey = key.key;
      fragment = new Fragment(this.fragments.length, { name, baseKey, variants, cache, timeout, ownTags, ownContexts, staleWindow, lock, site, cached });
      if (redirect !== undefined) fragment.redirect(redirect);
    } catch (error) {
      throw atTag(error, tagSiteOf(call), name, false);
    }
    fragment.useBody(bodyOf());
    this.fragments.push(fragment);
    this.pending.push(fragment);
    return placeholder(fragment.id);
  }

  /** How the keys of a fragment's variants are made in this render's request. */
  private variantsOf(name: string, varyOn: readonly unknown[], root: KeyRoot): FragmentVariants {
    return new FragmentVariants(name, varyOn, this.scope?.request, root.digest);
  }

  /**
   * A hole's placeholder, which the page cache (or, with none, this render once it finishes) replaces
   * by the hole's HTML for the request. `name` must name a defined hole and `args` be scalars: they
   * are stored with the fragments and the page around it. `site` goes into the message of its errors.
   */
  hole(name: unknown, args: readonly unknown[], site?: TagSite): string {
    const hole = holeNamed(name, site);
    const checked = holeArguments(hole.name, args, site);
    if (this.scope?.request === undefined) throw outsideRequest(hole.name, site);
    this.holesSeen = true;
    return livePlaceholder(hole.name, checked);
  }

  /**
   * For an engine that compiles the tag into code (`keptHitVaryingOn0`…`keptHitVaryingOn3` with no to
   * three vary-on values, `keptHitVaryingOnMany` with more): the fragment's HTML when an earlier hit
   * of the same key kept it and it still stands, answered without building anything; undefined sends
   * the adapter to `tag`, which does everything else. `keywords`, when the tag has any, are evaluated
   * as for `tag`: `using` picks the cache; the others matter only on a miss, where `tag` checks them
   * (a hit answers by the tags and stale window its entry was stored with). `digest`, the tag's
   * template digest key, finds a hit only once a miss of that template computed its digest: a hit
   * computes none.
   */
  keptHitVaryingOn0(timeout: unknown, name: string, keywords?: TagKeywords, digest?: string): string | undefined {
    const cache = this.hitCache(timeout, keywords);
    return cache === undefined ? undefined : this.heldHtml(nameNode(name, this.keys.held(cache, digest)), cache, name);
  }

  keptHitVaryingOn1(timeout: unknown, name: string, a: unknown, keywords?: TagKeywords, digest?: string): string | undefined {
    const cache = this.hitCache(timeout, keywords);
    return cache === undefined ? undefined : this.heldHtml(nodeAfter(nameNode(name, this.keys.held(cache, digest)), a), cache, name);
  }

  keptHitVaryingOn2(timeout: unknown, name: string, a: unknown, b: unknown, keywords?: TagKeywords, digest?: string): string | undefined {
    const cache = this.hitCache(timeout, keywords);
    return cache === undefined ? undefined : this.heldHtml(nodeAfter(nodeAfter(nameNode(name, this.keys.held(cache, digest)), a), b), cache, name);
  }

  keptHitVaryingOn3(timeout: unknown, name: string, a: unknown, b: unknown, c: unknown, keywords?: TagKeywords, digest?: string): string | undefined {
    const cache = this.hitCache(timeout, keywords);
    if (cache === undefined) return undefined;
    return this.heldHtml(nodeAfter(nodeAfter(nodeAfter(nameNode(name, this.keys.held(cache, digest)), a), b), c), cache, name);
  }

  keptHitVaryingOnMany(timeout: unknown, name: string, varyOn: readonly unknown[], keywords?: TagKeywords, digest?: string): string | undefined {
    const cache = this.hitCache(timeout, keywords);
    if (cache === undefined) return undefined;
    let node = nameNode(name, this.keys.held(cache, digest));
    for (let i = 0; i < varyOn.length; i++) node = nodeAfter(node, varyOn[i]);
    return this.heldHtml(node, cache, name);
  }

  /**
   * The cache a `keptHitVaryingOn*` call answers from: undefined when a kept hit cannot be taken (the
   * engine is past the page, or the timeout or `using` is one `tag` must report, naming the tag's
   * site).
   */
  private hitCache(timeout: unknown, keywords: TagKeywords | undefined): BaseCache | undefined {
    if (!this.inline || !plainTimeout(timeout)) return undefined;
    return keywords === undefined ? this.fragmentsCache() : this.keywordsCache(keywords);
  }

  /** The cache a tag with keywords answers a `keptHitVaryingOn*` call from (kept apart: every hit inlines `hitCache`). */
  private keywordsCache(keywords: TagKeywords): BaseCache | undefined {
    // A tag with contexts is keyed by the request too, and one with `if=` may not be cached: `tag` decides.
    if (keywords.contexts !== undefined || keywords.if !== undefined) return undefined;
    if (keywords.using === undefined) return this.fragmentsCache();
    try {
      return this.cacheNamed(keywords.using);
    } catch {
      return undefined;
    }
  }

  /** The cache a tag's `using=` names, looked up once per render while the tags name the same one. */
  private cacheNamed(using: unknown): BaseCache {
    const last = this.lastUsing;
    if (last !== undefined && last.alias === using) return last.cache;
    const cache = fragmentCache(using);
    this.lastUsing = { alias: using, cache };
    return cache;
  }

  /** The cache of tags without `using=`; undefined when it cannot be had (`tag` then says why). */
  private fragmentsCache(): BaseCache | undefined {
    return this.defaultCache ?? this.lookUpFragmentsCache();
  }

  private lookUpFragmentsCache(): BaseCache | undefined {
    try {
      return (this.defaultCache = fragmentCache(undefined));
    } catch {
      return undefined;
    }
  }

  /** The HTML `node` kept from `cache`, counted, while it stands; undefined when there is none. */
  private heldHtml(node: KeyNode | undefined, cache: BaseCache, name: string): string | undefined {
    const held = node?.held;
    if (held === undefined || held.cache !== cache) return undefined;
    if (this.clockOf !== cache) this.readClock(cache);
    // Passed from its field, not a local: TurboFan boxes a local double afresh for each call it is passed to.
    const html = held.keeper.answerAgain(held, this.clockReading);
    if (html === undefined) {
      node!.held = undefined;
      return undefined;
    }
    countInlineHit(name);
    // What is left to note is noted out of line: a render outside any request, of a hit with no
    // hole, has nothing to note, and the smaller this path the more of it each hit inlines.
    if (this.scope !== undefined || node!.heldHoles === true) this.noteHeldHit(node!, held, this.clockReading);
    return html;
  }

  private noteHeldHit(node: KeyNode, held: NonNullable<KeyNode['held']>, now: number): void {
    if (node.heldHoles === true) this.holesSeen = true;
    this.passOn(held, now);
  }

  /** Reads `cache`'s clock once for this pass, kept in `clockReading`: a page is rendered at one moment. */
  private readClock(cache: BaseCache): number {
    this.clockOf = cache;
    return (this.clockReading = cache.now());
  }

  /** What a hit emitted while the engine rendered depends on: its tags, contexts and what is left of its lifetime go to the page. */
  private passOn(hit: HitCacheability, now: number): void {
    // Outside a request nothing reads it: a render on its own keeps no record of its hits. Kept
    // apart from the recording so that this check, made for every hit, is inlined where it is made.
    if (this.scope !== undefined) this.recordHit(hit, now);
  }

  private recordHit(hit: HitCacheability, now: number): void {
    const { tags, contexts, freshUntil } = hit;
    if (tags.length > 0 && !sameTags(tags, this.lastPassedOn)) {
      this.lastPassedOn = tags;
      (this.cacheability ??= new Cacheability()).addTags(tags);
    }
    if (contexts.length > 0) (this.cacheability ??= new Cacheability()).addContexts(contexts);
    // A fresh hit has time left, if less than a second by this clock.
    if (freshUntil !== undefined && freshUntil - now < (this.cacheability?.maxAge ?? Infinity)) {
      (this.cacheability ??= new Cacheability()).limitMaxAge(Math.max(freshUntil - now, 1));
    }
  }

  /**
   * Renders a fragment in a pass of its own, after the passes before it: one that waited for another
   * render of its key and got another variant's HTML. Answers its HTML.
   */
  renderAlone(fragment: Fragment): Promise<string> {
    return this.passAlone([fragment]).then(() => fragment.html);
  }

  /**
   * The page with every placeholder replaced by its fragment's HTML, misses written back, and its
   * holes filled unless a page cache delivers them; answered at once when every fragment was a hit
   * answered while the engine rendered and the page holds no hole.
   */
  finish(output: string): string | Promise<string> {
    this.inline = false;
    if (this.fragments.length > 0) return this.finishDeferred(output);
    // Every tag answered in memory, and nothing marked, placed or recorded: the output is the page.
    if (this.cacheability === undefined && !this.holesSeen && !this.marksMade()) return output;
    return this.finishAnswered(output);
  }

  marksMade(): boolean {
    return uncacheableMarksMade() !== this.marksBefore;
  }

  /** The page of a render whose tags were all answered in memory, once its marks, record and holes are seen to. */
  private finishAnswered(output: string): string | Promise<string> {
    const page = this.marksMade() ? takeUncacheableMarks(output, () => (this.cacheability ??= new Cacheability())) : output;
    if (this.cacheability !== undefined) this.scope?.cacheability.merge(this.cacheability);
    return this.holesSeen ? deliverRenderedHoles(page, this.scope) : page;
  }

  /** The fragments recorded since the last call: the next level of the pass under way. */
  takePending(): Fragment[] {
    const level = this.pending;
    this.pending = [];
    return level;
  }

  private async finishDeferred(output: string): Promise<string> {
    const cacheability = (this.cacheability ??= new Cacheability());
    const pass = new Pass(this);
    const page = await pass.run(false, () => pass.substitute(output, cacheability));
    this.checkPlaced();
    this.scope?.cacheability.merge(cacheability);
    const stale = this.fragments.filter((fragment) => fragment.state.is === 'hit' && fragment.state.stale);
    // Its stale fragments are rendered again behind the page; else nothing reads its fragments again.
    if (stale.length > 0) this.refreshBehind(stale);
    else {
      for (const fragment of this.fragments) fragment.retire();
      this.fragments.length = 0;
    }
    return deliverRenderedHoles(page, this.scope);
  }

  /**
   * Renders stale fragments again behind the page that served them: once per key in this process
   * and once across processes (a lock each), in one pass per cache for those whose lock this
   * process took. A failure keeps the stale fragments and is reported on their cache, for each.
   */
  private refreshBehind(stale: Fragment[]): void {
    for (const [cache, group] of groupBy(stale, (fragment) => fragment.cache)) {
      // The first fragment of each key, and none that a refresh in this process renders already.
      const byKey = new Map<string, { key: string; lockName: string; fragment: Fragment }>();
      for (const fragment of group) {
        const key = `fragment\u0000${fragment.key}`;
        if (!byKey.has(key) && !cacheForFragments(cache).refreshes.has(key)) byKey.set(key, { key, lockName: `fragment-refresh:${fragment.key}`, fragment });
      }
      const mine = [...byKey.values()];
      cacheForFragments(cache).refreshes.behind(
        mine,
        (locked) => this.passAlone(locked.map(({ fragment }) => fragment)),
        (failure) => {
          for (const { fragment } of mine) {
            cache.reportError(new Error(`refreshing stale fragment '${fragment.name}' failed: ${failure.message}`, { cause: failure }));
          }
        },
      );
    }
  }

  /**
   * Renders fragments (stale ones again, or one that waited in vain) in a pass of their own, once any
   * such pass of this render before it is done: two passes at once would share the render's
   * fragments recorded and not yet read.
   */
  private passAlone(fragments: Fragment[]): Promise<void> {
    const done = (this.refreshQueue ?? Promise.resolve()).then(async () => void (await new Pass(this).run(true, () => '', fragments)));
    this.refreshQueue = done.catch(() => undefined);
    return done;
  }

  /** Fails, naming the fragment, when code around a tag changed or dropped its placeholder. */
  private checkPlaced(): void {
    const culprit = this.fragments.find((fragment) => !fragment.placed);
    if (culprit === undefined) return;
    throw new TemplateSyntaxError(
      `"cache" tag '${culprit.name}' is inside template code that changed or dropped its output ` +
        `(a filter or helper that transforms its block's text): move the cache tag outside that block`,
      culprit.name,
      culprit.site,
    );
  }
}
