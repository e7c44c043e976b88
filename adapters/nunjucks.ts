/**
 * The `{% cache %}` tag for Nunjucks (SPEC §5): parses the tag and hands the fragment core its
 * evaluated arguments and a body to render later. Surprise: the body is compiled as a template of its
 * own and runs against a copy of the variables in scope when the tag ran, because nunjucks keeps loop
 * variables in function-wide JS variables that a later call would see at their last value.
 */
import type { Environment } from 'nunjucks';
import { FragmentRender, tooFewArguments } from '../src/fragments/index.js';
import { requirePeer } from '../src/peer.js';

// The application's own copy of nunjucks: its parser only takes nodes made by the same copy.
const { compiler, lexer, nodes, runtime } = requirePeer<NunjucksInternals>('nunjucks', 'cachegrain/nunjucks');
const transformer = requirePeer<{ transform(ast: unknown, asyncFilters: string[], name?: string): unknown }>('nunjucks/src/transformer.js', 'cachegrain/nunjucks');

/** Where a render's fragment state travels in the template context (includes copy it along). */
const RENDER = '__cachegrain';

export interface CacheTagOptions {
  /** The tag's name; its end tag is `end<name>`. @default 'cache' */
  tagName?: string;
}

/** Adds `{% cache timeout name vary… using="alias" %}…{% endcache %}` to a nunjucks Environment. */
export function installCacheTag(env: Environment, options: CacheTagOptions = {}): Environment {
  const tagName = options.tagName ?? 'cache';
  const bodies: CompiledBody[] = [];
  const extension = {
    tags: [tagName],
    parse(parser: any) {
      const start = parser.nextToken();
      const bodyId = bodies.push(undefined!) - 1; // reserved now: tags nested in the body take the next ids
      const args = [new FrameReference(start.lineno, start.colno), new nodes.Literal(start.lineno, start.colno, bodyId)];
      if (parser.peekToken().type === lexer.TOKEN_BLOCK_END) parser.fail(tooFewArguments(tagName).message, start.lineno, start.colno);
      const timeoutToken = parser.peekToken();
      args.push(timeoutToken.value === 'None' ? (parser.nextToken(), new nodes.Literal(timeoutToken.lineno, timeoutToken.colno, null)) : parser.parseExpression());
      if (parser.peekToken().type === lexer.TOKEN_BLOCK_END) parser.fail(tooFewArguments(tagName).message, start.lineno, start.colno);
      args.push(new nodes.Literal(start.lineno, start.colno, parseName(parser)));
      const varyOn = new nodes.Array(start.lineno, start.colno);
      const using = new nodes.Array(start.lineno, start.colno);
      while (!parser.skip(lexer.TOKEN_BLOCK_END)) {
        const token = parser.nextToken();
        if (token.type === lexer.TOKEN_SYMBOL && token.value === 'using' && parser.peekToken().value === '=') {
          parser.nextToken();
          using.addChild(parser.parseExpression());
          if (parser.peekToken().type !== lexer.TOKEN_BLOCK_END) parser.fail(`'${tagName}' tag: using="…" must be its last argument`, token.lineno, token.colno);
        } else {
          parser.pushToken(token);
          varyOn.addChild(parser.parseExpression());
        }
      }
      args.push(using, varyOn);
      const body = parser.parseUntilBlocks(`end${tagName}`);
      parser.advanceAfterBlockEnd();
      bodies[bodyId] = compileBody(env, body);
      return new nodes.CallExtension(extension, 'run', new nodes.NodeList(start.lineno, start.colno, args), []);
    },
    run(context: any, frame: any, bodyId: number, timeout: unknown, name: string, using: unknown[], varyOn: unknown[]) {
      const render = context.lookup(RENDER) as FragmentRender | undefined;
      if (!(render instanceof FragmentRender)) {
        throw new Error(`the '${tagName}' tag needs the page rendered with render() or renderString() from cachegrain/nunjucks (fragment '${name}')`);
      }
      const body = bodies[bodyId]!;
      const scope = snapshotContext(context);
      const variables = snapshotFrame(frame);
      const placeholder = render.tag(timeout, name, varyOn, using.length > 0 ? using[0] : undefined, () => body(env, scope, variables));
      return new runtime.SafeString(placeholder);
    },
  };
  env.addExtension(`cachegrain:${tagName}`, extension);
  return env;
}

/** Renders a template by name, fragments read in one round trip per cache. */
export function render(env: Environment, templateName: string, context: object = {}): Promise<string> {
  const fragments = new FragmentRender();
  return new Promise<string>((resolve, reject) => {
    env.render(templateName, { ...context, [RENDER]: fragments }, (error, output) => (error ? reject(error) : resolve(output!)));
  }).then((output) => fragments.finish(output));
}

/** Renders template source, fragments read in one round trip per cache. */
export function renderString(env: Environment, source: string, context: object = {}): Promise<string> {
  const fragments = new FragmentRender();
  return new Promise<string>((resolve, reject) => {
    env.renderString(source, { ...context, [RENDER]: fragments }, (error, output) => (error ? reject(error) : resolve(output!)));
  }).then((output) => fragments.finish(output));
}

/** An Express view engine: `app.engine('njk', expressEngine(env))`; the env's loader must see the views. */
export function expressEngine(env: Environment) {
  return function renderNunjucksView(filePath: string, options: object, callback: (error: unknown, html?: string) => void): void {
    render(env, filePath, options).then((html) => callback(null, html), callback);
  };
}

/** The fragment name: a quoted string, or the bare word as written (`side-bar`, `a.b`: touching tokens joined). */
function parseName(parser: any): string {
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

type CompiledBody = (env: Environment, context: unknown, frame: unknown) => Promise<string>;

function compileBody(env: Environment, body: unknown): CompiledBody {
  const opts = (env as any).opts;
  const bodyCompiler = new compiler.Compiler('cache tag body', opts.throwOnUndefined);
  bodyCompiler.compile(transformer.transform(new nodes.Root(0, 0, [body]), (env as any).asyncFilters));
  const { root } = new Function(bodyCompiler.getCode())();
  return (bodyEnv, context, frame) =>
    new Promise((resolve, reject) => root(bodyEnv, context, frame, runtime, (error: unknown, output: string) => (error ? reject(error) : resolve(output))));
}

/** The template variables as they are now: a later `set` must not change a body still to render. */
function snapshotContext(context: any): unknown {
  const copy = Object.create(context);
  copy.ctx = { ...context.ctx };
  return copy;
}

/** Every variable in scope (loop, macro, `set`) flattened into one frame; `loop` is copied, as each iteration rewrites it. */
function snapshotFrame(frame: any): unknown {
  const chain: any[] = [];
  for (let current = frame; current; current = current.parent) chain.push(current);
  const copy = new runtime.Frame();
  for (let i = chain.length - 1; i >= 0; i--) Object.assign(copy.variables, chain[i].variables);
  if (copy.variables.loop !== undefined) copy.variables.loop = { ...copy.variables.loop };
  return copy;
}

/** An expression node that compiles to the runtime frame, so the tag can copy the variables in scope. */
const FrameReference = nodes.Literal.extend('CachegrainFrame');
(compiler.Compiler.prototype as any).compileCachegrainFrame = function compileCachegrainFrame(this: { _emit(code: string): void }) {
  this._emit('frame');
};

interface NunjucksInternals {
  compiler: { Compiler: any };
  lexer: Record<string, string>;
  nodes: Record<string, any>;
  runtime: { SafeString: new (text: string) => unknown; Frame: new () => any };
}
