/**
 * The `{% cache %}` tag for Nunjucks: parses the tag and hands the fragment core its
 * evaluated arguments and a body to render later. `installCacheTag` also makes the environment's own
 * renders (and so `nunjucks.configure(…, { express })` with `res.render`) resolve fragments when given
 * a callback, by way of nunjucks' Template render, shared by every environment of that copy of nunjucks. Surprise: the body is compiled as a template of its own and runs
 * against a copy of the variables in scope when the tag ran, because nunjucks keeps loop variables in
 * function-wide JS variables that a later call would see at their last value.
 */
// Node's types (Buffer, node:http, node:diagnostics_channel…) appear in these declarations: a consumer need not name them in `types`.
/// <reference types="node" preserve="true" />
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import type { Environment } from 'nunjucks';
import {
  FragmentRender,
  missingEndTag,
  nonIntegerTimeout,
  type FragmentTag,
  type TagSite,
  TemplateSyntaxError,
  tagSiteOf,
  tooFewArguments,
  uncacheableOutput,
  withRenderState,
} from '../fragments/index.js';
import { BoundedMemo } from '../common/bounded-memo.js';
import { processMemo } from '../common/process-memos.js';
import { type TemplateDigestReport, TemplateDigests, UNNAMED } from '../digests/index.js';
import { parseTagArguments } from './nunjucks-arguments.js';
import { nunjucksLibrary, type NunjucksParsing, TAG_BODY } from './nunjucks-digests.js';
import { installerOptions, RENDER_STATE } from './template-tag.js';

