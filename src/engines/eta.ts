/**
 * The `<% cache %>` tag for Eta, as an Eta plugin: the tag is rewritten into code that
 * emits a hit kept in memory at once and otherwise records the fragment, its body wrapped in a
 * function rendered later; templates holding tags resolve their fragments when they return.
 * Surprise: the outermost template of a render does the resolving (included templates and layouts
 * join its render through Eta's render options, which includes pass along), so it must be rendered
 * with `renderAsync`; arguments are separated by spaces, so an argument with spaces needs parentheses.
 */
// Node's types (Buffer, node:http, node:diagnostics_channel…) appear in these declarations: a consumer need not name them in `types`.
/// <reference types="node" preserve="true" />
import { isAbsolute, relative } from 'node:path';
import type { Eta } from 'eta';
import {
  FragmentRender,
  type FragmentTag,
  missingEndTag,
  TemplateSyntaxError,
  tooFewArguments,
  uncacheableOutput,
  unknownKeyword,
} from '../fragments/index.js';
import { describe } from '../common/cache-keys.js';
import { digestKey, type TemplateDigestReport, TemplateDigests } from '../digests/index.js';
import { DIGEST_CONSTANT, etaLibrary, findEtaDependencies } from './eta-digests.js';
import { escapeRegExp as escape, installerOptions, lineAt, RENDER_STATE } from './template-tag.js';
import { isOnlyCall, placeTemplateCalls } from './template-code.js';

/** Marks the plugin among an Eta's plugins. */
const PLUGIN = Symbol.for('cachegrain.eta');
/** Marks a plugin with digests on. */
const WITH_DIGESTS = Symbol.for('cachegrain.eta.digests');

export interface CachePluginOptions {
  /** The tag's name; its end tag is `end<name>`. @default 'cache' */
  tagName?: string;
  /**
   * Fragment keys carry a digest of the template that holds the tag and of everything it includes
   * or takes as its layout, transitively: editing any of them renews its fragments. @default false
   */
  digests?: boolean;
}

/** Where an Eta instance keeps its template digests, made the first time they are asked for. */
const DIGESTS = Symbol.for('cachegrain.eta.digests-held');

function digestsOf(eta: Eta): TemplateDigests {
  return ((eta as unknown as Record<PropertyKey, TemplateDigests | undefined>)[DIGESTS] ??= new TemplateDigests(etaLibrary(eta), 'eta'));
}

/**
 * The digest of template `name` of `eta` (as `renderAsync` names it) as it is now, the tree of what it
 * depends on and what could not be resolved: `makeTemplateFragmentKey(name, varyOn, undefined, digest)`
 * gives its fragments' keys.
 */
export function templateDigest(eta: Eta, name: string): TemplateDigestReport {
  const digests = digestsOf(eta);
  const resolved = digests.library.resolve(name, undefined);
  if (resolved === undefined) throw new Error(`templateDigest: '${name}' names no template of this Eta (is its views option set?)`);
  return digests.report(resolved);
}

type EtaConfig = Eta['config'];

