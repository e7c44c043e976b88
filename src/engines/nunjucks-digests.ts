/**
 * Template digests for Nunjucks: what a template depends on is found by the parser of the
 * environment's own copy of nunjucks (`include`, `extends`, `import` and `from … import` naming a
 * string literal, in cache tags' bodies too), its declarations are read from the comments its lexer
 * hands over, and its dependencies are read through the environment's synchronous loaders, by the
 * names those loaders give them.
 */
import { readdirSync } from 'node:fs';
import { isAbsolute, join, posix, relative, sep } from 'node:path';
import type { Environment } from 'nunjucks';
import { declarationsIn, type EngineLibrary, type FoundDependencies, noDependencies, UNNAMED } from '../digests/index.js';

/** The modules of a copy of nunjucks a finder parses with. */
export interface NunjucksParsing {
  parser: { parse(source: string, extensions: unknown[], opts: unknown): unknown };
  lexer: { lex(source: string, opts: unknown): { nextToken(): NunjucksToken | null }; TOKEN_COMMENT: string };
}

interface NunjucksToken {
  type: string;
  value: string;
  lineno: number;
}

interface NunjucksNode {
  typename: string;
  fields: string[];
  lineno: number;
  [field: string]: unknown;
}

interface NunjucksLoader {
  async?: boolean;
  searchPaths?: string[];
  pathsToNames?: Record<string, string>;
  getSource(name: string): { src: unknown } | null;
}

/** Where the cache tag's parse keeps its body on the node it returns: the body is compiled apart, out of the node's fields. */
export const TAG_BODY = Symbol.for('cachegrain.nunjucks.body');

/** The nodes that name another template in their `template` field. */
const TEMPLATE_NODES = new Set(['Include', 'Extends', 'Import', 'FromImport']);

/** What a Nunjucks source depends on, by the parser and lexer of `parsing` with the environment's extensions and options. */
export function findNunjucksDependencies(source: string, env: Environment, parsing: NunjucksParsing): FoundDependencies {
  const found = noDependencies();
  const internals = env as unknown as { extensionsList: unknown[]; opts: { tags?: { commentStart?: string; commentEnd?: string } } };
  visit(parsing.parser.parse(source, internals.extensionsList, internals.opts), found);
  const start = internals.opts.tags?.commentStart ?? '{#';
  const end = internals.opts.tags?.commentEnd ?? '#}';
  const tokens = parsing.lexer.lex(source, internals.opts);
  for (let token = tokens.nextToken(); token !== null; token = tokens.nextToken()) {
    if (token.type !== parsing.lexer.TOKEN_COMMENT) continue;
    const text = token.value.slice(start.length, token.value.endsWith(end) ? -end.length : undefined).replace(/^-|-$/g, '');
    found.declared.push(...declarationsIn(text, token.lineno + 1));
  }
  return found;
}

function visit(node: unknown, found: FoundDependencies): void {
  if (node === null || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    for (const child of node) visit(child, found);
    return;
  }
  const parsed = node as NunjucksNode;
  if (typeof parsed.typename !== 'string' || !Array.isArray(parsed.fields)) return;
  if (TEMPLATE_NODES.has(parsed.typename)) {
    const template = parsed.template as NunjucksNode | null;
    if (template?.typename === 'Literal' && typeof template.value === 'string') {
      found.named.push({ name: template.value, line: parsed.lineno + 1, ...(parsed.ignoreMissing === true ? { optional: true } : {}) });
    } else found.dynamic.push(parsed.lineno + 1);
  }
  for (const field of parsed.fields) visit(parsed[field], found);
  visit((parsed as { [TAG_BODY]?: unknown })[TAG_BODY], found);
}

/** The templates of `env` as its loaders give them: names relative to their search paths, `./` and `../` to the naming template. */
export function nunjucksLibrary(env: Environment, parsing: NunjucksParsing): EngineLibrary {
  const loaders = () => (env as unknown as { loaders: NunjucksLoader[] }).loaders;
  const resolve = (written: string, from: string | undefined): string | undefined => {
    if (!/^\.\.?\//.test(written)) return written;
    const joined = posix.normalize(posix.join(posix.dirname(from ?? ''), written));
    return joined.startsWith('../') ? undefined : joined;
  };
  return {
    declarationExample: '{# cachegrain: depends on partials/price.njk #}',
    resolve,
    read(name) {
      for (const loader of loaders()) {
        // An asynchronous loader answers too late for a digest, which is made while a tag renders.
        if (loader.async === true) continue;
        try {
          const source = loader.getSource(name)?.src;
          if (typeof source === 'string') return source;
        } catch {
          // a folder, or a name the loader refuses: no template
        }
      }
      return undefined;
    },
    list(folder, from) {
      const resolved = folder === '' ? '' : resolve(folder, from);
      const listing = loaders().filter((loader) => Array.isArray(loader.searchPaths));
      if (resolved === undefined || listing.length === 0) return undefined;
      const names = new Set<string>();
      for (const base of listing.flatMap((loader) => loader.searchPaths!)) {
        let entries;
        try {
          entries = readdirSync(join(base, resolved), { withFileTypes: true });
        } catch {
          continue;
        }
        for (const entry of entries) if (entry.isFile() && !entry.name.startsWith('.')) names.add(resolved === '' ? entry.name : `${resolved}/${entry.name}`);
      }
      return [...names];
    },
    find: (source) => findNunjucksDependencies(source, env, parsing),
    nameOf(site) {
      if (site === undefined || site === UNNAMED) return undefined;
      // nunjucks compiles a file's template under its path; its loader knows the name it was asked for.
      let name = site;
      for (const loader of loaders()) {
        const asked = loader.pathsToNames?.[site];
        if (asked !== undefined) {
          name = asked;
          break;
        }
      }
      // A template asked for by its path (as Express asks for a view) is named from its search path, as an include names it.
      if (!isAbsolute(name)) return name;
      for (const base of loaders().flatMap((loader) => loader.searchPaths ?? [])) {
        const inside = relative(base, name);
        if (inside !== '' && !inside.startsWith('..') && !isAbsolute(inside)) return inside.split(sep).join('/');
      }
      return name;
    },
  };
}
