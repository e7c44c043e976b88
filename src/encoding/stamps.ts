/**
 * What a stamped entry carries beside its value, as the codecs of bytes store it: the long form (the
 * stamp as JSON: tags, stale windows, contexts) and the short one (its expiry alone, which every entry
 * that expires on Redis or memcached carries), and how each is read again, in either form a payload
 * takes (the bytes a server answers, or the string a write hands over).
 */

import { copyWith } from '../store/copies.js';

/**
 * What a stamped entry carries beside its value: each tag with the tag's version when the entry was
 * written, and for an entry that may be served stale, when it stops being fresh and for how
 * long after that it may still be served.
 */
export interface EntryStamp {
  tags: string[];
  versions: string[];
  /** Epoch seconds; absent for an entry that never expires. */
  freshUntil?: number;
  /** Seconds past `freshUntil` (or past a soft invalidation) during which it is served while one refresh runs. */
  staleWhileRevalidate?: number;
  /** Seconds past `freshUntil` during which it is served when recomputing it fails. */
  staleIfError?: number;
  /** The cache contexts the value varies on (a fragment's, and those of the fragments inside it). */
  contexts?: string[];
}

/** A stamp as a read found it: `stored` is its stored form, for telling the same stamp read again. */
export interface KnownStamp {
  readonly stamp: EntryStamp;
  readonly stored?: Buffer;
}

/** A stamped payload: this byte, the stamp's JSON length (uint32), the JSON, then the value's own payload. */
const STAMPED_FORMAT = 0x01;
/**
 * STAMPED_FORMAT for a stamp that records when its entry stops being fresh (a tagged entry with a
 * timeout): this byte, that time as EXPIRY_FORMAT's seven digits, then STAMPED_FORMAT's length and
 * JSON without it. An entry read again compares only its JSON with the stamp it carried last time
 * (its tags and their versions: what a rewrite with a new timeout leaves as it was), and its expiry
 * is read by shifts, as the short form's is.
 */
const EXPIRING_STAMPED_FORMAT = 0x04;
/** Where EXPIRING_STAMPED_FORMAT's JSON begins: after its byte, seven digits and the length. */
const EXPIRING_JSON_AT = 12;
/**
 * A payload stamped only with when it stops being fresh (no tags, stale windows or contexts: what
 * every untagged entry with a timeout carries): this byte, then `freshUntil` in milliseconds as
 * seven base-128 digits, most significant first (all zero: it never expires), then the value's own
 * payload. Each digit is below 0x80, so the stamp is ASCII, one character a byte, in either form.
 */
const EXPIRY_FORMAT = 0x03;
const EXPIRY_DIGITS = 7;
/** 2^49 milliseconds, some 17,800 years: a later expiry is stored as none. */
const EXPIRY_LIMIT = 128 ** EXPIRY_DIGITS;
/** What EXPIRY_FORMAT's last three digits hold. */
const LOW_DIGITS_RANGE = 128 ** 3;
/**
 * The earlier form of EXPIRY_FORMAT, still read (entries written before stay readable until they
 * end): this byte, a count of digits, then `freshUntil` in milliseconds as that many ASCII digits.
 */
const DECIMAL_EXPIRY_FORMAT = 0x02;

/**
 * A stamped payload in either form: the bytes a server answers, or the string a write hands over
 * (textOrBytesCodec), whose stamp is ASCII, one character a byte, so both are read byte by byte.
 */
export type StampedForm = Buffer | string;

/** The stamp of a stamped payload in either form (`Codec.stampOf`); undefined for one without a stamp. */
export function stampOfEitherForm(payload: StampedForm, last?: KnownStamp): KnownStamp | undefined {
  const end = stampEnd(payload);
  return end === undefined ? undefined : stampIn(payload, end, last);
}

export function byteAt(payload: StampedForm, index: number): number {
  return typeof payload === 'string' ? payload.charCodeAt(index) : payload[index]!;
}

