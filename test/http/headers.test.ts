import { ServerResponse, IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { configureCaches, caches } from '../../src/index.js';
import {
  addNeverCacheHeaders,
  DEFAULT_MAX_BODY_BYTES,
  appendVary,
  getCacheKey,
  getMaxAge,
  hasVaryHeader,
  learnCacheKey,
  maxAgeOf,
  mergeCacheControl,
  parseEtags,
  parseHttpDate,
  patchCacheControl,
  patchResponseHeaders,
  patchVaryHeaders,
  preconditionStatus,
  storageDecision,
  strongEtag,
  uncacheableReason,
  varyIncludes,
} from '../../src/http/index.js';
import { listen, send } from './client.js';
import { bare, cachePage, STACKS } from './stacks.js';

/** A real ServerResponse, not attached to a socket: the header API is all these tests use. */
function response(headers: Record<string, string> = {}): ServerResponse {
  const res = new ServerResponse(new IncomingMessage(new Socket()));
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  return res;
}

describe('mergeCacheControl(existing, directives)', () => {
  it.each([
    [undefined, { private: true }, 'private'],
    ['', { noCache: 'Set-Cookie' }, 'no-cache=Set-Cookie'],
    ['no-cache=Set-Cookie', { noCache: true }, 'no-cache'],
    ['no-cache=Set-Cookie,no-cache=Link', { noCache: 'Custom' }, 'no-cache=Set-Cookie, no-cache=Link, no-cache=Custom'],
    ['no-cache=Set-Cookie', { noCache: 'Link' }, 'no-cache=Set-Cookie, no-cache=Link'],
    ['must-revalidate,max-age=60,private', { public: true }, 'must-revalidate, max-age=60, public'],
    ['public', { private: true }, 'private'],
    ['max-age=100', { maxAge: 3600 }, 'max-age=100'],
    ['max-age=3600', { maxAge: 100 }, 'max-age=100'],
    ['Private, MAX-AGE=5', { sMaxage: 10 }, 'private, max-age=5, s-maxage=10'],
    ['no-store, max-age=10', { noStore: false, mustRevalidate: true }, 'max-age=10, must-revalidate'],
  ])("merges %j with %j into %j (Django's examples)", (existing, directives, expected) => {
    expect(mergeCacheControl(existing, directives)).toBe(expected);
  });

  it('sets the response header through patchCacheControl', () => {
    const res = response({ 'Cache-Control': 'max-age=60' });
    patchCacheControl(res, { public: true, maxAge: 30 });
    expect(res.getHeader('cache-control')).toBe('max-age=30, public');
  });
});

describe('getMaxAge(res)', () => {
  it('reads the last max-age, whatever the spacing or case', () => {
    expect(getMaxAge(response({ 'Cache-Control': 'no-cache,\tmax-age=600' }))).toBe(600);
    expect(maxAgeOf('MAX-AGE=5, max-age=7')).toBe(7);
  });
  it('answers null without a header or an integer', () => {
    expect(getMaxAge(response())).toBeNull();
    expect(maxAgeOf('max-age=abc')).toBeNull();
    expect(maxAgeOf('max-age')).toBeNull();
  });
});

describe('patchResponseHeaders(res, seconds)', () => {
  it('adds Expires when absent and the smaller max-age', () => {
    const res = response({ 'Cache-Control': 'max-age=30' });
    patchResponseHeaders(res, 600, 1_000_000_000);
    expect(res.getHeader('expires')).toBe('Sun, 09 Sep 2001 01:56:40 GMT');
    expect(res.getHeader('cache-control')).toBe('max-age=30');
  });
  it('keeps an existing Expires and counts a negative timeout as 0', () => {
    const res = response({ Expires: 'Mon, 01 Jan 2007 01:54:21 GMT' });
    patchResponseHeaders(res, -5);
    expect(res.getHeader('expires')).toBe('Mon, 01 Jan 2007 01:54:21 GMT');
    expect(res.getHeader('cache-control')).toBe('max-age=0');
  });
});

describe('addNeverCacheHeaders(res)', () => {
  it("gives Django's never-cache headers and an Expires of now", () => {
    vi.useFakeTimers({ now: Date.UTC(2026, 0, 2, 3, 4, 5), toFake: ['Date'] });
    try {
      const res = response();
      addNeverCacheHeaders(res);
      expect(res.getHeader('cache-control')).toBe('max-age=0, no-cache, no-store, must-revalidate, private');
      expect(res.getHeader('expires')).toBe('Fri, 02 Jan 2026 03:04:05 GMT');
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('patchVaryHeaders(res, names)', () => {
  it.each([
    [undefined, ['Accept-Encoding'], 'Accept-Encoding'],
    ['Accept-Encoding', ['accept-encoding'], 'Accept-Encoding'],
    ['Accept-Encoding', ['ACCEPT-ENCODING'], 'Accept-Encoding'],
    ['Cookie', ['Accept-Encoding'], 'Cookie, Accept-Encoding'],
    ['Cookie, Accept-Encoding', ['Accept-Encoding'], 'Cookie, Accept-Encoding'],
    ['Cookie, Accept-Encoding', ['Accept-Encoding', 'cookie'], 'Cookie, Accept-Encoding'],
    [undefined, ['Accept-Encoding', 'COOKIE'], 'Accept-Encoding, COOKIE'],
    ['Cookie    ,     Accept-Encoding', ['Accept-Encoding', 'cookie'], 'Cookie, Accept-Encoding'],
    ['Cookie,     Accept-Encoding', ['Accept-Encoding', 'cookie'], 'Cookie, Accept-Encoding'],
    ['*', ['Accept-Language', 'Cookie'], '*'],
    ['Accept-Language, Cookie', ['*'], '*'],
    ['Accept-Language, Cookie', ['*', 'Accept-Encoding'], '*'],
  ])("appends to %j the names %j giving %j (Django's examples)", (existing, names, expected) => {
    expect(appendVary(existing, names)).toBe(expected);
    const res = response(existing === undefined ? {} : { Vary: existing });
    patchVaryHeaders(res, names);
    expect(res.getHeader('vary')).toBe(expected);
  });
  it('refuses a name that is not a header name', () => {
    expect(() => appendVary('', ['Accept Encoding'])).toThrow(TypeError);
  });
});

describe('hasVaryHeader(res, name)', () => {
  it('matches case-insensitively with whitespace stripped', () => {
    const res = response({ Vary: ' Cookie , Authorization ' });
    expect(hasVaryHeader(res, 'cookie')).toBe(true);
    expect(hasVaryHeader(res, 'AUTHORIZATION')).toBe(true);
    expect(hasVaryHeader(res, 'Accept')).toBe(false);
    expect(varyIncludes('  *  ', '*')).toBe(true);
  });
});

describe('uncacheableReason(req, res)', () => {
  const req = (method: string) => Object.assign(new IncomingMessage(new Socket()), { method });
  it('gives one reason per rule, and null when the response may be stored', () => {
    expect(uncacheableReason(req('GET'), response())).toBeNull();
    expect(uncacheableReason(req('POST'), response())).toBe('method POST');
    const notFound = response();
    notFound.statusCode = 404;
    expect(uncacheableReason(req('GET'), notFound)).toBe('status 404');
    expect(uncacheableReason(req('GET'), response({ 'Set-Cookie': 'a=b' }))).toBe('Set-Cookie');
    expect(uncacheableReason(req('GET'), response({ 'Cache-Control': 'max-age=5, Private="Set-Cookie"' }))).toBe('Cache-Control: private');
    expect(uncacheableReason(req('GET'), response({ 'Cache-Control': 'NO-STORE' }))).toBe('Cache-Control: no-store');
    expect(uncacheableReason(req('GET'), response({ 'Cache-Control': 'No-Cache' }))).toBe('Cache-Control: no-cache');
    expect(uncacheableReason(req('GET'), response({ Vary: 'Cookie,  *  ' }))).toBe('Vary: *');
    expect(uncacheableReason(req('GET'), response({ 'Cache-Control': 'max-age=0' }))).toBe('max-age=0');
    expect(uncacheableReason(req('GET'), response({ 'Cache-Control': 'max-age=0' }), { pageTimeout: 60 })).toBeNull();
    expect(uncacheableReason(req('GET'), response(), { pageTimeout: 0 })).toBe('timeout 0');
    expect(uncacheableReason(req('GET'), response({ 'Content-Length': '101' }), { maxBodyBytes: 100 })).toBe('body over 100 bytes');
    const notModified = response();
    notModified.statusCode = 304;
    expect(uncacheableReason(req('GET'), notModified)).toBe('status 304');
  });

  it("refuses a body over the page cache's own default maxBodyBytes when the rules name none", () => {
    const oneMiB = 1024 * 1024;
    expect(DEFAULT_MAX_BODY_BYTES).toBe(oneMiB);
    expect(uncacheableReason(req('GET'), response({ 'Content-Length': String(oneMiB + 1) }))).toBe(`body over ${oneMiB} bytes`);
    expect(uncacheableReason(req('GET'), response({ 'Content-Length': String(oneMiB) }))).toBeNull();
  });

  it('lets a 304 through with the timeout its headers get, as Django patches 200 and 304', () => {
    const notModified = response({ 'Cache-Control': 'max-age=30' });
    notModified.statusCode = 304;
    expect(storageDecision(req('GET'), notModified, { pageTimeout: 60 })).toEqual({ store: false, reason: 'status 304', patchTimeout: 60 });
    expect(storageDecision(req('GET'), notModified)).toEqual({ store: false, reason: 'status 304', patchTimeout: 30 });
    const privateOne = response({ 'Cache-Control': 'private' });
    privateOne.statusCode = 304;
    expect(storageDecision(req('GET'), privateOne)).toEqual({ store: false, reason: 'Cache-Control: private' });
  });
});

describe('parseHttpDate(text)', () => {
  const jan2007 = Date.UTC(2007, 0, 1, 1, 54, 21) / 1000;
  it.each([
    ['IMF-fixdate', 'Mon, 01 Jan 2007 01:54:21 GMT'],
    ['RFC 850', 'Monday, 01-Jan-07 01:54:21 GMT'],
    ['asctime', 'Mon Jan  1 01:54:21 2007'],
  ])('reads the %s form', (_form, text) => {
    expect(parseHttpDate(text)).toBe(jan2007);
  });
  it('reads an RFC 850 year more than 50 years ahead as the past century (RFC 9110 §5.6.7)', () => {
    const in2026 = Date.UTC(2026, 5, 1) / 1000;
    expect(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', in2026)).toBe(Date.UTC(1994, 10, 6, 8, 49, 37) / 1000);
    expect(parseHttpDate('Sunday, 06-Nov-76 08:49:37 GMT', in2026)).toBe(Date.UTC(2076, 10, 6, 8, 49, 37) / 1000);
    expect(parseHttpDate('Sunday, 06-Nov-77 08:49:37 GMT', in2026)).toBe(Date.UTC(1977, 10, 6, 8, 49, 37) / 1000);
  });
  it.each([
    ['a bare number', '0'],
    ['ISO 8601', '2007-01-01T01:54:21Z'],
    ['a date without a zone', 'Mon, 01 Jan 2007 01:54:21'],
    ['a numeric zone', 'Mon, 01 Jan 2007 01:54:21 +0000'],
    ['a day that does not exist', 'Sat, 31 Feb 2007 01:54:21 GMT'],
    ['an hour out of range', 'Mon, 01 Jan 2007 24:00:00 GMT'],
  ])('refuses %s', (_what, text) => {
    expect(parseHttpDate(text)).toBeUndefined();
  });
});

/**
 * Preconditions as Django's `parse_http_date` and `parse_etags` read them, against a page with the
 * ETag `"v1"` (or `abc`, unquoted) and the Last-Modified `Tue, 05 Mar 2024 09:00:00 GMT`.
 */
const DJANGO_LAST_MODIFIED = 'Tue, 05 Mar 2024 09:00:00 GMT';
const DJANGO_CASES: ReadonlyArray<readonly [string, Record<string, string>, { etag: string; lastModified: string }, 200 | 304]> = [
  ['an ISO 8601 If-Modified-Since is ignored', { 'if-modified-since': '2030-01-01T00:00:00Z' }, { etag: '"v1"', lastModified: DJANGO_LAST_MODIFIED }, 200],
  [
    'an If-Modified-Since without a zone is ignored',
    { 'if-modified-since': 'Wed, 06 Mar 2024 09:00:00' },
    { etag: '"v1"', lastModified: DJANGO_LAST_MODIFIED },
    200,
  ],
  [
    'an If-Modified-Since in UTC is ignored',
    { 'if-modified-since': 'Wed, 06 Mar 2024 09:00:00 UTC' },
    { etag: '"v1"', lastModified: DJANGO_LAST_MODIFIED },
    200,
  ],
  [
    'an If-Modified-Since at +0000 is ignored',
    { 'if-modified-since': 'Wed, 06 Mar 2024 09:00:00 +0000' },
    { etag: '"v1"', lastModified: DJANGO_LAST_MODIFIED },
    200,
  ],
  [
    'an If-Modified-Since in any letter case counts',
    { 'if-modified-since': 'WED, 06 mar 2024 09:00:00 GMT' },
    { etag: '"v1"', lastModified: DJANGO_LAST_MODIFIED },
    304,
  ],
  [
    'an If-Modified-Since with any three-letter weekday counts',
    { 'if-modified-since': 'Xyz, 06 Mar 2024 09:00:00 GMT' },
    { etag: '"v1"', lastModified: DJANGO_LAST_MODIFIED },
    304,
  ],
  [
    'an RFC 850 If-Modified-Since in capitals counts',
    { 'if-modified-since': 'WEDNESDAY, 06-MAR-24 09:00:00 GMT' },
    { etag: '"v1"', lastModified: DJANGO_LAST_MODIFIED },
    304,
  ],
  [
    'an asctime If-Modified-Since in lower case counts',
    { 'if-modified-since': 'wed mar  6 09:00:00 2024' },
    { etag: '"v1"', lastModified: DJANGO_LAST_MODIFIED },
    304,
  ],
  [
    'an earlier If-Modified-Since in any letter case counts',
    { 'if-modified-since': 'mon, 04 MAR 2024 09:00:00 GMT' },
    { etag: '"v1"', lastModified: DJANGO_LAST_MODIFIED },
    200,
  ],
  ['an unquoted If-None-Match never matches, even an unquoted ETag', { 'if-none-match': 'abc' }, { etag: 'abc', lastModified: DJANGO_LAST_MODIFIED }, 200],
  ['a quoted If-None-Match matches', { 'if-none-match': '"v1"' }, { etag: '"v1"', lastModified: DJANGO_LAST_MODIFIED }, 304],
];

describe('conditional requests', () => {
  const etag = strongEtag(Buffer.from('hello'));
  const lastModified = 'Mon, 01 Jan 2007 01:54:21 GMT';
  it('hashes the body with md5 into a strong ETag', () => {
    expect(etag).toBe('"5d41402abc4b2a76b9719d911017c592"');
  });
  it('keeps only well-formed tags', () => {
    expect(parseEtags('"a", W/"b", spam')).toEqual(['"a"', 'W/"b"']);
    expect(parseEtags(' * ')).toEqual(['*']);
  });
  it.each([
    ['If-Match passes', { 'if-match': etag }, 200],
    ['If-Match fails', { 'if-match': '"other"' }, 412],
    ['If-Match *', { 'if-match': '*' }, 200],
    ['If-Match over a weak tag', { 'if-match': `W/${etag}` }, 412],
    ['If-Unmodified-Since earlier', { 'if-unmodified-since': 'Mon, 01 Jan 2007 00:00:00 GMT' }, 412],
    ['If-Unmodified-Since later', { 'if-unmodified-since': 'Tue, 02 Jan 2007 00:00:00 GMT' }, 200],
    ['If-Match wins over If-Unmodified-Since', { 'if-match': etag, 'if-unmodified-since': 'Mon, 01 Jan 2007 00:00:00 GMT' }, 200],
    ['If-None-Match matching', { 'if-none-match': etag }, 304],
    ['If-None-Match weak match', { 'if-none-match': `W/${etag}` }, 304],
    ['If-None-Match other', { 'if-none-match': '"other"' }, 200],
    ['If-None-Match wins over If-Modified-Since', { 'if-none-match': '"other"', 'if-modified-since': 'Tue, 02 Jan 2007 00:00:00 GMT' }, 200],
    ['If-Modified-Since later', { 'if-modified-since': 'Tue, 02 Jan 2007 00:00:00 GMT' }, 304],
    ['If-Modified-Since earlier', { 'if-modified-since': 'Mon, 01 Jan 2007 00:00:00 GMT' }, 200],
    ['If-Match fails before If-None-Match', { 'if-match': '"other"', 'if-none-match': etag }, 412],
  ] as const)('%s on GET', (_name, headers, expected) => {
    expect(preconditionStatus('GET', headers, { etag, lastModified })).toBe(expected);
  });
  it.each(DJANGO_CASES)('%s (as Django reads it)', (_name, headers, validators, expected) => {
    expect(preconditionStatus('GET', headers, validators)).toBe(expected);
  });
  it.each([
    ['If-Unmodified-Since: 0 is no date, so it is ignored', { 'if-unmodified-since': '0' }, 200],
    ['an ISO If-Modified-Since is ignored', { 'if-modified-since': '2030-01-01T00:00:00Z' }, 200],
    ['an If-Modified-Since without a zone is ignored', { 'if-modified-since': 'Tue, 02 Jan 2007 00:00:00' }, 200],
    ['an RFC 850 If-Modified-Since counts', { 'if-modified-since': 'Tuesday, 02-Jan-07 00:00:00 GMT' }, 304],
    ['an asctime If-Unmodified-Since counts', { 'if-unmodified-since': 'Mon Jan  1 00:00:00 2007' }, 412],
    ['a tab after a comma is whitespace', { 'if-none-match': `"x",\t${etag}` }, 304],
    ['a request no-cache does not stop a 304', { 'if-none-match': etag, 'cache-control': 'no-cache' }, 304],
    ['a malformed If-Match is ignored, as in Django', { 'if-match': 'spam' }, 200],
  ] as const)('%s', (_name, headers, expected) => {
    expect(preconditionStatus('GET', headers, { etag, lastModified })).toBe(expected);
  });
  it('never matches an unquoted tag, as in Django', () => {
    expect(preconditionStatus('GET', { 'if-none-match': 'abc' }, { etag: 'abc' })).toBe(200);
    expect(preconditionStatus('GET', { 'if-none-match': '*' }, { etag: '"abc"' })).toBe(304);
    expect(preconditionStatus('GET', { 'if-none-match': '*' }, {})).toBe(200);
  });
  it('answers 412 to a matching If-None-Match on other methods', () => {
    expect(preconditionStatus('PUT', { 'if-none-match': etag }, { etag })).toBe(412);
    expect(preconditionStatus('PUT', { 'if-none-match': '"x"' }, { etag })).toBe(200);
  });
});

describe('getCacheKey(req) and learnCacheKey(req, res)', () => {
  let app: Awaited<ReturnType<typeof listen>>;
  beforeAll(async () => {
    await configureCaches({ default: { backend: 'locmem', location: 'http-keys' } });
    app = await listen(async (req, res) => {
      const before = await getCacheKey(req, { keyPrefix: 'settingsprefix' });
      res.setHeader('Vary', req.url!.includes('vary') ? 'Accept-Language' : '');
      const learned = await learnCacheKey(req, res, { keyPrefix: 'settingsprefix' });
      const after = await getCacheKey(req, { keyPrefix: 'settingsprefix' });
      res.end(JSON.stringify({ before, learned, after }));
    });
  });
  afterAll(() => app.close());

  it.each([
    ['www.example.com', '/cache/test/', '18a03f9c9649f7d684af5db3524f5c99'],
    ['www.example.com', '/cache/test/?test=1', 'beaf87a9a99ee81c673ea2d67ccbec2a'],
    ['testserver', '/cache/test/', '58a0a05c8a5620f813686ff969c26853'],
    ['testserver', '/cache/test/?test=1', '0f1c2d56633c943073c4569d9a9502fe'],
  ])("gives Django's worked key for http://%s%s", async (host, path, urlHash) => {
    const reply = JSON.parse((await send(app.url, path, { headers: { Host: host } })).text);
    const expected = `views.decorators.cache.cache_page.settingsprefix.GET.${urlHash}.d41d8cd98f00b204e9800998ecf8427e`;
    expect(reply.learned).toBe(expected);
    expect(reply.after).toBe(expected);
    expect(await caches.get('default').get(`views.decorators.cache.cache_header.settingsprefix.${urlHash}`)).toMatchObject({ headers: [] });
  });

  it('answers null before anything is learned', async () => {
    const reply = JSON.parse((await send(app.url, '/never-seen')).text);
    expect(reply.before).toBeNull();
  });

  it('tells an absent varied header from an empty one', async () => {
    const absent = JSON.parse((await send(app.url, '/vary')).text).learned;
    const empty = JSON.parse((await send(app.url, '/vary', { headers: { 'Accept-Language': '' } })).text).learned;
    const french = JSON.parse((await send(app.url, '/vary', { headers: { 'Accept-Language': 'fr' } })).text).learned;
    expect(new Set([absent, empty, french]).size).toBe(3);
  });
});

describe.each(STACKS)('conditional requests through the page cache on %s', (stack, build) => {
  let app: Awaited<ReturnType<typeof listen>>;
  beforeAll(async () => {
    await configureCaches({ default: { backend: 'locmem', location: 'http-conditional' } });
    // Each case is its own page, so each is looked up once as a MISS and once as a HIT.
    app = await listen(
      build([cachePage(60)], (req, res) => {
        const validators = DJANGO_CASES[Number(new URL(req.url!, 'http://x').searchParams.get('case'))]![2];
        res.setHeader('ETag', validators.etag);
        res.setHeader('Last-Modified', validators.lastModified);
        // Express's res.send answers 304 by its own reading of the preconditions, unless the page cache decides.
        const send = (res as ServerResponse & { send?: (body: string) => void }).send;
        if (send !== undefined) send.call(res, 'the page');
        else res.end('the page');
      }),
    );
  });
  afterAll(() => app.close());

  it.each(DJANGO_CASES.map((each, i) => [each[0], i, each[1], each[3]] as const))('%s, on a MISS and on a HIT', async (_name, i, headers, expected) => {
    // On a miss the view's response goes out: Express's res.send answers preconditions; the other
    // frameworks leave them to a middleware of their own (as node:http leaves them to the view).
    const miss = await send(app.url, `/miss?case=${i}`, { headers });
    const missStatus = stack.startsWith('Express') ? expected : 200;
    // A 304 is not stored (as in Django), so it is marked BYPASS.
    expect([miss.headers['x-cache'], miss.status]).toEqual([missStatus === 304 ? 'BYPASS' : 'MISS', missStatus]);
    expect((await send(app.url, `/hit?case=${i}`)).headers['x-cache']).toBe('MISS');
    const hit = await send(app.url, `/hit?case=${i}`, { headers });
    expect([hit.headers['x-cache'], hit.status]).toEqual(['HIT', expected]);
  });
});
