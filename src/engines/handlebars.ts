/**
 * The `{{#cache}}` block helper for Handlebars: hands the fragment core the evaluated
 * arguments and a body to render later. Surprise: `#each` rewrites one data frame in place, so the
 * helper keeps a copy of `@index`, `@key` and their parents as they were when it ran.
 */
// Node's types (Buffer, node:http, node:diagnostics_channel…) appear in these declarations: a consumer need not name them in `types`.
/// <reference types="node" preserve="true" />
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import type Handlebars from 'handlebars';
import {
  FragmentRender,
  missingEndTag,
  type TagKeywords,
  type TagSite,
  TemplateSyntaxError,
  tooFewArguments,
  uncacheableOutput,
  withRenderState,
} from '../fragments/index.js';
import { describe } from '../common/cache-keys.js';
import { type TemplateDigestReport, TemplateDigests } from '../digests/index.js';
import { checkOptions, optionShape } from '../common/option-rules.js';
import { findHandlebarsDependencies, HandlebarsPartials, SITE, SOURCE, sourceOf } from './handlebars-digests.js';
import { checked, TEMPLATE } from './handlebars-checks.js';
import { DIGEST_KEY, installHitCompiler } from './handlebars-hits.js';
import { installerOptions, RENDER_STATE } from './template-tag.js';

type HandlebarsInstance = typeof Handlebars;

const INSTALLED = Symbol.for('cachegrain.handlebars');
/** Where an instance, and each template it compiles with digests on, keep the instance's template digests. */
const DIGESTS = Symbol.for('cachegrain.handlebars.digests');

export interface CacheHelperOptions {
  /** The helper's name. @default 'cache' */
  helperName?: string;
  /**
   * Fragment keys carry a digest of the template that holds the tag and of every partial it calls,
   * transitively: editing any of them renews its fragments. @default false
   */
  digests?: boolean;
}

/** Where an instance notes that it has the `uncacheable` and `hole` helpers. */
const TEMPLATE_HELPERS = Symbol.for('cachegrain.handlebars.template-helpers');
/** A template's text that may call `uncacheable` or `hole`. */
const CALLS_TEMPLATE_HELPERS = /\b(?:uncacheable|hole)\b/;

/** Whether a compiled template's code (each of its programs) names `uncacheable` or `hole`. */
function specCallsTemplateHelpers(spec: unknown): boolean {
  return (
    typeof spec === 'object' && spec !== null && Object.values(spec).some((part) => typeof part === 'function' && CALLS_TEMPLATE_HELPERS.test(String(part)))
  );
}

/**
 * Registers `{{uncacheable "why"}}` and `{{hole "name" …}}` on `handlebars`, once: with the first
 * template whose text names either, since Handlebars wraps every registered helper again on each
 * render, and an instance whose templates use neither need not pay for them.
 */
function registerTemplateHelpers(handlebars: HandlebarsInstance): void {
  const target = handlebars as unknown as Record<PropertyKey, unknown>;
  if (target[TEMPLATE_HELPERS] === true) return;
  target[TEMPLATE_HELPERS] = true;
  handlebars.registerHelper('uncacheable', function uncacheableHelper(why: unknown, helper: Handlebars.HelperOptions & { loc?: hbs.AST.SourceLocation }) {
    const site: TagSite = { template: String(helper?.hash?.[TEMPLATE] ?? 'a template string'), line: helper?.loc?.start.line ?? 0 };
    return new handlebars.SafeString(uncacheableOutput(why, site));
  });
  // `{{hole "stock" product.id}}`: a part of the page never cached, made for each request.
  handlebars.registerHelper('hole', function holeHelper(...args: unknown[]) {
    const helper = args.pop() as Handlebars.HelperOptions & { data?: Record<string, unknown>; loc?: hbs.AST.SourceLocation };
    const site: TagSite = { template: String(helper?.hash?.[TEMPLATE] ?? 'a template string'), line: helper?.loc?.start.line ?? 0 };
    const render = helper?.data?.[RENDER_STATE];
    if (!(render instanceof FragmentRender)) {
      throw new TemplateSyntaxError(
        `the 'hole' helper (hole ${describe(args[0])}) needs the page rendered with render() or expressEngine() from cachegrain/handlebars, by express-handlebars given to installExpressHandlebars(), or by @fastify/view given fastifyViewEngine(handlebars)`,
        undefined,
        site,
      );
    }
    return new handlebars.SafeString(render.hole(args[0], args.slice(1), site));
  });
}

