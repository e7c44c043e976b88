/**
 * What the `{% cache %}` tag changes of the copy of nunjucks an environment was made by, found among
 * the modules Node loaded beside its Environment class, never by name: its compiler learns to
 * compile the frame node a tag copies its variables from, to give `hole(…)` and `uncacheable(…)`
 * their template and line, and to say which template it compiles; its Template's render resolves
 * the fragments of each render given a callback. A tag's body is compiled by that compiler into a
 * function of its own. Written for nunjucks 3.2.4 to 3.x, whose compiler's and Template's insides these
 * changes know: another version is refused, read from the package the copy was loaded from.
 */
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import type { Environment } from 'nunjucks';
import { BoundedMemo } from '../memos/bounded-memo.js';
import { processMemo } from '../memos/process-memos.js';
import { type TemplateDigests, UNNAMED } from '../digests/index.js';
import { FragmentRender, TemplateSyntaxError, withRenderState } from '../fragments/index.js';
import { checkEngineVersion, type EngineVersions, packageVersionAt } from './engine-versions.js';
import type { NunjucksParsing } from './nunjucks-digests.js';
import { RENDER_STATE } from './template-tag.js';

/** Marks an environment with the tag installed, and nunjucks' Template render once it resolves fragments. */
export const INSTALLED = Symbol.for('cachegrain.nunjucks');
/** The global a template's `hole(…)` call is compiled to, given its template and line first. */
export const HOLE_CALL = '__cachegrainHole';
/** Marks a call that is all of an output. */
const OUTPUT_CALL = Symbol('cachegrain.nunjucks.output-call');
/** Where an environment keeps its template digests, and where a tag extension says its tags carry them. */
export const DIGESTS = Symbol.for('cachegrain.nunjucks.digests');

/** The versions of nunjucks whose compiler the tag's changes know. */
export const NUNJUCKS_VERSIONS: EngineVersions = {
  adapter: 'cachegrain/nunjucks',
  engine: 'Nunjucks',
  packageName: 'nunjucks',
  reliesOn: "the cache tag patches Nunjucks' compiler",
  from: '3.2.4',
  throughMajor: 3,
};

export type Callback = (error: Error | null, output?: string) => void;

/** Marks a render without a callback: nunjucks renders it synchronously, so a tag cannot be resolved. */
export class SyncRender {
  constructor(readonly template: string) {}
}

/**
 * Every top-level render of a template of an environment with the tag (`env.render`, `renderString`,
 * `getTemplate(…).render`, express's view) carries its own fragment state and resolves it before
 * calling back. Includes pass the state along in their context and go through unchanged.
 */
export function resolveFragmentsOnRender(Template: NunjucksInternals['Template']): void {
  const prototype = Template.prototype as Record<PropertyKey, unknown> & { render: TemplateRender };
  if (prototype[INSTALLED] === true) return;
  prototype[INSTALLED] = true;
  const templateRender = prototype.render;
  prototype.render = function renderResolvingFragments(this: { env?: Record<PropertyKey, unknown>; path?: string }, ctx, parentFrame, cb) {
    if (typeof ctx === 'function') [cb, ctx, parentFrame] = [ctx as Callback, {}, undefined];
    else if (typeof parentFrame === 'function') [cb, parentFrame] = [parentFrame as Callback, undefined];
    const context = ctx as object | null | undefined;
    if (this.env?.[INSTALLED] !== true || (context != null && RENDER_STATE in context)) return templateRender.call(this, context, parentFrame, cb);
    if (cb === undefined)
      return templateRender.call(this, withRenderState(context, RENDER_STATE, new SyncRender(this.path ?? 'a template string')), parentFrame);
    const done = cb;
    const digests = heldDigests(this.env);
    digests?.rendered(this.path, (this as { tmplStr?: string }).tmplStr);
    const fragments = new FragmentRender(digests);
    return templateRender.call(this, withRenderState(context, RENDER_STATE, fragments), parentFrame, (error, output) => {
      if (error) done(error);
      else
        Promise.resolve(fragments.finish(output!)).then(
          (html) => done(null, html),
          (failure: Error) => done(failure),
        );
    });
  };
}

type TemplateRender = (ctx?: unknown, parentFrame?: unknown, cb?: Callback) => string | undefined;

/** The code of a tag's body, compiled as a template of its own. */
export function compileBody(env: Environment, body: unknown, { compiler, nodes, transformer }: NunjucksInternals): string {
  const opts = (env as any).opts;
  const bodyCompiler = new compiler.Compiler('cache tag body', opts.throwOnUndefined);
  bodyCompiler.compile(transformer.transform(new nodes.Root(0, 0, [body]), (env as any).asyncFilters));
  return bodyCompiler.getCode();
}

