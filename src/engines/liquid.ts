/**
 * The `{% cache %}` tag for LiquidJS, with `{% hole %}` and `{% uncacheable %}` (liquid-tags.ts):
 * installed on a Liquid, each render it starts by `render`, `renderFile` or `parseAndRender` (and so by
 * `liquid.express()`) is one fragment render, its partials and layouts joining it, resolved when it
 * returns (liquid-renderer.ts).
 */
// Node's types (Buffer, node:http, node:diagnostics_channel…) appear in these declarations: a consumer need not name them in `types`.
/// <reference types="node" preserve="true" />
import type { Liquid } from 'liquidjs';
import { makeLiquidDigests } from './liquid-digests.js';
import { checkLiquidVersion, startRendersIn } from './liquid-renderer.js';
import { cacheTag, HoleTag, UncacheableTag } from './liquid-tags.js';
import { installerOptions } from './template-tag.js';

export { templateDigest } from './liquid-digests.js';

const INSTALLED = Symbol.for('cachegrain.liquid');

export interface CacheTagOptions {
  /** The tag's name; its end tag is `end<name>`. @default 'cache' */
  tagName?: string;
  /**
   * Fragment keys carry a digest of the template that holds the tag and of everything it renders,
   * includes or lays out in, so that editing a template renews its fragments. @default false
   */
  digests?: boolean;
}

/**
 * Adds `{% cache timeout 'name' vary… using: 'alias' tags: … stale: … lock: true %}…{% endcache %}`,
 * `{% hole 'name' args… %}` and `{% uncacheable 'why' %}` to a Liquid instance, and makes each of its
 * renders resolve the fragments its templates record. Keywords come after the vary-on values, written
 * as Liquid writes a `for` tag's (`limit: 2`); a bare-word fragment name is taken as written.
 */
export function installCacheTag(liquid: Liquid, options: CacheTagOptions = {}): Liquid {
  const { tagName, digests } = installerOptions(options as { tagName?: string; digests?: boolean }, 'tagName', 'installCacheTag');
  if (digests) makeLiquidDigests(liquid);
  const target = liquid as unknown as Record<PropertyKey, unknown>;
  if (target[INSTALLED] === tagName) return liquid;
  const firstInstall = target[INSTALLED] === undefined;
  if (firstInstall) checkLiquidVersion(liquid);
  target[INSTALLED] = tagName;
  liquid.registerTag(tagName, cacheTag(tagName));
  liquid.registerTag('hole', HoleTag);
  liquid.registerTag('uncacheable', UncacheableTag);
  if (firstInstall) startRendersIn(liquid);
  return liquid;
}
