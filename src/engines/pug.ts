/**
 * `+cache(600, 'sidebar', user.id)` for Pug: a mixin-style call whose indented block is the fragment's
 * body, with keywords as its attributes (`+cache(600, 'sidebar', user.id)(tags='user:' + user.id)`),
 * and `+hole('name', …args)` and `+uncacheable('why')` beside it. A plugin rewrites each call into code
 * as Pug compiles it; installed on the Pug module, whose `compile` every render goes through, a
 * template holding a call answers a promise of its page, its fragments resolved. Surprise: Pug's
 * `each` declares its variables once per loop (`var`), so a body keeps the loop's values as they were
 * when the tag ran; any other variable it reads, it reads as it is once the page is done.
 */
// Node's types (Buffer, node:http, node:diagnostics_channel…) appear in these declarations: a consumer need not name them in `types`.
/// <reference types="node" preserve="true" />
import { describe } from '../common/cache-keys.js';
import {
  FragmentRender,
  missingEndTag,
  type TagKeywords,
  type TagSite,
  TemplateSyntaxError,
  tooFewArguments,
  uncacheableOutput,
  unknownKeyword,
  withRenderState,
} from '../fragments/index.js';
import { makePugDigests, PugCompileDigests, type PugDigests, pugDigests } from './pug-digests.js';
import { installerOptions, RENDER_STATE } from './template-tag.js';
import { callsFunction, isOnlyCall, placeTemplateCalls } from './template-code.js';

export { templateDigest } from './pug-digests.js';

/** What of the Pug module the tag uses; `import pug from 'pug'` has it. */
export interface PugLike {
  compile(source: string, options?: object): (locals?: object) => unknown;
  render(source: string, options?: object, callback?: (error: unknown, html?: string) => void): unknown;
  renderFile(path: string, options?: object, callback?: (error: unknown, html?: string) => void): unknown;
}

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

/** The parts of Pug's AST the rewrite reads and writes. */
interface PugNode {
  type: string;
  line?: number;
  filename?: string;
  nodes?: PugNode[];
  block?: PugNode | null;
  name?: string;
  args?: string | null;
  call?: boolean;
  attrs?: Array<{ name: string; val: string | boolean }>;
  attributeBlocks?: unknown[];
  val?: string;
  key?: string;
  buffer?: boolean;
  mustEscape?: boolean;
  isInline?: boolean;
  [child: string]: unknown;
}

/**
 * Makes `pug` (the default export of 'pug') compile `+cache(timeout, 'name', vary…)(keywords)` with
 * an indented block, `+hole('name', …args)` and `+uncacheable('why')`. A template holding one returns a
 * promise of its page (`renderFile` and `render` given a callback call it with the page, and so does
 * Express's `app.set('view engine', 'pug')`); other templates are compiled as Pug compiles them.
 */
