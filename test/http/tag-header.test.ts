/**
 * The tag header over HTTP: each edge's format (`xkey` and `Surrogate-Key` space-separated,
 * `Cache-Tag` comma-separated), a long list split over lines each under the line length, past the
 * total length every token in its short form, past that the overflow token alone; the same lines on
 * a HIT; a bad format refused naming the option; a name no edge of the cache reads refused, where
 * the page cache is made or on the first request meeting the cache.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addCacheTags } from '../../src/frameworks/express.js';
import { edgeToken, OVERFLOW_TOKEN, shortToken } from '../../src/edge/tokens.js';
import type { TagHeaderOption } from '../../src/http/index.js';
import { caches, configureCaches } from '../../src/index.js';
import { headerLines, listen, type Reply, send, storedHit } from './client.js';
import { bare, cacheMiddleware, cachePage, express5, expressApp, fetchFromCacheMiddleware, updateCacheMiddleware } from './stacks.js';

const servers: Array<{ close(): Promise<void> }> = [];
let location = 0;

beforeEach(async () => {
  await configureCaches({ default: { backend: 'locmem', location: `tag-header-${++location}` } });
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
  await caches.closeAll();
});

/** A site whose page at any path carries `tags`, behind a page cache with `tagHeader`. */
async function siteTagged(tagHeader: TagHeaderOption, tags: readonly string[]): Promise<string> {
  const server = await listen(
    bare([cacheMiddleware({ seconds: 600, tagHeader })], (_req, res) => {
      addCacheTags(res, ...tags);
      res.end('tagged');
    }),
  );
  servers.push(server);
  return server.url;
}

/** `count` tags as a shop names them: items, categories, authors. */
function shopTags(count: number): string[] {
  const kinds = [(i: number) => `item:${10_000 + i}`, (i: number) => `category:shoes-and-boots-${i}`, (i: number) => `author:${i}`];
  return Array.from({ length: count }, (_, i) => kinds[i % kinds.length]!(i));
}

/** The tokens of every line of the reply's tag header, in order. */
function tokensOf(reply: Reply, name: string, separator: ' ' | ','): string[] {
  return headerLines(reply, name).flatMap((line) => line.split(separator));
}

/** The page's own tags with the `url:` tags every page carries. */
const withUrlTags = (tags: readonly string[], base: string, path: string) => [...tags, `url:${path}`, `url://${new URL(base).host}${path}`];

