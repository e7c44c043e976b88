/**
 * Sealing a body's bytes, as the page cache does on the way into a store, is sealing its text:
 * the same bytes come out, and a placeholder is found in them only where a live one was sealed.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { holdsHoles, holePlanOf, livePlaceholder, sealedBody, sealHoleBytes, sealHoles } from '../src/holes/index.js';

const live = livePlaceholder('cart', ['ann']);
const TEXTS: Record<string, string> = {
  'no placeholder': '<p>Crème brûlée, 3 €</p>',
  'a live placeholder': `<header>${live}</header><main>Ünïcödé ✓</main>`,
  'two live placeholders and multi-byte text between them': `${live}日本語${livePlaceholder('greeting', [])}🎉`,
  'a sealed placeholder that came with data': '<p>\u0002cgh:%5B%22cart%22%5D\u0003</p>',
  "another process's live placeholder": '<p>\u0002cgh0123456789ab:%5B%22cart%22%5D\u0003</p>',
  'a live one beside a forged one': `\u0002cgh:x\u0003${live}`,
  'the start of a placeholder at the very end': `<p>${live}</p>\u0002cg\u0002cgh`,
  'a live placeholder cut short at the end': `<p>${live.slice(0, 9)}`,
};

/**
 * The memory outside the heap (buffers' bytes) that `work` left held after two young collections:
 * a young collection keeps a WeakMap's entry whose value leads back to its key, so a memo whose
 * value held its body would move every body it saw to the old generation, freed only by a full one.
 */
async function externalKeptPastYoungCollections(work: () => void): Promise<number> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as (options?: { type: 'minor' | 'major' }) => void;
  const turn = () => new Promise((resolve) => setImmediate(resolve));
  gc();
  await turn();
  const before = process.memoryUsage().external;
  work();
  await turn();
  gc({ type: 'minor' });
  await turn();
  gc({ type: 'minor' });
  await turn();
  return process.memoryUsage().external - before;
}

describe('sealing the bytes of a body', () => {
  it.each(Object.entries(TEXTS))('gives the bytes of its sealed text, with holes where a live placeholder was sealed: %s', (_case, text) => {
    const sealed = sealHoleBytes(Buffer.from(text));
    const sealedText = sealHoles(text);
    expect(sealed.body.equals(Buffer.from(sealedText))).toBe(true);
    expect(sealed.holes).toBe(holdsHoles(sealedText, 'sealed'));
    expect(sealed.holes).toBe(text.includes(live.slice(0, live.indexOf(':') + 1)));
  });

  it('answers the same buffer when nothing in it starts like a placeholder', () => {
    const body = Buffer.from(TEXTS['no placeholder']!);
    expect(sealHoleBytes(body).body).toBe(body);
  });
});

describe("the memo of each view's body sealed", () => {
  it('lets a body nothing else holds go in a young collection, with or without holes', async () => {
    const kept = await externalKeptPastYoungCollections(() => {
      for (let i = 0; i < 100; i++) {
        expect(sealedBody(Buffer.alloc(64 * 1024, '<p>product</p>')).holes).toBe(false);
        expect(sealedBody(Buffer.from(`<p>${live}</p>`.padEnd(64 * 1024, ' '))).holes).toBe(true);
      }
    });
    // 200 bodies of 64 KB and their sealed copies were made: 12.8 MB and more, had they been kept.
    expect(kept).toBeLessThan(2_000_000);
  });
});

describe('the plan of a sealed body', () => {
  it("is one plan for every hit of the body, and a miss's own where no hit made one", () => {
    const sealed = sealedBody(Buffer.from(`<header>${live}</header><main>products</main>`)).body;
    const missed = holePlanOf(sealed, { remember: false });
    expect(missed?.calls).toEqual([{ name: 'cart', args: ['ann'] }]);
    const hit = holePlanOf(sealed);
    expect(hit).not.toBe(missed);
    expect(holePlanOf(sealed)).toBe(hit);
    expect(holePlanOf(sealed, { remember: false })).toBe(hit);
  });

  it("gives the filled page an ETag of its shell's and its holes' bytes, each hole framed by its length", () => {
    const plan = holePlanOf(sealedBody(Buffer.from(`<p>${live}|${livePlaceholder('greeting', [])}</p>`)).body)!;
    const etagOf = (shell: string, ...holes: string[]) =>
      plan.filledEtag(
        shell,
        holes.map((hole) => Buffer.from(hole)),
      );
    const ann = etagOf('"shell"', 'ann', 'hi');
    expect(ann).toMatch(/^"[0-9a-f]{16}"$/);
    expect(etagOf('"shell"', 'ann', 'hi')).toBe(ann);
    // The same bytes cut elsewhere between the holes, another shell, another visitor: each another ETag.
    const others = [etagOf('"shell"', 'an', 'nhi'), etagOf('"shell"', 'annhi', ''), etagOf('"other"', 'ann', 'hi'), etagOf('"shell"', 'bob', 'hi')];
    expect(new Set([ann, ...others]).size).toBe(5);
    expect(etagOf('W/"shell"', 'ann', 'hi')).toMatch(/^W\/"[0-9a-f]{16}"$/);
  });

  // A plan holds views of its body, and a miss's body is mostly never read again (a long tail of URLs, a BYPASS page).
  it("lets a miss's body go in a young collection", async () => {
    const kept = await externalKeptPastYoungCollections(() => {
      for (let i = 0; i < 200; i++) {
        const sealed = sealedBody(Buffer.from(`<p>${live}</p>`.padEnd(64 * 1024, ' '))).body;
        expect(holePlanOf(sealed, { remember: false })?.calls).toHaveLength(1);
      }
    });
    // 200 sealed bodies of 64 KB were planned: 12.8 MB, had they been kept.
    expect(kept).toBeLessThan(2_000_000);
  });
});
