/**
 * The tag header (`tagHeader`): a page's tags in the header and format the edge in front reads. The
 * surprise: an edge refuses a whole page whose headers are too long (nginx answers 502 past its
 * `proxy_buffer_size`, Varnish 503 past `http_resp_hdr_len`), so a long list is split over several
 * lines, then shortened, then replaced by one token, and the page always goes out.
 */
import type { ServerResponse } from 'node:http';
import { checkOptions, closestName, didYouMean, optionShape, ValueRule } from '../options/option-rules.js';
import { edgeToken, OVERFLOW_TOKEN, shortToken } from '../edge/tokens.js';
import { isHeaderName } from '../headers/header-values.js';
import { processMemo } from '../memos/process-memos.js';

/** A tag header spelled out: its name, how its tokens are separated, and the lengths it keeps under. */
export interface TagHeaderFormat {
  /** The header's name: `'xkey'`, `'Surrogate-Key'`, `'Cache-Tag'` or one of the site's own. */
  name: string;
  /** What separates two tokens on a line: `' '` (Varnish xkey, Fastly) or `','` (Cloudflare, Akamai). @default ',' for Cache-Tag, else ' ' */
  separator?: ' ' | ',';
  /** The most bytes of tokens on one header line; a longer list goes on several lines. @default 16000 for Surrogate-Key, else 4000 */
  maxLineLength?: number;
  /** The most bytes of tokens over every line; past it the tokens go in their short forms, and past that as one overflow token. @default 16000 */
  maxLength?: number;
}

/** What `tagHeader` takes: a header name (its format by the name), a format, or `false` for none. */
export type TagHeaderOption = string | TagHeaderFormat | false;

/**
 * The most a line holds by default: half of Varnish's `http_resp_hdr_len` (8 KB a line, the header's
 * name included), so a line never costs a page a 503.
 */
export const DEFAULT_MAX_LINE_LENGTH = 4000;
/**
 * The most every line holds together by default: under Fastly's 16 KB for `Surrogate-Key` and
 * Cloudflare's 16 KB for `Cache-Tag`, and half of Varnish's `http_resp_size` (32 KB for every header).
 * nginx holds every header of a response in one `proxy_buffer_size` (4 KB by default): in front of a
 * page cache that sends tags it needs `proxy_buffer_size 32k`.
 */
export const DEFAULT_MAX_LENGTH = 16_000;
/** The shortest limit taken: a line must hold the overflow token and any short token. */
const SHORTEST_LIMIT = 32;

const LIMIT = new ValueRule(`an integer of at least ${SHORTEST_LIMIT}`, (value) => Number.isSafeInteger(value) && (value as number) >= SHORTEST_LIMIT);
const TAG_HEADER_FORMAT = optionShape<TagHeaderFormat>({
  name: new ValueRule('a header name', (value) => typeof value === 'string' && isHeaderName(value)),
  separator: new ValueRule("' ' or ','", (value) => value === ' ' || value === ','),
  maxLineLength: LIMIT,
  maxLength: LIMIT,
});

export const TAG_HEADER_OPTION = new ValueRule(
  'a header name, false or { name, separator?, maxLineLength?, maxLength? }',
  (value) => value === false || (typeof value === 'string' && isHeaderName(value)) || (typeof value === 'object' && value !== null && !Array.isArray(value)),
);

/** A tag header's format with every default filled in, as a layer sends it. */
export type TagHeader = Required<TagHeaderFormat>;

/**
 * The format `option` stands for, or false for none; a format's fields are checked here (`what` is
 * the function whose options they are). The format of a name: `Cache-Tag` comma-separated, as
 * Cloudflare and Akamai read it; `Surrogate-Key` on one line, as Fastly reads one; any other
 * space-separated, over lines of `DEFAULT_MAX_LINE_LENGTH`.
 */
