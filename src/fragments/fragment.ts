/**
 * A fragment one render recorded, and where it stands. Its HTML and what that HTML depends on (its
 * cacheability) live in its state, known once it is a hit or rendered. An outermost miss this render
 * renders leads the flight other renders in this process wait on, which settles in one place
 * (`settle`) on every path.
 */
import type { BaseCache } from '../cache/base-cache.js';
import { Cacheability } from '../cacheability/record.js';
import type { Flight } from '../flight/index.js';
import { describeSite, type TagSite } from './arguments.js';
import { foldContexts } from '../cacheability/contexts.js';
import { contextsBeyond, type FragmentVariants } from './variants.js';

const NO_CONTEXTS: readonly string[] = Object.freeze([]);

/** Renders a fragment's body: its output, which may hold placeholders of fragments nested in it. */
export type RenderBody = () => unknown;

/**
 * Found in the cache, with what it was stored depending on (its tags and contexts, and when it
 * stops being fresh); a stale one is served and rendered again behind the page.
 */
export interface Hit {
  is: 'hit';
  html: string;
  tags: readonly string[];
  contexts: readonly string[];
  /** Epoch seconds by its cache's clock; undefined for an entry stored before it was recorded (or never expiring). */
  freshUntil: number | undefined;
  stale: boolean;
}

/** Its HTML made, here or by another render, and what went into it. */
export interface Rendered {
  is: 'rendered';
  html: string;
  cacheability: Cacheability;
  /**
   * The rendering request's values of the contexts it varies on beyond its tag's own (framed), for a
   * render waiting on it to tell whether the HTML is its variant too; '' when there are none.
   */
  variant: string;
}

/** A miss this render renders. */
interface Renders {
  is: 'renders';
  /** Its body's output, placeholders still in it. */
  body?: string;
  /** Its HTML once the fragments inside it are placed. */
  result?: Promise<string>;
}

/**
 * `unread`: recorded, its key not read yet. `same`: a miss another fragment of this render renders.
 * `waits`: a miss another render in this process renders. `retired`: its page is out, and what it
 * held let go (see `retire`).
 */
export type FragmentState =
  { is: 'unread' } | Hit | Renders | Rendered | { is: 'same'; as: Fragment } | { is: 'waits'; result: Promise<string> } | { is: 'retired' };

const UNREAD: FragmentState = { is: 'unread' };
const RETIRED: FragmentState = { is: 'retired' };

/** The body of a fragment until its tag hands one over, and once it has run or can no longer be needed. */
const NO_BODY: RenderBody = () => {
  throw new Error('a fragment answered from the cache, or rendered already, has no body to render');
};

/** What a fragment's tag says of it, once its arguments are checked. */
export interface FragmentSettings {
  readonly name: string;
  /** Its key by its name, vary-on values and own contexts. */
  readonly baseKey: string;
  /** How the keys of its variants are made in this request. */
  readonly variants: FragmentVariants;
  readonly cache: BaseCache;
  /** Seconds it is stored for (`null`: no expiry). */
  readonly timeout: number | null;
  /** Its own tags, from `tags=`. */
  readonly ownTags: readonly string[];
  /** The contexts its key varies on, from `contexts=`. */
  readonly ownContexts: readonly string[];
  /** Seconds it is served stale past its timeout while it is rendered again (`stale=`). */
  readonly staleWindow: number;
  /** Whether a cold miss is rendered once across processes (`lock=true`). */
  readonly lock: boolean;
  /** Where its tag stands, for error messages. */
  readonly site: TagSite | undefined;
  /** False for a tag whose `if=` is false: its body is rendered every time, neither read nor stored, and adds nothing of its own. */
  readonly cached: boolean;
}

/** What its tag said of it is its own (its fields are those of `FragmentSettings`). */
export interface Fragment extends FragmentSettings {}

export class Fragment {
  state: FragmentState = UNREAD;
  /** What renders its HTML on a miss; it closes over the engine's scope at the tag, so it is let go once it cannot run. */
  private body: RenderBody = NO_BODY;
  /** Whether its placeholder was found in the output around it. */
  placed = false;
  /** The flight it leads until its HTML is stored: other renders in this process wait on it. */
  private flight: Flight<Rendered> | undefined;
  /** Where its HTML is read and written: its own key, or its variant's once a redirect named the contexts it varies on. */
  key: string;
  /** The contexts a redirect at its own key named (see `variants.ts`). */
  learned: readonly string[] = NO_CONTEXTS;

  /** `id`: its number in the render, which its placeholder carries. */
  constructor(
    readonly id: number,
    settings: FragmentSettings,
  ) {
    Object.assign(this, settings);
    this.key = settings.baseKey;
  }

  /** Takes the body its tag made, run if the fragment is a miss (or a stale hit rendered again). */
  useBody(body: RenderBody): void {
    this.body = body;
  }

  /** Runs its body, once. */
  runBody(): unknown {
    const body = this.body;
    this.body = NO_BODY;
    return body();
  }

  /** Becomes the hit read for it; a fresh one is never rendered, so its body is let go. */
  found(hit: Hit): void {
    this.state = hit;
    if (!hit.stale) this.body = NO_BODY;
  }

