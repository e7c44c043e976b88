/**
 * One render's fragments. Each `cache` tag records its fragment and leaves a
 * placeholder; `finish` reads every key of the render in one round trip per cache, renders only the
 * misses (tags inside them form the next level, read the same way), writes them back, and puts the
 * HTML in place. A fragment carries its own tags and those of every fragment inside it, and the page
 * gets them all. A stale fragment is served as it is and rendered again behind the page. Surprise:
 * bodies run after the engine's pass, so an adapter must hand over a body that still sees the
 * variables of the moment its tag ran.
 */
import { randomBytes } from 'node:crypto';
import type { BaseCache } from '../core/base.js';
import { groupBy } from '../core/group.js';
import { currentScope } from '../cacheability/scope.js';
import {
  atTag,
  fragmentCache,
  fragmentLock,
  fragmentStale,
  fragmentTags,
  fragmentTimeout,
  type TagKeywords,
  type TagSite,
  TemplateSyntaxError,
} from './arguments.js';
import { fragmentKey, type KeyNode, nameNode, nodeAfter, storedFragmentKey } from './key.js';
import { CountsByName, type HitCounts } from '../core/observe.js';

/** Renders a fragment's body: its output, which may hold placeholders of fragments nested in it. */

/** Hits, stale hits and misses by fragment name, since start or `resetFragmentStats()`. */
const countsByName = new CountsByName();

/** Hits, stale hits and misses of every fragment name since start or `resetFragmentStats()`, in every cache. */
export function fragmentStats(): Map<string, HitCounts> {
  return countsByName.snapshot();
}

export function resetFragmentStats(): void {
  countsByName.reset();
}

export type RenderBody = () => unknown;

/** The counts of the last fragment name hit inline (until a reset): a loop's hits of one name look it up once. */
let lastCountedName: string | undefined;
let lastCounts: HitCounts | undefined;
let lastCountsGeneration = -1;

/** Counts an inline hit in `fragmentStats()`. */
function countInlineHit(name: string): void {
  if (lastCountedName !== name || lastCountsGeneration !== countsByName.generation) {
    lastCountedName = name;
    lastCounts = countsByName.of(name);
    lastCountsGeneration = countsByName.generation;
  }
  lastCounts!.hits++;
}

/**
 * A copy of a render's data (`undefined`: none) with one more property, which carries the render's
 * fragment state to the tags. Not `{ ...data, [name]: render }`: V8 builds that literal by its slow
 * path, which cost a page of twenty fragment hits a tenth of its time.
 */
export function withRenderState(data: object | null | undefined, name: string, state: unknown): Record<string, unknown> {
  // Object.assign would set the copy's prototype from an own `__proto__` (JSON.parse makes one).
  const copy: Record<string, unknown> =
    data != null && Object.hasOwn(data, '__proto__') ? { ...data } : Object.assign<Record<string, unknown>, unknown>({}, data);
  copy[name] = state;
  return copy;
}

// One marker per process, so that no text from a template or a store can forge a placeholder. It
// holds lowercase letters: a transform that changes the case of its block's text breaks it visibly.
const NONCE = randomBytes(6).toString('hex');
const OPEN = `\u0002cgf${NONCE}:`;
const CLOSE = '\u0003';
const DIGITS = /^\d+$/;

/** The body of a fragment answered at once, which never renders. */
const NOT_YET: RenderBody = () => {
  throw new Error('a fragment answered from the cache has no body to render');
};

/** Whether a tag's timeout is one `hit*` may take as it is: an integer or null (anything else goes to `tag`, which checks it). */
function plainTimeout(timeout: unknown): boolean {
  return timeout === null || (typeof timeout === 'number' && Number.isSafeInteger(timeout));
}

function sameTags(tags: readonly string[], others: readonly string[] | undefined): boolean {
  if (others === undefined || others.length !== tags.length) return false;
  for (let i = 0; i < tags.length; i++) if (tags[i] !== others[i]) return false;
  return true;
}