/**
 * Adds `{{#cache timeout "name" vary… using="alias" tags=… stale=… lock=true}}…{{/cache}}` and
 * `{{hole "name" args…}}` to a Handlebars instance. Templates
 * compiled by that instance are checked when compiled, and a bare-word name (`sidebar`) is taken as
 * written. The compile option `srcName` names the template file in the tag's errors; partials
 * registered as text are named after their partial name.
 */
export function installCacheHelper(handlebars: HandlebarsInstance, options: CacheHelperOptions = {}): HandlebarsInstance {
  const { tagName: helperName, digests } = installerOptions(options, 'helperName', 'installCacheHelper');
  const target = handlebars as unknown as Record<PropertyKey, unknown>;
  if (target[INSTALLED] === helperName) return handlebars;
  target[INSTALLED] = helperName;
  const digested = digests ? digestsOf(handlebars) : undefined;
  handlebars.registerHelper(helperName, function cacheHelper(this: unknown, ...args: unknown[]) {
    const helper = args.pop() as Handlebars.HelperOptions & { data?: Record<string, unknown>; loc?: hbs.AST.SourceLocation };
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
    const render = helper.data?.[RENDER_STATE];
    if (!(render instanceof FragmentRender)) {
      throw new TemplateSyntaxError(
        `the '${helperName}' helper needs the page rendered with render() or expressEngine() from cachegrain/handlebars, by express-handlebars given to installExpressHandlebars(), or by @fastify/view given fastifyViewEngine(handlebars)`,
        String(name),
        site,
      );
    }
    const context = this;
    // The hash holds the keywords given (`using=`, `tags=`, `stale=`, `lock=`) under their own names.
    const keywords = helper.hash as TagKeywords;
    const bodyOf = () => {
      const data = snapshotData(helper.data);
      return () => String(helper.fn(context, { data }));
    };
    const digestKey = helper.hash[DIGEST_KEY] as string | undefined;
    if (digestKey !== undefined && digested !== undefined) render.useDigests(digested);
    const placeholder = render.tag({ timeout, name: String(name), varyOn, keywords, template: site.template, line: site.line, digest: digestKey }, bodyOf);
    return new handlebars.SafeString(placeholder);
  });
  installHitCompiler(handlebars, helperName);
  const compile = handlebars.compile.bind(handlebars);
  handlebars.compile = ((input: string | hbs.AST.Program, compileOptions?: CompileOptions & { srcName?: string }, runtimeEnv?: unknown) => {
    if (typeof input !== 'string' || CALLS_TEMPLATE_HELPERS.test(input)) registerTemplateHelpers(handlebars);
    if (typeof input !== 'string') return compile(input, compileOptions);
    // Handlebars compiles a partial given as text on first use, passing along the options of the
    // template that used it: its srcName would name the wrong file. A template compiled without one
    // (as @fastify/view compiles its pages) is no partial: it is named as a string is.
    const template = runtimeEnv === undefined ? (compileOptions?.srcName ?? 'a template string') : 'a partial';
    const program = parse(handlebars, { input, template }, compileOptions, helperName);
    const digestKey = digested?.keyOf(input, findHandlebarsDependencies(program));
    // A template keeps its source and name, so that a digest can read it as a partial.
    return Object.assign(compile(checked(program, helperName, template, digestKey), compileOptions), {
      [SOURCE]: input,
      [SITE]: template,
      [DIGESTS]: digested,
    });
  }) as typeof handlebars.compile;
  // A template precompiled elsewhere may call the template helpers without this instance's compile seeing its text.
  const template = handlebars.template.bind(handlebars);
  handlebars.template = ((spec: unknown) => {
    if (specCallsTemplateHelpers(spec)) registerTemplateHelpers(handlebars);
    return template(spec as never);
  }) as typeof handlebars.template;
  const registerPartial = handlebars.registerPartial.bind(handlebars) as (name: unknown, partial?: unknown) => void;
  handlebars.registerPartial = ((name: unknown, partial?: unknown) => {
    if (typeof name !== 'string') return registerPartial(name, partial);
    const source = sourceOf(partial);
    if (source !== undefined) digested?.learned(name, source);
    if (typeof partial !== 'string') {
      // Compiled elsewhere: it may call the template helpers without this instance's compile seeing it.
      registerTemplateHelpers(handlebars);
      digested?.library.named(partial, name);
      return registerPartial(name, partial);
    }
    // Compiled on first use, within a render whose helpers are set already: they must be there before.
    if (CALLS_TEMPLATE_HELPERS.test(partial)) registerTemplateHelpers(handlebars);
    const site = `partial '${name}'`;
    digested?.library.named({ [SITE]: site }, name);
    let compiled: Handlebars.TemplateDelegate | undefined;
    const lazily = (context: unknown, runtimeOptions?: Handlebars.RuntimeOptions) => {
      compiled ??= handlebars.compile(partial, { srcName: site } as CompileOptions);
      return compiled(context, runtimeOptions);
    };
    return registerPartial(name, Object.assign(lazily, { [SOURCE]: partial, [SITE]: site }));
  }) as typeof handlebars.registerPartial;
  return handlebars;
}

