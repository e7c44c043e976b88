/**
 * Template digests for LiquidJS: a template's dependencies are what its `render`, `include` and
 * `layout` tags name by a quoted string (or by a bare word, with `dynamicPartials: false`), in its
 * tags and in the lines of its `{% liquid %}` tags, read with LiquidJS's own tokenizer; a name given
 * by a variable cannot be followed, and a comment (`{% comment %}cachegrain: depends on
 * partials/price{% endcomment %}` or `{% # … %}`) declares what it can be. Text in comments and
 * `raw` blocks names nothing. Names are looked up in `root`, `partials` and `layouts`, a name
 * starting with `./` or `../` from the template that names it.
 */
import { type Liquid, type TagToken, Tokenizer, TokenKind } from 'liquidjs';
import { md5 } from '../keys/hash.js';
import { BoundedMemo } from '../memos/bounded-memo.js';
import { countNewlines, declarationsIn, type FoundDependencies, noDependencies, type TemplateDigestReport, TemplateDigests } from '../digests/index.js';
import { TemplateFiles } from './template-files.js';

/** The tags whose first argument names a template. */
const RENDERING = new Set(['render', 'include', 'layout']);

/** What a Liquid source depends on, read as `liquid` reads it. */
export function findLiquidDependencies(source: string, liquid: Liquid): FoundDependencies {
  const found = noDependencies();
  const { options } = liquid;
  const tokens = new Tokenizer(source, options.operators, undefined, undefined, options.groupedExpressions).readTopLevelTokens(options);
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token.kind !== TokenKind.Tag) continue;
    const tag = token as TagToken;
    const line = tag.getPosition()[0]!;
    if (tag.name === 'comment' || tag.name === 'raw') {
      const end = tokens.findIndex((next, at) => at > i && next.kind === TokenKind.Tag && (next as TagToken).name === `end${tag.name}`);
      const last = end === -1 ? tokens.length : end;
      if (tag.name === 'comment') found.declared.push(...declarationsIn(source.slice(tag.end, tokens[last]?.begin ?? source.length), line));
      i = last;
    } else if (tag.name === 'liquid') {
      liquidLines(tag.args, 1 + countNewlines(source, source.indexOf(tag.args, tag.begin)), found, options.dynamicPartials);
    } else {
      tagNaming({ name: tag.name, args: tag.args, line }, found, options.dynamicPartials);
    }
  }
  return found;
}

/** The tags of a `{% liquid %}` tag, one a line (`render 'card'`), whose first line is `line`. */
function liquidLines(text: string, line: number, found: FoundDependencies, dynamicPartials: boolean): void {
  let inComment = false;
  text.split('\n').forEach((written, index) => {
    const [, name = '', args = ''] = /^\s*(#|\S+)(.*)$/.exec(written) ?? [];
    if (name === 'comment' || name === 'endcomment') inComment = name === 'comment';
    else tagNaming({ name: inComment ? '#' : name, args, line: line + index }, found, dynamicPartials);
  });
}

/** A tag as written: its name, its arguments' text, and its line. */
interface WrittenTag {
  readonly name: string;
  readonly args: string;
  readonly line: number;
}

/** What a tag names: a template, one named by a variable, or a declaration in an inline comment. */
function tagNaming({ name, args, line }: WrittenTag, found: FoundDependencies, dynamicPartials: boolean): void {
  if (name === '#' || name.startsWith('#')) {
    found.declared.push(...declarationsIn(`${name.slice(1)}${args}`, line));
    return;
  }
  if (!RENDERING.has(name)) return;
  const quoted = /^\s*(?:'([^']*)'|"([^"]*)")\s*(\||)/.exec(args);
  if (quoted !== null && quoted[3] === '') found.named.push({ name: quoted[1] ?? quoted[2]!, line });
  else if (!dynamicPartials && quoted === null && /^\s*[^\s,'"]/.test(args)) found.named.push({ name: /^\s*([^\s,]+)/.exec(args)![1]!, line });
  // `{% layout none %}` renders no layout.
  else if (!(name === 'layout' && /^\s*none\s*$/.test(args))) found.dynamic.push(line);
}

const DIGESTS = Symbol.for('cachegrain.liquid.digests');

/**
 * The template digests of a Liquid, and the digest key of the tags of each source it parses: one per
 * read of a file (a file read again, as with `cache: false`, is digested again), one per source for a
 * template given as a string.
 */
export class LiquidDigests extends TemplateDigests<TemplateFiles> {
  private readonly keys = new BoundedMemo<string>(1000);
  /** How many times each file was read. */
  private readonly reads = new Map<string, number>();

  /** The digest key of the tags of a template parsed from `source`, read from `file` if any. */
  keyOfSource(source: string, file: string | undefined): string {
    const read = file === undefined ? '' : `${file}#${this.reads.get(file) ?? 0}#`;
    return this.keys.remember(`${read}${md5(source)}`, () => this.keyOf(source));
  }

  /** The Liquid read `file`: a file whose source changed is a reload. */
  readFile(file: string, source: string): void {
    this.reads.set(file, (this.reads.get(file) ?? 0) + 1);
    this.learned(this.library.nameOfFile(file), source);
  }
}

/** The template digests of `liquid`, made by its install with digests on. */
export function liquidDigests(liquid: Liquid): LiquidDigests | undefined {
  return (liquid as unknown as Record<PropertyKey, LiquidDigests | undefined>)[DIGESTS];
}

/**
 * Makes the template digests of `liquid` at its install (a page stored before a restart is checked
 * against them on its first hit), and has it learn each file it reads: one whose source changed is a reload.
 */
export function makeLiquidDigests(liquid: Liquid): LiquidDigests {
  const holder = liquid as unknown as Record<PropertyKey, LiquidDigests | undefined>;
  if (holder[DIGESTS] !== undefined) return holder[DIGESTS];
  const { options } = liquid;
  const library = new TemplateFiles({
    declarationExample: '{% # cachegrain: depends on partials/price %}',
    extension: () => options.extname,
    relativeFrom: 'dotted',
    thenFolders: false,
    find: (source) => findLiquidDependencies(source, liquid),
  });
  library.useFolders([...options.root, ...options.partials, ...options.layouts]);
  const digests = (holder[DIGESTS] = new LiquidDigests(library, 'liquid'));
  // Each parse makes a parser of its own, reading through the file system of the options.
  const fs = options.fs;
  const readFile = async (file: string) => {
    const source = await fs.readFile(file);
    digests.readFile(file, source);
    return source;
  };
  const readFileSync = (file: string) => {
    const source = fs.readFileSync!(file);
    digests.readFile(file, source);
    return source;
  };
  // Defined, not assigned: the file system's own may be read-only; one without a synchronous read keeps none.
  const reads: PropertyDescriptorMap = { readFile: { value: readFile }, ...(fs.readFileSync === undefined ? {} : { readFileSync: { value: readFileSync } }) };
  options.fs = Object.create(fs, reads) as typeof fs;
  return digests;
}

/**
 * The digest of template `name` of `liquid` (its path from `root`, as a digest names it) as it is
 * now, the tree of what it depends on and what could not be resolved:
 * `makeTemplateFragmentKey(name, varyOn, undefined, digest)` gives its fragments' keys.
 */
export function templateDigest(liquid: Liquid, name: string): TemplateDigestReport {
  const digests = liquidDigests(liquid);
  if (digests === undefined) throw new TypeError('templateDigest: give it a Liquid whose installCacheTag was given { digests: true }');
  return digests.report(name);
}