/** How long a `lock=true` render holds its lock at most, and how long the others wait for it. */
const LOCK_SECONDS = 30;
const LOCK_WAIT_MS = 5000;
const LOCK_POLL_MS = 25;
/** How long a refresh of a stale fragment holds the refresh lock at most (it is released when done). */
const REFRESH_LOCK_SECONDS = 30;

/** What went into a piece of HTML: the tags of its fragments, and whether one was stale. */
interface Contents {
  tags: Set<string>;
  stale: boolean;
}

/** A rendered fragment as another render waiting for it receives it. */
interface Rendered {
  html: string;
  tags: readonly string[];
}

/** An outermost fragment one render is rendering, which concurrent renders in this process wait for. */
class Flight {
  readonly done: Promise<Rendered>;
  resolve!: (rendered: Rendered) => void;
  reject!: (error: unknown) => void;

  constructor() {
    this.done = new Promise<Rendered>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.done.catch(() => undefined); // the render that fails reports it; waiters see it on await
  }
}

/** The flights of this process, per cache and key. */
class Flights {
  private readonly byCache = new WeakMap<BaseCache, Map<string, Flight>>();

  find(cache: BaseCache, key: string): Flight | undefined {
    return this.byCache.get(cache)?.get(key);
  }

  open(cache: BaseCache, key: string): Flight {
    let flights = this.byCache.get(cache);
    if (flights === undefined) this.byCache.set(cache, (flights = new Map()));
    const flight = new Flight();
    flights.set(key, flight);
    return flight;
  }

  close(cache: BaseCache, key: string, flight: Flight): void {
    const flights = this.byCache.get(cache);
    if (flights?.get(key) === flight) flights.delete(key);
  }
}

const flights = new Flights();
/** Stale fragments being rendered again in this process, by cache alias and key: one refresh each. */
const refreshing = new Set<string>();

/**
 * Where a fragment stands. `unread`: recorded, its key not read yet. `hit`: found in the cache (stale
 * ones are served and rendered again behind the page). `renders`: a miss this render renders. `same`:
 * a miss another fragment of this render renders. `waits`: a miss another render in this process renders.
 */
type FragmentState =
  | { is: 'unread' }
  | { is: 'hit'; stale: boolean }
  | { is: 'renders'; flight?: Flight; body?: string; result?: Promise<string>; release?: () => Promise<void> }
  | { is: 'same'; as: Fragment }
  | { is: 'waits'; result: Promise<string> };

interface Fragment {
  id: number;
  name: string;
  key: string;
  cache: BaseCache;
  timeout: number | null;
  /** Its own tags, from `tags=`. */
  ownTags: readonly string[];
  /** Seconds it is served stale past its timeout while it is rendered again (`stale=`). */
  stale: number;
  /** Whether a cold miss is rendered once across processes (`lock=true`). */
  lock: boolean;
  renderBody: RenderBody;
  /** Where its tag stands, for error messages. */
  site?: TagSite;
  state: FragmentState;
  /** The final HTML, once known. */
  html?: string;
  /** Its own tags and those of every fragment inside it, once known. */
  tags?: readonly string[];
  /** Whether a stale fragment went into its HTML: it is then not written back (it would keep that copy). */
  staleInside?: boolean;
  placed: boolean;
}

export class FragmentRender {
  private readonly fragments: Fragment[] = [];
  private pending: Fragment[] = [];
  /** The misses this render renders in the current pass (the page, or a refresh behind it). */
  private rendered!: Fragment[];
  /** Every tag version read in the current pass, first read kept: what its writes are stamped with. */
  private versions!: Map<BaseCache, Map<string, string | undefined>>;

  /**
   * Whether a fresh hit that this process can answer at once (locmem, an L1 holding it) is emitted
   * while the engine renders the page, rather than read with the others when it is done. Off, every
   * fragment takes the deferred path (for comparison: the output is the same).
   */
  static inlineHits = true;

