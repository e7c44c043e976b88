/**
 * One render's fragments (SPEC §5). Each `cache` tag records its fragment and leaves a placeholder;
 * `finish` reads every key of the render in one `getMany` per cache, renders only the misses (tags
 * inside them form the next level, read the same way), writes them back with `setMany`, and puts
 * the HTML in place. Surprise: bodies run after the engine's pass, so an adapter must hand over a
 * body that still sees the variables of the moment its tag ran.
 */
import { randomBytes } from 'node:crypto';
import type { BaseCache } from '../base.js';
import { groupBy } from '../group.js';
import { atTag, fragmentCache, fragmentTimeout, type TagSite, TemplateSyntaxError } from './arguments.js';
import { makeTemplateFragmentKey } from './key.js';

/** Renders a fragment's body: its output, which may hold placeholders of fragments nested in it. */
export type RenderBody = () => unknown;

// One marker per process, so that no text from a template or a store can forge a placeholder. It
// holds lowercase letters: a transform that changes the case of its block's text breaks it visibly.
const NONCE = randomBytes(6).toString('hex');
const OPEN = `\u0002cgf${NONCE}:`;
const CLOSE = '\u0003';
const DIGITS = /^\d+$/;

/** The settle of a miss that no other render can be waiting for. */
const NO_WAITERS = { resolve: (): void => undefined, reject: (): void => undefined };

/** Fragments being rendered in this process, per cache and key: concurrent renders share them. */
const flights = new WeakMap<BaseCache, Map<string, Promise<string>>>();

interface Fragment {
  id: number;
  name: string;
  key: string;
  cache: BaseCache;
  timeout: number | null;
  renderBody: RenderBody;
  /** Where its tag stands, for error messages. */
  site?: TagSite;
  /** The final HTML, once known. */
  html?: string;
  /** A miss's rendered body, placeholders of nested fragments still in it. */
  body?: string;
  /** The final HTML of a miss that this render renders, another fragment of it, or another render. */
  result?: Promise<string>;
  /** The other fragment of this render with the same cache and key, which renders for both. */
  sameAs?: Fragment;
  /** The flight other renders wait on, for an outermost miss this render renders. */
  flight?: Promise<string>;
  /** Settles the flight that other renders wait on, for a miss this render renders. */
  settle?: { resolve(html: string): void; reject(error: unknown): void };
  placed: boolean;
}

export class FragmentRender {
  private readonly fragments: Fragment[] = [];
  private pending: Fragment[] = [];
  /** The misses this render renders itself, by cache alias and key. */
  private readonly owners = new Map<string, Fragment>();
  private readonly rendered: Fragment[] = [];

  /**
   * Records a fragment and returns its placeholder. `timeout`, `varyOn` and `using` are the tag's
   * evaluated arguments (`using` undefined when absent); `name` is the literal fragment name; `site`,
   * when the adapter knows it, goes into the message of every error of this tag and its body.
   */
  tag(timeout: unknown, name: string, varyOn: readonly unknown[], using: unknown, renderBody: RenderBody, site?: TagSite): string {
    let fragment: Fragment;
    try {
      fragment = {
        id: this.fragments.length,
        name,
        key: makeTemplateFragmentKey(name, varyOn),
        cache: fragmentCache(using),
        timeout: fragmentTimeout(timeout),
        renderBody,
        site,
        placed: false,
      };
    } catch (error) {
      throw atTag(error, site, name, false);
    }
    this.fragments.push(fragment);
    this.pending.push(fragment);
    return OPEN + fragment.id + CLOSE;
  }

  /** The page with every placeholder replaced by its fragment's HTML, misses written back. */
  async finish(output: string): Promise<string> {
    if (this.fragments.length === 0) return output;
    try {
      let nested = false;
      for (let level = this.takePending(); level.length > 0; level = this.takePending(), nested = true) await this.resolveLevel(level, nested);
      const page = await this.substitute(output);
      await Promise.all(this.rendered.map((fragment) => this.resultOf(fragment)));
      await this.writeBack();
      this.checkPlaced();
      return page;
    } catch (error) {
      for (const fragment of this.rendered) fragment.settle?.reject(error);
      throw error;
    } finally {
      for (const fragment of this.rendered) {
        const inflight = flights.get(fragment.cache);
        if (fragment.flight !== undefined && inflight?.get(fragment.key) === fragment.flight) inflight.delete(fragment.key);
      }
    }
  }

