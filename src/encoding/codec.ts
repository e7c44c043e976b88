/**
 * How values become payloads, once for every backend. v8's structured-clone format keeps
 * Date, Map, Set, Buffer, typed arrays and BigInt, refuses functions and symbols, and never runs code
 * on read. Safe integers stay raw so servers can add to them atomically (INCRBY, memcached incr).
 */
import { DefaultDeserializer, deserialize as deserializeViews, serialize } from 'node:v8';

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

/** Turns values into what a backend stores and back. `decode` always returns a fresh copy. */
export interface Codec<P> {
  /** Throws (a TypeError) for a value it refuses, including one whose payload it could not decode again. */
  encode(value: unknown): P;
  /** Throws for a payload it cannot read: the cache then removes the entry and reads it as a miss. */
  decode(payload: P): unknown;
  /** Optional: the form of a payload that is cheapest to decode again and again (kept by an in-process tier). */
  forKeeping?(payload: P): P;
  /** Optional, with `unstamp` (a codec without them cannot store tagged entries): a payload carrying its tags' versions. */
  stamp?(payload: P, stamp: EntryStamp): P;
  /**
   * The stamp and the value's own payload of a stamped payload; undefined for one without tags.
   * Cheap: no value is decoded, and a stamp that is `last` (what the previous read of the same key
   * answered) is not parsed again.
   */
  unstamp?(payload: P, last?: KnownStamp): Unstamped<P> | undefined;
  /**
   * Optional, beside `unstamp`: the stamp alone (`last` itself when it is the same), for a read that
   * then decodes the value with `decodeStamped` and so never needs the value's payload apart.
   */
  stampOf?(payload: P, last?: KnownStamp): KnownStamp | undefined;
  /** Optional, beside `stampOf`: the value of a stamped payload, read past its stamp. */
  decodeStamped?(payload: P): unknown;
  /**
   * Optional (a store in this process): the payload of a value whose readers never mutate it (a
   * stored page), which keeps the value as it is: a copy is made only for a reader that asks for
   * one (`decode`).
   */
  hold?(value: unknown): P;
  /** Optional, beside `hold`: the value a payload (`stamped`: read past its stamp) keeps as it is, else undefined. */
  heldValue?(payload: P, stamped: boolean): unknown;
  /**
   * Optional: whether a payload is an integer as a server adds to it in place (INCRBY, memcached's
   * incr). Such a payload carries no stamp of its expiry: the server's own clock judges it.
   */
  isCounter?(payload: P): boolean;
}

/** The stamp of a stamped payload (`codec.stampOf`, or what `unstamp` answers where a codec has no `stampOf`). */
export function stampOf<P>(codec: Codec<P>, payload: P, last?: KnownStamp): KnownStamp | undefined {
  return codec.stampOf !== undefined ? codec.stampOf(payload, last) : codec.unstamp?.(payload, last);
}

/** The value of a stamped payload (`codec.decodeStamped`, or the decoded payload `unstamp` answers). */
export function decodeStamped<P>(codec: Codec<P>, payload: P): unknown {
  if (codec.decodeStamped !== undefined) return codec.decodeStamped(payload);
  const unstamped = codec.unstamp?.(payload);
  if (unstamped === undefined) throw new TypeError('the payload carries no stamp');
  return codec.decode(unstamped.payload);
}

/** A stamp as a read found it: `stored` is its stored form, for telling the same stamp read again. */
export interface KnownStamp {
  readonly stamp: EntryStamp;
  readonly stored?: Buffer;
}

export interface Unstamped<P> extends KnownStamp {
  readonly payload: P;
}

/** A value an in-process store keeps as it is, for readers that never mutate it (`Codec.hold`). */
export class HeldValue {
  constructor(readonly value: unknown) {}
}

/** A tagged entry in process: the stamp beside the value's payload, never serialized. */
export class StampedPayload {
  constructor(
    readonly stamp: EntryStamp,
    readonly payload: string | number | boolean | bigint | null | Buffer | HeldValue,
  ) {}
}

