/**
 * The page cache's rules as named policies a site extends (Drupal's request and response policies):
 * a request policy of the site's keeps a request from the cache (not answered from it, not stored),
 * a response policy keeps a response out, each with its reason under `debug`; the built-in lists
 * are the page cache's own rules, in order. On every stack, over real HTTP.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { REQUEST_POLICIES, RESPONSE_POLICIES, type RequestPolicy, type ResponsePolicy } from '../../src/http/index.js';
import { caches, configureCaches } from '../../src/index.js';
import { cacheMiddleware as expressCacheMiddleware } from '../../src/frameworks/express.js';
import { listen, send, storedHit } from './client.js';
import { cacheMiddleware, STACKS } from './stacks.js';

/** Visitors with a session get pages of their own: the page cache stands aside for them. */
const NO_SESSIONS: RequestPolicy = {
  name: 'no session',
  check: (req) => (/(^|;\s*)session=/.test(req.headers.cookie ?? '') ? 'a session cookie' : undefined),
};

/** A view that marks a response as one visitor's in a header of the site's own. */
const NOT_PERSONAL: ResponsePolicy = {
  name: 'not personal',
  check: ({ res }) => (res.getHeader('x-personal') === 'yes' ? 'X-Personal' : undefined),
};

let location = 0;
beforeEach(async () => {
  await configureCaches({ default: { backend: 'locmem', location: `policies-${++location}` } });
});
afterAll(() => caches.closeAll());

describe.each(STACKS)('policies on %s', (_stack, build) => {
  it("a site's request policy keeps a request from the cache: neither answered from it nor stored, BYPASS with its reason", async () => {
    let renders = 0;
    const view = (_req: IncomingMessage, res: ServerResponse) => res.end(`render ${++renders}`);
    const server = await listen(build([cacheMiddleware({ debug: true, policies: { request: [NO_SESSIONS] } })], view));
    try {
      expect((await send(server.url, '/p')).headers['x-cache']).toBe('MISS');
      const stored = await storedHit(server.url, '/p');
      expect(stored.text).toBe('render 1');
      const withSession = await send(server.url, '/p', { headers: { Cookie: 'theme=dark; session=abc' } });
      expect([withSession.headers['x-cache'], withSession.headers['x-cache-reason'], withSession.text]).toEqual(['BYPASS', 'a session cookie', 'render 2']);
      // Its render was not stored: the page of the visitors without a session is the first one still.
      expect((await send(server.url, '/p')).text).toBe('render 1');
    } finally {
      await server.close();
    }
  });

  it("a site's response policy keeps a response out, BYPASS with its reason; the others are stored", async () => {
    const view = (req: IncomingMessage, res: ServerResponse) => {
      if (req.url === '/mine') res.setHeader('X-Personal', 'yes');
      res.end(`page ${req.url}`);
    };
    const server = await listen(build([cacheMiddleware({ debug: true, policies: { response: [NOT_PERSONAL] } })], view));
    try {
      const mine = await send(server.url, '/mine');
      expect([mine.headers['x-cache'], mine.headers['x-cache-reason']]).toEqual(['BYPASS', 'X-Personal']);
      expect((await send(server.url, '/mine')).headers['x-cache']).toBe('BYPASS');
      await send(server.url, '/ours');
      expect((await storedHit(server.url, '/ours')).text).toBe('page /ours');
    } finally {
      await server.close();
    }
  });
});

describe('the built-in policies', () => {
  it("are the page cache's rules, in the order they are asked", () => {
    expect(REQUEST_POLICIES.map((policy) => policy.name)).toEqual(['a safe method']);
    expect(RESPONSE_POLICIES.map((policy) => policy.name)).toEqual([
      'a safe method',
      'status 200 or 304',
      'no Set-Cookie',
      'no Cache-Control that refuses',
      'no Vary: *',
      'a max-age',
      'not a 304',
      'a lifetime',
      'no stale part',
      'cacheable parts',
      'a body within maxBodyBytes',
    ]);
  });

  it('refuse a policy that is not one, naming the option', () => {
    expect(() => expressCacheMiddleware({ policies: { request: [{ name: 'no check' } as never] } })).toThrow(
      'cacheMiddleware: options.policies.request must be a list of policies, each { name, check } (got [{"name":"no check"}])',
    );
    expect(() => expressCacheMiddleware({ policies: { responses: [] } as never })).toThrow(
      "cacheMiddleware: unknown option 'options.policies.responses' (did you mean 'options.policies.response'?)",
    );
  });
});
