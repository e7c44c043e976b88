/**
 * The `{{#cache}}` block helper for Handlebars (SPEC §5): hands the fragment core the evaluated
 * arguments and a body to render later. Surprise: `#each` rewrites one data frame in place, so the
 * helper keeps a copy of `@index`, `@key` and their parents as they were when it ran.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import type Handlebars from 'handlebars';
import { FragmentRender, tooFewArguments } from '../src/fragments/index.js';

type HandlebarsInstance = typeof Handlebars;

/** Where a render's fragment state travels in the `@data` frames (partials and blocks copy it along). */
const RENDER = '__cachegrain';

export interface CacheHelperOptions {
  /** The helper's name. @default 'cache' */
  helperName?: string;
}

/**
 * Adds `{{#cache timeout "name" vary… using="alias"}}…{{/cache}}` to a Handlebars instance. Templates
 * compiled by that instance are checked when compiled, and a bare-word name (`sidebar`) is taken as written.
 */
export function installCacheHelper(handlebars: HandlebarsInstance, options: CacheHelperOptions = {}): HandlebarsInstance {
  const helperName = options.helperName ?? 'cache';
  handlebars.registerHelper(helperName, function cacheHelper(this: unknown, ...args: unknown[]) {
    const helper = args.pop() as Handlebars.HelperOptions & { data?: Record<string, unknown> };
    if (args.length < 2) throw tooFewArguments(helperName);
    const [timeout, name, ...varyOn] = args;
    if (typeof name !== 'string' && typeof name !== 'number') {
      throw new TypeError(`the '${helperName}' helper's fragment name must be a literal, as in {{#${helperName} 300 "sidebar"}} (got ${String(name)})`);
    }
    const render = helper.data?.[RENDER];
    if (!(render instanceof FragmentRender)) {
      throw new Error(`the '${helperName}' helper needs the page rendered with render() from cachegrain/handlebars (fragment '${String(name)}')`);
    }
    const context = this;
    const data = snapshotData(helper.data);
    const using = Object.hasOwn(helper.hash, 'using') ? helper.hash.using : undefined;
    const placeholder = render.tag(timeout, String(name), varyOn, using, () => String(helper.fn(context, { data })));
    return new handlebars.SafeString(placeholder);
  });
  const compile = handlebars.compile.bind(handlebars);
  handlebars.compile = ((input: string | hbs.AST.Program, compileOptions?: CompileOptions) =>
    compile(typeof input === 'string' ? checked(handlebars.parse(input, compileOptions as Parameters<HandlebarsInstance["parse"]>[1]), helperName) : input, compileOptions)) as typeof handlebars.compile;
  return handlebars;
}

/** Renders a compiled template, fragments read in one round trip per cache. */
export function render(template: Handlebars.TemplateDelegate, context: unknown, runtimeOptions: Handlebars.RuntimeOptions = {}): Promise<string> {
  const fragments = new FragmentRender();
  try {
    const output = template(context, { ...runtimeOptions, data: { ...runtimeOptions.data, [RENDER]: fragments } });
    return fragments.finish(output);
  } catch (error) {
    return Promise.reject(error);
  }
}

export interface ExpressEngineOptions {
  /** A directory whose `.hbs`/`.handlebars` files become partials, named by their path without extension. */
  partialsDir?: string;
}

/** An Express view engine: `app.engine('hbs', expressEngine(handlebars, { partialsDir }))`. */
export function expressEngine(handlebars: HandlebarsInstance, options: ExpressEngineOptions = {}) {
  const compiled = new Map<string, Handlebars.TemplateDelegate>();
  let partialsLoaded = false;
  return function renderHandlebarsView(filePath: string, locals: { cache?: boolean }, callback: (error: unknown, html?: string) => void): void {
    try {
      if (!partialsLoaded && options.partialsDir !== undefined) registerPartials(handlebars, options.partialsDir);
      partialsLoaded = true;
      let template = locals.cache ? compiled.get(filePath) : undefined;
      if (template === undefined) {
        template = handlebars.compile(readFileSync(filePath, 'utf8'));
        if (locals.cache) compiled.set(filePath, template);
      }
      render(template, locals).then((html) => callback(null, html), callback);
    } catch (error) {
      callback(error);
    }
  };
}

function registerPartials(handlebars: HandlebarsInstance, directory: string): void {
  for (const entry of readdirSync(directory, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !/\.(hbs|handlebars)$/.test(entry.name)) continue;
    const file = join(entry.parentPath, entry.name);
    const name = relative(directory, file).replace(/\.(hbs|handlebars)$/, '').split(sep).join('/');
    handlebars.registerPartial(name, handlebars.compile(readFileSync(file, 'utf8')));
  }
}

/** Fails on a tag with too few arguments; turns a bare-word fragment name into the string it spells. */
function checkTags(program: hbs.AST.Program | undefined, helperName: string): void {
  for (const statement of program?.body ?? []) {
    const block = statement as hbs.AST.BlockStatement;
    if (block.type === 'BlockStatement' && (block.path as hbs.AST.PathExpression).original === helperName) {
      if (block.params.length < 2) throw tooFewArguments(helperName);
      const name = block.params[1] as hbs.AST.PathExpression;
      if (name.type === 'PathExpression' && !name.data) {
        block.params[1] = { type: 'StringLiteral', value: name.original, original: name.original, loc: name.loc } as hbs.AST.StringLiteral;
      }
    }
    checkTags(block.program, helperName);
    checkTags(block.inverse, helperName);
  }
}

function checked(program: hbs.AST.Program, helperName: string): hbs.AST.Program {
  checkTags(program, helperName);
  return program;
}

/** A copy of the `@data` frame chain as it is now (`#each` reuses and rewrites its frame). */
function snapshotData(data: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (data === undefined) return undefined;
  const copy: Record<string, unknown> = { ...data };
  if (data._parent !== undefined && data._parent !== null) copy._parent = snapshotData(data._parent as Record<string, unknown>);
  return copy;
}
