/**
 * Template digests for Handlebars: a template's dependencies are the partials it calls
 * (`{{> name}}`, `{{#> layout}}…{{/layout}}`) with a literal name, found in the AST of the instance's
 * own parser, less the inline partials it defines itself; a partial named by a subexpression cannot be
 * followed, and comments (`{{!-- cachegrain: depends on price --}}`) declare what it can be. Partials
 * are read from the instance's registry and from the partials a view engine hands to its renders. The
 * AST is the one of the instance's own parser (an instance made by `create()` has no `Visitor`).
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, relative, sep } from 'node:path';
import type Handlebars from 'handlebars';
import { declarationsIn, type EngineLibrary, type FoundDependencies, noDependencies, UNNAMED } from '../digests/index.js';

type HandlebarsInstance = typeof Handlebars;

/** Where a template compiled by an instance with the helper keeps the source it was compiled from. */
export const SOURCE = Symbol.for('cachegrain.handlebars.source');
/** Where it keeps the name its tags' errors give it (its `srcName`). */
export const SITE = Symbol.for('cachegrain.handlebars.site');

/** What a template parsed by Handlebars depends on: every node of its AST is visited. */
export function findHandlebarsDependencies(program: hbs.AST.Program): FoundDependencies {
  const found = noDependencies();
  const inline = new Set<string>();
  const visit = (node: unknown): void => {
    if (node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      for (const child of node) visit(child);
      return;
    }
    const statement = node as hbs.AST.Node & Record<string, unknown>;
    switch (statement.type) {
      case 'PartialStatement':
      case 'PartialBlockStatement': {
        const { name, loc } = statement as unknown as hbs.AST.PartialStatement;
        const called = name as hbs.AST.PathExpression | hbs.AST.SubExpression;
        if (called.type === 'SubExpression') found.dynamic.push(loc.start.line);
        // `{{> @partial-block}}` is what a partial block wraps, not a partial of its own.
        else if (!(called.type === 'PathExpression' && called.data)) found.named.push({ name: String(called.original), line: loc.start.line });
        break;
      }
      case 'DecoratorBlock': {
        const { path, params } = statement as unknown as hbs.AST.BlockStatement;
        if ((path as hbs.AST.PathExpression).original === 'inline' && params[0]?.type === 'StringLiteral')
          inline.add((params[0] as hbs.AST.StringLiteral).value);
        break;
      }
      case 'CommentStatement': {
        const comment = statement as unknown as hbs.AST.CommentStatement;
        found.declared.push(...declarationsIn(comment.value, comment.loc.start.line));
        break;
      }
    }
    for (const [field, value] of Object.entries(statement)) if (field !== 'loc') visit(value);
  };
  visit(program);
  found.named = found.named.filter((dependency) => !inline.has(dependency.name));
  return found;
}

/** The partials of a Handlebars instance, as a digest reads them: by the names templates call them. */
export class HandlebarsPartials implements EngineLibrary {
  readonly declarationExample = '{{!-- cachegrain: depends on price --}}';
  /** Partials a view engine handed to its renders (express-handlebars), by name: their sources. */
  private readonly handed = new Map<string, string>();
  /** The partial name of each template by the name its tags give it (its file, say). */
  private readonly partialNames = new Map<string, string>();

  constructor(private readonly handlebars: HandlebarsInstance) {}

  /** Learns partials a view engine hands to a render; answers their sources by name. */
  learn(partials: Record<string, unknown>): Map<string, string> {
    const sources = new Map<string, string>();
    for (const [name, partial] of Object.entries(partials)) {
      const source = sourceOf(partial);
      if (source === undefined) continue;
      this.handed.set(name, source);
      this.named(partial, name);
      sources.set(name, source);
    }
    return sources;
  }

  /** Records that `partial`, compiled under some site name, is the partial `name`. */
  named(partial: unknown, name: string): void {
    const site = (partial as Record<PropertyKey, unknown> | undefined)?.[SITE];
    if (typeof site === 'string') this.partialNames.set(site, name);
  }

  resolve(written: string): string {
    return written;
  }

  /** A partial's source; a name that is a file's path (`pageFileName`: a page compiled from its file) is that file's text. */
  read(name: string): string | undefined {
    const registered = this.handlebars.partials[name] as unknown;
    const partial = (Object.hasOwn(this.handlebars.partials, name) ? sourceOf(registered) : undefined) ?? this.handed.get(name);
    if (partial !== undefined || !(isAbsolute(name) || name.startsWith('./'))) return partial;
    try {
      return readFileSync(name, 'utf8');
    } catch {
      return undefined;
    }
  }

  list(folder: string): readonly string[] {
    const prefix = folder === '' ? '' : `${folder}/`;
    const names = new Set([...Object.keys(this.handlebars.partials), ...this.handed.keys()]);
    return [...names].filter((name) => name.startsWith(prefix) && !name.slice(prefix.length).includes('/'));
  }

  find(source: string): FoundDependencies {
    return findHandlebarsDependencies(this.handlebars.parse(source));
  }

  nameOf(site: string | undefined): string | undefined {
    if (site === undefined || site === UNNAMED) return undefined;
    return this.partialNames.get(site) ?? pageFileName(site);
  }
}

/**
 * The name of a template compiled from the file `site` names, a page: its path from the working
 * directory when it lies there (`./views/page.hbs`), so that a deploy into a folder of its own names it
 * as the last one did; else its absolute path. Any other site is left as it is.
 */
function pageFileName(site: string): string {
  if (!isAbsolute(site)) return site;
  const path = relative(process.cwd(), site);
  return path === '' || path.startsWith('..') || isAbsolute(path) ? site : `./${path.split(sep).join('/')}`;
}

/** A partial's source: registered as text, or compiled by an instance with the helper (which keeps it). */
export function sourceOf(partial: unknown): string | undefined {
  if (typeof partial === 'string') return partial;
  const kept = typeof partial === 'function' ? (partial as unknown as Record<PropertyKey, unknown>)[SOURCE] : undefined;
  return typeof kept === 'string' ? kept : undefined;
}