/** Where the value's own payload of a stamped payload begins; undefined for a payload without a stamp (or one cut short). */
export function stampEnd(payload: StampedForm): number | undefined {
  let end: number;
  const format = byteAt(payload, 0);
  // The short form first: every expiring entry on a server carries it.
  if (format === EXPIRY_FORMAT) {
    end = 1 + EXPIRY_DIGITS;
  } else if (format === STAMPED_FORMAT && payload.length >= 5) {
    end = (5 + jsonLengthAt(payload, 1)) >>> 0;
  } else if (format === EXPIRING_STAMPED_FORMAT && payload.length >= EXPIRING_JSON_AT) {
    end = (EXPIRING_JSON_AT + jsonLengthAt(payload, 8)) >>> 0;
  } else if (format === DECIMAL_EXPIRY_FORMAT && payload.length >= 2) {
    end = 2 + byteAt(payload, 1);
  } else return undefined;
  // A damaged stamp is left to `decode`, which refuses the whole payload: one place reports it.
  return end <= payload.length ? end : undefined;
}

/** The uint32 length of a stamp's JSON written at `index`. */
function jsonLengthAt(payload: StampedForm, index: number): number {
  return (byteAt(payload, index) << 24) | (byteAt(payload, index + 1) << 16) | (byteAt(payload, index + 2) << 8) | byteAt(payload, index + 3);
}

/** The tags (and versions) of an untagged entry's stamp: one frozen list, shared, as a stamp is only read. */
export const NO_TAGS: readonly string[] = Object.freeze([]);

/** The stamp of a write with neither tags nor stale windows: its payload is stored as it is (see `TagVersions.stampFor`). */
export const NOTHING_TO_STAMP = Symbol('nothing to stamp');

/** `payload` behind the stored form of `stamp` (`Codec.stamp` for a store of bytes). */
export function stampedBytes(payload: Buffer, stamp: EntryStamp): Buffer {
  if (isExpiryOnly(stamp)) return expiryStamped(payload, stamp.freshUntil);
  const milliseconds = expiryMilliseconds(stamp.freshUntil);
  const json = Buffer.from(storedJson(stamp, milliseconds));
  const jsonAt = milliseconds === 0 ? 5 : EXPIRING_JSON_AT;
  const stamped = Buffer.allocUnsafe(jsonAt + json.length + payload.length);
  if (milliseconds === 0) stamped[0] = STAMPED_FORMAT;
  else writeExpiry(stamped, EXPIRING_STAMPED_FORMAT, milliseconds);
  stamped.writeUInt32BE(json.length, jsonAt - 4);
  json.copy(stamped, jsonAt);
  payload.copy(stamped, jsonAt + json.length);
  return stamped;
}

/**
 * The string `payload` behind the stored form of `stamp`, a string whose UTF-8 is `stampedBytes`'
 * form; undefined where it cannot be one (the payload then goes as bytes).
 */
export function stampedText(payload: string, stamp: EntryStamp): string | undefined {
  if (isExpiryOnly(stamp)) return expiryStampedText(payload, stamp.freshUntil);
  const milliseconds = expiryMilliseconds(stamp.freshUntil);
  // The JSON and each byte of its length must then be ASCII, one character a byte.
  const json = storedJson(stamp, milliseconds);
  if (json.length > 0x7f7f7f7f || (json.length & 0x80808080) !== 0 || Buffer.byteLength(json) !== json.length) return undefined;
  const length = String.fromCharCode(json.length >>> 24, (json.length >>> 16) & 0xff, (json.length >>> 8) & 0xff, json.length & 0xff);
  const head = milliseconds === 0 ? '\u0001' : expiryText(EXPIRING_STAMPED_FORMAT, milliseconds);
  return `${head}${length}${json}${payload}`;
}

/** A long stamp's JSON: without its expiry where that goes ahead of it, as `milliseconds` (0: it stays in the JSON). */
function storedJson(stamp: EntryStamp, milliseconds: number): string {
  return JSON.stringify(stampFields(milliseconds === 0 ? stamp : copyWith(stamp, { freshUntil: undefined })));
}