  /** Tags of the hits emitted while the engine rendered: they go to the page. */
  private inlineTags?: Set<string>;
  /** Whether hits are emitted at once: not once the engine's pass is over (tags met then are inside bodies of misses). */
  private inline = FragmentRender.inlineHits;
  /** The cache of tags without `using=`, looked up once per render (every hit asks for it). */
  private defaultCache?: BaseCache;
  /** The cache the last `using=` named, by the value it was given. */
  private lastUsing?: { alias: unknown; cache: BaseCache };
  /** The tags the last inline hit passed on to the page: the fragments of a loop mostly carry the same. */
  private lastPassedOn?: readonly string[];
  /** The cache whose clock was read for this pass, and the reading. */
  private clockOf?: BaseCache;
  private clockReading = 0;

  /**
   * Answers a fragment's HTML when it is a fresh hit this process holds (and the engine is still on
   * the page itself, outside any fragment's body); else records the fragment and answers its
   * placeholder. `timeout`, `varyOn` and `keywords` (`using`, `tags`, `stale`, `lock`; absent ones
   * undefined) are the tag's evaluated arguments; `name` is the literal fragment name; `bodyOf`
   * makes the body to render later (called only when it may be needed, as it copies the variables
   * in scope); `site`, when the adapter knows it, goes into the message of every error of this tag
   * and its body.
   */
  tag(timeout: unknown, name: string, varyOn: readonly unknown[], keywords: TagKeywords, bodyOf: () => RenderBody, site?: TagSite): string {
    let fragment: Fragment;
    try {
      const key = fragmentKey(name, varyOn);
      const cache = keywords.using === undefined ? (this.defaultCache ??= fragmentCache(undefined)) : this.cacheNamed(keywords.using);
      const seconds = fragmentTimeout(timeout);
      const ownTags = fragmentTags(keywords.tags);
      const stale = fragmentStale(keywords.stale);
      const lock = fragmentLock(keywords.lock);
      if (this.inline) {
        const html = this.heldHtml(key, cache, name);
        if (html !== undefined) return html;
        const hit = cache.holdFresh(storedFragmentKey(key, cache));
        if (hit !== undefined) {
          countInlineHit(name);
          if ('entry' in hit) key.held = hit;
          this.passOn(hit.tags);
          return typeof hit.value === 'string' ? hit.value : String(hit.value);
        }
      }
      fragment = {
        id: this.fragments.length,
        name,
        key: key.key,
        cache,
        timeout: seconds,
        ownTags,
        stale,
        lock,
        renderBody: NOT_YET,
        site,
        state: { is: 'unread' },
        placed: false,
      };
    } catch (error) {
      throw atTag(error, site, name, false);
    }
    fragment.renderBody = bodyOf();
    this.fragments.push(fragment);
    this.pending.push(fragment);
    return OPEN + fragment.id + CLOSE;
  }

  /**
   * For an engine that compiles the tag into code (`hit1`…`hit3` with one to three vary-on values,
   * `hitMany` with more): the fragment's HTML when an earlier hit of the same key kept it and it
   * still stands, answered without building anything; undefined sends the adapter to `tag`, which
   * does everything else. `keywords`, when the tag has any, are evaluated as for `tag`: `using`
   * picks the cache; the others matter only on a miss, where `tag` checks them (a hit answers by
   * the tags and stale window its entry was stored with).
   */
  hit0(timeout: unknown, name: string, keywords?: TagKeywords): string | undefined {
    const cache = this.hitCache(timeout, keywords);
    return cache === undefined ? undefined : this.heldHtml(nameNode(name), cache, name);
  }

  hit1(timeout: unknown, name: string, a: unknown, keywords?: TagKeywords): string | undefined {
    const cache = this.hitCache(timeout, keywords);
    return cache === undefined ? undefined : this.heldHtml(nodeAfter(nameNode(name), a), cache, name);
  }

