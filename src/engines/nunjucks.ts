/**
 * The `{% cache %}` tag for Nunjucks: installed on an environment, whose extensions parse the tag and
 * hand the fragment core its evaluated arguments and a body to render later (nunjucks-tags.ts).
 * `installCacheTag` also makes the environment's own renders (and so `nunjucks.configure(…, {
 * express })` with `res.render`) resolve fragments when given a callback, by way of nunjucks'
 * Template render, shared by every environment of that copy of nunjucks (nunjucks-compiler.ts).
 */
// Node's types (Buffer, node:http, node:diagnostics_channel…) appear in these declarations: a consumer need not name them in `types`.
/// <reference types="node" preserve="true" />
import type { Environment } from 'nunjucks';
import { FragmentRender, withRenderState } from '../fragments/index.js';
import { type TemplateDigestReport, TemplateDigests } from '../digests/index.js';
import { type Callback, DIGESTS, HOLE_CALL, heldDigests, INSTALLED, nunjucksOf, resolveFragmentsOnRender } from './nunjucks-compiler.js';
import { nunjucksLibrary } from './nunjucks-digests.js';
import { cacheTag, holeTag, uncacheableCall, uncacheableTag } from './nunjucks-tags.js';
import { installerOptions, RENDER_STATE } from './template-tag.js';

export interface CacheTagOptions {
  /** The tag's name; its end tag is `end<name>`. @default 'cache' */
  tagName?: string;
  /**
   * Fragment keys carry a digest of the template that holds the tag and of everything it includes,
   * extends or imports, transitively: editing any of them renews its fragments. @default false
   */
  digests?: boolean;
}

/**
 * Adds `{% cache timeout name vary… using="alias" tags=… stale=… lock=true %}…{% endcache %}` and
 * `{% hole "name" args… %}` to a nunjucks Environment, and
 * makes every render of its templates given a callback (`render(name, ctx, cb)`, `renderString(src,
 * ctx, cb)`, `getTemplate(name).render(ctx, cb)`) resolve the fragments of that render.
 */
export function installCacheTag(env: Environment, options: CacheTagOptions = {}): Environment {
  const { tagName, digests } = installerOptions(options, 'tagName', 'installCacheTag');
  const copy = nunjucksOf(env);
  env.addExtension(`cachegrain:${tagName}`, cacheTag(env, copy, { tagName, digests: digests ? digestsOf(env) : undefined }));
  // `{% hole "stock" product.id %}`: a part of the page never cached, made for each request.
  const hole = holeTag(copy.runtime);
  env.addExtension('cachegrain:hole', hole);
  // `{{ hole("cart") }}` is the tag written as a call; the compiler gives it its template and line.
  env.addGlobal(HOLE_CALL, function holeCall(this: unknown, template: string, line: number, ...values: unknown[]) {
    return hole.run(this, template, line, values);
  });
  // `{{ uncacheable("why") }}`: the fragment around it, and the page, may not be kept. Its template and line are added by the compiler.
  const uncacheable = uncacheableCall(copy.runtime);
  env.addGlobal('uncacheable', uncacheable);
  env.addExtension('cachegrain:uncacheable', uncacheableTag(uncacheable));
  (env as unknown as Record<PropertyKey, unknown>)[INSTALLED] = true;
  resolveFragmentsOnRender(copy.Template);
  return env;
}

/**
 * The digest of template `name` of `env` as it is now, the tree of what it depends on and what could
 * not be resolved: `makeTemplateFragmentKey(name, varyOn, undefined, digest)` gives its fragments' keys.
 */
export function templateDigest(env: Environment, name: string): TemplateDigestReport {
  return digestsOf(env).report(name);
}

/** The template digests of `env`, made the first time they are asked for; an environment that reloads a template (`watch`) renews them. */
function digestsOf(env: Environment): TemplateDigests {
  const holder = env as unknown as Record<PropertyKey, TemplateDigests | undefined>;
  let digests = holder[DIGESTS];
  if (digests === undefined) {
    const copy = nunjucksOf(env);
    const made = (digests = holder[DIGESTS] = new TemplateDigests(nunjucksLibrary(env, copy), 'nunjucks'));
    (env as unknown as { on(event: 'update', listener: () => void): void }).on('update', () => made.reloaded());
  }
  return digests;
}

/** Renders a template by name, fragments read in one round trip per cache. */
export function render(env: Environment, templateName: string, context: object = {}): Promise<string> {
  return renderResolvingFragments(env, 'render', templateName, context);
}

/** Renders template source, fragments read in one round trip per cache. */
export function renderString(env: Environment, source: string, context: object = {}): Promise<string> {
  return renderResolvingFragments(env, 'renderString', source, context);
}

/** One render by `env.render(name…)` or `env.renderString(source…)` (they take the same arguments), its fragments resolved. */
function renderResolvingFragments(env: Environment, method: 'render' | 'renderString', template: string, context: object): Promise<string> {
  const digests = heldDigests(env);
  const fragments = new FragmentRender(digests);
  const renderWith = env[method] as (template: string, context: object, callback: Callback) => void;
  return new Promise<string>((resolve, reject) => {
    renderWith.call(env, template, withRenderState(context, RENDER_STATE, fragments), (error, output) =>
      error ? reject(withInstallHint(env, error)) : resolve(output!),
    );
  }).then((output) => {
    // Once rendered, a template named by its path is known to its loader by name.
    if (method === 'render') digests?.rendered(template);
    else digests?.rendered(undefined, template);
    return fragments.finish(output);
  });
}

/** An error of an environment without the tag that meets `{% cache %}`, saying how to add it. */
function withInstallHint(env: Environment, error: Error): Error {
  if ((env as unknown as Record<PropertyKey, unknown>)[INSTALLED] !== true && /unknown block tag: cache\b/.test(error.message)) {
    error.message += "; the 'cache' tag is added to a nunjucks Environment by installCacheTag(env) from cachegrain/nunjucks: call it before rendering";
  }
  return error;
}

/** An Express view engine: `app.engine('njk', expressEngine(env))`; the env's loader must see the views. */
export function expressEngine(env: Environment) {
  return function renderNunjucksView(filePath: string, options: object, callback: (error: unknown, html?: string) => void): void {
    render(env, filePath, options).then((html) => callback(null, html), callback);
  };
}
