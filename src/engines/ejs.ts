/**
 * `cache()` for EJS: `<% cache(600, 'sidebar', [user.id], async () => { %>…<% }) %>` records a
 * fragment whose body, the function, writes to a buffer of its own and runs only on a miss; with
 * `hole()` and `uncacheable()` beside it. Installed on the EJS object, whose `compile` every render,
 * file render and include goes through: each template is rewritten as it compiles, and a render that
 * no other render included resolves its fragments when it returns. Surprise: the body shadows EJS's
 * own output buffer (`__output`, `__append`) in its function, so the rewrite depends on those names.
 */
// Node's types (Buffer, node:http, node:diagnostics_channel…) appear in these declarations: a consumer need not name them in `types`.
/// <reference types="node" preserve="true" />
import { checkEjsVersion, type EjsLike, patchCompile } from './ejs-compiler.js';
import { ejsDigests, makeEjsDigests } from './ejs-digests.js';
import { installerOptions } from './template-tag.js';

export type { EjsLike } from './ejs-compiler.js';
export { templateDigest } from './ejs-digests.js';

export interface CacheFunctionOptions {
  /** The name templates call the tag by. @default 'cache' */
  functionName?: string;
  /**
   * Fragment keys carry a digest of the template that holds the call and of everything it includes,
   * so that editing a template renews its fragments. @default false
   */
  digests?: boolean;
}

const INSTALLED = Symbol.for('cachegrain.ejs');

/**
 * Makes `ejs` (the default export of 'ejs') compile `cache(timeout, 'name', [vary…], { using, tags,
 * stale, lock, contexts, if }, async () => { %>…<% })`, `hole('name', …args)` and
 * `uncacheable('why')`. Templates holding a tag are rendered with `{ async: true }`; a page's
 * fragments are read in one round trip per cache and level, and its output is the page with them.
 */
export function installCacheTag<T extends EjsLike>(ejs: T, options: CacheFunctionOptions = {}): T {
  const { tagName: functionName, digests } = installerOptions(options as { functionName?: string; digests?: boolean }, 'functionName', 'installCacheTag');
  const target = ejs as unknown as Record<PropertyKey, unknown>;
  if (target[INSTALLED] !== undefined) return installedAlready(ejs, functionName, digests);
  checkEjsVersion(ejs);
  try {
    target[INSTALLED] = functionName;
    patchCompile(ejs, { functionName, digests: digests ? makeEjsDigests(ejs) : undefined });
  } catch (error) {
    delete target[INSTALLED];
    throw new TypeError(`installCacheTag: give it EJS's default export (import ejs from 'ejs'), whose compile can be replaced (${(error as Error).message})`);
  }
  return ejs;
}

/** `ejs` given again: itself when installed the same way, else an error saying how it was. */
function installedAlready<T extends EjsLike>(ejs: T, functionName: string, digests: boolean): T {
  const installed = (ejs as unknown as Record<PropertyKey, unknown>)[INSTALLED];
  if ((ejsDigests(ejs) !== undefined) !== digests)
    throw new TypeError(`installCacheTag: this EJS has the tag installed ${digests ? 'without' : 'with'} digests already`);
  if (installed === functionName) return ejs;
  throw new TypeError(`installCacheTag: this EJS has the tag installed as '${String(installed)}' already`);
}

/**
 * An Express view engine: `app.engine('ejs', expressEngine(ejs))`. It renders with `{ async: true }`,
 * which EJS's own Express entry cannot pass, and honours Express's `views` and `view cache`.
 */
export function expressEngine(ejs: EjsLike) {
  return function renderEjsView(filePath: string, locals: { settings?: Record<string, unknown> }, callback: (error: unknown, html?: string) => void): void {
    const settings = locals.settings ?? {};
    const options = { async: true, views: settings.views, cache: settings['view cache'] === true };
    new Promise<string>((resolve) => resolve(ejs.renderFile(filePath, locals, options) as Promise<string>)).then(
      (html) => callback(null, html),
      (error) => callback(error),
    );
  };
}