describe('the tag header', () => {
  it("lists every tag's token in xkey on lines of at most 4000 bytes, the same lines on a HIT", async () => {
    const tags = shopTags(300);
    const base = await siteTagged('xkey', tags);
    const miss = await send(base, '/p');
    expect([miss.status, miss.headers['x-cache']]).toEqual([200, 'MISS']);
    const lines = headerLines(miss, 'xkey');
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(4000);
    expect(tokensOf(miss, 'xkey', ' ')).toEqual(withUrlTags(tags, base, '/p').map(edgeToken));
    const hit = await storedHit(base, '/p');
    expect(headerLines(hit, 'xkey')).toEqual(lines);
  });

  it('splits a list over lines under a line length of its own, each token whole on one line', async () => {
    const tags = shopTags(60);
    const base = await siteTagged({ name: 'xkey', maxLineLength: 100 }, tags);
    const reply = await send(base, '/split');
    const lines = headerLines(reply, 'xkey');
    expect(lines.length).toBeGreaterThan(10);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(100);
    expect(tokensOf(reply, 'xkey', ' ')).toEqual(withUrlTags(tags, base, '/split'));
  });

  it('separates Cache-Tag with commas and Surrogate-Key with spaces, a comma or space in a tag encoded', async () => {
    const tags = ['a,b', 'two words', 'item:1'];
    const cacheTag = await send(await siteTagged('Cache-Tag', tags), '/c');
    expect(headerLines(cacheTag, 'cache-tag')).toHaveLength(1);
    expect(tokensOf(cacheTag, 'cache-tag', ',').slice(0, 3)).toEqual(['a%2Cb', 'two%20words', 'item:1']);
    const surrogateKey = await send(await siteTagged('Surrogate-Key', tags), '/s');
    expect(tokensOf(surrogateKey, 'surrogate-key', ' ').slice(0, 3)).toEqual(['a%2Cb', 'two%20words', 'item:1']);
    const ownName = await send(await siteTagged({ name: 'X-Tags', separator: ',' }, tags), '/o');
    expect(tokensOf(ownName, 'x-tags', ',').slice(0, 3)).toEqual(['a%2Cb', 'two%20words', 'item:1']);
  });

  it('sends Surrogate-Key on one line, as Fastly reads one, up to 16000 bytes', async () => {
    const tags = shopTags(600);
    const reply = await send(await siteTagged('Surrogate-Key', tags), '/one');
    const lines = headerLines(reply, 'surrogate-key');
    expect(lines).toHaveLength(1);
    expect(lines[0]!.length).toBeGreaterThan(4000);
    expect(lines[0]!.length).toBeLessThanOrEqual(16_000);
  });

  it("lists every tag's short form when the tokens pass the total length, and only then", async () => {
    const tags = shopTags(120);
    const fits = await send(await siteTagged({ name: 'xkey', maxLength: 4000 }, tags), '/fits');
    const all = tokensOf(fits, 'xkey', ' ');
    expect(all.slice(0, tags.length)).toEqual(tags);
    const total = headerLines(fits, 'xkey').join('').length;
    // A total just short of the full list's (a port's digit aside): every token goes in its short form.
    const base = await siteTagged({ name: 'xkey', maxLength: total - 20, maxLineLength: 500 }, tags);
    const short = await send(base, '/fits');
    expect(short.status).toBe(200);
    const lines = headerLines(short, 'xkey');
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(500);
    expect(lines.join('').length).toBeLessThan(total);
    expect(tokensOf(short, 'xkey', ' ')).toEqual(withUrlTags(tags, base, '/fits').map((tag) => shortToken(edgeToken(tag))));
    expect(tokensOf(short, 'xkey', ' ')).not.toContain(OVERFLOW_TOKEN);
  });

  it('sends the overflow token alone when even the short forms pass the total length, and the page all the same', async () => {
    const tags = shopTags(3000);
    const short = withUrlTags(tags, 'http://x', '/o').map((tag) => shortToken(edgeToken(tag)));
    const shortLength = short.join(' ').length;
    const base = await siteTagged({ name: 'xkey', maxLength: 1000 }, tags);
    expect(shortLength).toBeGreaterThan(1000);
    const reply = await send(base, '/o');
    expect([reply.status, reply.text]).toEqual([200, 'tagged']);
    expect(headerLines(reply, 'xkey')).toEqual([OVERFLOW_TOKEN]);
    expect(headerLines(await storedHit(base, '/o'), 'xkey')).toEqual([OVERFLOW_TOKEN]);
  });

  it('sends a tag too long for any line in its short form, the others as they are', async () => {
    const long = `search:${'shoes-'.repeat(1000)}`;
    const reply = await send(await siteTagged('xkey', ['item:1', long]), '/long');
    expect([reply.status, tokensOf(reply, 'xkey', ' ').slice(0, 2)]).toEqual([200, ['item:1', shortToken(long)]]);
  });

  it('refuses a bad format, naming the option', () => {
    expect(() => cachePage(60, { tagHeader: 'Cache Tag' })).toThrow(
      "cachePage: options.tagHeader must be a header name, false or { name, separator?, maxLineLength?, maxLength? } (got 'Cache Tag')",
    );
    expect(() => cacheMiddleware({ tagHeader: 3 as never })).toThrow('cacheMiddleware: options.tagHeader must be a header name, false or');
    expect(() => cacheMiddleware({ tagHeader: { name: 'xkey', separator: ';' as never } })).toThrow(
      "cacheMiddleware: options.tagHeader.separator must be ' ' or ',' (got ';')",
    );
    expect(() => cacheMiddleware({ tagHeader: { name: 'xkey', maxLenght: 9000 } as never })).toThrow(
      "cacheMiddleware: unknown option 'options.tagHeader.maxLenght' (did you mean 'options.tagHeader.maxLength'?)",
    );
    expect(() => cacheMiddleware({ tagHeader: { name: 'xkey', maxLineLength: 10 } })).toThrow(
      'cacheMiddleware: options.tagHeader.maxLineLength must be an integer of at least 32 (got 10)',
    );
    expect(() => cacheMiddleware({ tagHeader: { name: 'Cache Tag' } })).toThrow(
      "cacheMiddleware: options.tagHeader.name must be a header name (got 'Cache Tag')",
    );
    expect(() => cacheMiddleware({ tagHeader: { separator: ',' } as never })).toThrow(
      'cacheMiddleware: options.tagHeader.name must be a header name (got undefined)',
    );
  });
});

