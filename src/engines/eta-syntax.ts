/**
 * Eta's template syntax, read as Eta's own parser reads it: a tag opens at its opening delimiter,
 * a `-` or `_` and a prefix (`=` interpolates, `~` outputs raw, a custom tag's own) after it, and closes
 * at the first closing delimiter outside the strings, template literals and block comments of its
 * content. Surprise: a `//` comment hides nothing, so a `%>` in one closes the tag, as Eta reads it.
 */
import type { Eta } from 'eta';
import { escapeRegExp } from './template-tag.js';

/** What of a config the syntax reads: the delimiters, the prefixes, the custom tags. */
export type EtaSyntaxConfig = Partial<Pick<Eta['config'], 'tags' | 'parse' | 'customTags'>>;

/** A tag of an Eta template. */
export interface EtaTag {
  /** Where its opening delimiter starts, and where its closing one ends. */
  readonly start: number;
  readonly end: number;
  /** The `-` or `_` after the opening delimiter, or nothing. */
  readonly trimLeft: string;
  /** Its prefix (`''` for code), and where it stands. */
  readonly prefix: string;
  readonly prefixStart: number;
  /** What the tag is of this type: code, an interpolation, raw output, or a custom tag's text. */
  readonly kind: 'code' | 'interpolate' | 'raw' | 'custom';
  /** Its content, between the spaces after its prefix and those before its closing, and where it starts. */
  readonly content: string;
  readonly contentStart: number;
  /** The `-` or `_` before the closing delimiter, or nothing. */
  readonly trimRight: string;
}

// Eta's own patterns for the strings a tag may hold: a closing delimiter in one closes nothing.
const TEMPLATE_LITERAL = /`(?:\\[\s\S]|\${(?:[^{}]|{(?:[^{}]|{[^}]*})*})*}|(?!\${)[^\\`])*`/g;
const SINGLE_QUOTED = /'(?:\\[\s\w"'\\`]|[^\n\r'\\])*?'/g;
const DOUBLE_QUOTED = /"(?:\\[\s\w"'\\`]|[^\n\r"\\])*?"/g;
const STRINGS: Record<string, RegExp> = { '`': TEMPLATE_LITERAL, "'": SINGLE_QUOTED, '"': DOUBLE_QUOTED };

/** How one config's tags open and close. */
interface Delimiters {
  readonly opening: RegExp;
  readonly closing: RegExp;
  readonly kinds: ReadonlyMap<string, EtaTag['kind']>;
}

function delimitersOf({ tags = ['<%', '%>'], parse = { exec: '', interpolate: '=', raw: '~' }, customTags = {} }: EtaSyntaxConfig): Delimiters {
  const kinds = new Map<string, EtaTag['kind']>([
    [parse.exec, 'code'],
    [parse.interpolate, 'interpolate'],
    [parse.raw, 'raw'],
  ]);
  for (const prefix of Object.keys(customTags)) if (!kinds.has(prefix)) kinds.set(prefix, 'custom');
  const prefixes = [parse.exec, parse.interpolate, parse.raw, ...Object.keys(customTags)]
    .filter((prefix) => prefix !== '')
    .map(escapeRegExp)
    .join('|');
  return {
    opening: new RegExp(`${escapeRegExp(tags[0])}(-|_)?\\s*(${prefixes})?\\s*`, 'g'),
    closing: new RegExp(`'|"|\`|\\/\\*|(\\s*(-|_)?${escapeRegExp(tags[1])})`, 'g'),
    kinds,
  };
}

/**
 * The tags of `source`, in order. A tag, string or comment that is never closed ends the reading:
 * Eta refuses that template itself, and what follows is left as it was written.
 */
export function etaTags(source: string, config: EtaSyntaxConfig): EtaTag[] {
  const { opening, closing, kinds } = delimitersOf(config);
  const tags: EtaTag[] = [];
  for (let open = opening.exec(source); open !== null; open = opening.exec(source)) {
    const contentStart = open.index + open[0].length;
    const close = closingOf(source, contentStart, closing);
    if (close === undefined) break;
    const [, trimLeft = '', prefix = ''] = open;
    tags.push({
      start: open.index,
      end: close.end,
      trimLeft,
      prefix,
      prefixStart: prefix === '' ? contentStart : open.index + open[0].lastIndexOf(prefix),
      kind: kinds.get(prefix) ?? 'code',
      content: source.slice(contentStart, close.start),
      contentStart,
      trimRight: close.trimRight,
    });
    opening.lastIndex = close.end;
  }
  return tags;
}

/** Where the tag whose content starts at `from` closes (the spaces before its delimiter included), past its strings and comments. */
function closingOf(source: string, from: number, closing: RegExp): { start: number; end: number; trimRight: string } | undefined {
  closing.lastIndex = from;
  for (let found = closing.exec(source); found !== null; found = closing.exec(source)) {
    if (found[1] !== undefined) return { start: found.index, end: closing.lastIndex, trimRight: found[2] ?? '' };
    if (found[0] === '/*') {
      const end = source.indexOf('*/', closing.lastIndex);
      if (end === -1) return undefined;
      closing.lastIndex = end;
    } else {
      const string = STRINGS[found[0]]!;
      string.lastIndex = found.index;
      if (string.exec(source) === null) return undefined;
      closing.lastIndex = string.lastIndex;
    }
  }
  return undefined;
}
