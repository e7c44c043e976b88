/**
 * The JavaScript in the tags of an EJS, Eta or Pug template: which of its characters are code (not
 * a string, the text of a template literal or a comment), the calls of `hole(` and `uncacheable(` in
 * it, and its brackets. Surprise: a `/` is read as division or a comment, never as the start of a
 * regular expression, as the engines' own parsers read it.
 */
import { escapeRegExp, lineAt } from './template-tag.js';

/**
 * Which characters of `code` are code: those outside its '…' and "…" strings, the text of its
 * template literals (a `${…}` in one is code again) and its comments.
 */
export function codeCharacters(code: string): boolean[] {
  const isCode: boolean[] = [];
  // The brace depth of each `${` entered, innermost last, and the depth of the code now.
  const interpolations: number[] = [];
  let depth = 0;
  let at = 0;
  while (at < code.length) {
    const char = code[at]!;
    const next = code[at + 1];
    if (char === '"' || char === "'") at = stringEnd(code, at) + 1;
    else if (char === '/' && next === '/') at = lineEnd(code, at);
    else if (char === '/' && next === '*') at = commentEnd(code, at);
    else if (char === '`' || (char === '}' && depth === 0 && interpolations.length > 0)) {
      if (char === '}') depth = interpolations.pop()!;
      const text = templateTextEnd(code, at + 1);
      at = text.end;
      if (text.interpolates) {
        interpolations.push(depth);
        depth = 0;
      }
    } else {
      if (char === '{') depth++;
      else if (char === '}') depth--;
      isCode[at++] = true;
    }
  }
  return isCode;
}

/** The offset of the quote that closes the string opening at `at` (or of its end, unclosed). */
function stringEnd(code: string, at: number): number {
  const quote = code[at];
  for (let i = at + 1; i < code.length; i++) {
    if (code[i] === '\\') i++;
    else if (code[i] === quote) return i;
  }
  return code.length;
}

function lineEnd(code: string, at: number): number {
  const end = code.indexOf('\n', at);
  return end === -1 ? code.length : end;
}

function commentEnd(code: string, at: number): number {
  const end = code.indexOf('*/', at + 2);
  return end === -1 ? code.length : end + 2;
}

/** Where the text of a template literal that goes on at `from` ends: past its closing backtick, or past a `${` that opens code. */
function templateTextEnd(code: string, from: number): { end: number; interpolates: boolean } {
  for (let i = from; i < code.length; i++) {
    if (code[i] === '\\') i++;
    else if (code[i] === '`') return { end: i + 1, interpolates: false };
    else if (code[i] === '$' && code[i + 1] === '{') return { end: i + 2, interpolates: true };
  }
  return { end: code.length, interpolates: false };
}

/** The template functions a template's code calls by name: `hole(…)` and `uncacheable(…)`, not a method of that name. */
const TEMPLATE_CALL = /(?<![\w$.])(hole|uncacheable)(\s*\()/g;

/**
 * `code`, which starts on line `line()` of its template, with each call of `hole(` or `uncacheable(`
 * opened by `open(name, line)` instead: the call's arguments follow what it gives, as they were written.
 */
export function placeTemplateCalls(code: string, line: () => number, open: (name: 'hole' | 'uncacheable', line: number) => string): string {
  let first: number | undefined;
  let isCode: boolean[] | undefined;
  return code.replace(TEMPLATE_CALL, (call, name: 'hole' | 'uncacheable', _paren: string, offset: number) => {
    // Text in a string or a comment that reads as a call is left as it is.
    if ((isCode ??= codeCharacters(code))[offset] !== true) return call;
    return open(name, (first ??= line()) + lineAt(code, offset) - 1);
  });
}

/** Whether `code` calls a function named `name` (not a method of that name) in its code. */
export function callsFunction(code: string, name: string): boolean {
  let isCode: boolean[] | undefined;
  for (const call of code.matchAll(new RegExp(`(?<![\\w$.])${escapeRegExp(name)}\\s*\\(`, 'g'))) {
    if ((isCode ??= codeCharacters(code))[call.index] === true) return true;
  }
  return false;
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

/** Opening brackets less closing ones in the code of `code`. */
export function bracketBalance(code: string): number {
  let balance = 0;
  scanBrackets(code, 0, (change) => {
    balance += change;
    return false;
  });
  return balance;
}

/** The index of the bracket that closes the one at `open`, or -1. */
function closingBracket(code: string, open: number): number {
  let depth = 0;
  return scanBrackets(code, open, (change) => (depth += change) === 0);
}

/** Calls `step` with +1 or -1 at each bracket of the code from `from` until it answers true: answers that index, or -1. */
function scanBrackets(code: string, from: number, step: (change: 1 | -1) => boolean): number {
  const isCode = codeCharacters(code);
  for (let i = from; i < code.length; i++) {
    if (isCode[i] !== true) continue;
    const char = code[i]!;
    if ((char === '{' || char === '(' || char === '[') && step(1)) return i;
    if ((char === '}' || char === ')' || char === ']') && step(-1)) return i;
  }
  return -1;
}
