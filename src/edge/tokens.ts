/**
 * How a tag travels to a shared cache in front of the application: as one token of a tag header,
 * and as the same token in a purge. The surprise: a page with more tags than an edge accepts in
 * its headers still has to be purged by every one of them, so a long list goes out in short forms,
 * and past that under one overflow token that every purge names too.
 */
import { createHash } from 'node:crypto';

/** Visible ASCII but `%` and `,`; a token is made of these. */
const NOT_IN_A_TOKEN = /[^\x21-\x24\x26-\x2b\x2d-\x7e]/;
const NOT_IN_A_TOKEN_RUN = new RegExp(NOT_IN_A_TOKEN.source + '+', 'g');

/** A token longer than this has a short form (see `shortToken`). */
export const SHORT_TOKEN_LENGTH = 16;

/**
 * The token a page too tagged to list even its short forms carries instead: every purge names it,
 * so such a page is purged by any invalidation, and never outlives one of its tags.
 */
export const OVERFLOW_TOKEN = 'cachegrain:overflow';

/**
 * A tag as one token: a byte that would split a tag or cannot stand in a header (a space, a comma,
 * a control character, anything outside ASCII) is percent-encoded as UTF-8, and so is `%`, so that
 * two tags never look alike: `two words` → `two%20words`.
 */
export function edgeToken(tag: string): string {
  return NOT_IN_A_TOKEN.test(tag) ? tag.replace(NOT_IN_A_TOKEN_RUN, percentEncoded) : tag;
}

/** A token of at most `SHORT_TOKEN_LENGTH` characters: itself, or `~` and a digest of it. */
export function shortToken(token: string): string {
  if (token.length <= SHORT_TOKEN_LENGTH) return token;
  return `~${createHash('sha256')
    .update(token)
    .digest('base64url')
    .slice(0, SHORT_TOKEN_LENGTH - 1)}`;
}

/** What a purge of `tags` names: each tag's token, its short form where it has one, and the overflow token. */
export function purgeTokens(tags: Iterable<string>): string[] {
  const tokens = new Set<string>();
  for (const tag of tags) {
    const token = edgeToken(tag);
    tokens.add(token);
    tokens.add(shortToken(token));
  }
  tokens.add(OVERFLOW_TOKEN);
  return [...tokens];
}

/** Every UTF-8 byte of `text` as `%XX` (a lone surrogate as U+FFFD's, where encodeURIComponent would throw). */
function percentEncoded(text: string): string {
  return Array.from(Buffer.from(text, 'utf8'), (byte) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`).join('');
}