/** What an in-process store keeps: immutable primitives as they are, a held value as it is, anything else as v8 bytes. */
export type MemoryPayload = string | number | boolean | bigint | null | Buffer | HeldValue | StampedPayload;

/**
 * For stores inside this process (locmem). Primitives are immutable, so they need no copy and skip
 * serialization entirely; everything else is serialized so that readers get copies.
 */
export const memoryCodec: Codec<MemoryPayload> = {
  encode(value) {
    switch (typeof value) {
      case 'string':
      case 'number':
      case 'boolean':
      case 'bigint':
        return value;
      default:
        return value === null ? null : serializeValue(value);
    }
  },
  decode(payload) {
    if (typeof payload !== 'object' || payload === null) return payload;
    if (payload instanceof StampedPayload) throw new TypeError('a stamped payload is decoded through its unstamped payload');
    // A copy, as every other reader gets: the held value is its shared readers'.
    if (payload instanceof HeldValue) return deserialize(serializeValue(payload.value));
    return deserialize(payload);
  },
  hold(value) {
    return new HeldValue(value);
  },
  heldValue(payload, stamped) {
    const own = stamped && payload instanceof StampedPayload ? payload.payload : payload;
    return own instanceof HeldValue ? own.value : undefined;
  },
  stamp(payload, stamp) {
    return new StampedPayload(stamp, payload as StampedPayload['payload']);
  },
  unstamp(payload) {
    return payload instanceof StampedPayload ? payload : undefined;
  },
  stampOf(payload) {
    return payload instanceof StampedPayload ? payload : undefined;
  },
  decodeStamped(payload) {
    if (!(payload instanceof StampedPayload)) throw new TypeError('the payload carries no stamp');
    return memoryCodec.decode(payload.payload);
  },
};

/**
 * Stored bytes say what they hold by their first byte: an ASCII digit or `-` starts a safe integer
 * in decimal, STRING_FORMAT a UTF-8 string, V8_FORMAT (the first byte of every v8 serialization) any
 * other value. The remaining leading bytes are reserved for envelopes that carry metadata next to
 * the value (tag versions, stale windows).
 */
const V8_FORMAT = 0xff;
const STRING_FORMAT = 0x00; // textOrBytesCodec writes it as '\u0000'
/** A stamped payload: this byte, the stamp's JSON length (uint32), the JSON, then the value's own payload. */
const STAMPED_FORMAT = 0x01;
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
/**
 * The earlier form of EXPIRY_FORMAT, still read (entries written before stay readable until they
 * end): this byte, a count of digits, then `freshUntil` in milliseconds as that many ASCII digits.
 */
const DECIMAL_EXPIRY_FORMAT = 0x02;

/**
 * For stores of bytes (files, SQL, memcached, Redis): integers as decimal text, strings (the most
 * common value: HTML, JSON) as tagged UTF-8, which costs a tenth of v8's format to read, the rest as v8.
 */
export const bytesCodec: Codec<Buffer> = {
  encode(value) {
    // A string with a lone surrogate has no UTF-8 form: v8's format keeps it exactly.
    if (typeof value === 'string' && value.isWellFormed()) {
      const bytes = Buffer.allocUnsafe(Buffer.byteLength(value) + 1);
      bytes[0] = STRING_FORMAT;
      bytes.write(value, 1);
      return bytes;
    }
    if (typeof value === 'number' && Number.isSafeInteger(value) && !Object.is(value, -0)) {
      return Buffer.from(String(value), 'latin1');
    }
    return serializeValue(value);
  },
  decode(payload) {
    return decodeBytesAt(payload, 0);
  },
  stamp(payload, stamp) {
    if (isExpiryOnly(stamp)) return expiryStamped(payload, stamp.freshUntil);
    const json = Buffer.from(JSON.stringify(stampFields(stamp)));
    const stamped = Buffer.allocUnsafe(5 + json.length + payload.length);
    stamped[0] = STAMPED_FORMAT;
    stamped.writeUInt32BE(json.length, 1);
    json.copy(stamped, 5);
    payload.copy(stamped, 5 + json.length);
    return stamped;
  },
  unstamp(payload, last) {
    const end = stampEnd(payload);
    const known = end === undefined ? undefined : stampIn(payload, end, last);
    return known === undefined ? undefined : { stamp: known.stamp, stored: known.stored, payload: payload.subarray(end) };
  },
  stampOf: stampOfEitherForm,
  decodeStamped(payload) {
    const end = stampEnd(payload);
    if (end === undefined) throw new TypeError('the payload carries no stamp');
    return decodeBytesAt(payload, end);
  },
  isCounter: isDecimalInteger,
};

