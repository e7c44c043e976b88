/**
 * Template digests for Eta: a template's dependencies are the calls of the functions Eta
 * compiles into every template, `include`, `includeAsync` and `layout`, with a string literal first,
 * found in its code only (the text between tags, where an inline script's `.render(` lives, is never
 * read), its strings and comments skipped as Eta's own parser skips them. Comments in code declare
 * what a name built by an expression can be (`<%/* cachegrain: depends on partials/price *\/%>`).
 * Dependencies are read from the views folder, or for templates loaded by name (`@card`) from their
 * compiled code, which carries what the plugin found in them.
 */
import { readdirSync } from 'node:fs';
import { extname, isAbsolute, join, posix, relative, sep } from 'node:path';
import type { Eta } from 'eta';
import {
  countNewlines,
  declarationsIn,
  type EngineLibrary,
  type FoundDependencies,
  inputsOfKey,
  noDependencies,
  TemplateDigests,
  type TemplateInputs,
  UNNAMED,
} from '../digests/index.js';
import { type EtaSyntaxConfig, etaTags } from './eta-syntax.js';

/** The functions of a compiled Eta template that render another one, by its name as their first argument. */
const RENDERING = new Set(['include', 'includeAsync', 'layout']);

/** The constant a compiled template holds its digest key in, with digests on. */
export const DIGEST_CONSTANT = '__cgDigest';

/** What an Eta source depends on, its tags read as `config` says they are written. */
export function findEtaDependencies(source: string, config: EtaSyntaxConfig): FoundDependencies {
  const found = noDependencies();
  for (const { kind, content, contentStart } of etaTags(source, config)) {
    // A custom tag's content is text handed to its function, not code.
    if (kind !== 'custom') scanCode({ source, from: contentStart, to: contentStart + content.length }, found, RENDERING);
  }
  return found;
}

/** Where an Eta instance keeps its template digests, made the first time they are asked for. */
const DIGESTS = Symbol.for('cachegrain.eta.digests-held');

/** The template digests of `eta`, made the first time they are asked for. */
export function etaDigests(eta: Eta): TemplateDigests {
  return ((eta as unknown as Record<PropertyKey, TemplateDigests | undefined>)[DIGESTS] ??= new TemplateDigests(etaLibrary(eta), 'eta'));
}

/** The JavaScript code of a template: `source` between `from` and `to`, which lines are counted in. */
export interface CodeSpan {
  readonly source: string;
  readonly from: number;
  readonly to: number;
}

/** Finds the calls of `rendering` (functions whose first argument names a template) and the comments of `code`. */
export function scanCode({ source, from, to }: CodeSpan, found: FoundDependencies, rendering: ReadonlySet<string>): void {
  const lineOf = (offset: number) => 1 + countNewlines(source, offset);
  for (let at = from; at < to; at++) {
    const char = source[at]!;
    if (char === '/' && (source[at + 1] === '*' || source[at + 1] === '/')) {
      const block = source[at + 1] === '*';
      const end = block ? endOf(source.indexOf('*/', at + 2), source) : endOf(source.indexOf('\n', at), source);
      found.declared.push(...declarationsIn(source.slice(at + 2, Math.min(end, to)), lineOf(at)));
      at = block ? end + 1 : end;
    } else if (char === '"' || char === "'" || char === '`') {
      at = stringEnd(source, at);
    } else if (/[A-Za-z_$]/.test(char)) {
      IDENTIFIER.lastIndex = at;
      const name = IDENTIFIER.exec(source)![0];
      // `it.layout(…)`, `app.render(…)`: a method of some object, not one of the template's own functions.
      if (rendering.has(name) && !memberAccess(source, at, from)) call(source.slice(at + name.length, to), lineOf(at), found);
      at += name.length - 1;
    }
  }
}

const IDENTIFIER = /[\w$]+/y;