export function installCacheTag<T extends PugLike>(pug: T, options: CacheMixinOptions = {}): T {
  const { tagName: mixinName, digests } = installerOptions(options as { mixinName?: string; digests?: boolean }, 'mixinName', 'installCacheTag');
  const target = pug as unknown as Record<PropertyKey, unknown>;
  if (target[INSTALLED] !== undefined) {
    if ((pugDigests(pug) !== undefined) !== digests)
      throw new TypeError(`installCacheTag: this Pug has the tag installed ${digests ? 'without' : 'with'} digests already`);
    if (target[INSTALLED] === mixinName) return pug;
    throw new TypeError(`installCacheTag: this Pug has the tag installed as '${String(target[INSTALLED])}' already`);
  }
  target[INSTALLED] = mixinName;
  const digested = digests ? makePugDigests(pug) : undefined;
  const { compile, render, renderFile } = pug;
  pug.compile = function compileWithFragments(this: unknown, source: string, compileOptions: { plugins?: object[]; filename?: string; basedir?: string } = {}) {
    const compileDigests = digested === undefined ? undefined : new PugCompileDigests(digested, source, compileOptions);
    const rewrite: Rewrite = { calls: 0, digestKeyOf: compileDigests === undefined ? undefined : (file) => compileDigests.keyOf(file) };
    const plugin = {
      preCodeGen(ast: PugNode) {
        rewriteCalls(ast, mixinName, rewrite);
        // What `uncacheable()` calls in code marked goes into the page's text, where its render reads it.
        if (rewrite.calls > 0) ast.nodes?.push(statement(`pug_html = pug_html + ${RUNTIME}.takeMarks();`, ast));
        return ast;
      },
    };
    const plugins = [...(compileOptions.plugins ?? []), ...(compileDigests === undefined ? [] : [compileDigests.plugin()]), plugin];
    const template = compile.call(this, source, { ...compileOptions, plugins });
    // With digests on, every render of a page names its template, tags or not.
    const rendered = () => digested?.rendered(compileOptions.filename, source);
    if (rewrite.calls === 0) return digested === undefined ? template : Object.assign((locals?: object) => (rendered(), template(locals)), template);
    return Object.assign(function renderWithFragments(locals?: object): Promise<string> {
      rendered();
      const fragments = new PugRender(mixinName, digested);
      try {
        return Promise.resolve(fragments.finish(template(withRenderState(locals, RENDER_STATE, fragments)) as string));
      } catch (error) {
        return Promise.reject(error);
      }
    }, template);
  } as T['compile'];
  // Given a callback, they call it with the page rather than with its promise.
  pug.renderFile = withPageCallback(renderFile) as T['renderFile'];
  pug.render = withPageCallback(render) as T['render'];
  return pug;
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

/** The code that reaches this render: the template's locals carry it, as Pug reads any other. */
const RUNTIME = RENDER_STATE;

/** What a rewrite counts (the calls made), and with digests on, the digest key of the tags of each template file. */
interface Rewrite {
  calls: number;
  digestKeyOf: ((file: string | undefined) => string | undefined) | undefined;
}

/** Replaces each call of the tag, `hole` and `uncacheable` in `ast` by the code that makes it; counts them. */
function rewriteCalls(ast: PugNode, mixinName: string, rewrite: Rewrite, loops: string[] = []): PugNode {
  if (Array.isArray(ast.nodes)) ast.nodes = ast.nodes.flatMap((node) => rewriteNode(node, mixinName, rewrite, loops));
  const inLoop = ast.type === 'Each' ? [...loops, ...[ast.val, ast.key].filter((name): name is string => typeof name === 'string')] : loops;
  for (const [key, value] of Object.entries(ast)) {
    if (key === 'nodes') continue;
    if (value !== null && typeof value === 'object' && typeof (value as PugNode).type === 'string') rewriteCalls(value as PugNode, mixinName, rewrite, inLoop);
  }
  return ast;
}

function rewriteNode(node: PugNode, mixinName: string, rewrite: Rewrite, loops: string[]): PugNode[] {
  if (node.type !== 'Mixin' || node.call !== true || ![mixinName, 'hole', 'uncacheable'].includes(node.name!)) {
    placeCodeCalls(node, mixinName, rewrite);
    return [rewriteCalls(node, mixinName, rewrite, loops)];
  }
  rewrite.calls++;
  const site: TagSite = { template: node.filename ?? 'a template string', line: node.line ?? 0 };
  const at = `${JSON.stringify(site.template)}, ${site.line}, [${node.args ?? ''}]`;
  const code = (val: string, extra: Partial<PugNode> = {}): PugNode => ({ ...statement(val, node), ...extra });
  if (node.attributeBlocks !== undefined && node.attributeBlocks.length > 0)
    throw new TemplateSyntaxError(`'+${node.name}' takes no &attributes`, undefined, site);
  if (node.name !== mixinName) {
    if (node.block) throw new TemplateSyntaxError(`'+${node.name}' takes no block`, undefined, site);
    return [code(`${RUNTIME}.${node.name}At(${at})`, { buffer: true })];
  }
  if (!node.block || node.block.nodes?.length === 0) throw missingEndTag(mixinName, `the block indented under +${mixinName}(…)`, site);
  const keywords = (node.attrs ?? []).map(({ name, val }) => {
    const unknown = unknownKeyword(name, `'+${mixinName}'`, site);
    if (unknown !== undefined) throw unknown;
    return `${JSON.stringify(name)}: ${String(val)}`;
  });
  rewriteCalls(node.block, mixinName, rewrite, loops);
  // The body renders into the template's own buffer, emptied first: it runs once the template has returned.
  const body: PugNode = {
    type: 'Block',
    nodes: [code('pug_html = "";'), ...node.block.nodes!, code(`return pug_html + ${RUNTIME}.takeMarks();`)],
    line: node.line,
  };
  // A named function, then the call: Pug may put a debug statement between any two nodes. Each
  // loop's variables are bound as they are now: the body runs after the loop has gone on.
  const [keywordsName, hit, bodyName] = ['Keywords', 'Hit', 'Body'].map((part) => `pug_cachegrain${part}${rewrite.calls}`) as [string, string, string];
  const bound = loops.length === 0 ? bodyName : `${bodyName}.bind(this, ${loops.join(', ')})`;
  const keywordsObject = keywords.length === 0 ? 'undefined' : `{ ${keywords.join(', ')} }`;
  const digest = digestLiteral(rewrite, node.filename);
  const keptArguments = [digest, keywordsName, node.args ?? ''].filter((part) => part.trim() !== '').join(', ');
  // A hit this process keeps is answered before anything else is made (the arguments' array, the
  // body's function, its binding), which only a miss needs; the arguments are evaluated once.
  return [
    code(`var ${keywordsName} = ${keywordsObject}, ${hit} = ${RUNTIME}.kept(${keptArguments}); if (${hit} !== undefined) pug_html = pug_html + ${hit}; else`, {
      block: {
        type: 'Block',
        nodes: [
          code(`var ${bodyName} = function (${loops.join(', ')})`, { block: body }),
          code(
            `pug_html = pug_html + ${RUNTIME}.cache({ template: ${JSON.stringify(site.template)}, line: ${site.line}, digest: ${digest} }, ${RUNTIME}.missed(), ${keywordsName} ?? {}, ${bound});`,
          ),
        ],
        line: node.line,
      },
    }),
  ];
}

/** `"<digest key>"` of the template file that holds a tag, with digests on; else `undefined`. */
function digestLiteral(rewrite: Rewrite, file: string | undefined): string {
  const key = rewrite.digestKeyOf?.(file);
  return key === undefined ? 'undefined' : JSON.stringify(key);
}

/** Unbuffered code `val`, placed where `at` stands. */
function statement(val: string, at: PugNode): PugNode {
  return { type: 'Code', val, buffer: false, mustEscape: false, isInline: false, line: at.line, filename: at.filename };
}

/**
 * Each call of `hole(…)` and `uncacheable(…)` in the code of `node` (`-`, `=`, `!=`, `#{}`, a condition,
 * a loop's object, an attribute, a mixin's arguments) made with its site; `uncacheable` marks the text being rendered
 * whatever becomes of its value, and `- hole(…)` alone outputs its hole, as `!=` does.
 */
function placeCodeCalls(node: PugNode, mixinName: string, rewrite: Rewrite): void {
  const template = JSON.stringify(node.filename ?? 'a template string');
  const place = (code: string) => {
    if (callsFunction(code, mixinName)) {
      const site = { template: node.filename ?? 'a template string', line: node.line ?? 0 };
      throw new TemplateSyntaxError(`'${mixinName}' is called as a mixin, its body indented under it: +${mixinName}(60, 'sidebar')`, undefined, site);
    }
    return placeTemplateCalls(
      code,
      () => node.line ?? 0,
      (name, line) => {
        rewrite.calls++;
        return `${RUNTIME}.${name}Call(${template}, ${line}, `;
      },
    );
  };
  if (node.type === 'Code' && typeof node.val === 'string') {
    const placed = place(node.val);
    if (node.buffer !== true && placed !== node.val && isOnlyCall(node.val, 'hole'))
      Object.assign(node, { buffer: true, mustEscape: false, val: placed.replace(/;\s*$/, '') });
    else node.val = placed;
  }
  for (const field of ['test', 'obj', 'expr']) if (typeof node[field] === 'string') node[field] = place(node[field]);
  // A call of the template's own mixin passes expressions; a definition's arguments are names.
  if (node.type === 'Mixin' && node.call === true && typeof node.args === 'string') node.args = place(node.args);
  for (const attribute of node.attrs ?? []) if (typeof attribute.val === 'string') attribute.val = place(attribute.val);
}

const NO_ARGUMENTS: readonly unknown[] = Object.freeze([]);

/** One page's fragments, as its compiled calls reach them. */
class PugRender extends FragmentRender {
  private marks = '';

  constructor(
    private readonly mixinName: string,
    digests: PugDigests | undefined,
  ) {
    super(digests);
  }

  /** `at`: where the tag stands, and its template's digest key with digests on. */
  cache(at: { template: string; line: number; digest?: string }, args: readonly unknown[], keywords: TagKeywords, body: () => string): string {
    const { template, line, digest: digestKey } = at;
    const site: TagSite = { template, line };
    if (args.length < 2) throw tooFewArguments(this.mixinName, site);
    const [timeout, name, ...varyOn] = args;
    if (typeof name !== 'string' && typeof name !== 'number') {
      throw new TemplateSyntaxError(
        `'+${this.mixinName}' takes a string fragment name, as in +${this.mixinName}(300, 'sidebar') (got ${describe(name)})`,
        undefined,
        site,
      );
    }
    const fragment = String(name);
    return (
      this.hitMany(timeout, fragment, varyOn, keywords, digestKey) ??
      this.tag({ timeout, name: fragment, varyOn, keywords, template, line, digest: digestKey }, () => body)
    );
  }

  /** The arguments of the last `kept` call that found no hit, for the `cache` call that follows it. */
  private missedArguments: readonly unknown[] = NO_ARGUMENTS;

  /**
   * The HTML of a `+cache` call's fragment when it is a hit this process keeps, answered from its
   * evaluated arguments (`timeout`, `name`, then the vary-on values) without building anything (see
   * `hit0`…`hitMany`); else undefined, and the template calls `cache` with `missed()`, which does
   * everything else. Pug renders synchronously: nothing runs between the two. Its arguments are only
   * counted here, and handed on whole where they are indexed: V8 then makes no object of them, which
   * it would for every call, hit or not, if this function indexed them.
   */
  kept(
    digestKey: string | undefined,
    keywords: TagKeywords | undefined,
    timeout?: unknown,
    name?: unknown,
    a?: unknown,
    b?: unknown,
    c?: unknown,
  ): string | undefined {
    const count = arguments.length - 2;
    let html: string | undefined;
    if (typeof name === 'string') {
      if (count === 2) html = this.hit0(timeout, name, keywords, digestKey);
      else if (count === 3) html = this.hit1(timeout, name, a, keywords, digestKey);
      else if (count === 4) html = this.hit2(timeout, name, a, b, keywords, digestKey);
      else if (count === 5) html = this.hit3(timeout, name, a, b, c, keywords, digestKey);
      else if (count > 5) html = Reflect.apply(this.keptMany, this, arguments) as string | undefined;
    }
    if (html === undefined) Reflect.apply(this.keepMissed, this, arguments);
    return html;
  }

  /** `kept` with more than three vary-on values: `args` are the timeout, the name, then those values. */
  private keptMany(digestKey: string | undefined, keywords: TagKeywords | undefined, ...args: unknown[]): string | undefined {
    const [timeout, name, ...varyOn] = args;
    return this.hitMany(timeout, name as string, varyOn, keywords, digestKey);
  }

  /** Keeps the arguments of a `kept` call that found no hit, for `missed`. */
  private keepMissed(_digestKey: string | undefined, _keywords: TagKeywords | undefined, ...args: unknown[]): void {
    this.missedArguments = args;
  }

  /** The arguments of the last `kept` call that found no hit. */
  missed(): readonly unknown[] {
    return this.missedArguments;
  }

  holeAt(template: string, line: number, args: unknown[]): string {
    return this.hole(args[0], args.slice(1), { template, line });
  }

  uncacheableAt(template: string, line: number, args: unknown[]): string {
    return uncacheableOutput(args[0], { template, line });
  }

  /** `hole('name', …args)` in code. */
  holeCall(template: string, line: number, name: unknown, ...args: unknown[]): string {
    return this.hole(name, args, { template, line });
  }

  /** `uncacheable('why')` in code: marked aside, as its value may be dropped, until the text being rendered takes it. */
  uncacheableCall(template: string, line: number, why?: unknown): string {
    this.marks += uncacheableOutput(why, { template, line });
    return '';
  }

  /** The marks made since the last take: Pug renders synchronously, so they belong to the text rendered now. */
  takeMarks(): string {
    const marks = this.marks;
    this.marks = '';
    return marks;
  }
}
