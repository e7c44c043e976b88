/**
 * What Handlebars calls as a template renders: the `{{#cache}}` block helper, which reads its
 * arguments into the fragment's call and hands the render it and a body to render later, and the
 * `{{uncacheable}}` and `{{hole}}` helpers. Surprise: `#each` rewrites one data frame in place, so the
 * helper keeps a copy of `@index`, `@key` and their parents as they were when it ran.
 */
import type Handlebars from 'handlebars';
import type { TemplateDigests } from '../digests/index.js';
import { describe } from '../errors/errors.js';
import {
  type FragmentTag,
  FragmentRender,
  type TagKeywords,
  type TagSite,
  tagSiteOf,
  TemplateSyntaxError,
  tooFewArguments,
  uncacheableOutput,
} from '../fragments/index.js';
import { DIGEST_KEY, TEMPLATE } from './handlebars-checks.js';
import { RENDER_STATE } from './template-tag.js';

type HandlebarsInstance = typeof Handlebars;
type HelperOptions = Handlebars.HelperOptions & { data?: Record<string, unknown>; loc?: hbs.AST.SourceLocation };

/** Where an instance notes that it has the `uncacheable` and `hole` helpers. */
const TEMPLATE_HELPERS = Symbol.for('cachegrain.handlebars.template-helpers');
/** A template's text that may call `uncacheable` or `hole`. */
export const CALLS_TEMPLATE_HELPERS = /\b(?:uncacheable|hole)\b/;

/** How a render started by something else than cachegrain's own is told to render instead. */
const RENDER_WITH =
  'render() or expressEngine() from cachegrain/handlebars, by express-handlebars given to installExpressHandlebars(), or by @fastify/view given fastifyViewEngine(handlebars)';

/** The `{{#cache timeout "name" vary… keyword=value…}}` helper named `helperName`; `digests`: its instance's, with digests on. */
export function cacheHelper(handlebars: HandlebarsInstance, helperName: string, digests: TemplateDigests | undefined) {
  return function cacheHelperCall(this: unknown, ...args: unknown[]) {
    const helper = args.pop() as HelperOptions;
    const call = fragmentCall(args, helper, helperName);
    const render = helper.data?.[RENDER_STATE];
    if (!(render instanceof FragmentRender)) {
      throw new TemplateSyntaxError(`the '${helperName}' helper needs the page rendered with ${RENDER_WITH}`, call.name, tagSiteOf(call));
    }
    const context = this;
    const bodyOf = () => {
      const data = snapshotData(helper.data);
      return () => String(helper.fn(context, { data }));
    };
    if (call.digest !== undefined && digests !== undefined) render.useDigests(digests);
    return new handlebars.SafeString(render.tag(call, bodyOf));
  };
}

/** The helper's arguments (`timeout`, `name`, the vary-on values) and hash read into the fragment's call, at the tag's site. */
function fragmentCall(args: unknown[], helper: HelperOptions, helperName: string): FragmentTag {
  const site: TagSite = { template: String(helper.hash[TEMPLATE] ?? 'a template string'), line: helper.loc?.start.line ?? 0 };
  if (args.length < 2) throw tooFewArguments(helperName, site);
  const [timeout, name, ...varyOn] = args;
  if (typeof name !== 'string' && typeof name !== 'number') {
    throw new TemplateSyntaxError(
      `the '${helperName}' helper's fragment name must be a literal, as in {{#${helperName} 300 "sidebar"}} (got ${describe(name)})`,
      undefined,
      site,
    );
  }
  // The hash holds the keywords given (`using=`, `tags=`, `stale=`, `lock=`) under their own names.
  const keywords = helper.hash as TagKeywords;
  const digest = helper.hash[DIGEST_KEY] as string | undefined;
  return { timeout, name: String(name), varyOn, keywords, template: site.template, line: site.line, digest };
}

/**
 * Registers `{{uncacheable "why"}}` and `{{hole "name" …}}` on `handlebars`, once: with the first
 * template whose text names either, since Handlebars wraps every registered helper again on each
 * render, and an instance whose templates use neither need not pay for them.
 */
export function registerTemplateHelpers(handlebars: HandlebarsInstance): void {
  const target = handlebars as unknown as Record<PropertyKey, unknown>;
  if (target[TEMPLATE_HELPERS] === true) return;
  target[TEMPLATE_HELPERS] = true;
  handlebars.registerHelper('uncacheable', function uncacheableHelper(why: unknown, helper: HelperOptions) {
    return new handlebars.SafeString(uncacheableOutput(why, siteOf(helper)));
  });
  // `{{hole "stock" product.id}}`: a part of the page never cached, made for each request.
  handlebars.registerHelper('hole', function holeHelper(...args: unknown[]) {
    const helper = args.pop() as HelperOptions;
    const site = siteOf(helper);
    const render = helper?.data?.[RENDER_STATE];
    if (!(render instanceof FragmentRender)) {
      throw new TemplateSyntaxError(`the 'hole' helper (hole ${describe(args[0])}) needs the page rendered with ${RENDER_WITH}`, undefined, site);
    }
    return new handlebars.SafeString(render.hole(args[0], args.slice(1), site));
  });
}

/** Where a template helper's call stands: the template the compiler named in its hash, and its line. */
function siteOf(helper: HelperOptions | undefined): TagSite {
  return { template: String(helper?.hash?.[TEMPLATE] ?? 'a template string'), line: helper?.loc?.start.line ?? 0 };
}

/** A copy of the `@data` frame chain as it is now (`#each` reuses and rewrites its frame). */
function snapshotData(data: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (data === undefined) return undefined;
  const copy: Record<string, unknown> = { ...data };
  if (data._parent !== undefined && data._parent !== null) copy._parent = snapshotData(data._parent as Record<string, unknown>);
  return copy;
}