/** Whether a payload that begins with `format` carries a stamp: it is read through `unstamp`, never `decode`. */
export function isStampFormat(format: number): boolean {
  return format === STAMPED_FORMAT || format === EXPIRING_STAMPED_FORMAT || isExpiryFormat(format);
}

/** Whether a payload that begins with `format` carries the short stamp of its expiry alone (ASCII, one character a byte). */
export function isExpiryFormat(format: number): boolean {
  return format === EXPIRY_FORMAT || format === DECIMAL_EXPIRY_FORMAT;
}

/**
 * The stamp of a payload whose value begins at `end`; for the long form, `last` itself when the stored
 * stamp is the one it was read from (the short form is eight bytes, read again each time).
 */
export function stampIn(payload: StampedForm, end: number, last: KnownStamp | undefined): KnownStamp | undefined {
  const format = byteAt(payload, 0);
  if (format === EXPIRY_FORMAT || format === DECIMAL_EXPIRY_FORMAT) {
    const milliseconds = format === EXPIRY_FORMAT ? expiryIn(payload) : decimalExpiryIn(payload, end);
    if (milliseconds < 0) return undefined;
    const never = format === EXPIRY_FORMAT ? milliseconds === 0 : end === 2;
    // Made afresh for each read and remembered by none (unlike the long form's), so not frozen, and
    // of one shape whether it records an expiry or not.
    return { stamp: { tags: NO_TAGS as string[], versions: NO_TAGS as string[], freshUntil: never ? undefined : milliseconds / 1000 } };
  }
  const expiring = format === EXPIRING_STAMPED_FORMAT;
  const jsonAt = expiring ? EXPIRING_JSON_AT : 5;
  const milliseconds = expiring ? expiryIn(payload) : 0;
  // An expiring stamp records an expiry: none (all zero digits) is damage, as a digit out of range is.
  if (milliseconds < 0 || (expiring && milliseconds === 0)) return undefined;
  const freshUntil = milliseconds / 1000;
  // An entry read again and again carries the same stamp until it is written again: comparing its
  // bytes is a fraction of parsing its JSON, which was most of what a tagged read cost. The stored
  // form of an expiring one is its format byte and its JSON, so that neither form's is the other's.
  const known = last?.stored;
  const formByte = expiring ? 1 : 0;
  if (
    last !== undefined &&
    known !== undefined &&
    known.length === end - jsonAt + formByte &&
    (known[0] === EXPIRING_STAMPED_FORMAT) === expiring &&
    storedAt(payload, jsonAt, known, formByte)
  ) {
    if (!expiring || last.stamp.freshUntil === freshUntil) return last;
    // Written again with the same tags and another timeout.
    return { stamp: Object.freeze(copyWith(last.stamp, { freshUntil })), stored: known };
  }
  const json = typeof payload === 'string' ? payload.slice(jsonAt, end) : payload.toString('utf8', jsonAt, end);
  const stamp = stampFrom(json);
  // An expiring stamp's JSON records none of its own.
  if (stamp === undefined || (expiring && stamp.freshUntil !== undefined)) return undefined;
  if (expiring) stamp.freshUntil = freshUntil;
  // Shared by the reads that find it again, so frozen; its bytes copied, not held in the entry's buffer.
  Object.freeze(stamp.tags);
  Object.freeze(stamp.versions);
  const jsonBytes = typeof payload === 'string' ? Buffer.from(json) : payload.subarray(jsonAt, end);
  return { stamp: Object.freeze(stamp), stored: expiring ? Buffer.concat([EXPIRING_FORM, jsonBytes]) : Buffer.from(jsonBytes) };
}

/** The first byte of an expiring stamp's stored form (see `stampIn`). */
const EXPIRING_FORM = Buffer.from([EXPIRING_STAMPED_FORMAT]);

/**
 * When a payload stamped with its expiry alone (EXPIRY_FORMAT) stops being fresh, in epoch seconds
 * (Infinity: never), read with no stamp made; undefined for any other payload (one with the long
 * stamp, the earlier short form, none, or a short one damaged: `stampIn` reads those).
 */
