import { describe, expect, it } from 'vitest';
import { cutAtPlaceholders, placeholder, takeUncacheableMarks, uncacheableMark } from '../../src/fragments/placeholders.js';

const items = ['zero', 'one', 'two'];
/** What a placeholder's number stands between (its process's nonce may hold any digit, so not split at one). */
const marker = { open: placeholder(7).slice(0, -2), close: placeholder(7).slice(-1) };

/** The text with each slot filled by its item, as a pass assembles it. */
function filled(text: string): string | undefined {
  const cut = cutAtPlaceholders(text, items);
  if (cut === undefined) return undefined;
  for (const [index, item] of cut.slots) cut.pieces[index] = `[${item}]`;
  return cut.pieces.join('');
}

describe('cutAtPlaceholders', () => {
  it('answers undefined for a text without placeholders', () => {
    expect(cutAtPlaceholders('<p>plain</p>', items)).toBeUndefined();
  });

  it('cuts at each placeholder, in order, with the text around them kept', () => {
    expect(filled(`a${placeholder(2)}b${placeholder(0)}${placeholder(1)}c`)).toBe('a[two]b[zero][one]c');
  });

  it('keeps as text a marker whose number names no item, or that holds no number', () => {
    const { open, close } = marker;
    expect(filled(`a${placeholder(7)}b${placeholder(1)}`)).toBe(`a${placeholder(7)}b[one]`);
    expect(filled(`${open}x${close}${placeholder(0)}`)).toBe(`${open}x${close}[zero]`);
    expect(filled(`${open}${close}${placeholder(0)}`)).toBe(`${open}${close}[zero]`);
    expect(filled(`${open}1x${close}${placeholder(0)}`)).toBe(`${open}1x${close}[zero]`);
    expect(filled(`${open}${'1'.repeat(12)}${close}${placeholder(0)}`)).toBe(`${open}${'1'.repeat(12)}${close}[zero]`);
  });

  it('reads a number with leading zeros as that number, and a marker never closed as text', () => {
    const { open, close } = marker;
    expect(filled(`${open}002${close}`)).toBe('[two]');
    expect(filled(`${placeholder(1)}${open}2`)).toBe(`[one]${open}2`);
  });
});

describe('takeUncacheableMarks', () => {
  it('takes every mark out and tells the record why, once each', () => {
    const reasons: string[] = [];
    const text = `a${uncacheableMark('the cart')}b${uncacheableMark('the clock')}c`;
    expect(takeUncacheableMarks(text, () => ({ markUncacheable: (why: string) => reasons.push(why) }))).toBe('abc');
    expect(reasons).toEqual(['the cart', 'the clock']);
  });
});
