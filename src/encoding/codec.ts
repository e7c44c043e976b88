/**
 * How values become payloads, once for every backend. v8's structured-clone format keeps
 * Date, Map, Set, Buffer, typed arrays and BigInt, refuses functions and symbols, and never runs code
 * on read. Safe integers stay raw so servers can add to them atomically (INCRBY, memcached incr).
 */
import { DefaultDeserializer, deserialize as deserializeViews, serialize } from 'node:v8';
import {
  byteAt,
  type EntryStamp,
  isExpiryFormat,
  isStampFormat,
  type KnownStamp,
  stampedBytes,
  stampedText,
  type StampedForm,
  stampEnd,
  stampIn,
  stampOfEitherForm,
  expiryOfShortStamp,
  expiryStamped,
  expiryStampedText,
} from './stamps.js';

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
   * Optional, beside `stampOf`, for a codec whose stamp has a short form that records an expiry
   * alone (what every expiring entry on a server carries): when such a payload stops being fresh,
   * in epoch seconds (Infinity: never), read as a number, with no stamp made; undefined for any
   * other payload, whose stamp `stampOf` reads.
   */
  expiryOf?(payload: P): number | undefined;
  /**
   * Optional, beside `expiryOf`: `payload` behind the short stamp of its expiry alone (undefined:
   * never), as `stamp` makes it of a stamp that records nothing else, with no stamp made: every
   * expiring write to a server carries one.
   */
  stampExpiry?(payload: P, freshUntil: number | undefined): P;
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
  stamp: stampedBytes,
  unstamp(payload, last) {
    const end = stampEnd(payload);
    const known = end === undefined ? undefined : stampIn(payload, end, last);
    return known === undefined ? undefined : { stamp: known.stamp, stored: known.stored, payload: payload.subarray(end) };
  },
  stampOf: stampOfEitherForm,
  expiryOf: expiryOfShortStamp,
  stampExpiry: expiryStamped,
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
 * The longest integer in decimal a counter's payload holds: a server's own (INCRBY counts on past
 * the safe integers, to a signed 64-bit one), `-9223372036854775808`.
 */
const COUNTER_CHARACTERS = 20;

/** Whether a payload in either form is a safe integer in decimal (the only payload that begins with a digit or `-`). */
function isDecimalInteger(payload: StampedForm): boolean {
  // A longer one is not, and its first character is not read: a string just encoded is a
  // concatenation, which reading flattens into a copy, and every write with a timeout asks this.
  if (payload.length === 0 || payload.length > COUNTER_CHARACTERS) return false;
  const first = byteAt(payload, 0);
  return first === 0x2d || (first >= 0x30 && first <= 0x39);
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
    if (isStampFormat(format)) throw new TypeError('a stamped payload is decoded through its unstamped payload');
    return Number(payload);
  },
  forKeeping(payload) {
    // A stored string stays a JS string in process: each hit is then a slice, not a UTF-8 decode.
    if (typeof payload === 'string' || payload.length === 0) return payload;
    if (payload[0] === STRING_FORMAT) return '\u0000' + payload.toString('utf8', 1);
    // So does one behind the stamp of its expiry alone (ASCII, one character a byte).
    const end = isExpiryFormat(payload[0]!) ? stampEnd(payload) : undefined;
    return end !== undefined && payload[end] === STRING_FORMAT ? payload.toString('latin1', 0, end + 1) + payload.toString('utf8', end + 1) : payload;
  },
  stamp(payload, stamp) {
    // A string payload stamped stays a string where it can (see `stampedText`).
    if (typeof payload === 'string') return stampedText(payload, stamp) ?? stampedBytes(Buffer.from(payload), stamp);
    return stampedBytes(payload, stamp);
  },
  unstamp(payload, last) {
    if (typeof payload !== 'string') return bytesCodec.unstamp!(payload, last);
    const end = stampEnd(payload);
    const known = end === undefined ? undefined : stampIn(payload, end, last);
    return known === undefined ? undefined : { stamp: known.stamp, stored: known.stored, payload: payload.slice(end) };
  },
  stampOf: stampOfEitherForm,
  expiryOf: expiryOfShortStamp,
  stampExpiry(payload, freshUntil) {
    return typeof payload === 'string' ? expiryStampedText(payload, freshUntil) : expiryStamped(payload, freshUntil);
  },
  decodeStamped(payload) {
    const end = stampEnd(payload);
    if (end === undefined) throw new TypeError('the payload carries no stamp');
    return typeof payload === 'string' ? textOrBytesCodec.decode(payload.slice(end)) : decodeBytesAt(payload, end);
  },
  isCounter: isDecimalInteger,
};