/** The value of bytesCodec's payload that begins at `offset` of `bytes` (read in place: no copy of it is made first). */
function decodeBytesAt(bytes: Buffer, offset: number): unknown {
  if (bytes.length > offset) {
    // No encoding named: toString then goes straight to UTF-8 (its default) without looking the name
    // up, a tenth of reading a short string, which a batch read does once per entry.
    if (bytes[offset] === STRING_FORMAT) return bytes.toString(undefined, offset + 1);
    if (bytes[offset] === V8_FORMAT) return deserialize(offset === 0 ? bytes : bytes.subarray(offset));
  }
  const text = bytes.toString('latin1', offset);
  if (!/^-?\d+$/.test(text)) throw new TypeError(`stored payload is neither an integer nor a v8 value`);
  return Number(text);
}

/**
 * A stamped payload in either form: the bytes a server answers, or the string a write hands over
 * (textOrBytesCodec), whose stamp is ASCII, one character a byte, so both are read byte by byte.
 */
type StampedForm = Buffer | string;

/** The stamp of a stamped payload in either form (`Codec.stampOf`); undefined for one without a stamp. */
function stampOfEitherForm(payload: StampedForm, last?: KnownStamp): KnownStamp | undefined {
  const end = stampEnd(payload);
  return end === undefined ? undefined : stampIn(payload, end, last);
}

/** Whether a payload in either form is a safe integer in decimal (the only payload that begins with a digit or `-`). */
function isDecimalInteger(payload: StampedForm): boolean {
  if (payload.length === 0) return false;
  const first = byteAt(payload, 0);
  return first === 0x2d || (first >= 0x30 && first <= 0x39);
}

function byteAt(payload: StampedForm, index: number): number {
  return typeof payload === 'string' ? payload.charCodeAt(index) : payload[index]!;
}

/** Where the value's own payload of a stamped payload begins; undefined for a payload without a stamp (or one cut short). */
function stampEnd(payload: StampedForm): number | undefined {
  let end: number;
  const format = byteAt(payload, 0);
  if (format === STAMPED_FORMAT && payload.length >= 5) {
    end = (5 + ((byteAt(payload, 1) << 24) | (byteAt(payload, 2) << 16) | (byteAt(payload, 3) << 8) | byteAt(payload, 4))) >>> 0;
  } else if (format === EXPIRY_FORMAT) {
    end = 1 + EXPIRY_DIGITS;
  } else if (format === DECIMAL_EXPIRY_FORMAT && payload.length >= 2) {
    end = 2 + byteAt(payload, 1);
  } else return undefined;
  // A damaged stamp is left to `decode`, which refuses the whole payload: one place reports it.
  return end <= payload.length ? end : undefined;
}

/** The tags (and versions) of an untagged entry's stamp: one frozen list, shared, as a stamp is only read. */
export const NO_TAGS: readonly string[] = Object.freeze([]);

/** The stamp of a write with neither tags nor stale windows: its payload is stored as it is (see `TagVersions.stampFor`). */
export const NOTHING_TO_STAMP = Symbol('nothing to stamp');

/**
 * The stamp of a payload whose value begins at `end`; for the long form, `last` itself when the stored
 * stamp is the one it was read from (the short form is a few digits, read again each time).
 */
