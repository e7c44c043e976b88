/**
 * A fragment one render recorded, and where it stands. Its HTML and what that HTML depends on (its
 * cacheability) live in its state, known once it is a hit or rendered. An outermost miss this render
 * renders leads the flight other renders in this process wait on, which settles in one place
 * (`settle`) on every path.
 */
import type { BaseCache } from '../core/base.js';
import { Cacheability } from '../cacheability/record.js';
import type { Flight } from '../flight/index.js';
import type { TagSite } from './arguments.js';

/** Renders a fragment's body: its output, which may hold placeholders of fragments nested in it. */
export type RenderBody = () => unknown;

/** Found in the cache, with the tags it was stored with; a stale one is served and rendered again behind the page. */
export interface Hit {
  is: 'hit';
  html: string;
  tags: readonly string[];
  stale: boolean;
}

/** Its HTML made, here or by another render, and what went into it. */
export interface Rendered {
  is: 'rendered';
  html: string;
  cacheability: Cacheability;
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
 * `waits`: a miss another render in this process renders.
 */
export type FragmentState = { is: 'unread' } | Hit | Renders | Rendered | { is: 'same'; as: Fragment } | { is: 'waits'; result: Promise<string> };

const UNREAD: FragmentState = { is: 'unread' };

/** The body of a fragment until its tag hands one over. */
const NO_BODY: RenderBody = () => {
  throw new Error('a fragment answered from the cache has no body to render');
};

export class Fragment {
  state: FragmentState = UNREAD;
  renderBody: RenderBody = NO_BODY;
  /** Whether its placeholder was found in the output around it. */
  placed = false;
  /** The flight it leads until it settles: other renders in this process wait on it. */
  private flight: Flight<Rendered> | undefined;

  constructor(
    /** Its number in the render, which its placeholder carries. */
    readonly id: number,
    readonly name: string,
    readonly key: string,
    readonly cache: BaseCache,
    /** Seconds it is stored for (`null`: no expiry). */
    readonly timeout: number | null,
    /** Its own tags, from `tags=`. */
    readonly ownTags: readonly string[],
    /** Seconds it is served stale past its timeout while it is rendered again (`stale=`). */
    readonly staleWindow: number,
    /** Whether a cold miss is rendered once across processes (`lock=true`). */
    readonly lock: boolean,
    /** Where its tag stands, for error messages. */
    readonly site: TagSite | undefined,
  ) {}

  /** Becomes a miss this render renders, leading `flight` when other renders may wait for it. */
  lead(flight: Flight<Rendered> | undefined): void {
    this.state = { is: 'renders' };
    this.flight = flight;
  }

  /** Becomes a miss another render in this process renders: it takes that render's HTML and record. */
  waitFor(flight: Flight<Rendered>): void {
    const result = flight.outcome.then((rendered) => {
      this.state = rendered;
      return rendered.html;
    });
    result.catch(() => undefined); // awaited where it is placed; unplaced, it must not go unhandled
    this.state = { is: 'waits', result };
  }

  /**
   * Ends the flight this fragment leads, on every path: with its HTML and record once they are known
   * (rendered here, or found stored by the holder of its lock), or with the failure of the pass.
   * `stored`: the write of that HTML, until which the flight stays the one of its key. The flight
   * settles here and nowhere else, once; a fragment that leads none has nothing to do.
   */
  settle(ending: { stored: Promise<unknown> } | { error: unknown }): void {
    const { flight, state } = this;
    if (flight === undefined) return;
    this.flight = undefined;
    if ('error' in ending) flight.fail(ending.error);
    else if (state.is === 'rendered') flight.landWhileStoring(state, ending.stored);
    else if (state.is === 'hit') flight.landWhileStoring({ is: 'rendered', html: state.html, cacheability: storedRecord(state) }, ending.stored);
    else flight.fail(new Error(`fragment '${this.name}' settled before its HTML was known`));
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
   * Merges what its HTML depends on into `record`: a hit's stored tags (and its staleness), or a
   * rendered fragment's own record. A hit is taken in without a record of its own being built.
   */
  mergeInto(record: Cacheability): void {
    const owner = this.owner;
    const { state } = owner;
    if (state.is === 'rendered') record.merge(state.cacheability);
    else if (state.is === 'hit') {
      record.addTags(state.tags);
      if (state.stale) record.stale = true;
    } else record.addTags(owner.ownTags);
  }
}

/** The record of a stored fragment: the tags it was stored with, and whether it is served stale. */
function storedRecord(hit: Hit): Cacheability {
  const record = Cacheability.ofTags(hit.tags);
  record.stale = hit.stale;
  return record;
}
