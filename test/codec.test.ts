import { describe, expect, it } from 'vitest';
import { bytesCodec, textOrBytesCodec } from '../src/index.js';

describe('stamps read again', () => {
  const stamped = (versions: string[]) => bytesCodec.stamp!(bytesCodec.encode('value'), { tags: ['a', 'b'], versions });

  it('the stamp the last read found is answered again while the stored stamp is the same', () => {
    for (const codec of [bytesCodec, textOrBytesCodec]) {
      const first = codec.unstamp!(stamped(['1', '2']))!;
      const again = codec.unstamp!(Buffer.from(stamped(['1', '2'])), first)!;
      expect(again.stamp).toBe(first.stamp);
      expect(codec.decode(again.payload)).toBe('value');
    }
  });

  it('a stamp of the same length with other versions is read anew', () => {
    const first = bytesCodec.unstamp!(stamped(['1', '2']))!;
    const changed = bytesCodec.unstamp!(stamped(['1', '3']), first)!;
    expect(changed.stamp).not.toBe(first.stamp);
    expect(changed.stamp.versions).toEqual(['1', '3']);
  });

  it('a remembered stamp cannot be changed by one of its readers', () => {
    const { stamp } = bytesCodec.unstamp!(stamped(['1', '2']))!;
    expect(Object.isFrozen(stamp) && Object.isFrozen(stamp.tags) && Object.isFrozen(stamp.versions)).toBe(true);
  });
});
