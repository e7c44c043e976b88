/**
 * EJS's template syntax, read as EJS reads it: its delimiters are found in the order of its own
 * lexer (`<%%`, `%%>`, `<%=`, `<%-`, `<%_`, `<%#`, `<%`, `%>`, `-%>`, `_%>`, with the delimiters a
 * compile names), `<%%` and `%%>` write their delimiter as text, `<%#` opens a comment, and each
 * other opening takes the code up to the next closing. Surprise: EJS does not read the code, so a
 * `%>` in a string of it closes the tag, as it does here.
 */
import { processMemo } from '../memos/process-memos.js';
import { escapeRegExp } from './template-tag.js';

/** The delimiters a compile names; EJS's are `<`, `%` and `>`. */
export interface EjsDelimiters {
  delimiter?: string;
  openDelimiter?: string;
  closeDelimiter?: string;
}

/** A tag of an EJS template: a scriptlet (`''`, `'_'`), an output (`'='`, `'-'`) or a comment (`'#'`). */
export interface EjsTag {
  /** Where its opening delimiter starts, and where its closing one ends. */
  readonly start: number;
  readonly end: number;
  /** Its opening delimiter, type aside (`<%`), and its type. */
  readonly open: string;
  readonly type: '' | '_' | '=' | '-' | '#';
  /** What stands between the delimiters, and where it starts. */
  readonly code: string;
  readonly codeStart: number;
  /** Its closing delimiter: `%>`, `-%>` or `_%>`. */
  readonly close: string;
}

/** The delimiters of one set, each a token of EJS's lexer. */
interface Tokens {
  readonly open: string;
  readonly literalOpen: string;
  readonly literalClose: string;
  readonly closes: readonly string[];
  /** Every token, in the order EJS's lexer tries them. */
  readonly pattern: RegExp;
}

const lexers = processMemo('ejs-syntax: tokens by delimiters', new Map<string, Tokens>());

function tokensOf({ delimiter = '%', openDelimiter = '<', closeDelimiter = '>' }: EjsDelimiters): Tokens {
  const set = `${openDelimiter}\n${delimiter}\n${closeDelimiter}`;
  let tokens = lexers.get(set);
  if (tokens === undefined) {
    const spell = (token: string) => token.replace(/%/g, delimiter).replace(/</g, openDelimiter).replace(/>/g, closeDelimiter);
    const all = ['<%%', '%%>', '<%=', '<%-', '<%_', '<%#', '<%', '%>', '-%>', '_%>'].map(spell);
    tokens = {
      open: spell('<%'),
      literalOpen: spell('<%%'),
      literalClose: spell('%%>'),
      closes: ['%>', '-%>', '_%>'].map(spell),
      pattern: new RegExp(all.map(escapeRegExp).join('|'), 'g'),
    };
    lexers.set(set, tokens);
  }
  return tokens;
}

/**
 * The tags of `template`, in order. A tag that is never closed, or meets another opening first, ends
 * the reading: EJS refuses that template itself, and what follows is left as it was written.
 */
export function ejsTags(template: string, delimiters: EjsDelimiters): EjsTag[] {
  const { open, literalOpen, literalClose, closes, pattern } = tokensOf(delimiters);
  const tags: EjsTag[] = [];
  pattern.lastIndex = 0;
  for (let token = pattern.exec(template); token !== null; token = pattern.exec(template)) {
    const [opening] = token;
    // A literal delimiter, or a closing outside any tag, is text.
    if (opening === literalOpen || opening === literalClose || closes.includes(opening)) continue;
    const codeStart = token.index + opening.length;
    const closing = pattern.exec(template);
    if (closing === null || !closes.includes(closing[0])) break;
    tags.push({
      start: token.index,
      end: closing.index + closing[0].length,
      open,
      type: opening.slice(open.length) as EjsTag['type'],
      code: template.slice(codeStart, closing.index),
      codeStart,
      close: closing[0],
    });
  }
  return tags;
}
