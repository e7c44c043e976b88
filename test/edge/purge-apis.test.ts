/**
 * Purges of Fastly, Cloudflare and a plain HTTP hook, each checked against its documented request by
 * a local server standing in for the API (the real APIs are out of the tests' reach).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { caches, configureCaches } from '../../src/index.js';
import { invalidatePage } from '../../src/http/index.js';
import { OVERFLOW_TOKEN, purgeTokens } from '../../src/edge/tokens.js';
import type { EdgePurgeConfig } from '../../src/edge/purge-options.js';
import { recordingEdge, type RecordingEdge } from './recording-edge.js';

let api: RecordingEdge;
beforeAll(async () => {
  api = await recordingEdge();
});
afterEach(() => {
  api.received.length = 0;
});
afterAll(async () => {
  await caches.closeAll();
  await api.close();
});

const SIX_HUNDRED_TAGS = Array.from({ length: 600 }, (_, i) => `item:${i}`);

async function cacheWith(edge: EdgePurgeConfig) {
  await configureCaches({ default: { backend: 'locmem', location: `purge-apis-${edge.edge}`, purge: [edge] } });
  return caches.get('default');
}

describe('Fastly', () => {
  const fastly = () => ({ edge: 'fastly' as const, serviceId: 'SU1Z0isxPaozGVKXdv0eY', token: 'fastly-token', apiUrl: api.url });

  it('purges 600 tags by surrogate key in batches of at most 256, with Fastly-Key', async () => {
    const cache = await cacheWith(fastly());
    await cache.invalidateTags(SIX_HUNDRED_TAGS);
    await cache.purgesSettled();
    const keys = api.received.map((request) => {
      expect(request.method).toBe('POST');
      expect(request.url).toBe('/service/SU1Z0isxPaozGVKXdv0eY/purge');
      expect(request.headers['fastly-key']).toBe('fastly-token');
      expect(request.headers['fastly-soft-purge']).toBeUndefined();
      return String(request.headers['surrogate-key']).split(' ');
    });
    expect(keys.map((batch) => batch.length)).toEqual([256, 256, 89]);
    expect(keys.flat()).toEqual([...SIX_HUNDRED_TAGS, OVERFLOW_TOKEN]);
    expect(cache.stats()).toMatchObject({ purgesSent: 3, purgesFailed: 0 });
  });

  it('soft-purges a soft invalidation, and purges everything on clear', async () => {
    const cache = await cacheWith(fastly());
    await cache.invalidateTags(['item:1'], { soft: true });
    await cache.clear();
    await cache.purgesSettled();
    expect(api.received.map(({ method, url, headers }) => [method, url, headers['fastly-soft-purge'], headers['surrogate-key']])).toEqual([
      ['POST', '/service/SU1Z0isxPaozGVKXdv0eY/purge', '1', `item:1 ${OVERFLOW_TOKEN}`],
      ['POST', '/service/SU1Z0isxPaozGVKXdv0eY/purge_all', undefined, undefined],
    ]);
    expect(api.received[1]!.headers['fastly-key']).toBe('fastly-token');
  });

  it('soft-purges every invalidation when the edge says soft', async () => {
    const cache = await cacheWith({ ...fastly(), soft: true });
    await cache.invalidateTags(['item:1']);
    await cache.purgesSettled();
    expect(api.received[0]!.headers['fastly-soft-purge']).toBe('1');
  });
});

describe('Cloudflare', () => {
  const cloudflare = (siteUrl?: string) => ({
    edge: 'cloudflare' as const,
    zoneId: '023e105f4ecef8ad9ca31a8372d0c353',
    token: 'cf-token',
    apiUrl: api.url,
    siteUrl,
  });

  it('purges 600 tags in requests of at most 100, with a bearer token and a JSON body', async () => {
    const cache = await cacheWith(cloudflare());
    await cache.invalidateTags(SIX_HUNDRED_TAGS);
    await cache.purgesSettled();
    const batches = api.received.map((request) => {
      expect(request.method).toBe('POST');
      expect(request.url).toBe('/client/v4/zones/023e105f4ecef8ad9ca31a8372d0c353/purge_cache');
      expect(request.headers.authorization).toBe('Bearer cf-token');
      expect(request.headers['content-type']).toBe('application/json');
      return (JSON.parse(request.body) as { tags: string[] }).tags;
    });
    expect(batches.map((batch) => batch.length)).toEqual([100, 100, 100, 100, 100, 100, 1]);
    expect(batches.flat()).toEqual([...SIX_HUNDRED_TAGS, OVERFLOW_TOKEN]);
  });

  it('purges an invalidated page by its tag and by its URL, and everything on clear', async () => {
    const cache = await cacheWith(cloudflare('https://shop.example'));
    // Each settled before the next: purges queued behind one in flight go as one (purge-coalescing.test.ts).
    await invalidatePage('/news');
    await cache.purgesSettled();
    await invalidatePage('https://other.example/sale?page=2');
    await cache.purgesSettled();
    await cache.clear();
    await cache.purgesSettled();
    expect(api.received.map((request) => JSON.parse(request.body))).toEqual([
      { tags: purgeTokens(['url:/news']) },
      { files: ['https://shop.example/news'] },
      { tags: purgeTokens(['url://other.example/sale']) },
      { files: ['https://other.example/sale', 'http://other.example/sale'] },
      { purge_everything: true },
    ]);
  });
});

describe('a plain HTTP hook', () => {
  it('receives the tags, the URLs and everything as JSON, with its headers', async () => {
    const cache = await cacheWith({ edge: 'http', url: `${api.url}/purge-hook`, headers: { 'X-Hook-Secret': 's3cret' } });
    await cache.invalidateTags(['item:1', 'two words'], { soft: true });
    await cache.purgesSettled();
    await invalidatePage('https://shop.example/news');
    await cache.purgesSettled();
    await cache.clear();
    await cache.purgesSettled();
    for (const request of api.received) {
      expect([request.method, request.url, request.headers['x-hook-secret'], request.headers['content-type']]).toEqual([
        'POST',
        '/purge-hook',
        's3cret',
        'application/json',
      ]);
    }
    expect(api.received.map((request) => JSON.parse(request.body))).toEqual([
      { tags: ['item:1', 'two%20words', OVERFLOW_TOKEN], soft: true },
      { tags: purgeTokens(['url://shop.example/news']), urls: ['//shop.example/news'] },
      { everything: true },
    ]);
  });

  it('gets 600 tags in two requests', async () => {
    const cache = await cacheWith({ edge: 'http', url: api.url });
    await cache.invalidateTags(SIX_HUNDRED_TAGS);
    await cache.purgesSettled();
    expect(api.received.map((request) => (JSON.parse(request.body) as { tags: string[] }).tags.length)).toEqual([500, 101]);
  });
});

describe('purge: checked where it is configured', () => {
  it.each([
    [
      { edge: 'fastlly', serviceId: 's', token: 't' },
      "cache 'default': purge[0].edge must be one of 'varnish', 'nginx', 'fastly', 'cloudflare', 'http' (did you mean 'fastly'?) (got 'fastlly')",
    ],
    [
      { edge: 'varnish', url: 'http://127.0.0.1:6081', tag: 'ban' },
      "cache 'default': purge[0] (varnish): unknown option 'tag' (did you mean 'tags'?); the options are 'edge', 'url', 'tags', 'soft', 'timeoutMs', 'tries'",
    ],
    [{ edge: 'varnish', url: 'http://127.0.0.1:6081' }, "cache 'default': purge[0] (varnish): option 'tags' is required"],
    [{ edge: 'varnish', url: 'http://127.0.0.1:6081', tags: 'xkeys' }, "cache 'default': purge[0] (varnish): tags must be 'ban' or 'xkey' (got 'xkeys')"],
    [{ edge: 'nginx', url: '127.0.0.1:8080' }, "cache 'default': purge[0] (nginx): url must be an http:// or https:// URL (got '127.0.0.1:8080')"],
    [
      { edge: 'nginx', url: 'http://127.0.0.1:8080', contexts: ['theme=dark', 'theme:light'] },
      "cache 'default': purge[0] (nginx): contexts[1] must be a context value as Cachegrain-Context spells it, such as 'theme=dark' or 'theme=dark; lang=en' (got 'theme:light')",
    ],
    [
      { edge: 'nginx', url: 'http://127.0.0.1:8080', contexts: ['theme=dark', 'theme=dark'] },
      "cache 'default': purge[0] (nginx): contexts[1] lists 'theme=dark' twice",
    ],
    [
      { edge: 'nginx', url: 'http://127.0.0.1:8080', contexts: 'theme=dark' },
      "cache 'default': purge[0] (nginx): contexts must be a list of context values such as ['theme=dark', 'theme=light'] (got 'theme=dark')",
    ],
    [
      { edge: 'nginx', url: 'http://127.0.0.1:8080', keepTaggedFor: -1 },
      "cache 'default': purge[0] (nginx): keepTaggedFor must be a non-negative integer (got -1)",
    ],
    [
      { edge: 'nginx', url: 'http://127.0.0.1:8080', keepTagged: 60 },
      "cache 'default': purge[0] (nginx): unknown option 'keepTagged' (did you mean 'keepTaggedFor'?)",
    ],
    [
      { edge: 'nginx', url: 'http://127.0.0.1:8080', hosts: ['https://shop.example'] },
      "cache 'default': purge[0] (nginx): hosts must be a list of host names such as ['shop.example'] (got [\"https://shop.example\"])",
    ],
    [{ edge: 'cloudflare', zoneId: 'z', token: '' }, "cache 'default': purge[0] (cloudflare): token must be a non-empty string (got '')"],
    [{ edge: 'http', url: 'http://127.0.0.1:1', tries: 0 }, "cache 'default': purge[0] (http): tries must be a positive integer (got 0)"],
  ])('refuses %j', async (edge, message) => {
    await expect(async () => configureCaches({ default: { backend: 'locmem', purge: [edge as EdgePurgeConfig] } })).rejects.toThrow(message);
  });

  it('refuses a purge that is not a list', async () => {
    await expect(async () => configureCaches({ default: { backend: 'locmem', purge: { edge: 'nginx' } as never } })).rejects.toThrow(
      "cache 'default': purge must be a list of edges",
    );
  });
});