  hit2(timeout: unknown, name: string, a: unknown, b: unknown, keywords?: TagKeywords): string | undefined {
    const cache = this.hitCache(timeout, keywords);
    return cache === undefined ? undefined : this.heldHtml(nodeAfter(nodeAfter(nameNode(name), a), b), cache, name);
  }

  hit3(timeout: unknown, name: string, a: unknown, b: unknown, c: unknown, keywords?: TagKeywords): string | undefined {
    const cache = this.hitCache(timeout, keywords);
    return cache === undefined ? undefined : this.heldHtml(nodeAfter(nodeAfter(nodeAfter(nameNode(name), a), b), c), cache, name);
  }

  hitMany(timeout: unknown, name: string, varyOn: readonly unknown[], keywords?: TagKeywords): string | undefined {
    const cache = this.hitCache(timeout, keywords);
    if (cache === undefined) return undefined;
    let node = nameNode(name);
    for (let i = 0; i < varyOn.length; i++) node = nodeAfter(node, varyOn[i]);
    return this.heldHtml(node, cache, name);
  }

  /**
   * The cache a `hit*` call answers from: undefined when a kept hit cannot be taken (the engine is
   * past the page, or the timeout or `using` is one `tag` must report, naming the tag's site).
   */
  private hitCache(timeout: unknown, keywords: TagKeywords | undefined): BaseCache | undefined {
    if (!this.inline || !plainTimeout(timeout)) return undefined;
    if (keywords?.using === undefined) return this.fragmentsCache();
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
    if (this.defaultCache !== undefined) return this.defaultCache;
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
    // One reading of the cache's clock serves the whole pass: a page is rendered at one moment.
    if (this.clockOf !== cache) {
      this.clockOf = cache;
      this.clockReading = cache.now();
    }
    const html = cache.answerHeld(held, this.clockReading);
    if (html === undefined) {
      node!.held = undefined;
      return undefined;
    }
    countInlineHit(name);
    if (held.tags.length > 0) this.passOn(held.tags);
    return html;
  }

  /** Tags of a hit emitted while the engine rendered: they go to the page. */
  private passOn(tags: readonly string[]): void {
    if (tags.length === 0 || sameTags(tags, this.lastPassedOn)) return;
    this.lastPassedOn = tags;
    const into = (this.inlineTags ??= new Set());
    for (let i = 0; i < tags.length; i++) into.add(tags[i]!);
  }

  /**
   * The page with every placeholder replaced by its fragment's HTML, misses written back; answered
   * at once when every fragment was a hit emitted while the engine rendered.
   */
  finish(output: string): string | Promise<string> {
    this.inline = false;
    if (this.fragments.length === 0) {
      if (this.inlineTags !== undefined) currentScope()?.cacheability.addTags(this.inlineTags);
      return output;
    }
    return this.finishDeferred(output);
  }

  private async finishDeferred(output: string): Promise<string> {
    const contents: Contents = { tags: this.inlineTags ?? new Set(), stale: false };
    const page = await this.pass(false, () => this.substitute(output, contents));
    this.checkPlaced();
    const stale = this.fragments.filter((fragment) => fragment.state.is === 'hit' && fragment.state.stale);
    const scope = currentScope();
    if (scope !== undefined) {
      scope.cacheability.addTags(contents.tags);
      if (contents.stale) scope.cacheability.stale = true;
    }
    if (stale.length > 0) this.refreshBehind(stale);
    return page;
  }