function stampIn(payload: StampedForm, end: number, last: KnownStamp | undefined): KnownStamp | undefined {
  const format = byteAt(payload, 0);
  if (format === EXPIRY_FORMAT || format === DECIMAL_EXPIRY_FORMAT) {
    const milliseconds = format === EXPIRY_FORMAT ? expiryIn(payload) : decimalExpiryIn(payload, end);
    if (milliseconds < 0) return undefined;
    const never = format === EXPIRY_FORMAT ? milliseconds === 0 : end === 2;
    return new ExpiryOnlyStamp(never ? undefined : milliseconds / 1000);
  }
  // An entry read again and again carries the same stamp until it is written again: comparing its
  // bytes is a fraction of parsing its JSON, which was most of what a tagged read cost.
  const known = last?.stored;
  if (known !== undefined && known.length === end - 5 && storedAt(payload, 5, known)) return last;
  const json = typeof payload === 'string' ? payload.slice(5, end) : payload.toString('utf8', 5, end);
  const stamp = stampFrom(json);
  if (stamp === undefined) return undefined;
  // Shared by the reads that find it again, so frozen; its bytes copied, not held in the entry's buffer.
  Object.freeze(stamp.tags);
  Object.freeze(stamp.versions);
  return { stamp: Object.freeze(stamp), stored: typeof payload === 'string' ? Buffer.from(json) : Buffer.from(payload.subarray(5, end)) };
}

/**
 * The short stamp as read: one object, the stamp and its reading at once, made afresh for each read
 * (every entry that expires on Redis or memcached carries one) and remembered by none, unlike the
 * long form's, so it has no stored form to compare and is not frozen.
 */
class ExpiryOnlyStamp implements EntryStamp, KnownStamp {
  readonly tags = NO_TAGS as string[];
  readonly versions = NO_TAGS as string[];
  // Its own, as every reading has: a read asks each stamp for its stored form.
  readonly stored = undefined;
  constructor(readonly freshUntil: number | undefined) {}
  get stamp(): EntryStamp {
    return this;
  }
}