export type CompiledBody = (env: Environment, runtime: NunjucksInternals['runtime'], context: unknown, frame: unknown) => Promise<string>;

/** Bodies made into functions, by their code: a template compiled again finds its bodies here. */
const bodies = processMemo('nunjucks: compiled tag bodies by code', new BoundedMemo<CompiledBody>(1000));

/** The function a body's code makes, made once per code. */
export function bodyFunction(code: string): CompiledBody {
  return bodies.remember(code, loadBody);
}

function loadBody(code: string): CompiledBody {
  const { root } = new Function(code)();
  return (bodyEnv, runtime, context, frame) =>
    new Promise((resolve, reject) => root(bodyEnv, context, frame, runtime, (error: unknown, output: string) => (error ? reject(error) : resolve(output))));
}

/** The template digests an environment keeps, if any were asked for. */
export function heldDigests(env: object | undefined): TemplateDigests | undefined {
  return (env as Record<PropertyKey, TemplateDigests | undefined> | undefined)?.[DIGESTS];
}

/**
 * The templates being compiled, innermost last, each by its path and the digest key of its tags: the
 * parser is never told which template it parses, and a tag's errors must name it (`tagName`: the
 * name of the environment's cache tag, when it has one). Compiling is synchronous, so a stack is exact.
 */
export const compiling: Array<{ template: string; digestKey: string | undefined; tagName: string | undefined }> = [];

/** The modules of each copy of nunjucks an environment was made by, keyed by its Environment class: a copy is nunjucks' own module, so held apart. */
const copies = new WeakMap<object, NunjucksInternals>();

/**
 * The copy of nunjucks `env` was made by, never another one found by name (the working directory,
 * a monorepo's root and this package's folder may each hold their own). Its modules are those loaded
 * beside the module that defines its Environment class; the first time, its version is checked and
 * the copy learns the frame node and to name the template it compiles.
 */
export function nunjucksOf(env: Environment): NunjucksInternals {
  for (let prototype = Object.getPrototypeOf(env); prototype !== null; prototype = Object.getPrototypeOf(prototype)) {
    const known = copies.get(prototype.constructor);
    if (known !== undefined) return known;
  }
  const loaded = createRequire(import.meta.url).cache;
  const environmentModule = Object.values(loaded).find(
    (module) => module !== undefined && basename(module.filename) === 'environment.js' && isEnvironmentOf(module.exports, env),
  );
  if (environmentModule === undefined) {
    throw new TypeError(
      'cachegrain/nunjucks: installCacheTag needs a nunjucks Environment (new nunjucks.Environment(…) or nunjucks.configure(…)) of a copy of nunjucks loaded by Node',
    );
  }
  checkEngineVersion(NUNJUCKS_VERSIONS, packageVersionAt(environmentModule.filename, NUNJUCKS_VERSIONS.packageName));
  const sibling = (name: string) => loaded[join(dirname(environmentModule.filename), `${name}.js`)]?.exports;
  const copy: NunjucksInternals = {
    compiler: sibling('compiler'),
    lexer: sibling('lexer'),
    nodes: sibling('nodes'),
    parser: sibling('parser'),
    runtime: sibling('runtime'),
    transformer: sibling('transformer'),
    Template: environmentModule.exports.Template,
    FrameReference: sibling('nodes').Literal.extend('CachegrainFrame'),
  };
  patchCompiler(copy);
  copies.set(environmentModule.exports.Environment, copy);
  return copy;
}

/**
 * The digest key of a template compiled from `source`, which the environment learns it as (a changed
 * source is a reload); none when the source cannot be parsed, as nunjucks' own compile then reports.
 */
function digestKeyOf(digests: TemplateDigests, source: string, template: string): string | undefined {
  let key: string;
  try {
    key = digests.keyOf(source);
  } catch {
    return undefined;
  }
  const name = digests.library.nameOf(template);
  if (name !== undefined) digests.learned(name, source);
  return key;
}

function isEnvironmentOf(exports: any, env: Environment): boolean {
  return typeof exports?.Environment === 'function' && typeof exports.Template === 'function' && env instanceof exports.Environment;
}

/**
 * Makes a copy of nunjucks compile the frame node, give the template functions their site, and say
 * which template it is compiling; for an environment whose tags carry digests, what the template
 * depends on goes into its tags' digest key.
 */