/**
 * The digest of the partial `name` of `handlebars` (or of a template it compiled) as it is now, the
 * tree of what it depends on and what could not be resolved: `makeTemplateFragmentKey(name, varyOn,
 * undefined, digest)` gives its fragments' keys.
 */
export function templateDigest(handlebars: HandlebarsInstance, template: string | Handlebars.TemplateDelegate): TemplateDigestReport {
  const digests = digestsOf(handlebars);
  if (typeof template === 'string') return digests.report(template);
  const source = sourceOf(template);
  if (source === undefined) throw new TypeError('templateDigest: the template was not compiled by a Handlebars instance given to installCacheHelper');
  return digests.reportOf(source, digests.library.nameOf((template as unknown as Record<PropertyKey, string>)[SITE]));
}

/** The template digests of `handlebars`, made the first time they are asked for. */
function digestsOf(handlebars: HandlebarsInstance): TemplateDigests<HandlebarsPartials> {
  const holder = handlebars as unknown as Record<PropertyKey, TemplateDigests<HandlebarsPartials> | undefined>;
  return (holder[DIGESTS] ??= new TemplateDigests(new HandlebarsPartials(handlebars), 'handlebars'));
}

/** The template digests a render of `template` (or one by `handlebars`) uses: those of an instance whose helper has digests on. */
function heldDigests(holder: object): TemplateDigests<HandlebarsPartials> | undefined {
  return (holder as Record<PropertyKey, TemplateDigests<HandlebarsPartials> | undefined>)[DIGESTS];
}

/** Renders a compiled template, fragments read in one round trip per cache. */
export function render(template: Handlebars.TemplateDelegate, context: unknown, runtimeOptions: Handlebars.RuntimeOptions = {}): Promise<string> {
  const digests = heldDigests(template);
  const fragments = new FragmentRender(digests);
  try {
    const compiled = template as unknown as Record<PropertyKey, string | undefined>;
    digests?.rendered(compiled[SITE], compiled[SOURCE]);
    const data = withRenderState(runtimeOptions.data, RENDER_STATE, fragments);
    // With `root` given, Handlebars takes the frame as it is rather than copying it once more.
    if (!('root' in data)) data.root = context;
    const output = template(context, { ...runtimeOptions, data });
    return Promise.resolve(fragments.finish(output));
  } catch (error) {
    return Promise.reject(withInstallHint(error));
  }
}

/**
 * `handlebars` as a view library that compiles each page and awaits what calling it answers is to
 * use it (`@fastify/view`: `engine: { handlebars: fastifyViewEngine(handlebars) }`): its pages render
 * as `render()` renders them, fragments resolved. A template it compiled that is called within a
 * render (a partial the library registered) renders as any partial does.
 */
export function fastifyViewEngine(handlebars: HandlebarsInstance): HandlebarsInstance {
  if ((handlebars as unknown as Record<PropertyKey, unknown>)[INSTALLED] === undefined) {
    throw new TypeError('fastifyViewEngine: the Handlebars instance has no cache helper: give it installCacheHelper(handlebars)');
  }
  const compile = (input: string, compileOptions?: CompileOptions) => {
    const template = handlebars.compile(input, compileOptions);
    const page = (context: unknown, runtimeOptions?: Handlebars.RuntimeOptions) =>
      runtimeOptions?.data?.[RENDER_STATE] instanceof FragmentRender ? template(context, runtimeOptions) : render(template, context, runtimeOptions);
    // What the compile gave the template (its source and name, for digests) goes with it.
    return Object.assign(page, template);
  };
  return Object.create(handlebars, { compile: { value: compile } }) as HandlebarsInstance;
}

