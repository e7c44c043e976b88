import { describe, expect, it } from 'vitest';
import { bytesCodec, type Codec } from '../src/index.js';
import { textOrBytesCodec } from '../src/encoding/codec.js';
import { decodeStamped } from '../src/encoding/codec.js';

describe('stamps read again', () => {
  const stamped = (versions: string[]) => bytesCodec.stamp!(bytesCodec.encode('value'), { tags: ['a', 'b'], versions });

  // The same stamped payload as the bytes a server answers and as the string a write handed over (kept by an L1).
  const textStamped = (versions: string[]) => textOrBytesCodec.stamp!(textOrBytesCodec.encode('value'), { tags: ['a', 'b'], versions });
  const forms = [
    { name: 'bytes, bytes codec', codec: bytesCodec as Codec<Buffer | string>, stamped, form: 'object' },
    { name: 'bytes, text-or-bytes codec', codec: textOrBytesCodec, stamped, form: 'object' },
    { name: 'text, text-or-bytes codec', codec: textOrBytesCodec, stamped: textStamped, form: 'string' },
  ];

  it.each(forms)('the stamp the last read found is answered again while the stored stamp is the same ($name)', ({ codec: read, stamped: make, form }) => {
    const first = read.unstamp!(make(['1', '2']))!;
    const again = read.unstamp!(make(['1', '2']), first)!;
    expect(typeof make(['1', '2'])).toBe(form);
    expect(again.stamp).toBe(first.stamp);
    expect(read.decode(again.payload)).toBe('value');
    expect(read.stampOf!(make(['1', '2']), first)).toBe(first);
  });

  it.each(forms)('a stamp of the same length with other versions is read anew ($name)', ({ codec: read, stamped: make }) => {
    const first = read.unstamp!(make(['1', '2']))!;
    const changed = read.unstamp!(make(['1', '3']), first)!;
    expect(changed.stamp).not.toBe(first.stamp);
    expect(changed.stamp.versions).toEqual(['1', '3']);
    expect(read.stampOf!(make(['1', '3']), first)!.stamp.versions).toEqual(['1', '3']);
  });

  it('a remembered stamp cannot be changed by one of its readers', () => {
    const { stamp } = bytesCodec.unstamp!(stamped(['1', '2']))!;
    expect(Object.isFrozen(stamp) && Object.isFrozen(stamp.tags) && Object.isFrozen(stamp.versions)).toBe(true);
  });
});

describe('a string stamped for a client that writes strings', () => {
  const stamp = { tags: ['a', 'b'], versions: ['1', '2'], freshUntil: 1_900_000_000.5 };

  it('is a string whose UTF-8 is the bytes the bytes codec stores, read back in either form', () => {
    for (const value of ['<li>plain</li>', 'ünïcödé ✓ and 😀', '', 'x'.repeat(70_000)]) {
      const text = textOrBytesCodec.stamp!(textOrBytesCodec.encode(value), stamp);
      expect(typeof text).toBe('string');
      expect(Buffer.from(text as string)).toEqual(bytesCodec.stamp!(bytesCodec.encode(value), stamp));
      for (const form of [text, Buffer.from(text as string)]) {
        const { stamp: read, payload } = textOrBytesCodec.unstamp!(form)!;
        expect(read).toEqual(stamp);
        expect(textOrBytesCodec.decode(payload)).toBe(value);
      }
    }
  });

  it('goes as bytes when its stamp is not all ASCII, or its length has a byte past ASCII', () => {
    const unicodeTag = { ...stamp, tags: ['catégorie'], versions: ['1'] };
    const longTags = Array.from({ length: 20 }, (_, i) => `tag-${i}`);
    // 128 to 255 bytes of JSON: the length's last byte is no ASCII character.
    const pastAscii = { tags: longTags.slice(0, 11), versions: longTags.slice(0, 11).map(() => '1') };
    expect(JSON.stringify([pastAscii.tags, pastAscii.versions]).length).toBeGreaterThanOrEqual(128);
    expect(JSON.stringify([pastAscii.tags, pastAscii.versions]).length).toBeLessThan(256);
    for (const other of [unicodeTag, pastAscii]) {
      const stamped = textOrBytesCodec.stamp!(textOrBytesCodec.encode('value'), other);
      expect(Buffer.isBuffer(stamped)).toBe(true);
      expect(textOrBytesCodec.unstamp!(stamped)!.stamp).toEqual(other);
    }
  });

  it('is refused by decode, which reads only what unstamp answers', () => {
    const text = textOrBytesCodec.stamp!(textOrBytesCodec.encode('value'), stamp);
    expect(() => textOrBytesCodec.decode(text)).toThrow(TypeError);
  });
});