  /**
   * Resolves the recorded fragments level by level, renders and writes back the misses, and answers
   * what `assemble` makes of them. The cross-render flights this pass leads are settled either way.
   */
  private async pass(nested: boolean, assemble: () => string | Promise<string>, again: Fragment[] = []): Promise<string> {
    this.rendered = [];
    this.versions = new Map();
    const rendered = this.rendered;
    try {
      if (again.length > 0) await this.renderAgain(again);
      for (let level = this.takePending(); level.length > 0; level = this.takePending(), nested = true) await this.resolveLevel(level, nested);
      const result = await assemble();
      await Promise.all(rendered.map((fragment) => this.resultOf(fragment)));
      await this.writeBack(rendered);
      return result;
    } catch (error) {
      for (const fragment of rendered) if (fragment.state.is === 'renders') fragment.state.flight?.reject(error);
      throw error;
    } finally {
      for (const fragment of rendered) {
        if (fragment.state.is !== 'renders') continue;
        if (fragment.state.flight !== undefined) flights.close(fragment.cache, fragment.key, fragment.state.flight);
        void fragment.state.release?.().catch(() => undefined);
      }
    }
  }

  /** Renders stale fragments again without reading them, their tags' versions read first. */
  private async renderAgain(fragments: Fragment[]): Promise<void> {
    await Promise.all(
      [...groupBy(fragments, (fragment) => fragment.cache)].map(async ([cache, group]) =>
        this.remember(cache, await cache.readTagSnapshot(group.flatMap((fragment) => fragment.ownTags))),
      ),
    );
    for (const fragment of fragments) {
      fragment.html = undefined;
      fragment.tags = undefined;
      fragment.state = { is: 'renders' };
      this.rendered.push(fragment);
    }
    await Promise.all(fragments.map((fragment) => this.render(fragment)));
  }

  private takePending(): Fragment[] {
    const level = this.pending;
    this.pending = [];
    return level;
  }

  /** Reads one level's keys and its own tags (one round trip per cache) and renders the bodies of its misses. */
  private async resolveLevel(level: Fragment[], nested: boolean): Promise<void> {
    const misses: Fragment[] = [];
    await Promise.all(
      [...groupBy(level, (fragment) => fragment.cache)].map(async ([cache, group]) => {
        const { entries, versions } = await cache.readEntriesAndTags<unknown>(
          group.map((fragment) => fragment.key),
          group.flatMap((fragment) => fragment.ownTags),
        );
        this.remember(cache, versions);
        for (const fragment of group) {
          const entry = entries.get(fragment.key);
          // Past its stale window but inside staleIfError: a template has no use for it, render it.
          if (entry === undefined || entry.state === 'error') misses.push(fragment);
          else this.becomeHit(fragment, String(entry.value), entry.tags, entry.state === 'stale');
        }
      }),
    );
    const owners = new Map<string, Fragment>();
    for (const fragment of misses) this.claim(fragment, nested, owners);
    await Promise.all(misses.map((fragment) => (fragment.state.is === 'renders' ? this.render(fragment) : undefined)));
  }

  private becomeHit(fragment: Fragment, html: string, tags: readonly string[], stale: boolean): void {
    fragment.state = { is: 'hit', stale };
    const counts = countsByName.of(fragment.name);
    if (stale) counts.staleHits++;
    else counts.hits++;
    fragment.html = html;
    fragment.tags = tags;
  }

  private remember(cache: BaseCache, versions: ReadonlyMap<string, string | undefined>): void {
    let known = this.versions.get(cache);
    if (known === undefined) this.versions.set(cache, (known = new Map()));
    for (const [tag, version] of versions) if (!known.has(tag)) known.set(tag, version);
  }

  /**
   * Decides who renders a miss: this render, an earlier fragment of its level, or a concurrent
   * render. Only fragments of one level are shared, as one can never hold another (a fragment nested
   * in itself renders both, as Django does). Only outermost fragments are shared with other renders:
   * a render that waited for another inside a fragment it renders itself could wait in a circle (two
   * pages nesting two fragments in opposite orders), so a nested miss is always rendered by the
   * render that found it.
   */
  private claim(fragment: Fragment, nested: boolean, owners: Map<string, Fragment>): void {
    countsByName.of(fragment.name).misses++;
    const ownKey = `${fragment.cache.alias}\u0000${fragment.key}`;
    const earlier = owners.get(ownKey);
    if (earlier !== undefined) {
      fragment.state = { is: 'same', as: earlier };
      return;
    }
    let flight: Flight | undefined;
    if (!nested) {
      const theirs = flights.find(fragment.cache, fragment.key);
      if (theirs !== undefined) {
        const result = theirs.done.then(({ html, tags }) => {
          fragment.html = html;
          fragment.tags = tags;
          return html;
        });
        result.catch(() => undefined); // awaited where it is placed; unplaced, it must not go unhandled
        fragment.state = { is: 'waits', result };
        return;
      }
      flight = flights.open(fragment.cache, fragment.key);
    }
    fragment.state = { is: 'renders', flight };
    owners.set(ownKey, fragment);
    this.rendered.push(fragment);
  }