export function tagHeaderOf(option: TagHeaderOption | undefined, what: string): TagHeader | false {
  if (option === undefined || option === false) return false;
  const format = typeof option === 'string' ? { name: option } : option;
  checkOptions(format, TAG_HEADER_FORMAT, what, 'options.tagHeader.');
  if (format.name === undefined) throw new TypeError(`${what}: options.tagHeader.name must be a header name (got undefined)`);
  const name = format.name.toLowerCase();
  const maxLength = format.maxLength ?? DEFAULT_MAX_LENGTH;
  return {
    name: format.name,
    separator: format.separator ?? (name === 'cache-tag' ? ',' : ' '),
    maxLineLength: format.maxLineLength ?? (name === 'surrogate-key' ? maxLength : DEFAULT_MAX_LINE_LENGTH),
    maxLength,
  };
}

/**
 * The error for a `tagHeader` given by name when the edges of the cache `alias` read tags from
 * other headers (`edgeHeaders`, see `tagHeadersReadBy`), else undefined: a purge by tag would never
 * reach its pages. A header of the site's own goes as a format (`{ name }`), never checked here;
 * a cache whose edges read no tag header (none, nginx, a hook of the site's own) takes any name.
 */
export function unreadTagHeaderError(what: string, name: string, alias: string, edgeHeaders: readonly string[]): TypeError | undefined {
  const lowerName = name.toLowerCase();
  if (edgeHeaders.length === 0 || edgeHeaders.some((header) => header.toLowerCase() === lowerName)) return undefined;
  const read = edgeHeaders.map((header) => `'${header}'`).join(', ');
  return new TypeError(
    `${what}: options.tagHeader names '${name}', a header no edge of cache '${alias}' reads${didYouMean(closestName(name, edgeHeaders))}; ` +
      `its edges read ${read} (a header of the site's own goes as { name: '${name}' })`,
  );
}

const EDGE_FORMATS = processMemo('tag-header: edge formats by header name', new Map<string, TagHeader>());
const NO_HEADERS: readonly TagHeader[] = [];

/** The formats of the tag headers named (those a cache's edges read), each with its name's defaults. */
export function edgeTagHeaders(names: readonly string[]): readonly TagHeader[] {
  if (names.length === 0) return NO_HEADERS;
  return names.map((name) => EDGE_FORMATS.get(name) ?? EDGE_FORMATS.set(name, tagHeaderOf(name, 'tagHeader') as TagHeader).get(name)!);
}

/**
 * The lines of the tag header listing `tags`, each one token (see `edgeToken`) and no line over
 * `maxLineLength`: every token when they fit in `maxLength`, else every token's short form, else the
 * overflow token alone (which every purge names, so such a page is still purged by its tags). A token
 * too long for any line goes in its short form.
 */
export function tagHeaderLines(tags: Iterable<string>, format: TagHeader): string[] {
  const lineLength = Math.min(format.maxLineLength, format.maxLength);
  const tokens = new Set<string>();
  for (const tag of tags) {
    const token = edgeToken(tag);
    tokens.add(token.length <= lineLength ? token : shortToken(token));
  }
  const full = linesOf(tokens, format.separator, lineLength);
  if (totalLength(full) <= format.maxLength) return full;
  const short = linesOf(new Set(Array.from(tokens, shortToken)), format.separator, lineLength);
  return totalLength(short) <= format.maxLength ? short : [OVERFLOW_TOKEN];
}

/** Sets the tag header listing `tags` on the response, one header line per line (see `tagHeaderLines`). */
export function setTagHeader(res: ServerResponse, tags: Iterable<string>, format: TagHeader): void {
  const lines = tagHeaderLines(tags, format);
  res.setHeader(format.name, lines.length === 1 ? lines[0]! : lines);
}

/** The tokens packed in order on as few lines of at most `lineLength` as that order allows. */
function linesOf(tokens: Iterable<string>, separator: string, lineLength: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const token of tokens) {
    if (line === '') line = token;
    else if (line.length + separator.length + token.length <= lineLength) line += separator + token;
    else {
      lines.push(line);
      line = token;
    }
  }
  if (line !== '' || lines.length === 0) lines.push(line);
  return lines;
}

function totalLength(lines: readonly string[]): number {
  return lines.reduce((sum, line) => sum + line.length, 0);
}
