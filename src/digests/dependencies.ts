/**
 * What one template says it depends on, as its engine's finder reads it from the parsed
 * template: the templates it names by string literals, the places where a name is built by an
 * expression, and the dependencies its comments declare. Only the declarations are read from text,
 * and only from the text of comments, which each engine's parser hands over.
 */

/** A template named at a line: by an include, extends, import or partial call, or by a declaration. */
export interface NamedDependency {
  name: string;
  line: number;
  /** A dependency the template does without when it is missing (Nunjucks' `ignore missing`). */
  optional?: boolean;
}

export interface FoundDependencies {
  /** The templates named by string literals, in the order they appear. */
  named: NamedDependency[];
  /** The lines where a template is named by an expression, which no digest can follow. */
  dynamic: number[];
  /** The names and folder wildcards (`partials/*`) declared in comments. */
  declared: NamedDependency[];
}

/** What a template's own source gives a digest: the md5 of its text, and what it depends on. */
export interface TemplateInputs {
  hash: string;
  found: FoundDependencies;
}

const DECLARATION = /cachegrain:\s*depends\s+on\b([^\n]*)/gi;

/**
 * The dependencies a comment declares: `cachegrain: depends on partials/price, partials/tax` (names
 * separated by commas or spaces, to the end of its line; several such lines may follow each other).
 * `text` is the comment's text without its delimiters, `line` the line it starts on.
 */
export function declarationsIn(text: string, line: number): NamedDependency[] {
  const declared: NamedDependency[] = [];
  for (const match of text.matchAll(DECLARATION)) {
    const at = line + countNewlines(text, match.index);
    for (const name of match[1]!.split(/[\s,]+/)) if (name !== '') declared.push({ name, line: at });
  }
  return declared;
}

/** Every dependency a source's comments declare, from each comment's text and first line. */
export function declarationsOf(comments: Iterable<{ text: string; line: number }>): NamedDependency[] {
  const declared: NamedDependency[] = [];
  for (const comment of comments) declared.push(...declarationsIn(comment.text, comment.line));
  return declared;
}

/** The folder a declared name stands for when it ends in `/*` (or is `*`, the top folder); undefined for a plain name. */
export function wildcardFolder(name: string): string | undefined {
  if (name === '*') return '';
  return name.endsWith('/*') ? name.slice(0, -2) : undefined;
}

export function countNewlines(text: string, end: number): number {
  let lines = 0;
  for (let at = text.indexOf('\n'); at !== -1 && at < end; at = text.indexOf('\n', at + 1)) lines++;
  return lines;
}

/** An empty finding, filled by a finder as it walks a template. */
export function noDependencies(): FoundDependencies {
  return { named: [], dynamic: [], declared: [] };
}
