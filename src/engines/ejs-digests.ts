/**
 * Template digests for EJS: a template's dependencies are the calls of `include` with a string
 * literal first, found in the code of its scriptlets and output tags only (text between tags, where
 * an inline script's `include(` lives, is never read), strings and comments skipped. A comment tag
 * or a comment in code declares what a name built by an expression can be
 * (`<%# cachegrain: depends on partials/price %>`). Names are looked up as EJS looks them up: from
 * the including template's folder, then in `views`; a name starting with `/` in `root`.
 */
import { declarationsIn, type FoundDependencies, noDependencies, type TemplateDigestReport, TemplateDigests } from '../digests/index.js';
import { scanCode } from './eta-digests.js';
import { ejsTags } from './ejs-syntax.js';
import { lineAt } from './template-tag.js';
import { TemplateFiles } from './template-files.js';

/** The options of a compile a digest reads: its delimiters and folders. */
export interface EjsDigestOptions {
  filename?: string;
  root?: string | string[];
  views?: string | string[];
  delimiter?: string;
  openDelimiter?: string;
  closeDelimiter?: string;
}

const DIGESTS = Symbol.for('cachegrain.ejs.digests');
const INCLUDE = new Set(['include']);

/** What an EJS source depends on, its tags read with `options`' delimiters. */
export function findEjsDependencies(source: string, options: EjsDigestOptions = {}): FoundDependencies {
  const found = noDependencies();
  for (const { type, code, codeStart, start } of ejsTags(source, options)) {
    if (type === '#') found.declared.push(...declarationsIn(code, lineAt(source, start)));
    else scanCode({ source, from: codeStart, to: codeStart + code.length }, found, INCLUDE);
  }
  return found;
}

/** The templates of an EJS, read with the delimiters and folders of its compiles. */
class EjsTemplates extends TemplateFiles {
  private delimiters: EjsDigestOptions = {};

  constructor() {
    super({
      declarationExample: '<%# cachegrain: depends on partials/price %>',
      extension: () => '.ejs',
      relativeFrom: 'always',
      thenFolders: true,
    });
  }

  override find(source: string): FoundDependencies {
    return findEjsDependencies(source, this.delimiters);
  }

  /** A compile with `options` begins: an application writes its templates with one set of delimiters. */
  compiling(options: EjsDigestOptions): void {
    this.delimiters = { delimiter: options.delimiter, openDelimiter: options.openDelimiter, closeDelimiter: options.closeDelimiter };
    this.useFolders([options.root ?? [], options.views ?? []].flat());
  }
}

export type EjsDigests = TemplateDigests<EjsTemplates>;

/** The template digests of `ejs` (its default export), made by its install with digests on. */
export function ejsDigests(ejs: object): EjsDigests | undefined {
  return (ejs as Record<PropertyKey, EjsDigests | undefined>)[DIGESTS];
}

/** Makes the template digests of `ejs` at its install: a page stored before a restart is checked against them on its first hit. */
export function makeEjsDigests(ejs: object): EjsDigests {
  return ((ejs as Record<PropertyKey, EjsDigests | undefined>)[DIGESTS] ??= new TemplateDigests(new EjsTemplates(), 'ejs'));
}

/** The digest key of a template EJS compiles from `source` with `options`; a file whose source changed is a reload. */
export function compiledDigestKey(digests: EjsDigests, source: string, options: EjsDigestOptions): string {
  digests.library.compiling(options);
  if (options.filename !== undefined) digests.learned(digests.library.nameOfFile(options.filename), source);
  return digests.keyOf(source);
}

/**
 * The digest of template `name` of `ejs` (its path from `views` or `root`, as a digest names it) as
 * it is now, the tree of what it depends on and what could not be resolved:
 * `makeTemplateFragmentKey(name, varyOn, undefined, digest)` gives its fragments' keys.
 */
export function templateDigest(ejs: object, name: string): TemplateDigestReport {
  const digests = ejsDigests(ejs);
  if (digests === undefined) throw new TypeError('templateDigest: give it an EJS whose installCacheTag was given { digests: true }');
  return digests.report(name);
}