const INSTALLED = Symbol.for('cachegrain.nunjucks');
/** The global a template's `hole(…)` call is compiled to, given its template and line first. */
const HOLE_CALL = '__cachegrainHole';
/** Marks a call that is all of an output. */
const OUTPUT_CALL = Symbol('cachegrain.nunjucks.output-call');
/** Where an environment keeps its template digests, and where a tag extension says its tags carry them. */
const DIGESTS = Symbol.for('cachegrain.nunjucks.digests');

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
  const { runtime, FrameReference } = copy;
  const extension = {
    tags: [tagName],
    [DIGESTS]: digests ? digestsOf(env) : undefined,
    // nodes and lexer are those of the copy of nunjucks parsing: its parser only takes nodes made by that copy.
    parse(parser: any, nodes: NunjucksInternals['nodes'], lexer: NunjucksInternals['lexer']) {
      const start = parser.nextToken();
      const compile = compiling.at(-1);
      const site: TagSite = { template: compile?.template ?? UNNAMED, line: start.lineno + 1 };
      const at = (node: any) => new node(start.lineno, start.colno);
      const literal = (value: unknown) => new nodes.Literal(start.lineno, start.colno, value);
      // The tag, as its template evaluates it each time: one object, its constants written into it.
      const call = at(nodes.Dict);
      const field = (name: string, value: unknown) => call.addChild(new nodes.Pair(start.lineno, start.colno, literal(name), value));
      if (parser.peekToken().type === lexer.TOKEN_BLOCK_END) parser.fail(tooFewArguments(tagName).message, start.lineno, start.colno);
      const timeoutToken = parser.peekToken();
      const timeout =
        timeoutToken.value === 'None' ? (parser.nextToken(), new nodes.Literal(timeoutToken.lineno, timeoutToken.colno, null)) : parser.parseExpression();
      // `5m` lexes as a variable's name that no variable can have: a timeout written with a unit.
      if (timeout instanceof nodes.Symbol && !/^[A-Za-z_$][\w$]*$/.test(timeout.value)) {
        parser.fail(nonIntegerTimeout(timeout.value).message, timeoutToken.lineno, timeoutToken.colno);
      }
      field('timeout', timeout);
      if (parser.peekToken().type === lexer.TOKEN_BLOCK_END) parser.fail(tooFewArguments(tagName).message, start.lineno, start.colno);
      field('name', literal(parseName(parser, lexer)));
      const varyOn = at(nodes.Array);
      // `using=`, `tags=`, `stale=`, `lock=`, `contexts=`, `if=` after the vary-on values, in any order.
      const keywords = at(nodes.Dict);
      parseTagArguments({ parser, Parser: copy.parser.Parser, nodes, lexer }, tagName, varyOn, keywords);
      field('keywords', keywords);
      field('varyOn', varyOn);
      field('template', literal(site.template));
      field('line', literal(site.line));
      if (compile?.digestKey !== undefined) field('digest', literal(compile.digestKey));
      const unclosed = (before = '') => parser.fail(`${missingEndTag(tagName, `{% end${tagName} %}`).message}${before}`, start.lineno, start.colno);
      let body: unknown;
      try {
        body = parser.parseUntilBlocks(`end${tagName}`);
      } catch (error) {
        // The end tag of a block, loop or condition around this tag came first.
        const enclosing = /unknown block tag: (end\w+)/.exec((error as Error).message)?.[1];
        if (enclosing === undefined) throw error;
        unclosed(` before {% ${enclosing} %}`);
      }
      if (parser.peekToken() === null) unclosed();
      parser.advanceAfterBlockEnd();
      // The body's code travels as a string in the template's own code, so it lives as long as the template does.
      const args = [at(FrameReference), call, literal(compileBody(env, body, copy))];
      const extensionCall = new nodes.CallExtension(extension, 'run', new nodes.NodeList(start.lineno, start.colno, args), []);
      extensionCall[TAG_BODY] = body;
      return extensionCall;
    },
    /** `bodyCode`: the code of the tag's body, rendered on a miss with the variables of this moment. */
    run(context: any, frame: any, call: FragmentTag, bodyCode: string) {
      const render = context.lookup(RENDER_STATE) as FragmentRender | SyncRender | undefined;
      if (!(render instanceof FragmentRender)) throw needsAsyncRender(tagName, `fragment '${call.name}'`, tagSiteOf(call)!, render);
      const bodyOf = () => {
        const body = bodies.remember(bodyCode, loadBody);
        const scope = snapshotContext(context);
        const variables = snapshotFrame(frame, runtime);
        return () => body(env, runtime, scope, variables).catch((error) => Promise.reject(bodyError(error)));
      };
      return new runtime.SafeString(render.tag(call, bodyOf));
    },
  };
  env.addExtension(`cachegrain:${tagName}`, extension);
  // `{% hole "stock" product.id %}`: a part of the page never cached, made for each request.
  const holeTag = {
    tags: ['hole'],
    parse(parser: any, nodes: NunjucksInternals['nodes'], lexer: NunjucksInternals['lexer']) {
      const start = parser.nextToken();
      const site: TagSite = { template: compiling.at(-1)?.template ?? 'a template string', line: start.lineno + 1 };
      const values = new nodes.Array(start.lineno, start.colno);
      while (!parser.skip(lexer.TOKEN_BLOCK_END)) {
        values.addChild(parser.parseExpression());
        parser.skip(lexer.TOKEN_COMMA);
      }
      if (values.children.length === 0) parser.fail(`'hole' tag needs the name of a hole, as in {% hole "cart" %}`, start.lineno, start.colno);
      const literal = (value: unknown) => new nodes.Literal(start.lineno, start.colno, value);
      return new nodes.CallExtension(holeTag, 'run', new nodes.NodeList(start.lineno, start.colno, [literal(site.template), literal(site.line), values]), []);
    },
    run(context: any, template: string, line: number, values: unknown[]) {
      const site = { template, line };
      const render = context.lookup(RENDER_STATE) as FragmentRender | SyncRender | undefined;
      if (!(render instanceof FragmentRender)) throw needsAsyncRender('hole', `hole '${String(values[0])}'`, site, render);
      return new runtime.SafeString(render.hole(values[0], values.slice(1), site));
    },
  };
  env.addExtension('cachegrain:hole', holeTag);
  // `{{ hole("cart") }}` is the tag written as a call; the compiler gives it its template and line.
  env.addGlobal(HOLE_CALL, function holeCall(this: unknown, template: string, line: number, ...values: unknown[]) {
    return holeTag.run(this, template, line, values);
  });
  // `{{ uncacheable("why") }}`: the fragment around it, and the page, may not be kept. Its template and line are added by the compiler.
  const uncacheable = (why: unknown, template?: string, line?: number) =>
    new runtime.SafeString(uncacheableOutput(why, template === undefined ? undefined : { template, line: line! }));
  env.addGlobal('uncacheable', uncacheable);
  // `{% uncacheable "why" %}`, as Liquid writes it.
  const uncacheableTag = {
    tags: ['uncacheable'],
    parse(parser: any, nodes: NunjucksInternals['nodes']) {
      const start = parser.nextToken();
      const why = parser.parseExpression();
      parser.advanceAfterBlockEnd(start.value);
      const literal = (value: unknown) => new nodes.Literal(start.lineno, start.colno, value);
      const site = [literal(compiling.at(-1)?.template ?? UNNAMED), literal(start.lineno + 1)];
      return new nodes.CallExtension(uncacheableTag, 'run', new nodes.NodeList(start.lineno, start.colno, [why, ...site]), []);
    },
    run: (_context: unknown, why: unknown, template: string, line: number) => uncacheable(why, template, line),
  };
  env.addExtension('cachegrain:uncacheable', uncacheableTag);
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