/** Handlebars' error for a template that meets `{{#cache}}` on an instance without the helper, saying how to add it. */
function withInstallHint(error: unknown): unknown {
  if (error instanceof Error && error.message === 'Missing helper: "cache"') {
    error.message +=
      "; the 'cache' helper is added to a Handlebars instance by installCacheHelper(handlebars) from cachegrain/handlebars: call it before compiling";
  }
  return error;
}

export interface ExpressEngineOptions {
  /** A directory whose `.hbs`/`.handlebars` files become partials, named by their path without extension. */
  partialsDir?: string;
}

const EXPRESS_ENGINE_OPTIONS = optionShape<ExpressEngineOptions>({ partialsDir: true });

/** An Express view engine: `app.engine('hbs', expressEngine(handlebars, { partialsDir }))`. */
export function expressEngine(handlebars: HandlebarsInstance, options: ExpressEngineOptions = {}) {
  checkOptions(options, EXPRESS_ENGINE_OPTIONS, 'expressEngine');
  const compiled = new Map<string, Handlebars.TemplateDelegate>();
  let partialsLoaded = false;
  const loadPartials = () => {
    if (!partialsLoaded && options.partialsDir !== undefined) registerPartials(handlebars, options.partialsDir);
    partialsLoaded = true;
  };
  // With digests on, a page stored before a restart is checked against its partials on its first hit: they are read now.
  if (heldDigests(handlebars) !== undefined) {
    try {
      loadPartials();
    } catch {
      // The first render reads them again, and reports what fails.
    }
  }
  return function renderHandlebarsView(filePath: string, locals: { cache?: boolean }, callback: (error: unknown, html?: string) => void): void {
    try {
      loadPartials();
      let template = locals.cache ? compiled.get(filePath) : undefined;
      if (template === undefined) {
        template = handlebars.compile(readFileSync(filePath, 'utf8'), { srcName: filePath } as CompileOptions);
        if (locals.cache) compiled.set(filePath, template);
      }
      render(template, locals).then((html) => callback(null, html), callback);
    } catch (error) {
      callback(error);
    }
  };
}

/** The parts of an express-handlebars instance (`create()` from express-handlebars) the tag needs; its own types are loose. */
export interface ExpressHandlebarsLike {
  handlebars: object;
  render: (...args: any[]) => Promise<string>;
  renderView: (...args: any[]) => unknown;
  /** The Express view engine; express-handlebars binds it to renderView once, so it is replaced too. */
  engine: (...args: any[]) => unknown;
}

type ViewCallback = (error: Error | null, html?: string) => void;

/** The same, as express-handlebars 8 defines these members and its protected hooks. */
interface ExpressHandlebarsInternals {
  render(filePath: string, context?: object, options?: { data?: object }): Promise<string>;
  renderView(viewPath: string, options?: object | ViewCallback, callback?: ViewCallback): Promise<string> | undefined;
  engine: ExpressHandlebarsInternals['renderView'];
  _getFile(filePath: string, options?: object): Promise<string>;
  _compileTemplate(template: string, options?: object): Handlebars.TemplateDelegate;
  getPartials?(options?: object): Promise<Record<string, unknown>>;
}

/**
 * Makes an express-handlebars instance resolve `{{#cache}}` tags: `app.engine('hbs',
 * installExpressHandlebars(create({ ... })).engine)`. Installs the helper on its Handlebars; a view, its
 * layout and their partials are one render, their fragments read in one round trip per cache.
 */
