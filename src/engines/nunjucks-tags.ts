/**
 * The tags nunjucks gets: `{% cache %}`, `{% hole %}` and `{% uncacheable %}`, each an extension
 * whose `parse` turns the tag's tokens into the call its template makes each time it runs, and whose
 * `run` is that call. The cache tag's call is one object (timeout, name, vary-on values, keywords,
 * site), its body compiled as a template of its own. Surprise: the body runs against a copy of the
 * variables in scope when the tag ran, because nunjucks keeps loop variables in function-wide JS
 * variables that a later call would see at their last value.
 */
import type { Environment } from 'nunjucks';
import { UNNAMED } from '../digests/index.js';
import {
  FragmentRender,
  type FragmentTag,
  missingEndTag,
  nonIntegerTimeout,
  type TagSite,
  tagSiteOf,
  tooFewArguments,
  uncacheableOutput,
} from '../fragments/index.js';
import { parseTagArguments } from './nunjucks-arguments.js';
import { bodyFunction, compileBody, compiling, DIGESTS, type NunjucksInternals, SyncRender } from './nunjucks-compiler.js';
import { TAG_BODY } from './nunjucks-digests.js';
import { RENDER_STATE } from './template-tag.js';

type Nodes = NunjucksInternals['nodes'];
type Lexer = NunjucksInternals['lexer'];

/** What a tag's parse is given: the parser, and the node classes and lexer of the copy of nunjucks parsing (its parser only takes nodes made by that copy). */
interface Parsing {
  parser: any;
  nodes: Nodes;
  lexer: Lexer;
}

/** The `{% cache timeout name vary… keyword=value… %}…{% endcache %}` tag of `env`, named `tagName`; `digests`: its environment's template digests, with digests on. */
export function cacheTag(env: Environment, copy: NunjucksInternals, { tagName, digests }: { tagName: string; digests: unknown }) {
  const extension = {
    tags: [tagName],
    [DIGESTS]: digests,
    parse(parser: any, nodes: Nodes, lexer: Lexer): unknown {
      const parsed = parseCacheTag({ parser, nodes, lexer }, { env, copy, tagName });
      return callOf(extension, parsed, nodes);
    },
    /** `bodyCode`: the code of the tag's body, rendered on a miss with the variables of this moment. */
    run(context: any, frame: any, call: FragmentTag, bodyCode: string): unknown {
      return runCacheTag({ env, copy, tagName }, { context, frame, call, bodyCode });
    },
  };
  return extension;
}

/** A cache tag parsed: the nodes its call is made of, and its body, which digests read. */
interface ParsedCacheTag {
  at: { lineno: number; colno: number };
  args: unknown[];
  body: unknown;
}

/** The extension's call of `run` with the tag's arguments, its body kept on it for the digests. */
function callOf(extension: object, { at, args, body }: ParsedCacheTag, nodes: Nodes): unknown {
  const call = new nodes.CallExtension(extension, 'run', new nodes.NodeList(at.lineno, at.colno, args), []);
  call[TAG_BODY] = body;
  return call;
}

/**
 * Reads the tag, from its name to its end tag: the call object its template evaluates each time
 * (its constants written into it), the frame, and the code of its body.
 */
function parseCacheTag(
  { parser, nodes, lexer }: Parsing,
  { env, copy, tagName }: { env: Environment; copy: NunjucksInternals; tagName: string },
): ParsedCacheTag {
  const start = parser.nextToken();
  const compile = compiling.at(-1);
  const site: TagSite = { template: compile?.template ?? UNNAMED, line: start.lineno + 1 };
  const literal = (value: unknown) => new nodes.Literal(start.lineno, start.colno, value);
  const call = new nodes.Dict(start.lineno, start.colno);
  const field = (name: string, value: unknown) => call.addChild(new nodes.Pair(start.lineno, start.colno, literal(name), value));
  const needsMore = () => {
    if (parser.peekToken().type === lexer.TOKEN_BLOCK_END) parser.fail(tooFewArguments(tagName).message, start.lineno, start.colno);
  };
  needsMore();
  field('timeout', parseTimeout({ parser, nodes, lexer }));
  needsMore();
  field('name', literal(parseName(parser, lexer)));
  // `using=`, `tags=`, `stale=`, `lock=`, `contexts=`, `if=` after the vary-on values, in any order.
  const varyOn = new nodes.Array(start.lineno, start.colno);
  const keywords = new nodes.Dict(start.lineno, start.colno);
  parseTagArguments({ parser, Parser: copy.parser.Parser, nodes, lexer }, tagName, varyOn, keywords);
  field('keywords', keywords);
  field('varyOn', varyOn);
  field('template', literal(site.template));
  field('line', literal(site.line));
  if (compile?.digestKey !== undefined) field('digest', literal(compile.digestKey));
  const body = parseBody(parser, tagName, start);
  // The body's code travels as a string in the template's own code, so it lives as long as the template does.
  const args = [new copy.FrameReference(start.lineno, start.colno), call, literal(compileBody(env, body, copy))];
  return { at: start, args, body };
}

