/**
 * Fragments that vary on contexts met only inside them (a sidebar holding a fragment with
 * `contexts="cookie:theme"`): their variants are known only once one is rendered, so the fragment's
 * own key holds a redirect naming those contexts, and each variant lives under the key made with the
 * request's values of them (Drupal's cache redirects; the page cache learns its pages' contexts the same
 * way). A render reads the redirect, then the variant, one more round trip for those fragments alone.
 */
import type { IncomingMessage } from 'node:http';
import { foldContexts, framedContextValues } from '../cacheability/contexts.js';
import { TemplateSyntaxError } from './arguments.js';
import { fragmentKeyInContexts } from './fragment-keys.js';

/** What a fragment's own key holds when its HTML varies on contexts beyond its own: the contexts its variants are keyed by. */
export interface ContextRedirect {
  cachegrainContexts: string[];
}

/** Whether a stored value is a redirect to a fragment's variants. */
export function isRedirect(value: unknown): value is ContextRedirect {
  return typeof value === 'object' && value !== null && Array.isArray((value as ContextRedirect).cachegrainContexts);
}

/** The contexts of `record` a fragment with `own` contexts does not vary on by its key: those a redirect must name. */
export function contextsBeyond(own: readonly string[], record: Iterable<string>): string[] {
  const folded = foldContexts([...own, ...record]);
  return folded.some((context) => !own.includes(context)) ? folded : [];
}

/** How one fragment's keys are made: its name and vary-on values, in the contexts of one request. */
export class FragmentVariants {
  constructor(
    private readonly name: string,
    private readonly varyOn: readonly unknown[],
    private readonly request: IncomingMessage | undefined,
    /** The digest of the template that holds the tag, if its keys carry one. */
    private readonly digest: string | undefined,
  ) {}

  /** The key of the variant for this request's values of `contexts` (all the contexts it varies on, folded). */
  keyIn(contexts: readonly string[]): string {
    return fragmentKeyInContexts(this.name, this.varyOn, this.valuesOf(contexts), this.digest).key;
  }

  /** This request's values of `contexts`, framed: the same text for requests that share a variant. */
  valuesOf(contexts: readonly string[]): string {
    if (this.request === undefined) throw outsideRequest(this.name);
    return framedContextValues(contexts, this.request);
  }
}

/** The error for a fragment that varies on contexts rendered where no request is known. */
export function outsideRequest(name: string): TemplateSyntaxError {
  return new TemplateSyntaxError(
    `"cache" tag '${name}' varies on contexts, and this render is outside any request: render it behind the page cache (cacheMiddleware, cachePage) or the request scope (cacheScope())`,
    name,
  );
}