/** The plugin: `new Eta({ views, plugins: [cachePlugin()] })`, then `await eta.renderAsync(name, data)`. */
export function cachePlugin(options: CachePluginOptions = {}) {
  const { tagName, digests } = installerOptions(options, 'tagName', 'cachePlugin');
  // A misused tag found while compiling, thrown by the compiled template where it knows its file.
  // Eta compiles synchronously, template text first and function text next, so one slot is exact.
  let compileError: { message: string; line: number } | undefined;
  // Keywords whose values are all literals, by the constant they are made into once per render.
  let constantKeywords: string[] = [];
  // With digests on, the digest key of the template being compiled (what its source depends on).
  let compiledDigestKey: string | undefined;
  const syncRender = new SyncEtaRender(tagName);
  // The digests of the last Eta rendering: an application renders with one, and every render asks.
  let lastEta: Eta | undefined;
  let lastDigests: TemplateDigests | undefined;
  const digestsFor = (eta: Eta) => (eta === lastEta ? lastDigests! : (lastDigests = digestsOf((lastEta = eta))));
  const runtime = {
    /** Called by compiled templates: joins the render of the template that included this one, or starts one. */
    enter(renderOptions: EtaRenderOptions | undefined, eta: Eta): EtaRender | SyncEtaRender {
      const joined = renderOptions?.[RENDER_STATE];
      if (joined instanceof EtaRender) return joined;
      if (renderOptions?.async !== true) return syncRender;
      const render = new EtaRender(renderOptions, digests ? digestsFor(eta) : undefined);
      renderOptions[RENDER_STATE] = render;
      return render;
    },
    /** The error of a tag misused in a template, naming its file and line. */
    compileError(message: string, line: number, renderOptions: EtaRenderOptions | undefined): TemplateSyntaxError {
      return new TemplateSyntaxError(message, undefined, { template: templateName(renderOptions), line });
    },
    /** `<%~ uncacheable("why") %>` on `line` (0: not known): the fragment around it, and the page, may not be kept. */
    uncacheable(why: unknown, renderOptions: EtaRenderOptions | undefined, line: number): string {
      const template = templateName(renderOptions);
      if (line > 0) return uncacheableOutput(why, { template, line });
      return uncacheableOutput(why === undefined ? why : `${String(why)} (${template})`);
    },
  };
  const plugin = {
    [PLUGIN]: true,
    [WITH_DIGESTS]: digests,
    // Compiled templates find the plugin's runtime under the same name as the render state.
    [RENDER_STATE]: runtime,
    processTemplate(template: string, config?: EtaConfig): string {
      const [open, close] = config?.tags ?? ['<%', '%>'];
      const tag = new RegExp(`${escape(open)}([-_]?)\\s*([=~]?)\\s*(end)?${tagName}(?![\\w$])([\\s\\S]*?)([-_]?)${escape(close)}`, 'g');
      const unclosed: number[] = [];
      compileError = undefined;
      constantKeywords = [];
      template = placeCalls(template, open, close);
      compiledDigestKey = digests ? digestKey(template, findEtaDependencies(template, config ?? {})) : undefined;
      const digest = compiledDigestKey === undefined ? undefined : DIGEST_CONSTANT;
      const processed = template.replace(
        tag,
        (_tag, trimLeft: string, output: string, end: string | undefined, args: string, trimRight: string, offset: number) => {
          const line = lineAt(template, offset);
          if (output !== '') {
            const form = `${open} ${tagName} 60 "sidebar" ${close}…${open} end${tagName} ${close}`;
            compileError ??= { message: `the '${tagName}' tag outputs its fragment itself: write it without '${output}', as in ${form}`, line };
          }
          let code: string;
          if (end === undefined) {
            unclosed.push(line);
            const parsed = openFragment(splitArguments(args), line, { tagName, constantKeywords, digest });
            if (typeof parsed !== 'string') compileError ??= { message: parsed.message, line };
            code = typeof parsed === 'string' ? parsed : '';
          } else if (unclosed.pop() === undefined) {
            compileError ??= { message: `'end${tagName}' has no '${tagName}' tag to close`, line };
            code = '';
          } else {
            code = 'return __eta.res + __eta.cgMarks; })(__eta)); }';
          }
          return `${open}${trimLeft} ${code} ${trimRight}${close}`;
        },
      );
      if (unclosed.length > 0) compileError ??= { message: missingEndTag(tagName, `${open} end${tagName} ${close}`).message, line: unclosed.at(-1)! };
      // A broken tag leaves unbalanced code: the template is replaced by one that reports the fault.
      return compileError === undefined ? processed : '';
    },
    processFnString(fnString: string, config?: EtaConfig): string {
      // Every template takes part, tags or not: a page without tags of its own must still hand one
      // render to the partials it includes, or each would read the cache on its own. The runtime is
      // found where the plugin stood when the template compiled, searched for if it moved since.
      const index = Math.max(0, config?.plugins?.indexOf(plugin) ?? 0);
      const found = `(this.config.plugins[${index}]?.${RENDER_STATE} ?? this.config.plugins.find((plugin) => plugin.${RENDER_STATE}).${RENDER_STATE})`;
      if (compileError !== undefined) {
        const { message, line } = compileError;
        compileError = undefined;
        return `throw ${found}.compileError(${JSON.stringify(message)}, ${line}, options);`;
      }
      const last = fnString.lastIndexOf('return __eta.res;');
      const constants = constantKeywords.map((keywords, i) => `const __cgConstantKeywords${i} = { ${keywords} };\n`).join('');
      // Templates that call `uncacheable(why)` find it in scope, as a tag's code finds the render. A call
      // marks the buffer it writes to aside: its value may be dropped (a statement) or be read before it returns (`+=`).
      const uncacheable = /\b(?:uncacheable|__cgUncacheable)\s*\(/.test(fnString)
        ? `const __cgUncacheable = (buffer, line, why) => { buffer.cgMarks = (buffer.cgMarks ?? '') + ${found}.uncacheable(why, options, line); return ''; };\n` +
          'const uncacheable = (why) => __cgUncacheable(__eta, 0, why);\n'
        : '';
      // And those that place a hole find `hole(name, ...args)`, which `<%~ hole(…) %>` calls with its line.
      const hole = /\b(?:hole|__cgHole)\s*\(/.test(fnString)
        ? 'const __cgHole = (line, name, ...args) => __cachegrain.holeAt(line, options, name, args);\nconst hole = (name, ...args) => __cgHole(0, name, ...args);\n'
        : '';
      // Every template holds its digest key, tags or not: a template loaded by name is read from it when another includes it.
      const digest = compiledDigestKey === undefined ? '' : `const ${DIGEST_CONSTANT} = ${JSON.stringify(compiledDigestKey)};\n`;
      compiledDigestKey = undefined;
      return (
        `${digest}const __cachegrain = ${found}.enter(options, this);\n${constants}${uncacheable}${hole}` +
        `${fnString.slice(0, last)}return __cachegrain.leave(__eta.cgMarks === undefined ? __eta.res : __eta.res + __eta.cgMarks, options${digest === '' ? '' : `, ${DIGEST_CONSTANT}`});${fnString.slice(last + 'return __eta.res;'.length)}`
      );
    },
  };
  return plugin;
}

interface EtaRenderOptions {
  async?: boolean;
  filepath?: string;
  [RENDER_STATE]?: unknown;
}

function templateName(renderOptions: EtaRenderOptions | undefined): string {
  return renderOptions?.filepath ?? 'a template string';
}

/**
 * Each call of `hole(…)` and `uncacheable(…)` in the template's tags given the line it stands on, and
 * `uncacheable` the buffer it marks; a statement tag that is one `hole(…)` call outputs its hole, as
 * `<%~` does. Lines stay as they were.
 */
function placeCalls(template: string, open: string, close: string): string {
  const tag = new RegExp(`(${escape(open)}[-_]?\\s*)([=~]?)([\\s\\S]*?)([-_]?${escape(close)})`, 'g');
  return template.replace(tag, (whole, start: string, prefix: string, code: string, end: string, offset: number) => {
    const line = () => lineAt(template, offset + start.length + prefix.length);
    const placed = placeTemplateCalls(code, line, (name, at) => (name === 'hole' ? `__cgHole(${at}, ` : `__cgUncacheable(__eta, ${at}, `));
    if (placed === code) return whole;
    return `${start}${prefix === '' && isOnlyCall(code, 'hole') ? '~' : prefix}${placed}${end}`;
  });
}

/**
 * One render's fragments, as its compiled templates see them: the outermost template (whose render
 * options started it) resolves them when it returns; included ones only record theirs.
 */
class EtaRender extends FragmentRender {
  constructor(
    private readonly owner: EtaRenderOptions,
    private readonly templateDigests: TemplateDigests | undefined,
  ) {
    super(templateDigests);
  }

  /** A tag on `line` that no kept hit answered, its body to run on a miss. */
  record(call: FragmentTag, renderOptions: EtaRenderOptions | undefined, body: () => Promise<string>): string {
    return this.tag({ ...call, template: templateName(renderOptions) }, () => body);
  }

  /** `<%~ hole("name", …args) %>` on `line` (0: not known). */
  holeAt(line: number, renderOptions: EtaRenderOptions | undefined, name: unknown, args: unknown[]): string {
    return this.hole(name, args, { template: templateName(renderOptions), line });
  }

  /** The outermost template returns `output` (its digest key `digest`, with digests on): the render's fragments are resolved. */
  leave(output: string, renderOptions: EtaRenderOptions | undefined, digest?: string): string | Promise<string> {
    if (renderOptions !== this.owner) return output;
    this.templateDigests?.rendered(renderOptions.filepath, undefined, digest);
    // Once done, the options start no render of this one: a caller may pass the same options again.
    const page = this.finish(output);
    if (typeof page === 'string') {
      this.owner[RENDER_STATE] = undefined;
      return page;
    }
    return page.finally(() => {
      this.owner[RENDER_STATE] = undefined;
    });
  }
}

/** A synchronous render: fine for templates without tags, a clear error for a tag. */
class SyncEtaRender {
  constructor(private readonly tagName: string) {}

  hit0(): undefined {
    return undefined;
  }

  hit1(): undefined {
    return undefined;
  }

  hit2(): undefined {
    return undefined;
  }

  hit3(): undefined {
    return undefined;
  }

  hitMany(): undefined {
    return undefined;
  }

  record({ name, line = 0 }: FragmentTag, renderOptions: EtaRenderOptions | undefined): never {
    throw new TemplateSyntaxError(
      `the '${this.tagName}' tag (fragment '${name}') needs the template rendered with eta.renderAsync() or eta.renderStringAsync(), ` +
        'not render() or renderString(): fragments are read from the cache asynchronously',
      name,
      { template: templateName(renderOptions), line },
    );
  }

  holeAt(line: number, renderOptions: EtaRenderOptions | undefined, name: unknown): never {
    throw new TemplateSyntaxError(
      `the 'hole' function (hole ${describe(name)}) needs the template rendered with eta.renderAsync() or eta.renderStringAsync(), ` +
        "not render() or renderString(): a hole's HTML is made asynchronously",
      undefined,
      { template: templateName(renderOptions), line },
    );
  }

  leave(output: string): string {
    return output;
  }
}

/** An Express view engine: `app.engine('eta', expressEngine(eta))`; `eta`'s `views` must hold the views. */
export function expressEngine(eta: Eta) {
  // Its digests are made now, not at the first render: a page stored before a restart is checked against them on its first hit.
  if ((eta.config.plugins ?? []).some((plugin) => (plugin as Record<PropertyKey, unknown>)[WITH_DIGESTS] === true)) digestsOf(eta);
  return function renderEtaView(filePath: string, locals: object, callback: (error: unknown, html?: string) => void): void {
    // Eta reads a leading '/' as its views directory, so Express's absolute path is made relative to it.
    const views = eta.config.views;
    const name = views !== undefined && isAbsolute(filePath) ? relative(views, filePath) : filePath;
    // Eta compiles before its promise exists, so a template it cannot compile throws here.
    new Promise<string>((resolve) => resolve(eta.renderAsync(name, locals))).then(
      (html) => callback(null, html),
      (error) => callback(withInstallHint(eta, error)),
    );
  };
}

/**
 * Eta's error for a template whose `<% cache … %>` reached its compiled code as it was written,
 * on an Eta without the plugin, saying how to add it.
 */
function withInstallHint(eta: Eta, error: unknown): unknown {
  const installed = (eta.config.plugins ?? []).some((plugin) => (plugin as Record<PropertyKey, unknown>)[PLUGIN] === true);
  if (!installed && error instanceof Error && /^\s*cache\s/m.test(error.message)) {
    error.message = `the 'cache' tag is added to Eta by cachePlugin() from cachegrain/eta: new Eta({ plugins: [cachePlugin()] }); ${error.message}`;
  }
  return error;
}

/**
 * `name=expression`, a keyword known or not: a bare name and one `=` is no vary-on value worth having
 * (an assignment), while `==`, `=>`, `<=`, `>=` and `!=` are kept as the expressions they are.
 */
const KEYWORD = /^([A-Za-z_$][\w$]*)=(?![=>])(.+)$/s;
/** A keyword value that is the same on every evaluation: a quoted string without interpolation, a number, a boolean. */
const LITERAL = /^(?:"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|-?\d+(?:\.\d+)?|true|false)$/;

/** What the tags of one template share as it is compiled. */
interface TemplateCompile {
  readonly tagName: string;
  /** The code of the keyword objects made of literals only, each a constant made once per render: a tag adds its own. */
  readonly constantKeywords: string[];
  /** The name of the template's digest key constant, with digests on. */
  readonly digest: string | undefined;
}

/**
 * `cache timeout name vary… using=alias tags=… stale=… lock=true` (keywords after the vary-on values,
 * in any order) → a call recording the fragment, opening the body's function.
 */
function openFragment(args: string[], line: number, { tagName, constantKeywords, digest }: TemplateCompile): string | TemplateSyntaxError {
  const keywords: string[] = [];
  const seen = new Set<string>();
  let literalsOnly = true;
  while (args.length > 2 && KEYWORD.test(args.at(-1)!)) {
    const [, keyword, expression] = KEYWORD.exec(args.pop()!)!;
    const unknown = unknownKeyword(keyword!, `'${tagName}' tag`);
    if (unknown !== undefined) return unknown;
    if (seen.has(keyword!)) return new TemplateSyntaxError(`'${tagName}' tag: ${keyword}= is given twice`);
    seen.add(keyword!);
    keywords.unshift(`${keyword}: (${expression})`);
    if (!LITERAL.test(expression!)) literalsOnly = false;
  }
  const misplaced = args.findIndex((arg, i) => i >= 2 && KEYWORD.test(arg));
  if (misplaced !== -1) {
    const keyword = args[misplaced]!.split('=')[0]!;
    return (
      unknownKeyword(keyword, `'${tagName}' tag`) ??
      new TemplateSyntaxError(
        `'${tagName}' tag: '${args[misplaced + 1]}' follows ${keyword}=: the vary-on values come before the keywords, ` +
          `and a value with spaces goes in parentheses, as in ${keyword}=(it.a && it.b)`,
      )
    );
  }
  if (args.length < 2 && args[0]?.startsWith('(')) {
    return new TemplateSyntaxError(`'${tagName}' tag takes its arguments separated by spaces, not as a call: <% ${tagName} 60 "sidebar" it.user.id %>`);
  }
  if (args.length < 2) return tooFewArguments(tagName);
  const [timeout, name, ...varyOn] = args as [string, string, ...string[]];
  const literalName = JSON.stringify(/^(["'`]).*\1$/s.test(name) ? name.slice(1, -1) : name);
  // Each argument is evaluated once, into a constant of the tag's block.
  const values = varyOn.map((_, i) => `__cgVary${i}`);
  const evaluated = [`__cgTimeout = (${timeout})`, ...varyOn.map((expression, i) => `${values[i]} = (${expression})`)];
  if (keywords.length > 0) {
    // Literal keywords are made into one object per render, not one per pass of a loop around the tag.
    const constant = literalsOnly ? `__cgConstantKeywords${constantKeywords.push(keywords.join(', ')) - 1}` : `{ ${keywords.join(', ')} }`;
    evaluated.push(`__cgKeywords = ${constant}`);
  }
  // The digest key is the template's constant, after the keywords (none: undefined).
  const digestArgument = digest === undefined ? '' : `, ${digest}`;
  const keywordsArgument = keywords.length > 0 ? `, __cgKeywords${digestArgument}` : digest === undefined ? '' : `, undefined${digestArgument}`;
  // The body writes to its own buffer: it runs after the template has returned; the digest key follows it.
  const record =
    `__cachegrain.record({ timeout: __cgTimeout, name: ${literalName}, varyOn: [${values.join(', ')}], ` +
    `keywords: ${keywords.length > 0 ? '__cgKeywords' : '{}'}, line: ${line}${digest === undefined ? '' : `, digest: ${digest}`} }, options, ` +
    `((__etaOuter) => async () => { const __eta = { ...__etaOuter, res: '', cgMarks: '' };`;
  // The tag first asks for a hit kept in memory, which builds nothing.
  const hit =
    values.length <= 3
      ? `hit${values.length}(__cgTimeout, ${literalName}${values.map((value) => `, ${value}`).join('')}${keywordsArgument})`
      : `hitMany(__cgTimeout, ${literalName}, [${values.join(', ')}]${keywordsArgument})`;
  return `{ const ${evaluated.join(', ')}; const __cgHit = __cachegrain.${hit}; __eta.res += __cgHit !== undefined ? __cgHit : ${record}`;
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
