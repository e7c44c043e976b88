/**
 * The `<% cache %>` tag for Eta (SPEC §5), as an Eta plugin: the tag is rewritten into a call that
 * records the fragment and wraps its body in a function rendered later, and templates holding tags
 * resolve their fragments when they return. Surprise: the outermost template of a render does the
 * resolving (included templates and layouts join its render), so it must be rendered with
 * `renderAsync`; arguments are separated by spaces, so an argument with spaces needs parentheses.
 */
import { isAbsolute, relative } from 'node:path';
import type { Eta } from 'eta';
import { FragmentRender, KEYWORDS, missingEndTag, type TagKeywords, TemplateSyntaxError, tooFewArguments, withRenderState } from '../src/fragments/index.js';

/** Where a render's fragment state travels in the template data (includes and layouts spread it along). */
const RENDER = '__cachegrain';
const PLUGIN = Symbol.for('cachegrain.eta');

export interface CachePluginOptions {
  /** The tag's name; its end tag is `end<name>`. @default 'cache' */
  tagName?: string;
}

type EtaConfig = Eta['config'];

/** The plugin: `new Eta({ views, plugins: [cachePlugin()] })`, then `await eta.renderAsync(name, data)`. */
export function cachePlugin(options: CachePluginOptions = {}) {
  const tagName = options.tagName ?? 'cache';
  // A misused tag found while compiling, thrown by the compiled template where it knows its file.
  // Eta compiles synchronously, template text first and function text next, so one slot is exact.
  let compileError: { message: string; line: number } | undefined;
  return {
    [PLUGIN]: true,
    processTemplate(template: string, config?: EtaConfig): string {
      const [open, close] = config?.tags ?? ['<%', '%>'];
      const tag = new RegExp(`${escape(open)}([-_]?)\\s*(end)?${tagName}(?![\\w$])([\\s\\S]*?)([-_]?)${escape(close)}`, 'g');
      const unclosed: number[] = [];
      compileError = undefined;
      const processed = template.replace(tag, (_tag, trimLeft: string, end: string | undefined, args: string, trimRight: string, offset: number) => {
        const line = lineAt(template, offset);
        let code: string;
        if (end === undefined) {
          unclosed.push(line);
          const parsed = openFragment(splitArguments(args), tagName, line);
          if (typeof parsed !== 'string') compileError ??= { message: parsed.message, line };
          code = typeof parsed === 'string' ? parsed : '';
        } else if (unclosed.pop() === undefined) {
          compileError ??= { message: `'end${tagName}' has no '${tagName}' tag to close`, line };
          code = '';
        } else {
          code = 'return __eta.res; })(__eta));';
        }
        return `${open}${trimLeft} ${code} ${trimRight}${close}`;
      });
      if (unclosed.length > 0) compileError ??= { message: missingEndTag(tagName, `${open} end${tagName} ${close}`).message, line: unclosed.at(-1)! };
      // A broken tag leaves unbalanced code: the template is replaced by one that reports the fault.
      return compileError === undefined ? processed : '';
    },
    processFnString(fnString: string, config?: EtaConfig): string {
      // Every template takes part, tags or not: a page without tags of its own must still hand one
      // render to the partials it includes, or each would read the cache on its own.
      const data = config?.varName ?? 'it';
      const plugin = `this.config.plugins.find((plugin) => plugin[Symbol.for('cachegrain.eta')])`;
      if (compileError !== undefined) {
        const { message, line } = compileError;
        compileError = undefined;
        return `throw ${plugin}.compileError(${JSON.stringify(message)}, ${line}, options);`;
      }
      const last = fnString.lastIndexOf('return __eta.res;');
      return (
        `const __cachegrain = ${plugin}.enter(${data}, options, ${JSON.stringify(tagName)});\n` +
        `${data} = __cachegrain.data;\n${fnString.slice(0, last)}return __cachegrain.leave(__eta.res);${fnString.slice(last + 'return __eta.res;'.length)}`
      );
    },
    /** Called by compiled templates: joins the render of the template that included this one, or starts one. */
    enter(data: Record<string, unknown> | undefined, renderOptions: EtaRenderOptions | undefined, name: string): EtaRender | SyncEtaRender {
      const template = templateName(renderOptions);
      const joined = data?.[RENDER];
      if (joined instanceof FragmentRender) return new EtaRender(joined, data!, false, template);
      if (renderOptions?.async !== true) return new SyncEtaRender(data, name, template);
      const render = new FragmentRender();
      return new EtaRender(render, withRenderState(data, RENDER, render), true, template);
    },
    /** The error of a tag misused in a template, naming its file and line. */
    compileError(message: string, line: number, renderOptions: EtaRenderOptions | undefined): TemplateSyntaxError {
      return new TemplateSyntaxError(message, undefined, { template: templateName(renderOptions), line });
    },
  };
}