  /**
   * Lets go of its HTML, record and body once its page is out. A fragment alive across a round trip
   * may be promoted to V8's old generation (or allocated there, at an allocation site whose objects
   * mostly live that long); from there it would keep everything it points to alive through each
   * young collection until the next full one, long after its page went out.
   */
  retire(): void {
    this.state = RETIRED;
    this.body = NO_BODY;
  }

  /** Reads and writes its HTML as the variant for the contexts a redirect at its own key names. */
  redirect(contexts: readonly string[]): void {
    this.learned = contexts;
    this.key = this.variants.keyIn(foldContexts([...this.ownContexts, ...contexts]));
  }

  /** This request's values of the contexts `record` varies on beyond the tag's own, framed ('' for none). */
  variantOf(record: Cacheability): string {
    if (record.contexts.size === 0 && this.learned.length === 0) return '';
    const beyond = contextsBeyond(this.ownContexts, [...record.contexts, ...this.learned]);
    return beyond.length === 0 ? '' : this.variants.valuesOf(beyond);
  }

  /** Becomes a miss this render renders, leading `flight` when other renders may wait for it. */
  lead(flight: Flight<Rendered> | undefined): void {
    this.state = { is: 'renders' };
    this.flight = flight;
  }

  /**
   * Becomes a miss another render in this process renders: it takes that render's HTML and record, if
   * that HTML is its variant; else `renderAlone` renders its own.
   */
  waitFor(flight: Flight<Rendered>, renderAlone: (fragment: Fragment) => Promise<string>): void {
    const result = flight.outcome.then((rendered) => {
      if (rendered.variant !== this.variantOf(rendered.cacheability)) return renderAlone(this);
      this.state = rendered;
      return rendered.html;
    });
    result.catch(() => undefined); // awaited where it is placed; unplaced, it must not go unhandled
    this.state = { is: 'waits', result };
  }

  /**
   * Ends the flight this fragment leads: with its HTML and record once they are known (rendered here,
   * or found stored by the holder of its lock), or with the failure of the pass. Those waiting get it
   * at once; the flight stays the one of its key until `leaveFlight`, once the HTML is stored. The
   * flight settles here and nowhere else, once; a fragment that leads none has nothing to do.
   */
  settle(ending: 'known' | { error: unknown }): void {
    const { flight, state } = this;
    if (flight === undefined) return;
    if (ending !== 'known') flight.fail(ending.error);
    else if (state.is === 'rendered') flight.landWhileStoring(state);
    else if (state.is === 'hit') {
      const cacheability = this.hitRecord(state);
      flight.landWhileStoring({ is: 'rendered', html: state.html, cacheability, variant: this.variantOf(cacheability) });
    } else flight.fail(new Error(`fragment '${this.name}' settled before its HTML was known`));
  }

  /** Gives up the key of the flight it led, once its HTML is stored (or the pass failed): the next render reads it. */
  leaveFlight(): void {
    this.flight?.leave();
    this.flight = undefined;
  }

  /** The fragment whose state answers for this one (itself, or the one rendering the same key). */
  get owner(): Fragment {
    return this.state.is === 'same' ? this.state.as.owner : this;
  }

  /** Its HTML once known; '' before. */
  get html(): string {
    const { state } = this.owner;
    return state.is === 'hit' || state.is === 'rendered' ? state.html : '';
  }

  /**
   * Merges what its HTML depends on into `record`: a hit's stored tags, contexts and what is left of
   * its lifetime (and its staleness), or a rendered fragment's own record. A hit is taken in without
   * a record of its own being built.
   */
  mergeInto(record: Cacheability): void {
    const owner = this.owner;
    const { state } = owner;
    if (state.is === 'rendered') record.merge(state.cacheability);
    else if (state.is === 'hit') mergeHit(record, state, owner.timeout, owner.cache);
    else record.merge(owner.ownRecord());
  }

  /** What the fragment itself depends on, before anything inside it: its tags and contexts, its timeout as its max-age. */
  ownRecord(): Cacheability {
    const record = Cacheability.ofTags(this.ownTags).addContexts(this.ownContexts);
    if (!this.cached || this.timeout === null) return record;
    if (this.timeout > 0) return record.limitMaxAge(this.timeout);
    return record.markUncacheable(`"cache" tag '${this.name}' has timeout ${this.timeout}${this.site === undefined ? '' : ` (${describeSite(this.site)})`}`);
  }

  private hitRecord(hit: Hit): Cacheability {
    const record = new Cacheability();
    mergeHit(record, hit, this.timeout, this.cache);
    return record;
  }
}

/** Merges a stored fragment into `record`: its tags and contexts, what is left of its lifetime, and whether it is served stale. */
export function mergeHit(record: Cacheability, hit: Hit, timeout: number | null, cache: BaseCache): void {
  record.addTags(hit.tags);
  if (hit.contexts.length > 0) record.addContexts(hit.contexts);
  if (hit.stale) {
    // Served while it is rendered again: what holds it is not stored at all (see `stale`).
    record.stale = true;
    return;
  }
  const left = hit.freshUntil !== undefined ? hit.freshUntil - cache.now() : timeout;
  // A fresh hit has time left, if less than a second by this clock.
  if (left !== null) record.limitMaxAge(Math.max(left, 1));
}