describe('the tag header by default', () => {
  it("is each header the cache's edges read: xkey for Varnish, Surrogate-Key for Fastly, Cache-Tag for Cloudflare; none for nginx or a hook", async () => {
    const url = 'http://127.0.0.1:9';
    await configureCaches({
      default: {
        backend: 'locmem',
        location: 'tag-header-edges',
        purge: [
          { edge: 'varnish', url, tags: 'xkey' },
          { edge: 'varnish', url, tags: 'ban' },
          { edge: 'fastly', serviceId: 'service', token: 'token', apiUrl: url },
          { edge: 'cloudflare', zoneId: 'zone', token: 'token', apiUrl: url },
          { edge: 'nginx', url },
          { edge: 'http', url },
        ],
      },
    });
    const base = await siteTagged(undefined as never, ['item:1', 'two words']);
    for (const reply of [await send(base, '/p'), await send(base, '/p')]) {
      const tokens = [...withUrlTags(['item:1', 'two words'], base, '/p')].map(edgeToken);
      expect(tokensOf(reply, 'xkey', ' ')).toEqual(tokens);
      expect(tokensOf(reply, 'surrogate-key', ' ')).toEqual(tokens);
      expect(tokensOf(reply, 'cache-tag', ',')).toEqual(tokens);
    }
  });

  it('is none for a cache without edges, and none with tagHeader: false whatever its edges', async () => {
    const base = await siteTagged(undefined as never, ['item:1']);
    const reply = await send(base, '/p');
    expect(['xkey', 'surrogate-key', 'cache-tag'].map((name) => reply.headers[name])).toEqual([undefined, undefined, undefined]);
    await configureCaches({
      default: { backend: 'locmem', location: 'tag-header-none', purge: [{ edge: 'varnish', url: 'http://127.0.0.1:9', tags: 'ban' }] },
    });
    const without = await send(await siteTagged(false, ['item:1']), '/p');
    expect(without.headers['xkey']).toBeUndefined();
  });
});

