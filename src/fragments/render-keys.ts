/**
 * The fragment keys one render uses: the memo of the cache its last tag used (see `FragmentKeys`),
 * and in it the keys of the template digest key asked for last, with the engine instance's template
 * digests that resolve such a key.
 */
import type { BaseCache } from '../cache/base-cache.js';
import { type CacheForFragments, cacheForFragments } from './cache-for-fragments.js';
import type { TemplateDigests } from '../digests/engine-digests.js';
import { type FragmentKeys, fragmentKeysOf, type KeyRoot } from './fragment-keys.js';

export class RenderKeys {
  /** The cache whose memo the last tag used, that memo, and the cache's integration face (for its hits, read without a lookup each). */
  private cache?: BaseCache;
  private keys?: FragmentKeys;
  integration?: CacheForFragments;
  /**
   * The key roots of the last template digest key asked for: a template's tags carry one key. No key
   * is empty, and a string from the start keeps each hit's comparison one of two strings, which V8
   * compiles inline; against undefined it calls its generic comparison instead, on every hit.
   */
  private lastDigestKey = '';
  private lastDigestRoot?: KeyRoot;

  /** `digests`: the template digests of the engine instance rendering, when its installer was given `digests: true`. */
  constructor(private digests?: TemplateDigests) {}

  /** Takes the template digests a tag's engine instance keeps, for a render started without them. */
  useDigests(digests: TemplateDigests): void {
    this.digests ??= digests;
  }

  /** The fragment memo `cache` owns: a render's tags mostly use one cache, whose memo is kept at hand. */
  of(cache: BaseCache): FragmentKeys {
    return cache === this.cache ? this.keys! : this.use(cache);
  }

  private use(cache: BaseCache): FragmentKeys {
    this.cache = cache;
    this.integration = cacheForFragments(cache);
    // The roots of digests are the memo's own.
    this.lastDigestKey = '';
    this.lastDigestRoot = undefined;
    return (this.keys = fragmentKeysOf(cache));
  }

  /** The keys of a template digest key's template in `cache`'s memo, once its digest is known and still stands; none are computed here. */
  held(cache: BaseCache, digest: string | undefined): KeyRoot | undefined {
    // Small, so that each hit inlines it, the last digest key's check with it: most tags carry no
    // digest, and those that do share their template's, whose lookup is a call each hit would pay.
    const keys = this.of(cache);
    return digest === undefined ? keys.undigested : digest === this.lastDigestKey ? this.lastDigestRoot : this.heldDigested(keys, digest);
  }

  private heldDigested(keys: FragmentKeys, digest: string): KeyRoot | undefined {
    const value = this.digests?.held(digest);
    const root = value === undefined ? undefined : keys.heldRoot(value);
    if (root === undefined) return undefined;
    this.lastDigestKey = digest;
    return (this.lastDigestRoot = root);
  }

  /**
   * The keys of a tag's template in `cache`'s memo: its undigested keys, or those of its template
   * digest key, the digest computed if need be. What the digest cannot resolve is reported on the
   * fragment's cache, the one path every problem of a cache takes.
   */
  rootFor(cache: BaseCache, digest: string | undefined, template: string | undefined): KeyRoot {
    const keys = this.of(cache);
    if (digest === undefined) return keys.undigested;
    if (digest === this.lastDigestKey) return this.lastDigestRoot!;
    if (this.digests === undefined) throw new Error('a tag with a template digest was rendered without the template digests of its engine');
    const value = this.digests.digestOf(digest, template, (message) => cache.reportError(new Error(message)));
    this.lastDigestKey = digest;
    return (this.lastDigestRoot = keys.root(value));
  }
}