/** EXPIRY_FORMAT's milliseconds (0: never), or -1 for a digit out of range. */
function expiryIn(payload: StampedForm): number {
  let milliseconds = 0;
  let high = 0;
  if (typeof payload === 'string') {
    for (let i = 1; i <= EXPIRY_DIGITS; i++) {
      const digit = payload.charCodeAt(i);
      high |= digit;
      milliseconds = milliseconds * 128 + digit;
    }
  } else {
    for (let i = 1; i <= EXPIRY_DIGITS; i++) {
      const digit = payload[i]!;
      high |= digit;
      milliseconds = milliseconds * 128 + digit;
    }
  }
  return high > 0x7f ? -1 : milliseconds;
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
function storedAt(payload: StampedForm, offset: number, expected: Buffer): boolean {
  if (typeof payload === 'string') {
    for (let i = 0; i < expected.length; i++) if (payload.charCodeAt(offset + i) !== expected[i]) return false;
    return true;
  }
  for (let i = 0; i < expected.length; i++) if (payload[offset + i] !== expected[i]) return false;
  return true;
}

/** Whether a stamp records nothing but when its entry stops being fresh (EXPIRY_FORMAT holds it). */
function isExpiryOnly(stamp: EntryStamp): boolean {
  return stamp.tags.length === 0 && !stamp.staleWhileRevalidate && !stamp.staleIfError && (stamp.contexts?.length ?? 0) === 0;
}

/** `payload` behind the short stamp of `freshUntil`, in one buffer: every write with a timeout carries one. */
function expiryStamped(payload: Buffer, freshUntil: number | undefined): Buffer {
  const stamped = Buffer.allocUnsafe(1 + EXPIRY_DIGITS + payload.length);
  stamped[0] = EXPIRY_FORMAT;
  writeExpiry(stamped, freshUntil);
  payload.copy(stamped, 1 + EXPIRY_DIGITS);
  return stamped;
}

/**
 * The last short stamp made as a string, by its expiry: the writes of one turn of the event loop
 * read one clock reading (see `store/clock.ts`), so those with the same timeout carry the same stamp.
 */
let lastExpiryStamp: { freshUntil: number | undefined; stored: string } | undefined;

/** The stored form of a stamp that records nothing but when its entry stops being fresh; undefined for any other stamp. */
function expiryStampOf(stamp: EntryStamp): string | undefined {
  if (!isExpiryOnly(stamp)) return undefined;
  const { freshUntil } = stamp;
  const last = lastExpiryStamp;
  if (last !== undefined && last.freshUntil === freshUntil) return last.stored;
  const codes = new Array<number>(1 + EXPIRY_DIGITS);
  codes[0] = EXPIRY_FORMAT;
  writeExpiry(codes, freshUntil);
  const stored = String.fromCharCode(...codes);
  lastExpiryStamp = { freshUntil, stored };
  return stored;
}

/**
 * Writes EXPIRY_FORMAT's digits of `freshUntil` behind its format byte: whole milliseconds, at least
 * 1 (0 is never), and none for an expiry past what seven digits hold.
 */
function writeExpiry(into: Buffer | number[], freshUntil: number | undefined): void {
  let milliseconds = freshUntil === undefined ? 0 : Math.max(1, Math.round(freshUntil * 1000));
  if (milliseconds >= EXPIRY_LIMIT) milliseconds = 0;
  // In two halves that each fit 32 bits, whose digits are then shifts: a remainder of a number past
  // 32 bits is a floating-point one, which costs several times a write's copy of its value.
  const high = Math.floor(milliseconds / LOW_DIGITS_RANGE);
  const low = milliseconds - high * LOW_DIGITS_RANGE;
  into[1] = (high >>> 21) & 0x7f;
  into[2] = (high >>> 14) & 0x7f;
  into[3] = (high >>> 7) & 0x7f;
  into[4] = high & 0x7f;
  into[5] = (low >>> 14) & 0x7f;
  into[6] = (low >>> 7) & 0x7f;
  into[7] = low & 0x7f;
}

/** What EXPIRY_FORMAT's last three digits hold. */
const LOW_DIGITS_RANGE = 128 ** 3;

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

/** Node's deserializer with the members its typings leave out: the bytes being read, and the hook for Buffers and typed arrays. */
type NodeDeserializer = new (bytes: Buffer) => InstanceType<typeof DefaultDeserializer> & { readonly buffer: Buffer; _readHostObject(): unknown };

/**
 * v8's own deserializer hands back Buffers and typed arrays as views over the bytes it reads: over
 * a payload a store keeps (locmem, an L1), writing into what `get` returned would change the stored
 * value for every later reader. This one copies each such view's bytes into memory of its own.
 */
class CopyingDeserializer extends (DefaultDeserializer as NodeDeserializer) {
  override _readHostObject(): ArrayBufferView {
    const view = super._readHostObject() as ArrayBufferView;
    // A view v8 had to align is a copy already.
    if (view.buffer !== this.buffer.buffer) return view;
    const source = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
    if (Buffer.isBuffer(view)) return Buffer.from(source);
    // Memory of its own, not from Buffer's shared pool: typed arrays read whole ArrayBuffers.
    const bytes = Buffer.allocUnsafeSlow(view.byteLength);
    bytes.set(source);
    const View = view.constructor as new (buffer: ArrayBufferLike, byteOffset: number, length: number) => ArrayBufferView;
    return new View(bytes.buffer, 0, view.byteLength / ((view as Partial<Uint8Array>).BYTES_PER_ELEMENT ?? 1));
  }
}

/** A value from v8's format that shares no memory with `bytes`. */
function deserialize(bytes: Buffer): unknown {
  const deserializer = new CopyingDeserializer(bytes);
  deserializer.readHeader();
  return deserializer.readValue();
}

/**
 * The fewest bytes of v8's format that can nest a value as deep as its deserializer may fail to
 * read: every level costs at least 3 bytes (a Set's), and a few hundred levels read anywhere.
 */
const MAY_NEST_TOO_DEEP_BYTES = 1024;

function serializeValue(value: unknown): Buffer {
  // v8 would store undefined happily; undefined is refused so that a miss is never ambiguous.
  if (value === undefined) throw new TypeError('undefined cannot be stored (store null instead)');
  const bytes = serialize(value);
  // v8 writes nestings deeper than it reads back (its deserializer takes more stack per level): such
  // a value is refused here, before any store holds an entry that no reader can decode.
  if (bytes.length >= MAY_NEST_TOO_DEEP_BYTES) {
    try {
      deserializeViews(bytes);
    } catch (error) {
      throw new TypeError(`its payload cannot be read back (${(error as Error).message})`, { cause: error });
    }
  }
  return bytes;
}

/**
 * bytesCodec for clients that write JS strings faster than Buffers (ioredis: about 20% at load):
 * integers and well-formed strings, stamped or not, are handed over as strings whose UTF-8 is
 * exactly the bytes bytesCodec would store, everything else as bytesCodec's Buffer. Reads come back
 * as Buffers; what a write hands over may be read again in process (an L1 keeps it), in either form.
 */
export const textOrBytesCodec: Codec<Buffer | string> = {
  encode(value) {
    if (typeof value === 'string' && value.isWellFormed()) return '\u0000' + value;
    if (typeof value === 'number' && Number.isSafeInteger(value) && !Object.is(value, -0)) return String(value);
    return bytesCodec.encode(value);
  },
  decode(payload) {
    if (typeof payload !== 'string') return decodeBytesAt(payload, 0);
    // What encode made: a tagged string (sliced, not copied) or a safe integer in decimal.
    const format = payload.charCodeAt(0);
    if (format === STRING_FORMAT) return payload.slice(1);
    if (format === STAMPED_FORMAT || format === EXPIRY_FORMAT || format === DECIMAL_EXPIRY_FORMAT)
      throw new TypeError('a stamped payload is decoded through its unstamped payload');
    return Number(payload);
  },
  forKeeping(payload) {
    // A stored string stays a JS string in process: each hit is then a slice, not a UTF-8 decode.
    if (typeof payload === 'string' || payload.length === 0) return payload;
    if (payload[0] === STRING_FORMAT) return '\u0000' + payload.toString('utf8', 1);
    // So does one behind the stamp of its expiry alone (ASCII, one character a byte).
    const end = payload[0] === EXPIRY_FORMAT || payload[0] === DECIMAL_EXPIRY_FORMAT ? stampEnd(payload) : undefined;
    return end !== undefined && payload[end] === STRING_FORMAT ? payload.toString('latin1', 0, end + 1) + payload.toString('utf8', end + 1) : payload;
  },
  stamp(payload, stamp) {
    if (typeof payload !== 'string') return bytesCodec.stamp!(payload, stamp);
    const expiry = expiryStampOf(stamp);
    if (expiry !== undefined) return expiry + payload;
    // A string payload stamped stays a string whose UTF-8 is bytesCodec's stamped form: the JSON and
    // each byte of its length must then be ASCII, one character a byte (else it goes as bytes).
    const json = JSON.stringify(stampFields(stamp));
    if (json.length > 0x7f7f7f7f || (json.length & 0x80808080) !== 0 || Buffer.byteLength(json) !== json.length) {
      return bytesCodec.stamp!(Buffer.from(payload), stamp);
    }
    const length = String.fromCharCode(json.length >>> 24, (json.length >>> 16) & 0xff, (json.length >>> 8) & 0xff, json.length & 0xff);
    return `\u0001${length}${json}${payload}`;
  },
  unstamp(payload, last) {
    if (typeof payload !== 'string') return bytesCodec.unstamp!(payload, last);
    const end = stampEnd(payload);
    const known = end === undefined ? undefined : stampIn(payload, end, last);
    return known === undefined ? undefined : { stamp: known.stamp, stored: known.stored, payload: payload.slice(end) };
  },
  stampOf: stampOfEitherForm,
  decodeStamped(payload) {
    if (typeof payload !== 'string') return bytesCodec.decodeStamped!(payload);
    const end = stampEnd(payload);
    if (end === undefined) throw new TypeError('the payload carries no stamp');
    return textOrBytesCodec.decode(payload.slice(end));
  },
  isCounter: isDecimalInteger,
};