export function installExpressHandlebars<T extends ExpressHandlebarsLike>(instance: T, options: CacheHelperOptions = {}): T {
  const handlebars = instance.handlebars as HandlebarsInstance;
  installCacheHelper(handlebars, options);
  const hooks = instance as unknown as ExpressHandlebarsInternals;
  // express-handlebars compiles a file's text without its path: the path is looked up by that text.
  const pathsByText = new Map<string, string>();
  const getFile = hooks._getFile.bind(instance);
  hooks._getFile = (filePath, fileOptions) =>
    getFile(filePath, fileOptions).then((text) => {
      pathsByText.set(text, filePath);
      return text;
    });
  hooks._compileTemplate = (text, compileOptions) => {
    const srcName = pathsByText.get(text);
    pathsByText.delete(text);
    // Untrimmed, unlike express-handlebars' own, so that line numbers stay true; its render trims the output.
    return handlebars.compile(text, { ...compileOptions, srcName } as CompileOptions);
  };
  // The partials it hands to each render are learned: a digest reads them, and one that changed is a reload.
  const getPartials = hooks.getPartials?.bind(instance);
  if (getPartials !== undefined) {
    hooks.getPartials = (partialsOptions) =>
      getPartials(partialsOptions).then((partials) => {
        const digests = heldDigests(handlebars);
        if (digests !== undefined) for (const [name, source] of digests.library.learn(partials)) digests.learned(name, source);
        return partials;
      });
  }
  const renderFile = hooks.render.bind(instance);
  const renderView = hooks.renderView.bind(instance) as (viewPath: string, options?: object) => Promise<string>;
  hooks.render = (filePath, context, renderOptions = {}) => {
    if (renderOptions.data !== undefined && RENDER_STATE in renderOptions.data) return renderFile(filePath, context, renderOptions);
    const fragments = new FragmentRender(heldDigests(handlebars));
    return renderFile(filePath, context, { ...renderOptions, data: withRenderState(renderOptions.data, RENDER_STATE, fragments) }).then((html) =>
      fragments.finish(html),
    );
  };
  hooks.renderView = (viewPath, viewOptions, callback) => {
    if (typeof viewOptions === 'function') [callback, viewOptions] = [viewOptions as ViewCallback, {}];
    const fragments = new FragmentRender(heldDigests(handlebars));
    const locals = (viewOptions ?? {}) as { data?: object };
    const rendered = renderView(viewPath, { ...locals, data: withRenderState(locals.data, RENDER_STATE, fragments) }).then((html) => {
      heldDigests(handlebars)?.rendered(viewPath);
      return fragments.finish(html);
    });
    if (callback === undefined) return rendered;
    rendered.then(
      (html) => callback(null, html),
      (error: Error) => callback(error),
    );
    return undefined;
  };
  hooks.engine = hooks.renderView;
  return instance;
}

function registerPartials(handlebars: HandlebarsInstance, directory: string): void {
  for (const entry of readdirSync(directory, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !/\.(hbs|handlebars)$/.test(entry.name)) continue;
    const file = join(entry.parentPath, entry.name);
    const name = relative(directory, file)
      .replace(/\.(hbs|handlebars)$/, '')
      .split(sep)
      .join('/');
    handlebars.registerPartial(name, handlebars.compile(readFileSync(file, 'utf8'), { srcName: file } as CompileOptions));
  }
}

/** Parses a template's text (`input`, of `template`); a tag left open fails naming its own line, not the end of the file. */
function parse(
  handlebars: HandlebarsInstance,
  { input, template }: { input: string; template: string },
  compileOptions: CompileOptions | undefined,
  helperName: string,
): hbs.AST.Program {
  try {
    return handlebars.parse(input, compileOptions as Parameters<HandlebarsInstance['parse']>[1]);
  } catch (error) {
    const line = unclosedTagLine(input, helperName);
    if (line !== undefined && /got 'EOF'|Expecting .*'EOF'|EOF/.test(String((error as Error).message))) {
      throw missingEndTag(helperName, `{{/${helperName}}}`, { template, line });
    }
    throw error;
  }
}

/** The line of the innermost `{{#cache}}` that no `{{/cache}}` closes, if any. */
function unclosedTagLine(input: string, helperName: string): number | undefined {
  const tags = new RegExp(`\\{\\{~?\\s*([#/])\\s*${helperName.replace(/[.*+\-?^${}()|[\]\\]/g, '\\$&')}(?![\\w$-])`, 'g');
  const open: number[] = [];
  for (const match of input.matchAll(tags)) {
    if (match[1] === '#') open.push(match.index);
    else open.pop();
  }
  const at = open.at(-1);
  return at === undefined ? undefined : input.slice(0, at).split('\n').length;
}

/** A copy of the `@data` frame chain as it is now (`#each` reuses and rewrites its frame). */
function snapshotData(data: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (data === undefined) return undefined;
  const copy: Record<string, unknown> = { ...data };
  if (data._parent !== undefined && data._parent !== null) copy._parent = snapshotData(data._parent as Record<string, unknown>);
  return copy;
}
