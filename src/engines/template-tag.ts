/**
 * What the template adapters share: where a render's fragment state travels in an engine's
 * render data, and the check of the options their installs take: the tag's (or helper's) name, and
 * whether fragment keys carry template digests.
 */
import { checkOptions, MUST_BE } from '../common/option-rules.js';

/** Where a render's fragment state travels in an engine's render data; includes, partials and layouts copy it along. */
export const RENDER_STATE = '__cachegrain';

/** The options of an installer, as `installerOptions` reads them. */
export interface InstallerOptions {
  /** The name the tag is installed under. */
  tagName: string;
  /** Whether fragment keys carry the digest of their template and its dependencies. */
  digests: boolean;
}

/**
 * The options of an installer: the tag's name is `cache` unless `options[option]` names another;
 * `digests` is a boolean, false unless given; any other option is refused.
 */
export function installerOptions<Option extends string>(
  options: ({ readonly [name in Option]?: string } & { readonly digests?: boolean }) | undefined,
  option: Option,
  installer: string,
): InstallerOptions {
  checkOptions(options, { [option]: MUST_BE.string, digests: MUST_BE.boolean }, installer);
  return { tagName: options?.[option] ?? 'cache', digests: options?.digests === true };
}

/** The line, counted from 1, of the character at `offset` of `text`. */
export function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let at = text.indexOf('\n'); at !== -1 && at < offset; at = text.indexOf('\n', at + 1)) line++;
  return line;
}

/** `text` matched literally in a regular expression. */
export function escapeRegExp(text: string): string {
  return text.replace(/[.*+\-?^${}()|[\]\\]/g, '\\$&');
}

/** The template functions a template's code calls by name: `hole(…)` and `uncacheable(…)`, not a method of that name. */
const TEMPLATE_CALL = /(?<![\w$.])(hole|uncacheable)(\s*\()/g;

/**
 * `code`, which starts on line `line()` of its template, with each call of `hole(` or `uncacheable(`
 * opened by `open(name, line)` instead: the call's arguments follow what it gives, as they were written.
 */
export function placeTemplateCalls(code: string, line: () => number, open: (name: 'hole' | 'uncacheable', line: number) => string): string {
  let first: number | undefined;
  let quoted: boolean[] | undefined;
  return code.replace(TEMPLATE_CALL, (call, name: 'hole' | 'uncacheable', _paren: string, offset: number) => {
    // Text in quotes that reads as a call is left as it is (a template literal's `${…}` is code).
    if ((quoted ??= quotedCharacters(code))[offset] === true) return call;
    return open(name, (first ??= line()) + lineAt(code, offset) - 1);
  });
}

/** Whether `code` calls a function named `name` (not a method of that name), outside quotes. */
export function callsFunction(code: string, name: string): boolean {
  const quoted = quotedCharacters(code);
  for (const call of code.matchAll(new RegExp(`(?<![\\w$.])${escapeRegExp(name)}\\s*\\(`, 'g'))) if (quoted[call.index] !== true) return true;
  return false;
}

/** Which characters of `code` are inside a '…' or "…" string. */
function quotedCharacters(code: string): boolean[] {
  const quoted: boolean[] = [];
  let quote: string | undefined;
  for (let i = 0; i < code.length; i++) {
    const char = code[i]!;
    quoted[i] = quote !== undefined;
    if (quote !== undefined && char === '\\') quoted[++i] = true;
    else if (quote !== undefined && char === quote) quote = undefined;
    else if (quote === undefined && (char === '"' || char === "'")) quote = char;
  }
  return quoted;
}

/**
 * Whether `code` is one call of `name` and nothing more (a `;` aside): written in a statement, its
 * value would be dropped, so such a call of `hole` is rendered as its output.
 */
export function isOnlyCall(code: string, name: string): boolean {
  const call = new RegExp(`^\\s*${escapeRegExp(name)}\\s*\\(`).exec(code);
  if (call === null) return false;
  const close = closingBracket(code, call[0].length - 1);
  return close !== -1 && /^\s*;?\s*$/.test(code.slice(close + 1));
}

/** Opening brackets less closing ones in `code`, outside strings. */
export function bracketBalance(code: string): number {
  let balance = 0;
  scanBrackets(code, 0, (change) => {
    balance += change;
    return false;
  });
  return balance;
}

/** The index of the bracket that closes the one at `open`, outside strings, or -1. */
function closingBracket(code: string, open: number): number {
  let depth = 0;
  return scanBrackets(code, open, (change) => (depth += change) === 0);
}

/** Calls `step` with +1 or -1 at each bracket from `from`, outside strings, until it answers true: answers that index, or -1. */
function scanBrackets(code: string, from: number, step: (change: 1 | -1) => boolean): number {
  let quote: string | undefined;
  for (let i = from; i < code.length; i++) {
    const char = code[i]!;
    if (quote !== undefined) {
      if (char === '\\') i++;
      else if (char === quote) quote = undefined;
    } else if (char === '"' || char === "'" || char === '`') quote = char;
    else if ((char === '{' || char === '(' || char === '[') && step(1)) return i;
    else if ((char === '}' || char === ')' || char === ']') && step(-1)) return i;
  }
  return -1;
}