export function expiryOfShortStamp(payload: StampedForm): number | undefined {
  if (payload.length < 1 + EXPIRY_DIGITS || byteAt(payload, 0) !== EXPIRY_FORMAT) return undefined;
  const milliseconds = expiryIn(payload);
  if (milliseconds < 0) return undefined;
  return milliseconds === 0 ? Infinity : milliseconds / 1000;
}

/**
 * EXPIRY_FORMAT's milliseconds (0: never), or -1 for a digit out of range: read as the two halves
 * `expiryStamped` writes, each within 32 bits, so that every digit is a shift and only their join is
 * a floating-point operation.
 */
function expiryIn(payload: StampedForm): number {
  const d1 = byteAt(payload, 1);
  const d2 = byteAt(payload, 2);
  const d3 = byteAt(payload, 3);
  const d4 = byteAt(payload, 4);
  const d5 = byteAt(payload, 5);
  const d6 = byteAt(payload, 6);
  const d7 = byteAt(payload, 7);
  // Every digit this form writes is below 0x80: one past it is damage.
  if ((d1 | d2 | d3 | d4 | d5 | d6 | d7) > 0x7f) return -1;
  return ((d1 << 21) | (d2 << 14) | (d3 << 7) | d4) * LOW_DIGITS_RANGE + ((d5 << 14) | (d6 << 7) | d7);
}

/** DECIMAL_EXPIRY_FORMAT's milliseconds, or -1 for a character that is not a digit. */
function decimalExpiryIn(payload: StampedForm, end: number): number {
  let milliseconds = 0;
  for (let i = 2; i < end; i++) {
    const digit = byteAt(payload, i) - 0x30;
    if (digit < 0 || digit > 9) return -1;
    milliseconds = milliseconds * 10 + digit;
  }
  return milliseconds;
}

/**
 * Whether `payload` holds `expected` at `offset`: a stamp is a few dozen bytes, which a loop compares
 * in less time than a call into Buffer's native compare takes.
 */
function storedAt(payload: StampedForm, offset: number, expected: Buffer, from: number): boolean {
  const shift = offset - from;
  if (typeof payload === 'string') {
    for (let i = from; i < expected.length; i++) if (payload.charCodeAt(shift + i) !== expected[i]) return false;
    return true;
  }
  for (let i = from; i < expected.length; i++) if (payload[shift + i] !== expected[i]) return false;
  return true;
}

/** Whether a stamp records nothing but when its entry stops being fresh (EXPIRY_FORMAT holds it). */
function isExpiryOnly(stamp: EntryStamp): boolean {
  return stamp.tags.length === 0 && !stamp.staleWhileRevalidate && !stamp.staleIfError && (stamp.contexts?.length ?? 0) === 0;
}

/**
 * `payload` behind the short stamp of `freshUntil` (undefined: never), in one buffer: every write
 * with a timeout carries one, so it is made with no stamp object (`Codec.stampExpiry`).
 */
export function expiryStamped(payload: Buffer, freshUntil: number | undefined): Buffer {
  const stamped = Buffer.allocUnsafe(1 + EXPIRY_DIGITS + payload.length);
  writeExpiry(stamped, EXPIRY_FORMAT, expiryMilliseconds(freshUntil));
  // A typed array's own copy: a few dozen bytes, where Buffer's copy costs a call into native code.
  stamped.set(payload, 1 + EXPIRY_DIGITS);
  return stamped;
}

/** `expiryStamped` for a string payload: the stamp is ASCII, one character a byte, so the string's UTF-8 is the same bytes. */
export function expiryStampedText(payload: string, freshUntil: number | undefined): string {
  return expiryText(EXPIRY_FORMAT, expiryMilliseconds(freshUntil)) + payload;
}

/** `format`'s byte, then `milliseconds` as EXPIRY_FORMAT's seven digits, written at the front of `target`. */
function writeExpiry(target: Buffer, format: number, milliseconds: number): void {
  target[0] = format;
  for (let position = 1; position <= EXPIRY_DIGITS; position++) target[position] = expiryDigit(milliseconds, position);
}

