/**
 * The parse of Eta's `<% cache %>` tag: a template's tags, read as Eta reads them (eta-syntax.ts),
 * rewritten before Eta parses it. `<% cache timeout name vary… keyword=value… %>` becomes code that
 * emits a hit kept in memory at once and otherwise records the fragment, its body wrapped in a
 * function rendered later; `<% endcache %>` closes that function; each `hole(…)` and `uncacheable(…)`
 * call in code is given its line. Surprise: arguments are separated by spaces, so an argument with
 * spaces needs parentheses.
 */
import { missingEndTag, TemplateSyntaxError, tooFewArguments, unknownKeyword } from '../fragments/index.js';
import { type EtaSyntaxConfig, type EtaTag, etaTags } from './eta-syntax.js';
import { isOnlyCall, placeTemplateCalls } from './template-code.js';
import { lineAt } from './template-tag.js';

/** What the tags of one template share as it is compiled. */
export interface TemplateCompile {
  readonly tagName: string;
  /** The code of the keyword objects made of literals only, each a constant made once per render: a tag adds its own. */
  readonly constantKeywords: string[];
  /** The name of the template's digest key constant, with digests on. */
  readonly digest: string | undefined;
}

/** A misused tag, found while compiling: its message and line. */
export interface CompileFault {
  readonly message: string;
  readonly line: number;
}

/**
 * `template` with each call of `hole(…)` and `uncacheable(…)` in its code given the line it stands on,
 * and `uncacheable` the buffer it marks; a code tag that is one `hole(…)` call outputs its hole, as
 * `<%~` does. Lines stay as they were.
 */
export function placeCalls(template: string, config: EtaSyntaxConfig): string {
  const raw = config.parse?.raw ?? '~';
  return rewriteEach(template, config, (tag) => {
    if (tag.kind === 'custom') return undefined;
    const placed = placeTemplateCalls(
      tag.content,
      () => lineAt(template, tag.contentStart),
      (name, at) => (name === 'hole' ? `__cgHole(${at}, ` : `__cgUncacheable(__eta, ${at}, `),
    );
    if (placed === tag.content) return undefined;
    const prefix = tag.kind === 'code' && isOnlyCall(tag.content, 'hole') ? raw : tag.prefix;
    return (
      template.slice(tag.start, tag.prefixStart) +
      prefix +
      template.slice(tag.prefixStart + tag.prefix.length, tag.contentStart) +
      placed +
      closingOf(template, tag)
    );
  });
}

/**
 * `template` with its cache tags and end tags made into code; a misused tag is reported as the first
 * fault found, the template then to be replaced whole (its code would be unbalanced).
 */
export function rewriteTags(template: string, config: EtaSyntaxConfig, compile: TemplateCompile): { source: string; fault: CompileFault | undefined } {
  const [open, close] = config.tags ?? ['<%', '%>'];
  const { tagName } = compile;
  const unclosed: number[] = [];
  let fault: CompileFault | undefined;
  const source = rewriteEach(template, config, (tag) => {
    const written = cacheTagIn(tag, tagName);
    if (written === undefined || tag.kind === 'custom') return undefined;
    const line = lineAt(template, tag.start);
    if (tag.kind !== 'code') {
      const form = `${open} ${tagName} 60 "sidebar" ${close}…${open} end${tagName} ${close}`;
      fault ??= { message: `the '${tagName}' tag outputs its fragment itself: write it without '${tag.prefix}', as in ${form}`, line };
    }
    let code = '';
    if (written.end) {
      if (unclosed.pop() === undefined) fault ??= { message: `'end${tagName}' has no '${tagName}' tag to close`, line };
      else code = 'return __eta.res + __eta.cgMarks; })(__eta)); }';
    } else {
      unclosed.push(line);
      const opened = openFragment(splitArguments(written.args), line, compile);
      if (typeof opened === 'string') code = opened;
      else fault ??= { message: opened.message, line };
    }
    return `${open}${tag.trimLeft} ${code} ${tag.trimRight}${close}`;
  });
  if (unclosed.length > 0) fault ??= { message: missingEndTag(tagName, `${open} end${tagName} ${close}`).message, line: unclosed.at(-1)! };
  return { source, fault };
}

/** `template` with each tag `rewrite` gives text for replaced by that text. */
function rewriteEach(template: string, config: EtaSyntaxConfig, rewrite: (tag: EtaTag) => string | undefined): string {
  let source = '';
  let copied = 0;
  for (const tag of etaTags(template, config)) {
    const written = rewrite(tag);
    if (written === undefined) continue;
    source += template.slice(copied, tag.start) + written;
    copied = tag.end;
  }
  return copied === 0 ? template : source + template.slice(copied);
}

/** The text of `tag` after its content: the spaces, trim mark and closing delimiter. */
function closingOf(template: string, tag: EtaTag): string {
  return template.slice(tag.contentStart + tag.content.length, tag.end);
}

/** The cache tag or end tag `tag` is, with the cache tag's arguments' text; undefined for any other tag. */
function cacheTagIn({ content }: EtaTag, tagName: string): { end: boolean; args: string } | undefined {
  const end = content.startsWith(`end${tagName}`);
  const name = end ? `end${tagName}` : tagName;
  if (!content.startsWith(name) || /^[\w$]/.test(content.slice(name.length))) return undefined;
  return { end, args: content.slice(name.length) };
}

/**
 * `name=expression`, a keyword known or not: a bare name and one `=` is no vary-on value worth having
 * (an assignment), while `==`, `=>`, `<=`, `>=` and `!=` are kept as the expressions they are.
 */
const KEYWORD = /^([A-Za-z_$][\w$]*)=(?![=>])(.+)$/s;
/** A keyword value that is the same on every evaluation: a quoted string without interpolation, a number, a boolean. */
const LITERAL = /^(?:"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|-?\d+(?:\.\d+)?|true|false)$/;

/** The tag's arguments parsed: its timeout, name and vary-on values, as code, and the code of each keyword given. */
interface FragmentArguments {
  timeout: string;
  name: string;
  varyOn: string[];
  keywords: string[];
  /** Whether every keyword's value is a literal. */
  literalsOnly: boolean;
}

/**
 * `cache timeout name vary… using=alias tags=… stale=… lock=true` (keywords after the vary-on values,
 * in any order) → a call recording the fragment, opening the body's function.
 */
function openFragment(args: string[], line: number, compile: TemplateCompile): string | TemplateSyntaxError {
  const parsed = parseArguments(args, compile.tagName);
  return parsed instanceof TemplateSyntaxError ? parsed : fragmentCode(parsed, line, compile);
}

/** The tag's arguments, split on spaces, read into the fragment's parts; an error for arguments the tag does not take. */
function parseArguments(args: string[], tagName: string): FragmentArguments | TemplateSyntaxError {
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
  return { timeout, name, varyOn, keywords, literalsOnly };
}

/** The code a cache tag becomes: its arguments evaluated once, a hit kept in memory emitted, else the fragment recorded and its body's function opened. */
function fragmentCode({ timeout, name, varyOn, keywords, literalsOnly }: FragmentArguments, line: number, compile: TemplateCompile): string {
  const { constantKeywords, digest } = compile;
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
      ? `keptHitVaryingOn${values.length}(__cgTimeout, ${literalName}${values.map((value) => `, ${value}`).join('')}${keywordsArgument})`
      : `keptHitVaryingOnMany(__cgTimeout, ${literalName}, [${values.join(', ')}]${keywordsArgument})`;
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
