/**
 * Where a stored page's holes stand in its HTML, for streaming them: a hole can be sent
 * after the shell only where an element may stand in for it until it comes, in the flow of the body.
 * The surprise: most holes of a real page stand elsewhere too. A CSRF token in an attribute, a hole
 * in a `<script>`, `<style>`, `<textarea>` or `<title>`, between a table's rows or in the head would
 * be broken by an element there (an attribute's value holding markup, a table's rows moved out of
 * it), so those are filled in place, the shell waiting for them. Read once per plan, by a scan that
 * follows tags, quotes, comments, raw text and tables, never a full parse.
 */
import type { HolePlan } from './plan.js';

export interface StreamShape {
  /** For each hole, whether an element may stand in for it until it comes (else it is filled in place). */
  readonly streamable: readonly boolean[];
  /** The last part up to the end of the page's body (its `</body>`, else the end), and what follows: the same bytes for every response. */
  readonly lastInBody: Buffer;
  readonly afterBody: Buffer;
}

const shapes = new WeakMap<HolePlan, StreamShape>();

/** The shape of `plan`'s page, read once per plan. */
export function streamShapeOf(plan: HolePlan): StreamShape {
  let shape = shapes.get(plan);
  if (shape === undefined) shapes.set(plan, (shape = readShape(plan)));
  return shape;
}

function readShape(plan: HolePlan): StreamShape {
  const scan = new HtmlScan();
  const streamable: boolean[] = [];
  for (let i = 0; i < plan.calls.length; i++) {
    scan.read(plan.parts[i]!.toString('latin1'));
    streamable.push(scan.inFlow());
  }
  const last = plan.parts.at(-1)!;
  const found = last.toString('latin1').toLowerCase().lastIndexOf('</body');
  const bodyEnd = found === -1 ? last.length : found;
  return { streamable, lastInBody: last.subarray(0, bodyEnd), afterBody: last.subarray(bodyEnd) };
}

/** Elements whose content is text to the parser: an element inside would be text too. */
const RAW_TEXT = new Set(['script', 'style', 'textarea', 'title', 'xmp', 'iframe', 'noembed', 'noframes']);
/** The parts of a table (and a select) an element cannot stand in, save in a cell or a caption. */
const TABLE_PARTS = new Set(['table', 'caption', 'colgroup', 'thead', 'tbody', 'tfoot', 'tr', 'td', 'th', 'select']);
/** What each table part's start tag closes, when left open (their end tags may be omitted). */
const CLOSED_BY: Record<string, ReadonlySet<string>> = {
  td: new Set(['td', 'th']),
  th: new Set(['td', 'th']),
  tr: new Set(['td', 'th', 'tr']),
  thead: new Set(['td', 'th', 'tr', 'thead', 'tbody', 'tfoot']),
  tbody: new Set(['td', 'th', 'tr', 'thead', 'tbody', 'tfoot']),
  tfoot: new Set(['td', 'th', 'tr', 'thead', 'tbody', 'tfoot']),
};
const TAG_START = /<(\/?)([a-zA-Z][a-zA-Z0-9-]*)/y;

/** The state of a scan of HTML read in pieces: where the text read so far leaves off. */
class HtmlScan {
  /** The tag being read (its name; closing or not; the quote its attribute's value is in). */
  private tag: { name: string; closing: boolean; quote: string } | undefined;
  private comment = false;
  /** The raw-text element the scan is inside, by name. */
  private rawText: string | undefined;
  /** The table parts open, innermost last. */
  private readonly tables: string[] = [];
  private sawHead = false;
  private sawBody = false;

  /** Whether an element written where the scan is would stand in the body's flow. */
  inFlow(): boolean {
    if (this.tag !== undefined || this.comment || this.rawText !== undefined) return false;
    const table = this.tables.at(-1);
    if (table !== undefined && table !== 'td' && table !== 'th' && table !== 'caption') return false;
    return this.sawBody || !this.sawHead;
  }

  /** Reads the next piece of the HTML (as latin1: its markup is ASCII). */
  read(text: string): void {
    // Lower-cased once, the same length: raw text ends at its end tag in any case.
    const lower = text.toLowerCase();
    let at = 0;
    while (at < text.length) {
      if (this.comment) at = this.skipComment(text, at);
      else if (this.tag !== undefined) at = this.readTag(text, at);
      else if (this.rawText !== undefined) at = this.skipRawText(lower, at);
      else at = this.readText(text, at);
    }
  }

  private skipComment(text: string, at: number): number {
    const end = text.indexOf('-->', at);
    if (end === -1) return text.length;
    this.comment = false;
    return end + 3;
  }

  private skipRawText(lower: string, at: number): number {
    const end = lower.indexOf(`</${this.rawText}`, at);
    if (end === -1) return lower.length;
    this.rawText = undefined;
    return end;
  }

  private readText(text: string, at: number): number {
    const open = text.indexOf('<', at);
    if (open === -1) return text.length;
    if (text.startsWith('<!--', open)) {
      this.comment = true;
      return open + 4;
    }
    TAG_START.lastIndex = open;
    const start = TAG_START.exec(text);
    if (start === null) return open + 1;
    this.tag = { name: start[2]!.toLowerCase(), closing: start[1] === '/', quote: '' };
    return TAG_START.lastIndex;
  }

  private readTag(text: string, at: number): number {
    const tag = this.tag!;
    for (let i = at; i < text.length; i++) {
      const char = text[i];
      if (tag.quote !== '') {
        if (char === tag.quote) tag.quote = '';
      } else if (char === '"' || char === "'") tag.quote = char;
      else if (char === '>') {
        this.tag = undefined;
        this.tagRead(tag.name, tag.closing);
        return i + 1;
      }
    }
    return text.length;
  }

  private tagRead(name: string, closing: boolean): void {
    // What follows the head's end is the body's, its start tag written or not.
    if (name === 'body' || (name === 'head' && closing)) this.sawBody = true;
    else if (name === 'head' || name === 'html') this.sawHead = true;
    if (!closing && RAW_TEXT.has(name)) this.rawText = name;
    if (!TABLE_PARTS.has(name)) return;
    const tables = this.tables;
    if (closing) {
      const at = tables.lastIndexOf(name);
      if (at !== -1) tables.length = at;
      return;
    }
    const closes = CLOSED_BY[name];
    if (closes !== undefined) while (tables.length > 0 && closes.has(tables.at(-1)!)) tables.pop();
    tables.push(name);
  }
}