/** Whether the identifier at `at` follows a `.` (spaces aside). */
function memberAccess(source: string, at: number, from: number): boolean {
  let before = at - 1;
  while (before >= from && /\s/.test(source[before]!)) before--;
  return before >= from && source[before] === '.';
}

/** What follows a rendering function's name (`rest`, on `line`), if a call: its first argument names a template, or an expression does. */
function call(rest: string, line: number, found: FoundDependencies): void {
  const opening = /^\s*\(\s*/.exec(rest);
  if (opening === null) return;
  const literal = /^(?:"((?:[^"\\\n]|\\.)*)"|'((?:[^'\\\n]|\\.)*)'|`((?:[^`\\$]|\\.|\$(?!\{))*)`)\s*[,)]/.exec(rest.slice(opening[0].length));
  if (literal === null) found.dynamic.push(line);
  else found.named.push({ name: unescape(literal[1] ?? literal[2] ?? literal[3]!), line });
}

function unescape(text: string): string {
  return text.replace(/\\(.)/g, '$1');
}

/** The offset of the last character of the string that opens at `at`. */
function stringEnd(source: string, at: number): number {
  const quote = source[at];
  for (let i = at + 1; i < source.length; i++) {
    if (source[i] === '\\') i++;
    else if (source[i] === quote) return i;
  }
  return source.length;
}

function endOf(index: number, source: string): number {
  return index === -1 ? source.length : index;
}

/** The templates of `eta`: files of its views folder by their path there, and templates it loaded by name. */
export function etaLibrary(eta: Eta): EngineLibrary {
  const views = () => eta.config.views;
  const resolve = (written: string, from: string | undefined): string | undefined => {
    if (written.startsWith('@')) return written;
    if (views() === undefined) return undefined;
    let name = written.replace(/\\/g, '/');
    // As Eta resolves it: a leading '/' from the views folder, else from the including template's folder.
    if (name.startsWith('/')) name = name.replace(/^\/+/, '');
    else if (from !== undefined && !from.startsWith('@')) name = posix.join(posix.dirname(from), name);
    name = posix.normalize(name);
    return name === '..' || name.startsWith('../') ? undefined : name;
  };
  const withExtension = (name: string) => (extname(name) === '' ? name + (eta.config.defaultExtension ?? '.eta') : name);
  return {
    declarationExample: '<%/* cachegrain: depends on partials/price */%>',
    resolve: (written, from) => {
      const name = resolve(written, from);
      return name === undefined || name.startsWith('@') ? name : withExtension(name);
    },
    read(name) {
      if (name.startsWith('@')) return compiledInputs(eta.templatesAsync.get(name) ?? eta.templatesSync.get(name));
      try {
        return eta.readFile!(join(views()!, name));
      } catch {
        return undefined;
      }
    },
    list(folder, from) {
      const resolved = folder === '' ? '' : resolve(folder, from);
      if (resolved === undefined || resolved.startsWith('@')) return undefined;
      try {
        return readdirSync(join(views()!, resolved), { withFileTypes: true })
          .filter((entry) => entry.isFile() && !entry.name.startsWith('.'))
          .map((entry) => (resolved === '' || resolved === '.' ? entry.name : `${resolved}/${entry.name}`));
      } catch {
        return [];
      }
    },
    find: (source) => findEtaDependencies(source, eta.config),
    nameOf(site) {
      const folder = views();
      if (site === undefined || site === UNNAMED) return undefined;
      if (folder === undefined || !isAbsolute(site)) return site;
      return relative(folder, site).split(sep).join('/');
    },
  };
}

/** What the plugin found in a template loaded by name, from the digest key its compiled code holds. */
function compiledInputs(template: unknown): TemplateInputs | undefined {
  if (typeof template !== 'function') return undefined;
  const constant = new RegExp(`const ${DIGEST_CONSTANT} = ("(?:[^"\\\\]|\\\\.)*");`).exec(Function.prototype.toString.call(template));
  if (constant === null) return undefined;
  return inputsOfKey(JSON.parse(constant[1]!) as string);
}
