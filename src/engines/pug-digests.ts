/**
 * Template digests for Pug: a template's dependencies are what it names in `include` (of Pug or of
 * raw text) and `extends`, read with Pug's own lexer and parser, a name without an extension given
 * `.pug` as Pug gives it; a mixin defined in an included template is reached through that include.
 * Pug names every template by a literal path, so none is named by an expression; a comment
 * (`//- cachegrain: depends on partials/price`) declares a template rendered some other way. Names
 * starting with `/` are looked up in `basedir`, others from the including template's folder. Surprise:
 * Pug inlines what a template includes as it compiles it, so a tag from an included template carries
 * the digest key of that template, made from the source Pug read for it.
 */
import { createRequire } from 'node:module';
import { extname } from 'node:path';
import { declarationsIn, type FoundDependencies, noDependencies, type TemplateDigestReport, TemplateDigests } from '../digests/index.js';
import { TemplateFiles } from './template-files.js';

interface PugAstNode {
  type: string;
  line?: number;
  val?: string;
  block?: { nodes?: PugAstNode[] };
  file?: { path?: string; line?: number; fullPath?: string; str?: string };
}

type Walk = (ast: unknown, before: (node: PugAstNode) => void, after?: undefined, options?: { includeDependencies?: boolean }) => void;

interface PugParts {
  lex(source: string, options: object): Array<{ type: string; val?: string }>;
  parse(tokens: unknown[], options: object): unknown;
  walk: Walk;
}

let parts: PugParts | undefined;

/** Pug's lexer, parser and walker, as the installed Pug depends on them. */
function pugParts(): PugParts {
  if (parts !== undefined) return parts;
  const fromPug = createRequire(createRequire(import.meta.url).resolve('pug'));
  return (parts = { lex: fromPug('pug-lexer') as PugParts['lex'], parse: fromPug('pug-parser') as PugParts['parse'], walk: fromPug('pug-walk') as Walk });
}

/** What a Pug source depends on. */
export function findPugDependencies(source: string): FoundDependencies {
  const { lex, parse, walk } = pugParts();
  const found = noDependencies();
  const tokens = lex(source, {}).map((token) => (token.type === 'path' && extname(token.val!) === '' ? { ...token, val: `${token.val!}.pug` } : token));
  walk(parse(tokens, { src: source }), (node) => {
    if (node.type === 'Include' || node.type === 'RawInclude' || node.type === 'Extends') {
      found.named.push({ name: node.file!.path!, line: node.file!.line ?? node.line ?? 1 });
    } else if (node.type === 'Comment' || node.type === 'BlockComment') {
      const text = [node.val ?? '', ...(node.block?.nodes ?? []).map((text) => text.val ?? '')].join('\n');
      found.declared.push(...declarationsIn(text, node.line ?? 1));
    }
  });
  return found;
}

const DIGESTS = Symbol.for('cachegrain.pug.digests');

export type PugDigests = TemplateDigests<TemplateFiles>;

/** The template digests of `pug`, made by its install with digests on. */
export function pugDigests(pug: object): PugDigests | undefined {
  return (pug as Record<PropertyKey, PugDigests | undefined>)[DIGESTS];
}

/** Makes the template digests of `pug` at its install: a page stored before a restart is checked against them on its first hit. */
export function makePugDigests(pug: object): PugDigests {
  const library = new TemplateFiles({
    declarationExample: '//- cachegrain: depends on partials/price',
    extension: () => '.pug',
    relativeFrom: 'always',
    thenFolders: false,
    find: findPugDependencies,
  });
  return ((pug as Record<PropertyKey, PugDigests | undefined>)[DIGESTS] ??= new TemplateDigests(library, 'pug'));
}

/**
 * The digest keys of one compile: of the template compiled from `source` (its file `filename`, if
 * any), and of each template Pug read for it, by file. Each file read is learned: one whose source
 * changed is a reload.
 */
export class PugCompileDigests {
  private readonly sources = new Map<string, string>();
  private readonly keys = new Map<string, string>();

  constructor(
    private readonly digests: PugDigests,
    private readonly source: string,
    private readonly options: { filename?: string; basedir?: string },
  ) {
    digests.library.useFolders([options.basedir]);
    if (options.filename !== undefined) this.learn(options.filename, source);
  }

  /** A plugin that hears of every template Pug reads for this compile. */
  plugin(): { postLoad(ast: unknown): unknown } {
    return {
      postLoad: (ast) => {
        pugParts().walk(
          ast,
          (node) => {
            const file = node.file;
            if (file?.fullPath !== undefined && typeof file.str === 'string') this.learn(file.fullPath, file.str);
          },
          undefined,
          { includeDependencies: true },
        );
        return ast;
      },
    };
  }

  /** The digest key of the tags of template file `filename` (that of the template compiled, for its own or none). */
  keyOf(filename: string | undefined): string | undefined {
    const file = filename ?? this.options.filename;
    const source = file === undefined || file === this.options.filename ? this.source : this.sources.get(file);
    if (source === undefined) return undefined;
    const at = file ?? '';
    let key = this.keys.get(at);
    if (key === undefined) this.keys.set(at, (key = this.digests.keyOf(source)));
    return key;
  }

  private learn(file: string, source: string): void {
    this.sources.set(file, source);
    this.digests.learned(this.digests.library.nameOfFile(file), source);
  }
}

/**
 * The digest of template `name` of `pug` (its path from `basedir`, or from the working directory as
 * `./views/page.pug`) as it is now, the tree of what it depends on and what could not be resolved:
 * `makeTemplateFragmentKey(name, varyOn, undefined, digest)` gives its fragments' keys.
 */
export function templateDigest(pug: object, name: string): TemplateDigestReport {
  const digests = pugDigests(pug);
  if (digests === undefined) throw new TypeError('templateDigest: give it a Pug whose installCacheTag was given { digests: true }');
  return digests.report(name);
}