describe('a stamp of nothing but when the entry stops being fresh (an untagged fragment, any entry that expires on Redis or memcached)', () => {
  const stamp = { tags: [], versions: [], freshUntil: 1_900_000_000.5 };
  const forms = [
    { name: 'bytes', codec: bytesCodec as Codec<Buffer | string> },
    { name: 'text', codec: textOrBytesCodec },
  ];

  it.each(forms)('costs eight bytes, and reads back as it was written ($name)', ({ codec }) => {
    const value = codec.encode('<li>fragment</li>');
    const stamped = codec.stamp!(value, stamp);
    expect(stamped.length).toBe(value.length + 8);
    expect(Buffer.from(stamped)).toEqual(bytesCodec.stamp!(bytesCodec.encode('<li>fragment</li>'), stamp));
    const read = codec.unstamp!(stamped)!;
    expect(read.stamp).toEqual(stamp);
    // A batch reads it as a number, and a write makes it, with no stamp made.
    expect(codec.expiryOf!(stamped)).toBe(stamp.freshUntil);
    expect(codec.stampExpiry!(value, stamp.freshUntil)).toEqual(stamped);
    expect(codec.decode(read.payload)).toBe('<li>fragment</li>');
    expect(decodeStamped(codec, stamped)).toBe('<li>fragment</li>');
    expect(() => codec.decode(stamped)).toThrow(TypeError);
  });

  it.each(forms)('of an entry that never expires, reads back with no expiry ($name)', ({ codec }) => {
    const stamped = codec.stamp!(codec.encode(42), { tags: [], versions: [] });
    expect(stamped.length).toBe(8 + 2);
    expect(codec.stampExpiry!(codec.encode(42), undefined)).toEqual(stamped);
    const read = codec.unstamp!(stamped)!;
    expect(read.stamp).toEqual({ tags: [], versions: [] });
    expect(codec.expiryOf!(stamped)).toBe(Infinity);
    expect(codec.decode(read.payload)).toBe(42);
  });

  it.each(forms)('keeps the millisecond from the first one after the epoch to the last it can hold, and no expiry past them ($name)', ({ codec }) => {
    const readBack = (freshUntil: number) => codec.unstamp!(codec.stamp!(codec.encode('x'), { tags: [], versions: [], freshUntil }))!.stamp.freshUntil;
    const readAsNumber = (freshUntil: number) => codec.expiryOf!(codec.stamp!(codec.encode('x'), { tags: [], versions: [], freshUntil }));
    const madeAlone = (freshUntil: number) => codec.unstamp!(codec.stampExpiry!(codec.encode('x'), freshUntil))!.stamp.freshUntil;
    for (const freshUntil of [0.001, 1_900_000_000.001, 2 ** 32 + 0.999, (2 ** 49 - 1) / 1000]) {
      expect(readBack(freshUntil)).toBe(freshUntil);
      expect(readAsNumber(freshUntil)).toBe(freshUntil);
      expect(madeAlone(freshUntil)).toBe(freshUntil);
    }
    expect(madeAlone(-5)).toBe(0.001);
    expect(madeAlone(2 ** 49 / 1000)).toBeUndefined();
    // An entry already over when written stays over.
    expect(readBack(0)).toBe(0.001);
    expect(readBack(-5)).toBe(0.001);
    expect(readBack(2 ** 49 / 1000)).toBeUndefined();
  });

  it.each(forms)('is read in the decimal form earlier builds wrote, which a server may still hold ($name)', ({ codec }) => {
    const decimal = (digits: string, value: string) => Buffer.concat([Buffer.from([0x02, digits.length]), Buffer.from(digits), bytesCodec.encode(value)]);
    const stored = decimal('1900000000500', '<li>fragment</li>');
    const payload = codec === textOrBytesCodec ? textOrBytesCodec.forKeeping!(stored) : stored;
    expect(codec.unstamp!(payload)!.stamp).toEqual(stamp);
    // Read as a number only in the form written now; this one is read as a stamp.
    expect(codec.expiryOf!(payload)).toBeUndefined();
    expect(decodeStamped(codec, payload)).toBe('<li>fragment</li>');
    expect(() => codec.decode(payload)).toThrow(TypeError);
    expect(codec.unstamp!(decimal('', 'x'))!.stamp).toEqual({ tags: [], versions: [] });
  });

  it('of a string read from a server, is kept in process as a string, the stamp and the value read back as they were', () => {
    const stored = bytesCodec.stamp!(bytesCodec.encode('<li>fragment ✓</li>'), stamp);
    const kept = textOrBytesCodec.forKeeping!(stored);
    expect(kept).toBe(textOrBytesCodec.stamp!(textOrBytesCodec.encode('<li>fragment ✓</li>'), stamp));
    expect(textOrBytesCodec.unstamp!(kept)!.stamp).toEqual(stamp);
    expect(decodeStamped(textOrBytesCodec, kept)).toBe('<li>fragment ✓</li>');
    // Any other value behind it stays as it was read.
    const number = bytesCodec.stamp!(bytesCodec.encode({ n: 1 }), stamp);
    expect(textOrBytesCodec.forKeeping!(number)).toBe(number);
  });

  it('is no expiry to read as a number when a digit is out of range, cut short, or absent', () => {
    for (const codec of [bytesCodec as Codec<Buffer | string>, textOrBytesCodec]) {
      const stamped = Buffer.from(codec.stamp!(codec.encode('x'), stamp));
      const damaged = Buffer.from(stamped);
      damaged[4] = 0x80;
      for (const payload of [damaged, stamped.subarray(0, 7), codec.encode('x'), codec.encode(12)]) {
        expect(codec.expiryOf!(codec === textOrBytesCodec ? payload.toString('latin1') : payload)).toBeUndefined();
      }
    }
  });

  it('is left off an integer, which a server adds to in place: isCounter tells one from any other payload', () => {
    for (const codec of [bytesCodec as Codec<Buffer | string>, textOrBytesCodec]) {
      for (const integer of [12, -12, 0]) expect(codec.isCounter!(codec.encode(integer)), String(integer)).toBe(true);
      for (const other of ['12', '-1', 1.5, null, { n: 1 }]) expect(codec.isCounter!(codec.encode(other)), JSON.stringify(other)).toBe(false);
      expect(codec.isCounter!(codec.stamp!(codec.encode(12), stamp))).toBe(false);
    }
  });

  it('tells a counter the server counted past the safe integers, to the ends of its 64 bits, as one', () => {
    // What INCRBY leaves under a key: a touch must not stamp it, or the next INCRBY fails.
    for (const stored of ['9223372036854775807', '-9223372036854775808', String(Number.MAX_SAFE_INTEGER)]) {
      expect(bytesCodec.isCounter!(Buffer.from(stored)), stored).toBe(true);
      expect(textOrBytesCodec.isCounter!(stored), stored).toBe(true);
    }
  });

  it('is the long form once the stamp holds anything more', () => {
    for (const other of [
      { ...stamp, tags: ['a'], versions: ['1'] },
      { ...stamp, staleWhileRevalidate: 5 },
      { ...stamp, contexts: ['url'] },
    ]) {
      const stamped = bytesCodec.stamp!(bytesCodec.encode('x'), other);
      // Its expiry in the short form's seven digits ahead of the JSON, which holds the rest.
      expect(stamped[0]).toBe(0x04);
      expect(stamped.toString('latin1')).not.toContain(String(stamp.freshUntil));
      expect(bytesCodec.unstamp!(stamped)!.stamp).toEqual(other);
      expect(bytesCodec.expiryOf!(stamped)).toBeUndefined();
      const { freshUntil: _never, ...forever } = other;
      expect(bytesCodec.stamp!(bytesCodec.encode('x'), forever)[0]).toBe(0x01);
    }
  });
});

