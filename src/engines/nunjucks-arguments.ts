/**
 * The vary-on values and keywords of Nunjucks' `{% cache %}` tag, after its name. A keyword starts at
 * a name followed by `=` outside brackets (no Nunjucks expression has a lone `=`), so the tag's text is
 * cut there first and each part is parsed on its own. Surprise: parsed as one stream, `user.id if=user`
 * would be read by Nunjucks as the start of an inline if (`user.id if … else …`).
 */
import { KEYWORDS, unknownKeyword } from '../fragments/index.js';

interface Token {
  type: string;
  value: string;
  lineno: number;
  colno: number;
}

/** What of a copy of nunjucks the arguments are parsed with: its parser (and its class), node classes and lexer. */
export interface ArgumentParsing {
  parser: any;
  Parser: new (tokens: { nextToken(): Token | null }) => any;
  nodes: Record<string, any>;
  lexer: Record<string, string>;
}

/** One part of the tag: the vary-on values, or one keyword and its value. */
interface Part {
  keyword?: Token;
  tokens: Token[];
}

/**
 * Reads the rest of the tag, up to and including its `%}`: each vary-on expression is added to
 * `varyOn`, each keyword to `keywords` (a Dict of name → expression), in any order after the values.
 */
export function parseTagArguments({ parser, Parser, nodes, lexer }: ArgumentParsing, tagName: string, varyOn: any, keywords: any): void {
  const tag = `'${tagName}' tag`;
  const { tokens, end } = readTag(parser, lexer, tag);
  const parseAll = (part: Token[]) => {
    const sub = new Parser(listed([...part, end]));
    sub.extensions = parser.extensions;
    const values: Array<{ at: Token; node: any }> = [];
    while (!sub.skip(lexer.TOKEN_BLOCK_END)) values.push({ at: sub.peekToken(), node: sub.parseExpression() });
    return values;
  };
  const [values, ...named] = cutAtKeywords(tokens, lexer);
  for (const { node } of parseAll(values!.tokens)) varyOn.addChild(node);
  const seen = new Set<string>();
  for (const { keyword, tokens: part } of named) {
    const name = keyword!.value;
    const unknown = unknownKeyword(name, tag);
    if (unknown !== undefined) parser.fail(unknown.message, keyword!.lineno, keyword!.colno);
    if (seen.has(name)) parser.fail(`${tag}: ${name}= is given twice`, keyword!.lineno, keyword!.colno);
    seen.add(name);
    const [value, extra] = parseAll(part);
    if (value === undefined)
      parser.fail(`${tag}: ${name}= needs a value, as in ${name}=${EXAMPLES[name as (typeof KEYWORDS)[number]]}`, keyword!.lineno, keyword!.colno);
    if (extra !== undefined) parser.fail(`${tag}: ${name}= must come after the vary-on values`, extra.at.lineno, extra.at.colno);
    keywords.addChild(new nodes.Pair(keyword!.lineno, keyword!.colno, new nodes.Literal(keyword!.lineno, keyword!.colno, name), value!.node));
  }
}

const EXAMPLES: Record<(typeof KEYWORDS)[number], string> = {
  using: '"localcache"',
  tags: '"user:" + user.id',
  stale: '60',
  lock: 'true',
  contexts: '"cookie:theme"',
  if: 'user',
};

/** The tag's tokens up to its `%}` (whitespace kept: the parser skips it), and that `%}`. */
function readTag(parser: any, lexer: Record<string, string>, tag: string): { tokens: Token[]; end: Token } {
  const tokens: Token[] = [];
  for (;;) {
    const token = parser.nextToken(true) as Token | null;
    if (token === null) parser.fail(`${tag}: the template ends inside the tag`);
    if (token!.type === lexer.TOKEN_BLOCK_END) return { tokens, end: token! };
    tokens.push(token!);
  }
}

/** The tokens cut where a keyword starts: a name, then `=`, outside brackets. */
function cutAtKeywords(tokens: Token[], lexer: Record<string, string>): Part[] {
  const opening = new Set([lexer.TOKEN_LEFT_PAREN, lexer.TOKEN_LEFT_BRACKET, lexer.TOKEN_LEFT_CURLY]);
  const closing = new Set([lexer.TOKEN_RIGHT_PAREN, lexer.TOKEN_RIGHT_BRACKET, lexer.TOKEN_RIGHT_CURLY]);
  const parts: Part[] = [{ tokens: [] }];
  let depth = 0;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (opening.has(token.type)) depth++;
    else if (closing.has(token.type)) depth--;
    const equals = depth === 0 && token.type === lexer.TOKEN_SYMBOL ? nextSolid(tokens, i, lexer) : -1;
    if (equals !== -1 && tokens[equals]!.type === lexer.TOKEN_OPERATOR && tokens[equals]!.value === '=') {
      parts.push({ keyword: token, tokens: [] });
      i = equals;
    } else parts.at(-1)!.tokens.push(token);
  }
  return parts;
}

/** The index of the first token after `i` that is not whitespace, or -1. */
function nextSolid(tokens: Token[], i: number, lexer: Record<string, string>): number {
  for (let j = i + 1; j < tokens.length; j++) if (tokens[j]!.type !== lexer.TOKEN_WHITESPACE) return j;
  return -1;
}

/** A token stream over a list, as a parser reads its lexer. */
function listed(tokens: Token[]): { nextToken(): Token | null } {
  let next = 0;
  return { nextToken: () => tokens[next++] ?? null };
}
