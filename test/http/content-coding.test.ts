/**
 * Content codings (RFC 9110 §12.5.3): the coding a request's Accept-Encoding accepts best among
 * those a page is stored in, which responses may be compressed at all, and each coding's ETag.
 */
import { describe, expect, it } from 'vitest';
import { codedEtag, negotiatedCoding, uncompressibleReason } from '../../src/headers/content-coding.js';

describe('negotiatedCoding(acceptEncoding, stored)', () => {
  it.each([
    ['gzip, deflate, br, zstd', 'br'],
    ['gzip, deflate, br', 'br'],
    ['gzip', 'gzip'],
    ['x-gzip', 'gzip'],
    ['GZIP', 'gzip'],
    ['deflate', 'identity'],
    ['br;q=0.5, gzip', 'gzip'],
    ['gzip;q=0.5, br;q=0.9', 'br'],
    ['gzip;q=0.8, identity', 'identity'],
    ['identity;q=0, gzip', 'gzip'],
    ['identity', 'identity'],
    ['*', 'br'],
    ['br;q=0, *', 'gzip'],
    ['*;q=0.5, gzip', 'gzip'],
    ['*;q=0, identity', 'identity'],
    ['br;q=0, gzip;q=0', 'identity'],
    // Nothing acceptable but codings it does not have: the page goes out as it is (RFC 9110 leaves it to the server).
    ['*;q=0', 'identity'],
    ['identity;q=0, deflate', 'identity'],
    // A q-value that is none (above 1, more than three decimals, text) refuses the coding.
    ['br;q=2, gzip', 'gzip'],
    ['br;q=0.0001, gzip;q=0.5', 'gzip'],
    ['br;q=high, gzip', 'gzip'],
    ['br ; q=0.9 , gzip ; q=1.0', 'gzip'],
    ['', 'identity'],
    [undefined, 'identity'],
  ])('answers %j with %s when the page is stored in br and gzip', (accepted, coding) => {
    expect(negotiatedCoding(accepted, ['br', 'gzip'])).toBe(coding);
  });

  it('chooses among the codings the page is stored in', () => {
    expect(negotiatedCoding('gzip, deflate, br, zstd', ['gzip'])).toBe('gzip');
    expect(negotiatedCoding('br', ['gzip'])).toBe('identity');
    expect(negotiatedCoding('gzip, br', [])).toBe('identity');
  });
});

describe('uncompressibleReason(header)', () => {
  const headers = (given: Record<string, string>) => (name: string) => given[name];

  it('lets text be compressed: HTML, CSS, JSON, XML, JavaScript, SVG and the +json and +xml types', () => {
    for (const type of [
      'text/html; charset=utf-8',
      'text/css',
      'application/json',
      'application/javascript',
      'application/xml',
      'image/svg+xml',
      'application/ld+json',
      'application/atom+xml',
    ])
      expect(uncompressibleReason(headers({ 'content-type': type })), type).toBeUndefined();
  });

  it('says why a response goes out as it is', () => {
    expect(uncompressibleReason(headers({ 'content-type': 'image/png' }))).toBe('Content-Type: image/png');
    expect(uncompressibleReason(headers({}))).toBe('Content-Type: (none)');
    expect(uncompressibleReason(headers({ 'content-type': 'text/html', 'content-encoding': 'gzip' }))).toBe('Content-Encoding: gzip');
    expect(uncompressibleReason(headers({ 'content-type': 'text/html', 'content-encoding': 'identity' }))).toBeUndefined();
    expect(uncompressibleReason(headers({ 'content-type': 'text/html', 'cache-control': 'max-age=60, No-Transform' }))).toBe('Cache-Control: no-transform');
  });
});

describe('codedEtag(etag, coding)', () => {
  it("puts the coding's name in the tag, weak or strong", () => {
    expect(codedEtag('"abc"', 'br')).toBe('"abc-br"');
    expect(codedEtag('W/"abc"', 'gzip')).toBe('W/"abc-gzip"');
  });
});
