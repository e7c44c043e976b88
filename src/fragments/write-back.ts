/**
 * Writing a pass's rendered misses back, one batch per cache, stamped with the tag versions read
 * before their bodies ran, so that an invalidation during the render drops them too.
 */
import type { BaseCache, TagSnapshot } from '../core/base.js';
import { groupBy } from '../core/group.js';
import type { Fragment } from './fragment.js';

export class WriteBack {
  /** Every tag version read in the pass, first read kept, by cache: what its writes are stamped with. */
  private readonly versions = new Map<BaseCache, Map<string, string | undefined>>();

  /** Notes the tag versions a read of `cache` answered. */
  remember(cache: BaseCache, versions: TagSnapshot): void {
    let known = this.versions.get(cache);
    if (known === undefined) this.versions.set(cache, (known = new Map()));
    for (const [tag, version] of versions) if (!known.has(tag)) known.set(tag, version);
  }

  /**
   * Writes the fragments of `rendered` whose HTML was made here; one holding a stale fragment is not
   * written (it would keep that copy).
   */
  async write(rendered: readonly Fragment[]): Promise<void> {
    const writable = rendered.filter(({ state }) => state.is === 'rendered' && !state.cacheability.stale);
    await Promise.all(
      [...groupBy(writable, (fragment) => fragment.cache)].map(([cache, group]) =>
        cache.setEach(
          // A fragment nested in itself is written once, with the outer HTML (Django's last write).
          [...new Map(group.map((fragment) => [fragment.key, fragment] as const).reverse()).values()].map(storedEntry),
          this.versions.get(cache),
        ),
      ),
    );
  }
}

/** What `setEach` stores for a rendered fragment. */
function storedEntry(fragment: Fragment) {
  const { key, timeout, staleWindow, state } = fragment;
  const tags = state.is === 'rendered' ? [...state.cacheability.tags] : [];
  return {
    key,
    value: fragment.html,
    options: tags.length === 0 && staleWindow === 0 ? timeout : { timeout, tags, staleWhileRevalidate: staleWindow || undefined },
  };
}
