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
const DIGITS = /^\d+$/;

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
    const end = text.indexOf(CLOSE, at + OPEN.length);
    if (end === -1) break;
    const digits = text.slice(at + OPEN.length, end);
    const item = DIGITS.test(digits) ? byId[Number(digits)] : undefined;
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
