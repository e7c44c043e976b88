/**
 * The `{{#cache}}` block helper for Handlebars, installed on an instance: the helper and its
 * template helpers are what a render calls (handlebars-helpers.ts), the instance's compile checks
 * each template's tags as it parses them (handlebars-checks.ts) and its compiler asks for kept hits
 * before calling the helper (handlebars-compiler.ts); here are the install and the renders that
 * resolve a page's fragments.
 */
// Node's types (Buffer, node:http, node:diagnostics_channel…) appear in these declarations: a consumer need not name them in `types`.
/// <reference types="node" preserve="true" />
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import type Handlebars from 'handlebars';
import { FragmentRender, withRenderState } from '../fragments/index.js';
import { type TemplateDigestReport, TemplateDigests } from '../digests/index.js';
import { checkOptions, optionShape } from '../options/option-rules.js';
import { HandlebarsPartials, SITE, SOURCE, sourceOf } from './handlebars-digests.js';
import { checkHandlebarsVersion, DIGESTS, installHitCompiler, patchCompile } from './handlebars-compiler.js';
import { CALLS_TEMPLATE_HELPERS, cacheHelper, registerTemplateHelpers } from './handlebars-helpers.js';
import { installerOptions, RENDER_STATE } from './template-tag.js';

type HandlebarsInstance = typeof Handlebars;

const INSTALLED = Symbol.for('cachegrain.handlebars');

export interface CacheHelperOptions {
  /** The helper's name. @default 'cache' */
  helperName?: string;
  /**
   * Fragment keys carry a digest of the template that holds the tag and of every partial it calls,
   * transitively: editing any of them renews its fragments. @default false
   */
  digests?: boolean;
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
  checkHandlebarsVersion(handlebars);
  target[INSTALLED] = helperName;
  const digested = digests ? digestsOf(handlebars) : undefined;
  handlebars.registerHelper(helperName, cacheHelper(handlebars, helperName, digested));
  installHitCompiler(handlebars, helperName);
  patchCompile(handlebars, helperName, digested);
  learnPartials(handlebars, digested);
  return handlebars;
}

/**
 * Makes `handlebars.registerPartial` tell the digests each partial's source and name, and compile a
 * partial given as text on first use, named after its partial name, the template helpers it calls
 * registered before the render that uses it.
 */
function learnPartials(handlebars: HandlebarsInstance, digested: TemplateDigests<HandlebarsPartials> | undefined): void {
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
  compileWithPaths(hooks, handlebars);
  learnRenderPartials(hooks, handlebars);
  resolveFragmentsOfRenders(hooks, handlebars);
  return instance;
}

/**
 * express-handlebars compiles a file's text without its path: the path is looked up by that text, as
 * its file was read, and given to the compile as its `srcName`.
 */
function compileWithPaths(hooks: ExpressHandlebarsInternals, handlebars: HandlebarsInstance): void {
  const pathsByText = new Map<string, string>();
  const getFile = hooks._getFile.bind(hooks);
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
}

/** The partials express-handlebars hands to each render are learned: a digest reads them, and one that changed is a reload. */
function learnRenderPartials(hooks: ExpressHandlebarsInternals, handlebars: HandlebarsInstance): void {
  const getPartials = hooks.getPartials?.bind(hooks);
  if (getPartials === undefined) return;
  hooks.getPartials = (partialsOptions) =>
    getPartials(partialsOptions).then((partials) => {
      const digests = heldDigests(handlebars);
      if (digests !== undefined) for (const [name, source] of digests.library.learn(partials)) digests.learned(name, source);
      return partials;
    });
}

/** Each render of a file or view that no render holds yet is one fragment render: a view, its layout and their partials together. */
function resolveFragmentsOfRenders(hooks: ExpressHandlebarsInternals, handlebars: HandlebarsInstance): void {
  const renderFile = hooks.render.bind(hooks);
  const renderView = hooks.renderView.bind(hooks) as (viewPath: string, options?: object) => Promise<string>;
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