interface EtaRenderOptions {
  async?: boolean;
  filepath?: string;
}

function templateName(renderOptions: EtaRenderOptions | undefined): string {
  return renderOptions?.filepath ?? 'a template string';
}

function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let at = text.indexOf('\n'); at !== -1 && at < offset; at = text.indexOf('\n', at + 1)) line++;
  return line;
}

/** The fragment state a compiled template sees. */
class EtaRender {
  constructor(
    private readonly render: FragmentRender,
    readonly data: Record<string, unknown>,
    private readonly outermost: boolean,
    private readonly template: string,
  ) {}

  tag(timeout: unknown, name: string, varyOn: unknown[], keywords: TagKeywords, line: number, body: () => Promise<string>): string {
    return this.render.tag(timeout, name, varyOn, keywords, () => body, { template: this.template, line });
  }

  leave(output: string): string | Promise<string> {
    return this.outermost ? this.render.finish(output) : output;
  }
}

/** A synchronous render: fine for templates without tags, a clear error for a tag. */
class SyncEtaRender {
  constructor(
    readonly data: Record<string, unknown> | undefined,
    private readonly tagName: string,
    private readonly template: string,
  ) {}

  tag(_timeout: unknown, name: string, _varyOn: unknown, _keywords: unknown, line: number): never {
    throw new TemplateSyntaxError(
      `the '${this.tagName}' tag (fragment '${name}') needs the template rendered with eta.renderAsync() or eta.renderStringAsync(), ` +
        'not render() or renderString(): fragments are read from the cache asynchronously',
      name,
      { template: this.template, line },
    );
  }

  leave(output: string): string {
    return output;
  }
}

/** An Express view engine: `app.engine('eta', expressEngine(eta))`; `eta`'s `views` must hold the views. */
export function expressEngine(eta: Eta) {
  return function renderEtaView(filePath: string, locals: object, callback: (error: unknown, html?: string) => void): void {
    // Eta reads a leading '/' as its views directory, so Express's absolute path is made relative to it.
    const views = eta.config.views;
    const name = views !== undefined && isAbsolute(filePath) ? relative(views, filePath) : filePath;
    eta.renderAsync(name, locals).then((html) => callback(null, html), callback);
  };
}

const KEYWORD = new RegExp(`^(${KEYWORDS.join('|')})=(.+)$`, 's');

/**
 * `cache timeout name vary… using=alias tags=… stale=… lock=true` (keywords after the vary-on values,
 * in any order) → a call recording the fragment, opening the body's function.
 */
function openFragment(args: string[], tagName: string, line: number): string | TemplateSyntaxError {
  const keywords: string[] = [];
  const seen = new Set<string>();
  while (args.length > 2 && KEYWORD.test(args.at(-1)!)) {
    const [, keyword, expression] = KEYWORD.exec(args.pop()!)!;
    if (seen.has(keyword!)) return new TemplateSyntaxError(`'${tagName}' tag: ${keyword}= is given twice`);
    seen.add(keyword!);
    keywords.unshift(`${keyword}: (${expression})`);
  }
  const misplaced = args.slice(2).find((arg) => KEYWORD.test(arg));
  if (misplaced !== undefined) return new TemplateSyntaxError(`'${tagName}' tag: ${misplaced.split('=')[0]}= must come after the vary-on values`);
  if (args.length < 2) return tooFewArguments(tagName);
  const [timeout, name, ...varyOn] = args as [string, string, ...string[]];
  const literalName = /^(["'`]).*\1$/s.test(name) ? name.slice(1, -1) : name;
  // The body writes to its own buffer: it runs after the template has returned.
  return (
    `__eta.res += __cachegrain.tag(${timeout}, ${JSON.stringify(literalName)}, [${varyOn.join(', ')}], { ${keywords.join(', ')} }, ${line}, ` +
    `((__etaOuter) => async () => { const __eta = { ...__etaOuter, res: '' };`
  );
}

/** Splits on spaces outside quotes, brackets and parentheses. */
function splitArguments(text: string): string[] {
  const args: string[] = [];
  let current = '';
  let depth = 0;
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (quote !== null) {
      if (char === '\\') current += char + (text[++i] ?? '');
      else current += char;
      if (char === quote) quote = null;
      continue;
    }
    if (char === '"' || char === "'" || char === '`') quote = char;
    else if ('([{'.includes(char)) depth++;
    else if (')]}'.includes(char)) depth--;
    else if (/\s/.test(char) && depth === 0) {
      if (current !== '') args.push(current);
      current = '';
      continue;
    }
    current += char;
  }
  if (current !== '') args.push(current);
  return args;
}

function escape(text: string): string {
  return text.replace(/[.*+\-?^${}()|[\]\\]/g, '\\$&');
}
