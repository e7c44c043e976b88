/** The conformance kit: culling, for the backends that cull. */
import { describe, expect, it } from 'vitest';
import { integrationOf } from '../../../src/cache/integration.js';
import type { Kit } from './kit.js';

export function describeCulling(kit: Kit, expected: { 3: number; 0: number }): void {
  const { make } = kit;
  describe('culling with maxEntries 30', () => {
    for (const cullFrequency of [3, 0] as const) {
      it(`keeps ${expected[cullFrequency]} of 49 entries with cullFrequency ${cullFrequency}`, async () => {
        const small = await make({ options: { maxEntries: 30, cullFrequency }, keyPrefix: `cull${cullFrequency}` });
        for (let i = 1; i < 50; i++) await small.set(`cull${i}`, 'value', 1000);
        const found = await small.getMany(Array.from({ length: 49 }, (_, i) => `cull${i + 1}`));
        expect(found.size).toBe(expected[cullFrequency]);
      });
      it(`never culls a tag's version, with cullFrequency ${cullFrequency}: an entry computed before its tag's invalidation stays a miss through many culls; clear removes the version`, async () => {
        const small = await make({ options: { maxEntries: 10, cullFrequency }, keyPrefix: `tagcull${cullFrequency}` });
        const beforeInvalidation = await small.readTagSnapshot(['t']);
        await small.invalidateTags(['t']);
        const revived: number[] = [];
        for (let i = 0; i < 60; i++) {
          // Stored again each round (stamped as of before the invalidation), so that it is in the store whenever the version is culled.
          await small.setEach([{ key: 'old', value: 'old', options: { timeout: null, tags: ['t'] } }], beforeInvalidation);
          expect(await integrationOf(small).storedEntry('old')).toBeDefined();
          await small.set(`filler${i}`, i, null);
          if ((await small.get('old')) !== undefined) revived.push(i);
        }
        expect(revived).toEqual([]);
        expect(await integrationOf(small).storedEntry('cachegrain.tag.t', { version: 0 })).toBeDefined();
        await small.clear();
        expect(await integrationOf(small).storedEntry('cachegrain.tag.t', { version: 0 })).toBeUndefined();
      });
    }
  });
}
