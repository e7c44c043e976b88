/**
 * The placeholder a hole leaves in HTML, in its two forms. In this process it carries the process's
 * random marker (live): no text a template takes from data can forge one. In a store it carries a
 * marker every process shares (sealed): text is sealed on its way into a store (its live placeholders
 * sealed, and anything that merely looks sealed disarmed) and unsealed on its way out, so a sealed
 * placeholder read from a store was made by a hole. A placeholder holds the hole's name and
 * arguments as URL-encoded JSON, which HTML escaping leaves as it is; each form is found by one scan.
 */
import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { type HoleArgument, HoleError, holeArguments } from './registry.js';

// Lowercase letters: a transform that changes the case of its block's text breaks a placeholder visibly.
const START = '\u0002cgh';
const NONCE = randomBytes(6).toString('hex');
const LIVE = `${START}${NONCE}:`;
const SEALED = `${START}:`;
const CLOSE = '\u0003';
/** What a text that looks like a placeholder and is none becomes in a store: no longer a placeholder. */
const DISARMED = '\ufffdcgh';
const START_BYTES = Buffer.from(START);
const LIVE_BYTES = Buffer.from(LIVE);
const DISARMED_BYTES = Buffer.from(DISARMED);
/** A sealed placeholder's opening as bytes, which a stored body is cut at (see `HolePlan`). */
export const SEALED_BYTES = Buffer.from(SEALED);

/** Where a placeholder is: live in this process's text, sealed in a store's. */
export type HoleForm = 'live' | 'sealed';

/** A hole as a placeholder names it. */
export interface HoleCall {
  name: string;
  args: HoleArgument[];
}

/** The live placeholder of hole `name` with `args` (checked already). */
export function livePlaceholder(name: string, args: readonly HoleArgument[]): string {
  return LIVE + encodeCall(name, args) + CLOSE;
}

/** The hole's name and arguments as a placeholder and a hole's URL carry them: JSON, URL-encoded, `'` too. */
export function encodeCall(name: string, args: readonly HoleArgument[]): string {
  return encodeURIComponent(JSON.stringify([name, ...args])).replaceAll("'", '%27');
}

/** Whether `text` holds a placeholder in `form`. */
export function holdsHoles(text: string, form: HoleForm): boolean {
  return text.includes(form === 'live' ? LIVE : SEALED);
}

/**
 * What is left of a placeholder whose case template code around it changed (a filter or helper that
 * transforms its block's text), which would go out as it is, never filled; undefined when `text`
 * holds none.
 */
export function changedPlaceholderIn(text: string): string | undefined {
  if (!text.includes('\u0002')) return undefined;
  const at = text.search(CHANGED_START);
  return at === -1 ? undefined : text.slice(at + 1, at + 41);
}

const CHANGED_START = /\u0002(?!cgh)[cC][gG][hH]/;

/** Whether a body's bytes hold anything that starts like a placeholder (of either form, or a forged one). */
export function bytesMayHoldHoles(body: Buffer): boolean {
  return body.indexOf(START_BYTES) !== -1;
}

/**
 * `text` as a store keeps it: each live placeholder sealed, and whatever else starts like one (a
 * sealed one that came with data, another process's live one) disarmed.
 */
export function sealHoles(text: string): string {
  let at = text.indexOf(START);
  if (at === -1) return text;
  let sealed = '';
  let from = 0;
  while (at !== -1) {
    const live = text.startsWith(LIVE, at);
    sealed += text.slice(from, at) + (live ? SEALED : DISARMED);
    from = at + (live ? LIVE.length : START.length);
    at = text.indexOf(START, from);
  }
  return sealed + text.slice(from);
}

/**
 * `sealHoles` of a body's UTF-8 bytes, made of the bytes themselves (no text is decoded from them or
 * encoded again): the sealed bytes, and whether they hold a placeholder (a live one was sealed).
 * The same buffer when nothing in it starts like a placeholder.
 */