  private takePending(): Fragment[] {
    const level = this.pending;
    this.pending = [];
    return level;
  }

  /** Reads one level's keys (one getMany per cache) and renders the bodies of its misses. */
  private async resolveLevel(level: Fragment[], nested: boolean): Promise<void> {
    const byCache = groupBy(level, (fragment) => fragment.cache);
    const misses: Fragment[] = [];
    await Promise.all(
      [...byCache].map(async ([cache, group]) => {
        const found = await cache.getMany(group.map((fragment) => fragment.key));
        for (const fragment of group) {
          const value = found.get(fragment.key);
          if (value == null) misses.push(fragment);
          else fragment.html = String(value);
        }
      }),
    );
    for (const fragment of misses) this.claim(fragment, nested);
    const toRender = misses.filter((fragment) => fragment.settle !== undefined);
    await Promise.all(
      toRender.map(async (fragment) => {
        try {
          fragment.body = String(await fragment.renderBody());
        } catch (error) {
          throw atTag(error, fragment.site, fragment.name, true);
        }
      }),
    );
  }

  /**
   * Decides who renders a miss: this render, an earlier fragment of it, or a concurrent render.
   * Only outermost fragments are shared with other renders: a render that waited for another inside
   * a fragment it renders itself could wait in a circle (two pages nesting two fragments in opposite
   * orders), so a nested miss is always rendered by the render that found it.
   */
  private claim(fragment: Fragment, nested: boolean): void {
    const ownKey = `${fragment.cache.alias}\u0000${fragment.key}`;
    const earlier = this.owners.get(ownKey);
    if (earlier !== undefined) {
      fragment.sameAs = earlier;
      return;
    }
    if (nested) {
      fragment.settle = NO_WAITERS;
    } else {
      let inflight = flights.get(fragment.cache);
      if (inflight === undefined) flights.set(fragment.cache, (inflight = new Map()));
      const theirs = inflight.get(fragment.key);
      if (theirs !== undefined) {
        fragment.result = theirs.then((html) => (fragment.html = html));
        fragment.result.catch(() => undefined); // awaited where it is placed; unplaced, it must not go unhandled
        return;
      }
      fragment.flight = new Promise<string>((resolve, reject) => (fragment.settle = { resolve, reject }));
      fragment.flight.catch(() => undefined); // a render that fails reports it itself; waiters see it on await
      inflight.set(fragment.key, fragment.flight);
    }
    this.owners.set(ownKey, fragment);
    this.rendered.push(fragment);
  }

  private resultOf(fragment: Fragment): string | Promise<string> {
    if (fragment.html !== undefined) return fragment.html;
    if (fragment.sameAs !== undefined) return this.resultOf(fragment.sameAs);
    if (fragment.result === undefined) {
      fragment.result = Promise.resolve(this.substitute(fragment.body!)).then((html) => {
        fragment.html = html;
        fragment.settle?.resolve(html);
        return html;
      });
    }
    return fragment.result;
  }

  /** Replaces the placeholders in `text`, waiting only for fragments whose HTML is not yet known. */
  private substitute(text: string): string | Promise<string> {
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
        pieces[index] = fragment.html ?? fragment.sameAs?.html ?? '';
      }
      return pieces.join('');
    };
    return waits === undefined ? assemble() : Promise.all(waits).then(assemble);
  }

  /** One setMany per cache and timeout for every miss this render rendered. */
  private async writeBack(): Promise<void> {
    const groups = new Map<BaseCache, Map<number | null, Map<string, string>>>();
    for (const fragment of this.rendered) {
      let byTimeout = groups.get(fragment.cache);
      if (byTimeout === undefined) groups.set(fragment.cache, (byTimeout = new Map()));
      let entries = byTimeout.get(fragment.timeout);
      if (entries === undefined) byTimeout.set(fragment.timeout, (entries = new Map()));
      entries.set(fragment.key, fragment.html!);
    }
    const writes: Array<Promise<unknown>> = [];
    for (const [cache, byTimeout] of groups) {
      for (const [timeout, entries] of byTimeout) writes.push(cache.setMany(entries, timeout));
    }
    await Promise.all(writes);
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
