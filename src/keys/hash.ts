/**
 * md5 as hex, the digest Django's keys use (fragment keys, page keys, file names). One-shot
 * `crypto.hash` costs a fraction of a createHash/update/digest round.
 */
import { hash } from 'node:crypto';
import { BoundedMemo } from '../memos/bounded-memo.js';

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