export function sealHoleBytes(body: Buffer): { body: Buffer; holes: boolean } {
  let at = body.indexOf(START_BYTES);
  if (at === -1) return { body, holes: false };
  const pieces: Buffer[] = [];
  let holes = false;
  let from = 0;
  while (at !== -1) {
    const live = at + LIVE_BYTES.length <= body.length && LIVE_BYTES.compare(body, at, at + LIVE_BYTES.length) === 0;
    pieces.push(body.subarray(from, at), live ? SEALED_BYTES : DISARMED_BYTES);
    holes ||= live;
    from = at + (live ? LIVE_BYTES.length : START_BYTES.length);
    at = body.indexOf(START_BYTES, from);
  }
  pieces.push(body.subarray(from));
  return { body: Buffer.concat(pieces), holes };
}

/** `text` read from a store, its sealed placeholders live in this process; the same string when it holds none. */
export function unsealHoles(text: string): string {
  return text.includes(SEALED) ? text.replaceAll(SEALED, LIVE) : text;
}

/**
 * `text` cut at its placeholders in `form`: `pieces` holds the text between them with an empty string
 * where each placeholder stood, and `calls` each such index with its hole. Undefined when it holds none.
 */
export function cutAtHoles(text: string, form: HoleForm): { pieces: string[]; calls: Array<[index: number, call: HoleCall]> } | undefined {
  const open = form === 'live' ? LIVE : SEALED;
  let at = text.indexOf(open);
  if (at === -1) return undefined;
  const pieces: string[] = [];
  const calls: Array<[number, HoleCall]> = [];
  let from = 0;
  while (at !== -1) {
    const end = text.indexOf(CLOSE, at + open.length);
    if (end === -1) break;
    pieces.push(text.slice(from, at), '');
    calls.push([pieces.length - 1, decodeCall(text.slice(at + open.length, end))]);
    from = end + CLOSE.length;
    at = text.indexOf(open, from);
  }
  pieces.push(text.slice(from));
  return { pieces, calls };
}

/** A placeholder's hole, decoded; a placeholder that template code around it changed is an error. */
export function decodeCall(encoded: string): HoleCall {
  let decoded: unknown;
  try {
    decoded = JSON.parse(decodeURIComponent(encoded));
  } catch {
    decoded = undefined;
  }
  if (!Array.isArray(decoded) || typeof decoded[0] !== 'string') throw changedPlaceholder(encoded);
  const [name, ...args] = decoded as [string, ...unknown[]];
  return { name, args: holeArguments(name, args) };
}

/** The error for a placeholder that template code around it changed, showing the start of what is left of it. */
export function changedPlaceholder(text: string): HoleError {
  return new HoleError(
    `a hole's placeholder was changed by template code around it ('${text.slice(0, 40)}'): a filter or helper that ` +
      "transforms its block's text breaks it, so move the hole outside that block",
    'unknown',
  );
}

/**
 * A body as a store keeps it: its holes' placeholders sealed (and what only looks like one
 * disarmed), with whether it holds holes. The same bytes when there is nothing of the kind in them.
 */
export function sealedBody(body: Buffer): { body: Buffer; holes: boolean } {
  const known = sealedForms.get(body);
  if (known !== undefined) return known ?? { body, holes: false };
  const sealed = bytesMayHoldHoles(body) && isUtf8(body) ? sealHoleBytes(body) : { body, holes: false };
  sealedForms.set(body, sealed.body === body ? null : sealed);
  return sealed;
}

/**
 * Each body a view made, sealed: once for the store of its page and the delivery of its holes (null:
 * the body as it is). Held weakly, it goes with the body; never holding the body itself: a young
 * collection keeps an entry whose value leads back to its key, and would move the body to the old
 * generation.
 */
const sealedForms = new WeakMap<Buffer, { body: Buffer; holes: boolean } | null>();

/** A stored body as this process's text: its holes' placeholders live, for the layer that delivers them. */
export function unsealedBody(body: Buffer): Buffer {
  return Buffer.from(unsealHoles(body.toString('utf8')));
}
