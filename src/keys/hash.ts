/**
 * The hashes of the project: md5 as hex, the digest Django's keys use (fragment keys, page keys,
 * file names), and a 64-bit hash for what a response makes anew each time (`Hash64`).
 */
import { hash } from 'node:crypto';
import { BoundedMemo } from '../memos/bounded-memo.js';

/** md5 as hex. One-shot `crypto.hash` costs a fraction of a createHash/update/digest round. */
export function md5(text: string | NodeJS.ArrayBufferView): string {
  return hash('md5', text, 'hex');
}

/**
 * md5 of texts that repeat (URLs, fragment inputs), remembering the most recent ones: a site hashes
 * the same few thousand strings over and over.
 */
export function rememberingMd5(limit = 10_000): (text: string) => string {
  const recent = new BoundedMemo<string>(limit);
  return (text) => recent.remember(text, md5);
}

/**
 * A 64-bit hash of a sequence of strings (by UTF-16 code unit), numbers and bytes, in 16 hex digits:
 * cyrb53's mixing, both 32-bit lanes kept. Not a digest: what it tells apart it tells apart by
 * chance, one in 2^64, which is enough for an ETag that only has to differ from the last one sent
 * for the same URL. It runs in the caller's own code, so a response that hashes a few hundred
 * bytes pays for a few hundred multiplications, not for a call into a digest library.
 */
export class Hash64 {
  private h1 = 0xdeadbeef;
  private h2 = 0x41c6ce57;

  /** Adds the code units of `text`. */
  string(text: string): this {
    for (let i = 0; i < text.length; i++) this.mix(text.charCodeAt(i));
    return this;
  }

  /** Adds a 32-bit unsigned number (a length that frames what follows it). */
  number(value: number): this {
    this.mix(value >>> 0);
    return this;
  }

  /**
   * Adds the bytes of `bytes`, four a round (a little-endian word) and the last few one a round: a
   * quarter of the rounds. How they are cut is fixed by their length, which a caller that adds
   * several pieces frames each one with (see `number`).
   */
  bytes(bytes: Uint8Array): this {
    const whole = bytes.length & ~3;
    for (let i = 0; i < whole; i += 4) this.mix(bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
    for (let i = whole; i < bytes.length; i++) this.mix(bytes[i]!);
    return this;
  }

  /** The hash of what was added, as 16 hex digits. */
  hex(): string {
    let { h1, h2 } = this;
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
    h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
    h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
    return (h2 >>> 0).toString(16).padStart(8, '0') + (h1 >>> 0).toString(16).padStart(8, '0');
  }

  private mix(value: number): void {
    this.h1 = Math.imul(this.h1 ^ value, 2654435761);
    this.h2 = Math.imul(this.h2 ^ value, 1597334677);
  }
}
