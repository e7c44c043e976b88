/**
 * `+cache(600, 'sidebar', user.id)` for Pug: a mixin-style call whose indented block is the fragment's
 * body, with keywords as its attributes (`+cache(600, 'sidebar', user.id)(tags='user:' + user.id)`),
 * and `+hole('name', …args)` and `+uncacheable('why')` beside it. Installed on the Pug module, whose
 * `compile` every render goes through (pug-compiler.ts): a plugin rewrites each call into code as Pug
 * compiles it (pug-tags.ts), and a template holding a call answers a promise of its page, its
 * fragments resolved (pug-render.ts).
 */
// Node's types (Buffer, node:http, node:diagnostics_channel…) appear in these declarations: a consumer need not name them in `types`.
/// <reference types="node" preserve="true" />
import { checkPugVersion, patchCompile, type PugLike } from './pug-compiler.js';
import { makePugDigests, pugDigests } from './pug-digests.js';
import { installerOptions } from './template-tag.js';

export type { PugLike } from './pug-compiler.js';
export { templateDigest } from './pug-digests.js';

export interface CacheMixinOptions {
  /** The name templates call the tag by (`+cache(…)`). @default 'cache' */
  mixinName?: string;
  /**
   * Fragment keys carry a digest of the template that holds the call and of everything it includes
   * or extends, so that editing a template renews its fragments. @default false
   */
  digests?: boolean;
}

const INSTALLED = Symbol.for('cachegrain.pug');

/**
 * Makes `pug` (the default export of 'pug') compile `+cache(timeout, 'name', vary…)(keywords)` with
 * an indented block, `+hole('name', …args)` and `+uncacheable('why')`. A template holding one returns a
 * promise of its page (`renderFile` and `render` given a callback call it with the page, and so does
 * Express's `app.set('view engine', 'pug')`); other templates are compiled as Pug compiles them.
 */
export function installCacheTag<T extends PugLike>(pug: T, options: CacheMixinOptions = {}): T {
  const { tagName: mixinName, digests } = installerOptions(options as { mixinName?: string; digests?: boolean }, 'mixinName', 'installCacheTag');
  const target = pug as unknown as Record<PropertyKey, unknown>;
  if (target[INSTALLED] !== undefined) return installedAlready(pug, mixinName, digests);
  checkPugVersion(pug);
  target[INSTALLED] = mixinName;
  const { render, renderFile } = pug;
  patchCompile(pug, mixinName, digests ? makePugDigests(pug) : undefined);
  // Given a callback, they call it with the page rather than with its promise.
  pug.renderFile = withPageCallback(renderFile) as T['renderFile'];
  pug.render = withPageCallback(render) as T['render'];
  return pug;
}

/** `pug` given again: itself when installed the same way, else an error saying how it was. */
function installedAlready<T extends PugLike>(pug: T, mixinName: string, digests: boolean): T {
  const installed = (pug as unknown as Record<PropertyKey, unknown>)[INSTALLED];
  if ((pugDigests(pug) !== undefined) !== digests)
    throw new TypeError(`installCacheTag: this Pug has the tag installed ${digests ? 'without' : 'with'} digests already`);
  if (installed === mixinName) return pug;
  throw new TypeError(`installCacheTag: this Pug has the tag installed as '${String(installed)}' already`);
}

type Renders = (first: string, options?: object, callback?: (error: unknown, html?: string) => void) => unknown;

function withPageCallback(renders: Renders): Renders {
  return function renderPage(this: unknown, first, options, callback) {
    if (typeof options === 'function') [callback, options] = [options as typeof callback, undefined];
    if (typeof callback !== 'function') return renders.call(this, first, options);
    let page: unknown;
    try {
      page = renders.call(this, first, options);
    } catch (error) {
      return callback(error);
    }
    Promise.resolve(page).then(
      (html) => callback(null, html as string),
      (error: unknown) => callback(error),
    );
    return undefined;
  };
}

/** An Express view engine: `app.engine('pug', expressEngine(pug))`; the same as `app.set('view engine', 'pug')` once installed. */
export function expressEngine(pug: PugLike) {
  return function renderPugView(filePath: string, locals: object, callback: (error: unknown, html?: string) => void): void {
    withPageCallback(pug.renderFile.bind(pug))(filePath, locals, callback);
  };
}