  /** Renders a miss's body; with `lock`, only once the lock is taken, or with the holder's HTML once it is stored. */
  private async render(fragment: Fragment): Promise<void> {
    const state = fragment.state as Extract<FragmentState, { is: 'renders' }>;
    if (fragment.lock && (await this.waitForLockHolder(fragment, state))) return;
    try {
      state.body = String(await fragment.renderBody());
    } catch (error) {
      throw atTag(error, fragment.site, fragment.name, true);
    }
  }

  /**
   * `lock=true`: takes the fragment's lock across processes, or waits for its holder to store the
   * fragment; answers true when the stored fragment came (a hit now), false when this render renders
   * it (lock taken, let go without a fragment, or waited long enough).
   */
  private async waitForLockHolder(fragment: Fragment, state: Extract<FragmentState, { is: 'renders' }>): Promise<boolean> {
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      state.release = await fragment.cache.acquireLock(`fragment:${fragment.key}`, LOCK_SECONDS);
      if (state.release !== undefined || Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
      const { entries } = await fragment.cache.readEntriesAndTags<unknown>([fragment.key], []);
      const entry = entries.get(fragment.key);
      if (entry !== undefined && entry.state !== 'error') {
        this.rendered.splice(this.rendered.indexOf(fragment), 1);
        state.flight?.resolve({ html: String(entry.value), tags: entry.tags });
        if (state.flight !== undefined) flights.close(fragment.cache, fragment.key, state.flight);
        this.becomeHit(fragment, String(entry.value), entry.tags, false);
        return true;
      }
    }
  }

  private resultOf(fragment: Fragment): string | Promise<string> {
    if (fragment.html !== undefined) return fragment.html;
    const { state } = fragment;
    switch (state.is) {
      case 'same':
        return this.resultOf(state.as);
      case 'waits':
        return state.result;
      case 'renders':
        if (state.result === undefined) {
          const contents: Contents = { tags: new Set(fragment.ownTags), stale: false };
          state.result = Promise.resolve(this.substitute(state.body!, contents)).then((html) => {
            fragment.html = html;
            fragment.tags = [...contents.tags];
            fragment.staleInside = contents.stale;
            state.flight?.resolve({ html, tags: fragment.tags });
            return html;
          });
        }
        return state.result;
      default:
        throw new Error(`fragment '${fragment.name}' was placed before it was read`);
    }
  }

  private htmlOf(fragment: Fragment): string {
    return fragment.state.is === 'same' ? this.htmlOf(fragment.state.as) : (fragment.html ?? '');
  }

  private tagsOf(fragment: Fragment): readonly string[] {
    return fragment.state.is === 'same' ? this.tagsOf(fragment.state.as) : (fragment.tags ?? fragment.ownTags);
  }

  /** Whether the fragment's HTML is, or holds, a stale fragment. */
  private holdsStale(fragment: Fragment): boolean {
    const { state } = fragment;
    if (state.is === 'same') return this.holdsStale(state.as);
    return (state.is === 'hit' && state.stale) || fragment.staleInside === true;
  }