/** The timeout: `None`, or an expression; `5m` lexes as a variable's name that no variable can have, a timeout written with a unit. */
function parseTimeout({ parser, nodes }: Parsing): unknown {
  const token = parser.peekToken();
  if (token.value === 'None') {
    parser.nextToken();
    return new nodes.Literal(token.lineno, token.colno, null);
  }
  const timeout = parser.parseExpression();
  if (timeout instanceof nodes.Symbol && !/^[A-Za-z_$][\w$]*$/.test(timeout.value))
    parser.fail(nonIntegerTimeout(timeout.value).message, token.lineno, token.colno);
  return timeout;
}

/** The fragment name: a quoted string, or the bare word as written (`side-bar`, `a.b`: touching tokens joined). */
function parseName(parser: any, lexer: Lexer): string {
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

/** The tag's body, up to and past its end tag; a tag left open fails at its own line. */
function parseBody(parser: any, tagName: string, start: { lineno: number; colno: number }): unknown {
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
  return body;
}

/** A cache tag's call as its template makes it: the render's hit, else its fragment recorded with a body to render on a miss. */
function runCacheTag(
  { env, copy, tagName }: { env: Environment; copy: NunjucksInternals; tagName: string },
  { context, frame, call, bodyCode }: { context: any; frame: any; call: FragmentTag; bodyCode: string },
): unknown {
  const render = context.lookup(RENDER_STATE) as FragmentRender | SyncRender | undefined;
  if (!(render instanceof FragmentRender)) throw needsAsyncRender(tagName, `fragment '${call.name}'`, tagSiteOf(call)!, render);
  const { runtime } = copy;
  const bodyOf = () => {
    const body = bodyFunction(bodyCode);
    const scope = snapshotContext(context);
    const variables = snapshotFrame(frame, runtime);
    return () => body(env, runtime, scope, variables).catch((error) => Promise.reject(bodyError(error)));
  };
  return new runtime.SafeString(render.tag(call, bodyOf));
}

/** `{% hole "stock" product.id %}`: a part of the page never cached, made for each request. */
export function holeTag(runtime: NunjucksInternals['runtime']) {
  const extension = {
    tags: ['hole'],
    parse(parser: any, nodes: Nodes, lexer: Lexer): unknown {
      const start = parser.nextToken();
      const site: TagSite = { template: compiling.at(-1)?.template ?? 'a template string', line: start.lineno + 1 };
      const values = new nodes.Array(start.lineno, start.colno);
      while (!parser.skip(lexer.TOKEN_BLOCK_END)) {
        values.addChild(parser.parseExpression());
        parser.skip(lexer.TOKEN_COMMA);
      }
      if (values.children.length === 0) parser.fail(`'hole' tag needs the name of a hole, as in {% hole "cart" %}`, start.lineno, start.colno);
      const literal = (value: unknown) => new nodes.Literal(start.lineno, start.colno, value);
      return new nodes.CallExtension(extension, 'run', new nodes.NodeList(start.lineno, start.colno, [literal(site.template), literal(site.line), values]), []);
    },
    run(context: any, template: string, line: number, values: unknown[]): unknown {
      const site = { template, line };
      const render = context.lookup(RENDER_STATE) as FragmentRender | SyncRender | undefined;
      if (!(render instanceof FragmentRender)) throw needsAsyncRender('hole', `hole '${String(values[0])}'`, site, render);
      return new runtime.SafeString(render.hole(values[0], values.slice(1), site));
    },
  };
  return extension;
}

/** `{{ uncacheable("why") }}`'s output: its mark, with its template and line when the compiler added them. */
export function uncacheableCall(runtime: NunjucksInternals['runtime']) {
  return (why: unknown, template?: string, line?: number): unknown =>
    new runtime.SafeString(uncacheableOutput(why, template === undefined ? undefined : { template, line: line! }));
}

/** `{% uncacheable "why" %}`, as Liquid writes it: the fragment around it, and the page, may not be kept. */
export function uncacheableTag(uncacheable: ReturnType<typeof uncacheableCall>) {
  const extension = {
    tags: ['uncacheable'],
    parse(parser: any, nodes: Nodes): unknown {
      const start = parser.nextToken();
      const why = parser.parseExpression();
      parser.advanceAfterBlockEnd(start.value);
      const literal = (value: unknown) => new nodes.Literal(start.lineno, start.colno, value);
      const site = [literal(compiling.at(-1)?.template ?? UNNAMED), literal(start.lineno + 1)];
      return new nodes.CallExtension(extension, 'run', new nodes.NodeList(start.lineno, start.colno, [why, ...site]), []);
    },
    run: (_context: unknown, why: unknown, template: string, line: number) => uncacheable(why, template, line),
  };
  return extension;
}

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
