/**
 * The variants of one URL's pages a layer has looked up, by the request's values of what they vary
 * on. A site's visitors send few values (a few themes, languages, roles): each value found again
 * leads straight to its variant's hash and page key, so a hit on a varying page frames and hashes
 * no text, and its page key is the same string each time (whose hash the cache's key lookups keep).
 */
import type { IncomingMessage } from 'node:http';
import { contextValue } from '../cacheability/contexts.js';
import { type LearnedHeaders, pageKeyFor, REMEMBERED_VARIANT_LENGTH, requestHeaderValue, variantHashOf } from './page-keys.js';

/** A variant of a URL's page: the hash of the request's values, and the key its page is stored under. */
export interface Variant {
  readonly hash: string;
  readonly pageKey: string;
}

/**
 * How many variants of one URL are remembered; past it they start afresh, as a `BoundedMemo` does.
 * Few: a URL's keys are remembered for thousands of URLs.
 */
const VARIANTS_PER_URL = 64;
const NO_CONTEXTS: readonly string[] = [];

/** One level per value, in the order they are framed: the last holds the variants. */
type Level = Map<string | undefined, Level | Variant>;

export class UrlVariants {
  /** What the remembered variants vary on: another list read for the URL starts them afresh. */
  private varies: LearnedHeaders | undefined;
  private readonly byValues: Level = new Map();
  private size = 0;
  /** The values read while walking the levels (a lookup runs to its end before another starts). */
  private readonly values: (string | undefined)[] = [];

  constructor(
    private readonly keyPrefix: string,
    private readonly urlHash: string,
  ) {}

  /** The request's variant of the URL's page under what its pages vary on (`learned`, which varies on something). */
  of(req: IncomingMessage, learned: LearnedHeaders): Variant {
    if (!this.remembersUnder(learned)) this.restart(learned);
    const { headers } = learned;
    const contexts = learned.contexts ?? NO_CONTEXTS;
    const values = this.values;
    const count = headers.length + contexts.length;
    let level = this.byValues;
    let known: Level | Variant | undefined;
    let long = false;
    for (let i = 0; i < count; i++) {
      const value = i < headers.length ? requestHeaderValue(req, headers[i]!) : contextValue(contexts[i - headers.length]!, req);
      values[i] = value;
      if (value !== undefined && value.length > REMEMBERED_VARIANT_LENGTH) long = true;
      // Once a level lacks the value, the rest are only read.
      if (known !== undefined || i === 0) {
        known = level.get(value);
        if (known !== undefined && i < count - 1) level = known as Level;
      }
    }
    if (known !== undefined && !long && (known as Partial<Variant>).pageKey !== undefined) return known as Variant;
    values.length = count;
    const hash = variantHashOf(learned, values);
    const variant: Variant = { hash, pageKey: pageKeyFor(this.keyPrefix, 'GET', this.urlHash, hash) };
    // A long value (a whole Cookie header) is one visitor's: not remembered, so that the levels stay small.
    if (!long) this.remember(values, variant);
    return variant;
  }

  private remembersUnder(learned: LearnedHeaders): boolean {
    const varies = this.varies;
    if (varies === learned) return true;
    if (varies === undefined || !sameList(varies.headers, learned.headers) || !sameList(varies.contexts ?? NO_CONTEXTS, learned.contexts ?? NO_CONTEXTS))
      return false;
    // The same list read again (decoded anew from a cache on a server): the next lookup compares by identity.
    this.varies = learned;
    return true;
  }

  private restart(learned: LearnedHeaders): void {
    this.varies = learned;
    this.byValues.clear();
    this.size = 0;
  }

  private remember(values: readonly (string | undefined)[], variant: Variant): void {
    if (this.size >= VARIANTS_PER_URL) {
      this.byValues.clear();
      this.size = 0;
    }
    let level = this.byValues;
    for (let i = 0; i < values.length - 1; i++) {
      let next = level.get(values[i]) as Level | undefined;
      if (next === undefined) level.set(values[i], (next = new Map()));
      level = next;
    }
    level.set(values[values.length - 1], variant);
    this.size++;
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