describe('a tag header no edge of the cache reads', () => {
  const url = 'http://127.0.0.1:9';
  const VARNISH = { edge: 'varnish', url, tags: 'xkey' } as const;
  const refusal = (cache: string, name: string, what = 'cacheMiddleware') =>
    `${what}: options.tagHeader names '${name}', a header no edge of cache '${cache}' reads (did you mean 'xkey'?); its edges read 'xkey' ` +
    `(a header of the site's own goes as { name: '${name}' })`;
  /** What `make` threw, as its kind and message. */
  const thrownBy = (make: () => unknown): [string, string] => {
    try {
      make();
    } catch (error) {
      return [(error as Error).name, (error as Error).message];
    }
    return ['nothing', 'nothing thrown'];
  };

  it('is refused where the page cache is made when its cache is known, with the closest name and the headers its edges read', async () => {
    await configureCaches({ default: { backend: 'locmem', location: 'tag-header-varnish', purge: [VARNISH] } });
    expect(thrownBy(() => cacheMiddleware({ tagHeader: 'xkye' }))).toEqual(['TypeError', refusal('default', 'xkye')]);
    expect(thrownBy(() => cachePage(60, { tagHeader: 'xkye' }))).toEqual(['TypeError', refusal('default', 'xkye', 'cachePage')]);
    // A header another edge reads is no header of these edges.
    expect(thrownBy(() => cacheMiddleware({ tagHeader: 'Cache-Tag' }))).toEqual([
      'TypeError',
      "cacheMiddleware: options.tagHeader names 'Cache-Tag', a header no edge of cache 'default' reads; its edges read 'xkey' (a header of the site's own goes as { name: 'Cache-Tag' })",
    ]);
    // A cache given as itself, under an alias of its own.
    await configureCaches({ default: { backend: 'locmem' }, pages: { backend: 'locmem', location: 'tag-header-pages', purge: [VARNISH] } });
    expect(thrownBy(() => cacheMiddleware({ cache: 'pages', tagHeader: 'xkye' }))).toEqual(['TypeError', refusal('pages', 'xkye')]);
    expect(thrownBy(() => cacheMiddleware({ cache: caches.get('pages'), tagHeader: 'xkye' }))).toEqual(['TypeError', refusal('pages', 'xkye')]);
  });

  it("takes each header the cache's edges read, in any case, and a site's own header as a format", async () => {
    await configureCaches({
      default: {
        backend: 'locmem',
        location: 'tag-header-read',
        purge: [
          VARNISH,
          { edge: 'fastly', serviceId: 'service', token: 'token', apiUrl: url },
          { edge: 'cloudflare', zoneId: 'zone', token: 'token', apiUrl: url },
        ],
      },
    });
    for (const [name, separator] of [
      ['xkey', ' '],
      ['Surrogate-Key', ' '],
      ['Cache-Tag', ','],
      ['XKey', ' '],
      ['cache-tag', ','],
    ] as const) {
      const base = await siteTagged(name, ['item:1']);
      expect(tokensOf(await send(base, '/p'), name, separator), name).toEqual(withUrlTags(['item:1'], base, '/p'));
    }
    const own = await siteTagged({ name: 'X-Site-Tags' }, ['item:1']);
    expect(tokensOf(await send(own, '/p'), 'X-Site-Tags', ' ')).toEqual(withUrlTags(['item:1'], own, '/p'));
    // Edges that read no tag header leave the name to the site.
    await configureCaches({
      default: {
        backend: 'locmem',
        location: 'tag-header-unread',
        purge: [
          { edge: 'nginx', url },
          { edge: 'http', url },
        ],
      },
    });
    const hook = await siteTagged('X-Site-Tags', ['item:1']);
    expect(tokensOf(await send(hook, '/p'), 'X-Site-Tags', ' ')).toEqual(withUrlTags(['item:1'], hook, '/p'));
  });

  it('fails every request, reported once, when the cache the page cache meets got its edges after it was made', async () => {
    // Made while its cache purged no edge: nothing to check the name against yet.
    const base = await siteTagged('xkye', ['item:1']);
    expect((await send(base, '/p')).headers['xkye']).toBe('item:1 url:/p url://' + new URL(base).host + '/p');
    await configureCaches({ default: { backend: 'locmem', location: 'tag-header-later', purge: [VARNISH] } });
    const reported: Error[] = [];
    caches.get('default').on('error', (error: Error) => reported.push(error));
    for (const path of ['/p', '/q']) {
      const reply = await send(base, path);
      expect([reply.status, reply.text], path).toEqual([500, `failed: ${refusal('default', 'xkye')}`]);
    }
    expect(reported.map((error) => error.message)).toEqual([
      `page cache: every request through cacheMiddleware answers an error: ${refusal('default', 'xkye')}`,
    ]);
  });

  it('fails the requests through the update half alone when it names a header no edge reads', async () => {
    const app = expressApp(express5)([updateCacheMiddleware({ seconds: 600, tagHeader: 'xkye' }), fetchFromCacheMiddleware({ seconds: 600 })], (_req, res) => {
      addCacheTags(res, 'item:1');
      res.end('tagged');
    });
    const server = await listen(app);
    servers.push(server);
    await configureCaches({ default: { backend: 'locmem', location: 'tag-header-split', purge: [VARNISH] } });
    const reported: Error[] = [];
    caches.get('default').on('error', (error: Error) => reported.push(error));
    const reply = await send(server.url, '/p');
    expect([reply.status, reply.text]).toEqual([500, `failed: ${refusal('default', 'xkye', 'updateCacheMiddleware')}`]);
    expect(reported).toHaveLength(1);
  });
});