describe('a tagged stamp with an expiry, read again', () => {
  const make = (codec: Codec<Buffer | string>, freshUntil?: number) =>
    codec.stamp!(codec.encode('value'), { tags: ['a', 'b'], versions: ['1', '2'], ...(freshUntil !== undefined && { freshUntil }) });
  const forms = [
    { name: 'bytes', codec: bytesCodec as Codec<Buffer | string> },
    { name: 'text', codec: textOrBytesCodec },
  ];

  it.each(forms)('is the same bytes in either form, and the stamp last read while nothing changed ($name)', ({ codec }) => {
    expect(Buffer.from(make(codec, 1_900_000_000.25))).toEqual(make(bytesCodec, 1_900_000_000.25));
    const first = codec.unstamp!(make(codec, 1_900_000_000.25))!;
    expect(first.stamp).toEqual({ tags: ['a', 'b'], versions: ['1', '2'], freshUntil: 1_900_000_000.25 });
    expect(codec.stampOf!(make(codec, 1_900_000_000.25), first)).toBe(first);
    expect(decodeStamped(codec, make(codec, 1_900_000_000.25))).toBe('value');
  });

  it.each(forms)('written again with another timeout, answers the new expiry with the same tags ($name)', ({ codec }) => {
    const first = codec.unstamp!(make(codec, 1_900_000_000))!;
    const rewritten = codec.stampOf!(make(codec, 1_900_000_060), first)!;
    expect(rewritten).not.toBe(first);
    expect(rewritten.stamp).toEqual({ tags: ['a', 'b'], versions: ['1', '2'], freshUntil: 1_900_000_060 });
    expect(Object.isFrozen(rewritten.stamp)).toBe(true);
    expect(first.stamp.freshUntil).toBe(1_900_000_000);
  });

  it.each(forms)('written again with no timeout, takes no expiry from the stamp last read, whose JSON is the same ($name)', ({ codec }) => {
    const expiring = codec.unstamp!(make(codec, 1_900_000_000))!;
    const forever = codec.stampOf!(make(codec), expiring)!;
    expect(forever.stamp.freshUntil).toBeUndefined();
    expect(codec.stampOf!(make(codec, 1_900_000_000), forever)!.stamp.freshUntil).toBe(1_900_000_000);
  });

  it('refuses one whose JSON records an expiry of its own, as damage', () => {
    const expiring = make(bytesCodec, 1_900_000_000) as Buffer;
    const json = Buffer.from(JSON.stringify([['a'], ['1'], 5, 0, 0]));
    const damaged = Buffer.concat([expiring.subarray(0, 8), Buffer.from([0, 0, 0, json.length]), json, Buffer.from('\u0000v')]);
    expect(bytesCodec.unstamp!(damaged)).toBeUndefined();
  });

  it.each(forms)('refuses one whose digits record no expiry, as damage, though the stamp last read has its JSON ($name)', ({ codec }) => {
    const first = codec.unstamp!(make(codec, 1_900_000_000))!;
    const expiring = Buffer.from(make(bytesCodec, 1_900_000_000));
    expiring.fill(0, 1, 8);
    expect(codec.stampOf!(expiring, first)).toBeUndefined();
    expect(codec.unstamp!(expiring)).toBeUndefined();
  });
});