type Callback = (error: Error | null, output?: string) => void;

/** Marks a render without a callback: nunjucks renders it synchronously, so a tag cannot be resolved. */
class SyncRender {
  constructor(readonly template: string) {}
}

/**
 * Every top-level render of a template of an environment with the tag (`env.render`, `renderString`,
 * `getTemplate(…).render`, express's view) carries its own fragment state and resolves it before
 * calling back. Includes pass the state along in their context and go through unchanged.
 */
function resolveFragmentsOnRender(Template: NunjucksInternals['Template']): void {
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

/** The error of a tag (`what`: `fragment 'sidebar'`, `hole 'cart'`) rendered by a render that cannot resolve it. */
function needsAsyncRender(tagName: string, what: string, site: TagSite, render: unknown): Error {
  if (render instanceof SyncRender) {
    return new Error(
      `the '${tagName}' tag (${what}, ${site.template}, line ${site.line}) cannot render synchronously: ` +
        `render '${render.template}' with a callback (env.render(name, context, callback), env.renderString(source, context, callback), ` +
        'template.render(context, callback)), or use render() from cachegrain/nunjucks',
    );
  }
  return new Error(
    `the '${tagName}' tag (${what}, ${site.template}, line ${site.line}) needs the page rendered with render() or renderString() from cachegrain/nunjucks, or by an environment given to installCacheTag`,
  );
}

/** The fragment name: a quoted string, or the bare word as written (`side-bar`, `a.b`: touching tokens joined). */
function parseName(parser: any, lexer: NunjucksInternals['lexer']): string {
  const first = parser.nextToken();
  if (first.type === lexer.TOKEN_STRING) return first.value;
  let name = String(first.value);
  for (;;) {
    const next = parser.nextToken(true);
    if (next === null || next.type === lexer.TOKEN_WHITESPACE || next.type === lexer.TOKEN_BLOCK_END) {
      parser.pushToken(next);
      return name;
    }
    name += next.type === lexer.TOKEN_STRING ? JSON.stringify(next.value) : next.value;
  }
}

/** The code of a tag's body, compiled as a template of its own. */
function compileBody(env: Environment, body: unknown, { compiler, nodes, transformer }: NunjucksInternals): string {
  const opts = (env as any).opts;
  const bodyCompiler = new compiler.Compiler('cache tag body', opts.throwOnUndefined);
  bodyCompiler.compile(transformer.transform(new nodes.Root(0, 0, [body]), (env as any).asyncFilters));
  return bodyCompiler.getCode();
}

type CompiledBody = (env: Environment, runtime: NunjucksInternals['runtime'], context: unknown, frame: unknown) => Promise<string>;

/** Bodies made into functions, by their code: a template compiled again finds its bodies here. */
const bodies = processMemo('nunjucks: compiled tag bodies by code', new BoundedMemo<CompiledBody>(1000));

function loadBody(code: string): CompiledBody {
  const { root } = new Function(code)();
  return (bodyEnv, runtime, context, frame) =>
    new Promise((resolve, reject) => root(bodyEnv, context, frame, runtime, (error: unknown, output: string) => (error ? reject(error) : resolve(output))));
}

/**
 * A body's error as thrown: the fragment's error names the template and the tag's line, so nunjucks'
 * wrapper, which would name the template again, is taken off; one located in an include keeps its own.
 */
function bodyError(error: unknown): unknown {
  const wrapped = error as { Update?: unknown; firstUpdate?: boolean; cause?: unknown } | null;
  if (typeof wrapped?.Update !== 'function' || wrapped.firstUpdate !== true) return error;
  return wrapped.cause ?? error;
}

/** The template variables as they are now: a later `set` must not change a body still to render. */
function snapshotContext(context: any): unknown {
  const copy = Object.create(context);
  copy.ctx = { ...context.ctx };
  return copy;
}

/** Every variable in scope (loop, macro, `set`) flattened into one frame; `loop` is copied, as each iteration rewrites it. */
function snapshotFrame(frame: any, runtime: NunjucksInternals['runtime']): unknown {
  const chain: any[] = [];
  for (let current = frame; current; current = current.parent) chain.push(current);
  const copy = new runtime.Frame();
  for (let i = chain.length - 1; i >= 0; i--) Object.assign(copy.variables, chain[i].variables);
  if (copy.variables.loop !== undefined) copy.variables.loop = { ...copy.variables.loop };
  return copy;
}

/** The template digests an environment keeps, if any were asked for. */
function heldDigests(env: object | undefined): TemplateDigests | undefined {
  return (env as Record<PropertyKey, TemplateDigests | undefined> | undefined)?.[DIGESTS];
}

/**
 * The templates being compiled, innermost last, each by its path and the digest key of its tags: the
 * parser is never told which template it parses, and a tag's errors must name it (`tagName`: the
 * name of the environment's cache tag, when it has one). Compiling is synchronous, so a stack is exact.
 */
const compiling: Array<{ template: string; digestKey: string | undefined; tagName: string | undefined }> = [];

/** The modules of each copy of nunjucks an environment was made by, keyed by its Environment class: a copy is nunjucks' own module, so held apart. */
const copies = new WeakMap<object, NunjucksInternals>();

/**
 * The copy of nunjucks `env` was made by, never another one found by name (the working directory,
 * a monorepo's root and this package's folder may each hold their own). Its modules are those loaded
 * beside the module that defines its Environment class; the first time, the copy learns the frame
 * node and to name the template it compiles.
 */
function nunjucksOf(env: Environment): NunjucksInternals {
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
  teach(copy);
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
 * Makes a copy of nunjucks compile the frame node, and say which template it is compiling; for an
 * environment whose tags carry digests, what the template depends on goes into its tags' digest key.
 */
function teach({ compiler, nodes }: NunjucksInternals): void {
  // An expression node that compiles to the runtime frame, so the tag can copy the variables in scope.
  compiler.Compiler.prototype.compileCachegrainFrame = function compileCachegrainFrame(this: { _emit(code: string): void }) {
    this._emit('frame');
  };
  // A call that is all of an output (`{{ call(…) }}`) is marked so, as compileFunCall cannot see where it stands.
  const compileOutput = compiler.Compiler.prototype.compileOutput;
  compiler.Compiler.prototype.compileOutput = function compileMarkedOutput(this: unknown, node: any, frame: unknown) {
    for (const child of node.children) if (child instanceof nodes.FunCall) child[OUTPUT_CALL] = true;
    return compileOutput.call(this, node, frame);
  };
  // `uncacheable(why)` and `hole(name, …)` are called with their template and line too, for the reasons
  // and errors they give; the parsed call is left as it was. `uncacheable` only as an output: its mark
  // in a variable, a condition or a filter would be dropped or changed, and the page kept.
  const compileFunCall = compiler.Compiler.prototype.compileFunCall;
  compiler.Compiler.prototype.compileFunCall = function compileSitedCall(this: unknown, node: any, frame: unknown) {
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
  const compileTemplate = compiler.compile;
  compiler.compile = function compileNamed(this: unknown, ...args: unknown[]) {
    const [source, , extensions, path] = args;
    const template = typeof path === 'string' ? path : UNNAMED;
    const digests = (extensions as Array<Record<PropertyKey, unknown>> | undefined)?.find((extension) => extension[DIGESTS] !== undefined)?.[DIGESTS] as
      TemplateDigests | undefined;
    compiling.push({
      template,
      digestKey: digests === undefined || typeof source !== 'string' ? undefined : digestKeyOf(digests, source, template),
      tagName: (extensions as Array<{ tags?: string[] } & Record<PropertyKey, unknown>> | undefined)?.find((extension) => DIGESTS in extension)?.tags?.[0],
    });
    try {
      return compileTemplate.apply(this, args);
    } finally {
      compiling.pop();
    }
  };
}

interface NunjucksInternals {
  compiler: { Compiler: any; compile: (...args: unknown[]) => string };
  lexer: Record<string, string> & NunjucksParsing['lexer'];
  nodes: Record<string, any>;
  parser: NunjucksParsing['parser'] & { Parser: new (tokens: object) => any };
  runtime: { SafeString: new (text: string) => unknown; Frame: new () => any };
  transformer: { transform(ast: unknown, asyncFilters: string[], name?: string): unknown };
  Template: { prototype: object };
  FrameReference: any;
}
