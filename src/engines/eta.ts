/**
 * The `<% cache %>` tag for Eta, as an Eta plugin: its hooks rewrite each template's tags into code
 * (eta-tags.ts) and make the function Eta compiles take part in a fragment render (eta-compiler.ts),
 * whose runtime the plugin carries (eta-render.ts). Surprise: the outermost template of a render does
 * the resolving (included templates and layouts join its render through Eta's render options, which
 * includes pass along), so it must be rendered with `renderAsync`; arguments are separated by spaces,
 * so an argument with spaces needs parentheses.
 */
// Node's types (Buffer, node:http, node:diagnostics_channel…) appear in these declarations: a consumer need not name them in `types`.
/// <reference types="node" preserve="true" />
import { isAbsolute, relative } from 'node:path';
import type { Eta } from 'eta';
import type { TemplateDigestReport } from '../digests/index.js';
import { compilerHooks } from './eta-compiler.js';
import { etaDigests } from './eta-digests.js';
import { etaRuntime } from './eta-render.js';
import { installerOptions, RENDER_STATE } from './template-tag.js';

/** Marks the plugin among an Eta's plugins. */
const PLUGIN = Symbol.for('cachegrain.eta');
/** Marks a plugin with digests on. */
const WITH_DIGESTS = Symbol.for('cachegrain.eta.digests');

export interface CachePluginOptions {
  /** The tag's name; its end tag is `end<name>`. @default 'cache' */
  tagName?: string;
  /**
   * Fragment keys carry a digest of the template that holds the tag and of everything it includes
   * or takes as its layout, transitively: editing any of them renews its fragments. @default false
   */
  digests?: boolean;
}

/**
 * The digest of template `name` of `eta` (as `renderAsync` names it) as it is now, the tree of what it
 * depends on and what could not be resolved: `makeTemplateFragmentKey(name, varyOn, undefined, digest)`
 * gives its fragments' keys.
 */
export function templateDigest(eta: Eta, name: string): TemplateDigestReport {
  const digests = etaDigests(eta);
  const resolved = digests.library.resolve(name, undefined);
  if (resolved === undefined) throw new Error(`templateDigest: '${name}' names no template of this Eta (is its views option set?)`);
  return digests.report(resolved);
}

/** The plugin: `new Eta({ views, plugins: [cachePlugin()] })`, then `await eta.renderAsync(name, data)`. */
export function cachePlugin(options: CachePluginOptions = {}) {
  const { tagName, digests } = installerOptions(options, 'tagName', 'cachePlugin');
  // Compiled templates find the plugin's runtime under the same name as the render state.
  const plugin = { [PLUGIN]: true, [WITH_DIGESTS]: digests, [RENDER_STATE]: etaRuntime(tagName, digests) };
  return Object.assign(plugin, compilerHooks(plugin, { tagName, digests }));
}

/** An Express view engine: `app.engine('eta', expressEngine(eta))`; `eta`'s `views` must hold the views. */
export function expressEngine(eta: Eta) {
  // Its digests are made now, not at the first render: a page stored before a restart is checked against them on its first hit.
  if ((eta.config.plugins ?? []).some((plugin) => (plugin as Record<PropertyKey, unknown>)[WITH_DIGESTS] === true)) etaDigests(eta);
  return function renderEtaView(filePath: string, locals: object, callback: (error: unknown, html?: string) => void): void {
    // Eta reads a leading '/' as its views directory, so Express's absolute path is made relative to it.
    const views = eta.config.views;
    const name = views !== undefined && isAbsolute(filePath) ? relative(views, filePath) : filePath;
    // Eta compiles before its promise exists, so a template it cannot compile throws here.
    new Promise<string>((resolve) => resolve(eta.renderAsync(name, locals))).then(
      (html) => callback(null, html),
      (error) => callback(withInstallHint(eta, error)),
    );
  };
}

/**
 * Eta's error for a template whose `<% cache … %>` reached its compiled code as it was written,
 * on an Eta without the plugin, saying how to add it.
 */
function withInstallHint(eta: Eta, error: unknown): unknown {
  const installed = (eta.config.plugins ?? []).some((plugin) => (plugin as Record<PropertyKey, unknown>)[PLUGIN] === true);
  if (!installed && error instanceof Error && /^\s*cache\s/m.test(error.message)) {
    error.message = `the 'cache' tag is added to Eta by cachePlugin() from cachegrain/eta: new Eta({ plugins: [cachePlugin()] }); ${error.message}`;
  }
  return error;
}
