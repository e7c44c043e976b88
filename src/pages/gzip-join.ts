/**
 * A gzip member joined from parts compressed apart (RFC 1951, RFC 1952): the parts of a page's
 * shell, each deflated once when it is stored and ending on a byte with a sync flush (non-final
 * blocks), and each request's holes between them as deflate blocks of their own. The member's
 * trailer is made for each response: its CRC-32 combined from the parts' CRCs, stored with them, and
 * the holes' own (zlib's `crc32_combine`, over GF(2) polynomials), and its length. No part of the
 * shell is read or compressed again.
 */
import { constants, crc32, deflateRawSync } from 'node:zlib';
import type { BodyWriter } from '../headers/body-writer.js';

/** The deflated parts of a page's shell: each ends byte-aligned (a sync flush), none is final. */
export interface DeflatedParts {
  /** Each part of the shell, deflated (raw, no header), ending with a sync flush. */
  parts: Buffer[];
  /** Each part's CRC-32 and length, uncompressed. */
  crcs: number[];
  lengths: number[];
}

/**
 * A hole smaller than this goes as stored blocks, five bytes of header and no call to zlib: a
 * deflate of a few hundred bytes costs a request more (a compressor's state is made for it) than
 * the bytes it saves. A larger one is deflated.
 */
export const DEFLATED_HOLE_BYTES = 1024;

/** A gzip member's header: deflate, no name or time, from an unknown system (RFC 1952 §2.3). */
const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
/** The CRC-32 polynomial, reflected (as zlib and gzip compute CRCs). */
const POLYNOMIAL = 0xedb88320;
/** The final block: fixed Huffman codes holding only the end of block, two bytes on a byte boundary. */
const FINAL_BLOCK = Buffer.from([0x03, 0x00]);
/** A hole's bytes as deflate blocks that start and end on a byte, none final. */
export function deflatedHole(hole: Buffer): Buffer {
  if (hole.length >= DEFLATED_HOLE_BYTES) return deflateRawSync(hole, { finishFlush: constants.Z_SYNC_FLUSH });
  if (hole.length === 0) return hole;
  // One stored block (it holds up to 64 KB): not final, stored, the rest of its first byte empty, then LEN and NLEN.
  const block = Buffer.allocUnsafe(hole.length + 5);
  block[0] = 0;
  block.writeUInt16LE(hole.length, 1);
  block.writeUInt16LE(~hole.length & 0xffff, 3);
  hole.copy(block, 5);
  return block;
}

/**
 * The chunks of a gzip member whose content is the shell's parts with `holes` between them (one
 * fewer than the parts), `deflatedHoles` being each hole as `deflatedHole` made it: sent one after
 * the other, they decode to the filled page.
 */
export function joinedGzip(shell: DeflatedParts, holes: readonly Buffer[], deflatedHoles: readonly Buffer[]): Buffer[] {
  const chunks: Buffer[] = [GZIP_HEADER];
  const past = pastEachPart(shell);
  let crc = 0;
  let length = 0;
  for (let i = 0; i < shell.parts.length; i++) {
    chunks.push(shell.parts[i]!);
    crc = (multiplyModP(past[i]!, crc) ^ shell.crcs[i]!) >>> 0;
    length += shell.lengths[i]!;
    if (i === holes.length) break;
    chunks.push(deflatedHoles[i]!);
    // A hole's CRC goes on from the CRC so far: its bytes are at hand.
    crc = crcOnward(holes[i]!, crc);
    length += holes[i]!.length;
  }
  chunks.push(memberEnd(crc, length));
  return chunks;
}

/** The CRC-32 table of one byte's step, reflected (as zlib's `crc_table[0]`). */
const CRC_TABLE = (() => {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = (c & 1) !== 0 ? (c >>> 1) ^ POLYNOMIAL : c >>> 1;
    table[n] = c;
  }
  return table;
})();

/**
 * The CRC-32 of `bytes` going on from `crc`, the CRC of what came before them (zlib's `crc32(crc,
 * bytes)`). A hole's bytes are few: a byte at a time, here, costs them less than a call into zlib,
 * whose code a hit would run for them alone. More than a stored block's worth go to zlib.
 */
