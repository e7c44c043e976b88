/**
 * A URL's variants, remembered by the request's values of what its pages vary on: each lookup finds
 * the variant and page key the request's values make, as hashing them afresh would, whatever values
 * repeat, change, are absent or too long to remember, and whatever list the URL's pages vary on.
 */
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { type LearnedHeaders, pageKeyFor, variantHash } from '../../src/pages/page-keys.js';
import { UrlVariants } from '../../src/pages/url-keys.js';

const request = (headers: Record<string, string | string[]>) => ({ headers, url: '/themed', method: 'GET', socket: {} }) as unknown as IncomingMessage;

function expectMadeAfresh(variants: UrlVariants, req: IncomingMessage, learned: LearnedHeaders): void {
  const hash = variantHash(req, learned);
  expect(variants.of(req, learned)).toEqual({ hash, pageKey: pageKeyFor('shop', 'GET', 'url-hash', hash) });
}

describe('UrlVariants', () => {
  it('finds, for each request, the variant its values make, as they repeat and change', () => {
    const variants = new UrlVariants('shop', 'url-hash');
    const learned: LearnedHeaders = { headers: ['accept-language'], contexts: ['cookie:theme'] };
    for (const cookie of ['theme=dark; session=1', 'theme=light', 'theme=dark; session=2', 'session=3', 'theme=; a=b', 'theme=dark'])
      for (const language of [undefined, '', 'fr', 'fr']) {
        const headers: Record<string, string> = { cookie };
        if (language !== undefined) headers['accept-language'] = language;
        expectMadeAfresh(variants, request(headers), learned);
      }
  });

  it('tells an absent value from an empty one, and a header sent twice as one joined', () => {
    const variants = new UrlVariants('shop', 'url-hash');
    const learned: LearnedHeaders = { headers: ['x-a', 'x-b'] };
    const absent = variants.of(request({ 'x-b': '' }), learned);
    const empty = variants.of(request({ 'x-a': '', 'x-b': '' }), learned);
    expect(absent.hash).not.toBe(empty.hash);
    expectMadeAfresh(variants, request({ 'x-a': ['1', '2'], 'x-b': 'z' }), learned);
    expect(variants.of(request({ 'x-a': '1, 2', 'x-b': 'z' }), learned)).toEqual(variants.of(request({ 'x-a': ['1', '2'], 'x-b': 'z' }), learned));
  });

  it('starts afresh when the URL varies on another list, and finds the same variants under the same list read anew', () => {
    const variants = new UrlVariants('shop', 'url-hash');
    const req = request({ cookie: 'theme=dark', 'accept-language': 'fr' });
    expectMadeAfresh(variants, req, { headers: ['accept-language'] });
    expectMadeAfresh(variants, req, { headers: [], contexts: ['cookie:theme'] });
    expectMadeAfresh(variants, req, { headers: ['accept-language'], contexts: ['cookie:theme'] });
    expectMadeAfresh(variants, req, { headers: ['accept-language'], contexts: ['cookie:theme'] });
    expectMadeAfresh(variants, req, { headers: ['cookie'] });
  });

  it('finds the right variant for long values (not remembered) and past the most it remembers', () => {
    const variants = new UrlVariants('shop', 'url-hash');
    const learned: LearnedHeaders = { headers: ['cookie'] };
    const long = `session=${'x'.repeat(400)}`;
    expectMadeAfresh(variants, request({ cookie: long }), learned);
    expectMadeAfresh(variants, request({ cookie: `${long}y` }), learned);
    for (let round = 0; round < 2; round++) for (let i = 0; i < 150; i++) expectMadeAfresh(variants, request({ cookie: `theme=${i}` }), learned);
  });
});