function patchCompiler({ compiler, nodes }: NunjucksInternals): void {
  // An expression node that compiles to the runtime frame, so the tag can copy the variables in scope.
  compiler.Compiler.prototype.compileCachegrainFrame = function compileCachegrainFrame(this: { _emit(code: string): void }) {
    this._emit('frame');
  };
  patchSitedCalls(compiler.Compiler.prototype, nodes);
  const compileTemplate = compiler.compile;
  compiler.compile = function compileNamed(this: unknown, ...args: unknown[]) {
    compiling.push(templateCompiled(args));
    try {
      return compileTemplate.apply(this, args);
    } finally {
      compiling.pop();
    }
  };
}

/** A template compile, from the arguments of nunjucks' `compile(source, asyncFilters, extensions, path)`: its name, its tags' digest key, and the cache tag's name. */
function templateCompiled([source, , extensions, path]: unknown[]): (typeof compiling)[number] {
  const template = typeof path === 'string' ? path : UNNAMED;
  const installed = extensions as Array<{ tags?: string[] } & Record<PropertyKey, unknown>> | undefined;
  const digests = installed?.find((extension) => extension[DIGESTS] !== undefined)?.[DIGESTS] as TemplateDigests | undefined;
  return {
    template,
    digestKey: digests === undefined || typeof source !== 'string' ? undefined : digestKeyOf(digests, source, template),
    tagName: installed?.find((extension) => DIGESTS in extension)?.tags?.[0],
  };
}

/**
 * Makes the compiler call `uncacheable(why)` and `hole(name, …)` with their template and line too,
 * for the reasons and errors they give; the parsed call is left as it was. `uncacheable` only as an
 * output: its mark in a variable, a condition or a filter would be dropped or changed, and the page kept.
 */
function patchSitedCalls(prototype: Record<string, any>, nodes: NunjucksInternals['nodes']): void {
  // A call that is all of an output (`{{ call(…) }}`) is marked so, as compileFunCall cannot see where it stands.
  const compileOutput = prototype.compileOutput;
  prototype.compileOutput = function compileMarkedOutput(this: unknown, node: any, frame: unknown) {
    for (const child of node.children) if (child instanceof nodes.FunCall) child[OUTPUT_CALL] = true;
    return compileOutput.call(this, node, frame);
  };
  const compileFunCall = prototype.compileFunCall;
  prototype.compileFunCall = function compileSitedCall(this: unknown, node: any, frame: unknown) {
    const compile = compiling.at(-1);
    const name = node.name?.typename === 'Symbol' ? node.name.value : undefined;
    if (compile?.tagName === undefined || (name !== 'uncacheable' && name !== 'hole' && name !== compile.tagName))
      return compileFunCall.call(this, node, frame);
    const site = { template: compile.template, line: node.lineno + 1 };
    if (name === compile.tagName) {
      throw new TemplateSyntaxError(`'${name}' is a tag, not a function: {% ${name} 60 "sidebar" %}…{% end${name} %}`, undefined, site);
    }
    if (name === 'uncacheable' && node[OUTPUT_CALL] !== true) {
      throw new TemplateSyntaxError(
        'uncacheable() is written as an output of its own, {{ uncacheable("why") }} or {% uncacheable "why" %}: its mark must reach the page, ' +
          'and kept in a variable, tested or filtered it would be dropped or changed',
        undefined,
        site,
      );
    }
    const literal = (value: unknown) => new nodes.Literal(node.lineno, node.colno, value);
    const sited =
      name === 'hole'
        ? [literal(site.template), literal(site.line), ...node.args.children]
        : [...node.args.children, literal(site.template), literal(site.line)];
    const callee = name === 'hole' ? new nodes.Symbol(node.name.lineno, node.name.colno, HOLE_CALL) : node.name;
    return compileFunCall.call(this, new nodes.FunCall(node.lineno, node.colno, callee, new nodes.NodeList(node.args.lineno, node.args.colno, sited)), frame);
  };
}

export interface NunjucksInternals {
  compiler: { Compiler: any; compile: (...args: unknown[]) => string };
  lexer: Record<string, string> & NunjucksParsing['lexer'];
  nodes: Record<string, any>;
  parser: NunjucksParsing['parser'] & { Parser: new (tokens: object) => any };
  runtime: { SafeString: new (text: string) => unknown; Frame: new () => any };
  transformer: { transform(ast: unknown, asyncFilters: string[], name?: string): unknown };
  Template: { prototype: object };
  FrameReference: any;
}