function crcOnward(bytes: Uint8Array, crc: number): number {
  if (bytes.length >= DEFLATED_HOLE_BYTES) return crc32(bytes, crc);
  let c = ~crc;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** The end of a gzip member: the final block, then the trailer, the CRC-32 and length (mod 2^32) of what it holds. */
function memberEnd(crc: number, length: number): Buffer {
  const end = Buffer.allocUnsafe(FINAL_BLOCK.length + 8);
  FINAL_BLOCK.copy(end);
  end.writeUInt32LE(crc >>> 0, 2);
  end.writeUInt32LE(length >>> 0, 6);
  return end;
}

/** Where each shell's operators are kept (see `pastEachPart`): on the decoded parts, never stored (the key is a symbol). */
const PAST_EACH_PART = Symbol('cachegrain.pastEachPart');

/** The operator that moves a CRC past each part of the shell (see `pastBytes`), made once per decoded shell. */
function pastEachPart(shell: DeflatedParts): number[] {
  const kept = (shell as DeflatedParts & { [PAST_EACH_PART]?: number[] })[PAST_EACH_PART];
  if (kept !== undefined) return kept;
  const past = shell.lengths.map(pastBytes);
  Object.defineProperty(shell, PAST_EACH_PART, { value: past });
  return past;
}

/** a(x)·b(x) modulo the CRC polynomial, both reflected (zlib's `multmodp`). */
function multiplyModP(a: number, b: number): number {
  let m = 0x80000000;
  let product = 0;
  for (;;) {
    if ((a & m) !== 0) {
      product ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = (b & 1) !== 0 ? (b >>> 1) ^ POLYNOMIAL : b >>> 1;
  }
  return product >>> 0;
}

/** x^(2^n) modulo the polynomial, for n = 0…31 (zlib's `x2n_table`). */
const X_TO_2_TO_N = (() => {
  const table = [0x40000000];
  for (let n = 1; n < 32; n++) table.push(multiplyModP(table[n - 1]!, table[n - 1]!));
  return table;
})();

/** x^(8·bytes) modulo the polynomial: the operator that moves a CRC past `bytes` zero bytes (zlib's `x2nmodp(len, 3)`). */
function pastBytes(bytes: number): number {
  let power = 0x80000000;
  let k = 3;
  for (let n = bytes; n > 0; n = Math.floor(n / 2), k++) if (n % 2 === 1) power = multiplyModP(X_TO_2_TO_N[k % 32]!, power);
  return power;
}

/** The CRC-32 of A followed by B from CRC(A), CRC(B) and B's length (zlib's `crc32_combine`). */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  return (multiplyModP(pastBytes(lengthB), crcA) ^ crcB) >>> 0;
}

/** A piece of a stored page deflated as `deflatedHole` deflates, with its CRC-32 and length. */
interface DeflatedPiece {
  deflated: Buffer;
  crc: number;
  length: number;
}

/**
 * Each stored piece of a shell a streamed gzip member was written from, deflated: the pieces are the
 * same objects on every response of a decoded page, so a streamed hit deflates none of the shell
 * again. Held weakly by the piece: it goes with its page.
 */
const deflatedPieces = new WeakMap<Buffer, DeflatedPiece>();

function deflatedPiece(bytes: Buffer): DeflatedPiece {
  let piece = deflatedPieces.get(bytes);
  if (piece === undefined) {
    piece = { deflated: deflatedHole(bytes), crc: crc32(bytes), length: bytes.length };
    deflatedPieces.set(bytes, piece);
  }
  return piece;
}

/**
 * A writer of one gzip member onto `out`, for a body sent in parts: what is written between two
 * flushes goes out as deflate blocks that end on a byte, none final, so that each flush sends bytes a
 * client decodes at once; the shell's pieces as they were deflated for an earlier response (see
 * `deflatedPieces`), the rest deflated as it comes. The end writes the final block and the trailer.
 * A body of nothing (a HEAD's) is nothing, not an empty member.
 */
export function gzipMemberWriter(out: BodyWriter): BodyWriter {
  let started = false;
  let crc = 0;
  let length = 0;
  let pending: Buffer[] = [];
  const start = () => {
    if (started) return;
    started = true;
    out.write(GZIP_HEADER);
  };
  const writePending = () => {
    if (pending.length === 0) return;
    const bytes = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
    pending = [];
    start();
    out.write(deflatedHole(bytes));
    crc = crcOnward(bytes, crc);
    length += bytes.length;
  };
  return {
    write(bytes) {
      if (bytes.length > 0) pending.push(bytes);
    },
    writeShell(bytes) {
      if (bytes.length === 0) return;
      writePending();
      start();
      const piece = deflatedPiece(bytes);
      out.writeShell(piece.deflated);
      crc = crc32Combine(crc, piece.crc, piece.length);
      length += piece.length;
    },
    flush() {
      writePending();
      out.flush();
    },
    end() {
      writePending();
      if (started) {
        out.write(memberEnd(crc, length));
      }
      out.end();
    },
  };
}
