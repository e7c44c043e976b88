/**
 * The placeholder a recorded fragment leaves in the engine's output, and the cut of a text at the
 * placeholders it holds. A placeholder names its fragment by its number in the render.
 */
import { randomBytes } from 'node:crypto';

// One marker per process, so that no text from a template or a store can forge a placeholder. It
// holds lowercase letters: a transform that changes the case of its block's text breaks it visibly.
const NONCE = randomBytes(6).toString('hex');
const OPEN = `\u0002cgf${NONCE}:`;
const CLOSE = '\u0003';
const CLOSE_CODE = CLOSE.charCodeAt(0);
const ZERO = 0x30;
const NINE = 0x39;
/** More digits than any render's count of fragments: a longer run is not a placeholder. */
const MAX_DIGITS = 9;

const UNCACHEABLE = `\u0002cgu${NONCE}:`;

/**
 * The mark `uncacheable(why)` leaves in a template's output: the fragment (or page) whose text holds
 * it may not be kept, and says why. The mark is taken out where that text is put together.
 */
export function uncacheableMark(why: string): string {
  marksMade++;
  return UNCACHEABLE + why.replaceAll(CLOSE, '') + CLOSE;
}

/** How many uncacheable marks this process has made: a render whose start saw the same count holds none, and its output is not searched for one. */
let marksMade = 0;

export function uncacheableMarksMade(): number {
  return marksMade;
}

/**
 * What the template function `uncacheable(why)` emits: a mark that makes the fragment around it, every
 * fragment around that and the page uncacheable, saying `why` and where (when the engine says).
 */
export function uncacheableOutput(why: unknown, site?: { template: string; line: number }): string {
  if ((typeof why !== 'string' && !(why instanceof String)) || String(why) === '') {
    const where = site === undefined ? '' : ` (${site.template}, line ${site.line})`;
    throw new TypeError(`uncacheable(why): say why, as a non-empty string${where}`);
  }
  return uncacheableMark(site === undefined ? String(why) : `${String(why)} (${site.template}, line ${site.line})`);
}

/** `text` without its uncacheable marks, each of which makes the record `into` answers uncacheable. */
export function takeUncacheableMarks(text: string, into: () => { markUncacheable(reason: string): unknown }): string {
  let at = text.indexOf(UNCACHEABLE);
  if (at === -1) return text;
  let kept = '';
  let from = 0;
  while (at !== -1) {
    const end = text.indexOf(CLOSE, at + UNCACHEABLE.length);
    if (end === -1) break;
    into().markUncacheable(text.slice(at + UNCACHEABLE.length, end));
    kept += text.slice(from, at);
    from = end + CLOSE.length;
    at = text.indexOf(UNCACHEABLE, from);
  }
  return kept + text.slice(from);
}

/** The placeholder of fragment number `id`. */
export function placeholder(id: number): string {
  return OPEN + id + CLOSE;
}

/**
 * `text` cut at the placeholders of `byId`'s items: `pieces` holds the text between them with an
 * empty string where each placeholder stood, and `slots` each such index with its item. Undefined
 * when `text` holds none. A marker whose number names no item stays text.
 */
export function cutAtPlaceholders<T>(text: string, byId: readonly T[]): { pieces: string[]; slots: Array<[index: number, item: T]> } | undefined {
  let at = text.indexOf(OPEN);
  if (at === -1) return undefined;
  const pieces: string[] = [];
  const slots: Array<[index: number, item: T]> = [];
  let from = 0;
  while (at !== -1) {
    // The number is read where it stands, a digit at a time: a page holds a placeholder per fragment.
    const start = at + OPEN.length;
    let end = start;
    let id = 0;
    for (let code = text.charCodeAt(end); code >= ZERO && code <= NINE && end - start < MAX_DIGITS; code = text.charCodeAt(++end)) id = id * 10 + code - ZERO;
    const item = end > start && text.charCodeAt(end) === CLOSE_CODE ? byId[id] : undefined;
    if (item === undefined) {
      at = text.indexOf(OPEN, at + 1);
      continue;
    }
    pieces.push(text.slice(from, at), '');
    slots.push([pieces.length - 1, item]);
    from = end + CLOSE.length;
    at = text.indexOf(OPEN, from);
  }
  pieces.push(text.slice(from));
  return { pieces, slots };
}