/** `writeExpiry`'s bytes as a string (ASCII, one character a byte). */
function expiryText(format: number, milliseconds: number): string {
  const digit = (position: number) => expiryDigit(milliseconds, position);
  return String.fromCharCode(format, digit(1), digit(2), digit(3), digit(4), digit(5), digit(6), digit(7));
}

/** EXPIRY_FORMAT's milliseconds of `freshUntil`: whole ones, at least 1 (0 is never), and none past what seven digits hold. */
function expiryMilliseconds(freshUntil: number | undefined): number {
  const milliseconds = freshUntil === undefined ? 0 : Math.max(1, Math.round(freshUntil * 1000));
  return milliseconds >= EXPIRY_LIMIT ? 0 : milliseconds;
}

/**
 * EXPIRY_FORMAT's digit at `position` (1, the most significant, to 7) of `milliseconds`, from one of
 * its two halves, each within 32 bits (the first four digits, the last three), so that the digit is
 * a shift: a remainder of a number past 32 bits is a floating-point one, which costs several times
 * a write's copy of its value.
 */
function expiryDigit(milliseconds: number, position: number): number {
  const high = Math.floor(milliseconds / LOW_DIGITS_RANGE);
  if (position <= 4) return (high >>> (7 * (4 - position))) & 0x7f;
  return ((milliseconds - high * LOW_DIGITS_RANGE) >>> (7 * (EXPIRY_DIGITS - position))) & 0x7f;
}

/**
 * A stamp as stored: `[tags, versions]`, then `[freshUntil or null, staleWhileRevalidate, staleIfError]`
 * for an entry with stale windows or a recorded expiry, then `[contexts]` for one that varies on any.
 */
type StampFields = [string[], string[]] | [string[], string[], number | null, number, number] | [string[], string[], number | null, number, number, string[]];

function stampFields(stamp: EntryStamp): StampFields {
  const { tags, versions, freshUntil, staleWhileRevalidate = 0, staleIfError = 0, contexts } = stamp;
  if (contexts !== undefined && contexts.length > 0) return [tags, versions, freshUntil ?? null, staleWhileRevalidate, staleIfError, contexts];
  if (freshUntil === undefined && staleWhileRevalidate === 0 && staleIfError === 0) return [tags, versions];
  return [tags, versions, freshUntil ?? null, staleWhileRevalidate, staleIfError];
}

/** The stamp stored as `json`; undefined when it is not one (damaged, or written by an unknown format). */
function stampFrom(json: string): EntryStamp | undefined {
  let fields: unknown;
  try {
    fields = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (!isStampFields(fields)) return undefined;
  const [tags, versions, freshUntil, staleWhileRevalidate, staleIfError, contexts] = fields as [
    string[],
    string[],
    (number | null)?,
    number?,
    number?,
    string[]?,
  ];
  const stamp: EntryStamp = { tags, versions };
  if (freshUntil != null) stamp.freshUntil = freshUntil;
  if (staleWhileRevalidate) stamp.staleWhileRevalidate = staleWhileRevalidate;
  if (staleIfError) stamp.staleIfError = staleIfError;
  if (contexts !== undefined) stamp.contexts = Object.freeze(contexts) as string[];
  return stamp;
}

function isStampFields(fields: unknown): fields is StampFields {
  if (!Array.isArray(fields) || (fields.length !== 2 && fields.length !== 5 && fields.length !== 6)) return false;
  const [tags, versions, freshUntil, staleWhileRevalidate, staleIfError, contexts] = fields as unknown[];
  const strings = (list: unknown) => Array.isArray(list) && list.every((item) => typeof item === 'string');
  if (!strings(tags) || !strings(versions) || (tags as string[]).length !== (versions as string[]).length) return false;
  return (
    fields.length === 2 ||
    ((freshUntil === null || typeof freshUntil === 'number') &&
      typeof staleWhileRevalidate === 'number' &&
      typeof staleIfError === 'number' &&
      (fields.length === 5 || strings(contexts)))
  );
}