  /**
   * Replaces the placeholders in `text`, waiting only for fragments whose HTML is not yet known, and
   * notes in `into` the tags of every fragment placed and whether one was stale.
   */
  private substitute(text: string, into: Contents): string | Promise<string> {
    let at = text.indexOf(OPEN);
    if (at === -1) return text;
    // One scan with indexOf: text between placeholders, and the fragment each placeholder stands for.
    const pieces: string[] = [];
    const slots: Array<[index: number, fragment: Fragment]> = [];
    let from = 0;
    while (at !== -1) {
      const end = text.indexOf(CLOSE, at + OPEN.length);
      if (end === -1) break;
      const digits = text.slice(at + OPEN.length, end);
      const fragment = DIGITS.test(digits) ? this.fragments[Number(digits)] : undefined;
      if (fragment === undefined) {
        at = text.indexOf(OPEN, at + 1); // not one of ours after all: it stays text
        continue;
      }
      pieces.push(text.slice(from, at), '');
      slots.push([pieces.length - 1, fragment]);
      from = end + CLOSE.length;
      at = text.indexOf(OPEN, from);
    }
    pieces.push(text.slice(from));
    let waits: Array<Promise<string>> | undefined;
    for (const [, fragment] of slots) {
      const html = this.resultOf(fragment);
      if (typeof html !== 'string') (waits ??= []).push(html);
    }
    const assemble = () => {
      for (const [index, fragment] of slots) {
        fragment.placed = true;
        pieces[index] = this.htmlOf(fragment);
        for (const tag of this.tagsOf(fragment)) into.tags.add(tag);
        if (this.holdsStale(fragment)) into.stale = true;
      }
      return pieces.join('');
    };
    return waits === undefined ? assemble() : Promise.all(waits).then(assemble);
  }

  /**
   * Writes back the misses rendered, one batch per cache, stamped with the tag versions read before
   * their bodies ran, so that an invalidation during the render drops them too.
   */
  private async writeBack(rendered: Fragment[]): Promise<void> {
    await Promise.all(
      [
        ...groupBy(
          rendered.filter((fragment) => fragment.staleInside !== true),
          (fragment) => fragment.cache,
        ),
      ].map(([cache, group]) =>
        cache.setEach(
          // A fragment nested in itself is written once, with the outer HTML (Django's last write).
          [...new Map(group.map((fragment) => [fragment.key, fragment] as const).reverse()).values()].map(({ key, html, timeout, tags, stale }) => ({
            key,
            value: html,
            options: tags!.length === 0 && stale === 0 ? timeout : { timeout, tags, staleWhileRevalidate: stale || undefined },
          })),
          this.versions.get(cache),
        ),
      ),
    );
  }

  /**
   * Renders stale fragments again behind the page that served them: once per key in this process
   * and once across processes (a lock). A failure keeps the stale fragment and is reported on its cache.
   */
  private refreshBehind(stale: Fragment[]): void {
    const mine = stale.filter((fragment) => {
      const id = `${fragment.cache.alias}\u0000${fragment.key}`;
      if (refreshing.has(id)) return false;
      refreshing.add(id);
      return true;
    });
    if (mine.length === 0) return;
    const refresh = async () => {
      const releases: Array<() => Promise<void>> = [];
      try {
        const again: Fragment[] = [];
        for (const fragment of mine) {
          const release = await fragment.cache.acquireLock(`fragment-refresh:${fragment.key}`, REFRESH_LOCK_SECONDS);
          if (release === undefined) continue;
          releases.push(release);
          again.push(fragment);
        }
        if (again.length > 0) await this.pass(true, () => '', again);
      } finally {
        for (const release of releases) await release().catch(() => undefined);
      }
    };
    refresh()
      .catch((error: unknown) => {
        const failure = error instanceof Error ? error : new Error(String(error));
        for (const fragment of mine)
          fragment.cache.reportError(new Error(`refreshing stale fragment '${fragment.name}' failed: ${failure.message}`, { cause: failure }));
      })
      .finally(() => {
        for (const fragment of mine) refreshing.delete(`${fragment.cache.alias}\u0000${fragment.key}`);
      });
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
