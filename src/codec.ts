/**
 * How values become payloads, once for every backend (SPEC §3). v8's structured-clone format keeps
 * Date, Map, Set, Buffer, typed arrays and BigInt, refuses functions and symbols, and never runs code
 * on read. Safe integers stay raw so servers can add to them atomically (INCRBY, memcached incr).
 */
import { deserialize, serialize } from 'node:v8';

/** Turns values into what a backend stores and back. `decode` always returns a fresh copy. */
export interface Codec<P> {
  encode(value: unknown): P;
  decode(payload: P): unknown;
}

/** What an in-process store keeps: immutable primitives as they are, anything else as v8 bytes. */
export type MemoryPayload = string | number | boolean | bigint | null | Buffer;

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
    return Buffer.isBuffer(payload) ? deserialize(payload) : payload;
  },
};

/**
 * The first byte of every v8 serialization. Stored bytes are either a safe integer in ASCII decimal
 * (which never starts with this byte) or a v8 serialization. Other leading bytes are reserved for
 * envelopes that carry metadata next to the value (soft expiry, tag versions).
 */
const V8_FORMAT = 0xff;

/** For stores of bytes (files, SQL, memcached, Redis): integers as decimal text, the rest as v8. */
export const bytesCodec: Codec<Buffer> = {
  encode(value) {
    if (typeof value === 'number' && Number.isSafeInteger(value) && !Object.is(value, -0)) {
      return Buffer.from(String(value), 'latin1');
    }
    return serializeValue(value);
  },
  decode(payload) {
    if (payload.length > 0 && payload[0] === V8_FORMAT) return deserialize(payload);
    const text = payload.toString('latin1');
    if (!/^-?\d+$/.test(text)) throw new TypeError(`stored payload is neither an integer nor a v8 value`);
    return Number(text);
  },
};

function serializeValue(value: unknown): Buffer {
  // v8 would store undefined happily; SPEC §3 keeps it out so that a miss is never ambiguous.
  if (value === undefined) throw new TypeError('undefined cannot be stored (store null instead)');
  return serialize(value);
}
