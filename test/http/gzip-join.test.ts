/**
 * A gzip member joined from parts compressed apart: the shell's parts deflated once (sync-flushed),
 * each hole as stored blocks or deflated, the trailer's CRC combined; decoded by zlib, it is the
 * filled page, whatever the holes' sizes and wherever they stand.
 */
import { constants, crc32, deflateRawSync, gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32Combine, DEFLATED_HOLE_BYTES, type DeflatedParts, deflatedHole, joinedGzip } from '../../src/pages/gzip-join.js';

const deflated = (parts: Buffer[]): DeflatedParts => ({
  parts: parts.map((part) => deflateRawSync(part, { finishFlush: constants.Z_SYNC_FLUSH })),
  crcs: parts.map((part) => crc32(part)),
  lengths: parts.map((part) => part.length),
});

describe('crc32Combine(crcA, crcB, lengthB)', () => {
  it('is the CRC-32 of A followed by B', () => {
    const a = Buffer.from('the shell before the hole, '.repeat(300));
    for (const length of [0, 1, 7, 64, 1000, 65_536, 1_048_577]) {
      const b = Buffer.alloc(length, 'x');
      expect(crc32Combine(crc32(a), crc32(b), b.length), String(length)).toBe(crc32(Buffer.concat([a, b])));
    }
    expect(crc32Combine(0, crc32(a), a.length)).toBe(crc32(a));
  });
});

describe('joinedGzip(shell, holes, deflatedHoles)', () => {
  it('decodes to the shell with its holes in place: holes empty, small or large, at the start, between parts and at the end', () => {
    const parts = [Buffer.alloc(0), Buffer.from('<main>'.repeat(2000)), Buffer.from('</main><aside>'), Buffer.alloc(0)];
    // The first hole holds every byte there is: its CRC is the one a small hole's is computed by.
    const everyByte = Buffer.from(Array.from({ length: 256 }, (_, byte) => byte));
    const holes = [Buffer.concat([Buffer.from('<b>cart of ann</b>'), everyByte]), Buffer.alloc(0), Buffer.from('<li>a wish</li>'.repeat(300))];
    expect(holes[2]!.length).toBeGreaterThanOrEqual(DEFLATED_HOLE_BYTES);
    const chunks = joinedGzip(deflated(parts), holes, holes.map(deflatedHole));
    const filled = Buffer.concat([parts[0]!, holes[0]!, parts[1]!, holes[1]!, parts[2]!, holes[2]!, parts[3]!]);
    expect(gunzipSync(Buffer.concat(chunks)).equals(filled)).toBe(true);
  });

  it('sends a small hole as a stored block, five bytes more than its own, and a large one deflated', () => {
    const small = Buffer.from('x'.repeat(DEFLATED_HOLE_BYTES - 1));
    expect(deflatedHole(small).length).toBe(small.length + 5);
    expect(deflatedHole(small).subarray(5).equals(small)).toBe(true);
    expect(deflatedHole(Buffer.from('y'.repeat(DEFLATED_HOLE_BYTES))).length).toBeLessThan(100);
  });
});
