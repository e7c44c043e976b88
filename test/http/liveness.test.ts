/**
 * Liveness: whatever the view does and however the page-cache layers are stacked, every
 * request is answered, and a render that ends badly releases everyone waiting on it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Middleware, pageStats, resetPageStats } from '../../src/frameworks/express.js';
import { cacheControl, cacheMiddleware, cachePage, conditionalGet, fetchFromCacheMiddleware, STACKS, updateCacheMiddleware } from './stacks.js';
import { md5 } from '../../src/keys/hash.js';
import { httpDate } from '../../src/headers/headers.js';
import { caches, configureCaches } from '../../src/index.js';
import { type Reply, requestsArrived, send } from './client.js';
import { serveWatched } from './hung-requests.js';
import type { Build, View } from './layers.js';

let location = 0;
let server: Awaited<ReturnType<typeof serveWatched>> | undefined;

/**
 * The running test's own record of what it waits for: a body that outlives its test (one that timed
 * out runs on until its connections are closed) touches its own test's record, never the next one's.
 */
interface Running {
  /** The requests sent through `answered` and not answered yet. */
  unanswered: Set<{ request: string }>;
  /** Ends the body, failing, while it runs: see `failsOnHang`. */
  failBody?: (error: Error) => void;
  /** Whether the body failed naming the requests its server will never answer. */
  hangReported: boolean;
}
let running: Running = { unanswered: new Set(), hangReported: false };

beforeEach(async () => {
  location++;
  running = { unanswered: new Set(), hangReported: false };
  await configureCaches({
    default: { backend: 'locmem', location: `liveness-${location}` },
    other: { backend: 'locmem', location: `liveness-other-${location}` },
  });
});
afterEach(async () => {
  const hung = [...running.unanswered].map(({ request }) => request);
  // A hung request holds its connection open: closing the server would wait for it.
  if (hung.length > 0) server?.server.closeAllConnections();
  await server?.close();
  server = undefined;
  if (hung.length > 0 && !running.hangReported) throw new Error(`never answered: ${hung.join(', ')}`);
});

/**
 * Serves the app `build` makes, watched for requests nothing will answer (see hung-requests.ts): the
 * running test's body fails naming them as soon as there are any. A hang the watch cannot tell (a
 * view that never ends its response) holds the test until its timeout, and the afterEach names it.
 */
async function serve(build: Build, middleware: Middleware[], view: View, route?: Middleware[]) {
  const test = running;
  const served = await serveWatched(build, middleware, view, route);
  void served.hung.then((requests) => test.failBody?.(new Error(`never answered: ${requests.join(', ')}`)));
  return served;
}

/** A test's body, ended by its server's hung requests, if any, whatever it awaits then. */
function failsOnHang<A extends unknown[]>(body: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args) => {
    const test = running;
    const hang = new Promise<never>((_resolve, reject) => {
      test.failBody = (error) => {
        test.hangReported = true;
        reject(error);
      };
    });
    try {
      await Promise.race([body(...args), hang]);
    } finally {
      // A hang found after the body ended is the afterEach's to report.
      test.failBody = undefined;
    }
  };
}

/** A request that must be answered: one left unanswered when the test ends fails it, named. */
async function answered(base: string, path: string, options: Parameters<typeof send>[2] = {}): Promise<Reply> {
  const { unanswered } = running;
  const request = { request: `${options.method ?? 'GET'} ${path}` };
  unanswered.add(request);
  try {
    return await send(base, path, options);
  } finally {
    unanswered.delete(request);
  }
}

function countingView(): View & { calls: number } {
  const view = Object.assign(
    (req: IncomingMessage, res: ServerResponse) => {
      view.calls++;
      res.setHeader('Content-Type', 'text/plain');
      res.end(`${req.url} run ${view.calls}`);
    },
    { calls: 0 },
  );
  return view;
}

describe.each(STACKS)("the README's example on %s", (_name, build) => {
  it(
    'answers a route under cachePage behind the site-wide cacheMiddleware, then hits, counted once each',
    failsOnHang(async () => {
      resetPageStats();
      const view = countingView();
      server = await serve(build, [cacheMiddleware({ seconds: 600 })], view, [cachePage(60), cacheControl({ public: true })]);
      const first = await answered(server.url, '/news');
      const second = await answered(server.url, '/news');
      expect(first.text).toBe('/news run 1');
      expect(first.headers['x-cache']).toBe('MISS');
      expect(second.text).toBe('/news run 1');
      expect(second.headers['x-cache']).toBe('HIT');
      expect(view.calls).toBe(1);
      // One route, by whatever name the stack gives its pattern.
      expect([...pageStats().values()]).toEqual([{ hits: 1, misses: 1, staleHits: 0 }]);
    }),
  );
});

/** The ways to stack a site layer in front of a route layer, as [site middleware, route middleware]. */
const site = {
  cacheMiddleware: (options: object) => [cacheMiddleware(options)],
  split: (options: object) => [updateCacheMiddleware(options), fetchFromCacheMiddleware(options)],
};
const route = {
  cachePage: (options: object) => [cachePage(60, options)],
  split: (options: object) => [updateCacheMiddleware(options), fetchFromCacheMiddleware(options)],
  cacheMiddleware: (options: object) => [cacheMiddleware(options)],
};
const placements = [
  ['the same cache and prefix', {}, {}],
  ['the same cache, another prefix', {}, { keyPrefix: 'route' }],
  ['another cache, the same prefix', {}, { cache: 'other' }],
  ['another cache and prefix', { keyPrefix: 'site' }, { cache: 'other', keyPrefix: 'route' }],
] as const;

describe.each(STACKS)('page-cache layers compose on %s', (_name, build) => {
  for (const [siteName, siteLayer] of Object.entries(site)) {
    for (const [routeName, routeLayer] of Object.entries(route)) {
      it.each(placements)(
        `${siteName} on the site and ${routeName} on a route, with %s`,
        failsOnHang(async (_placement, siteOptions, routeOptions) => {
          const view = countingView();
          server = await serve(build, siteLayer(siteOptions), view, routeLayer(routeOptions));
          const replies = await Promise.all([answered(server.url, '/page'), answered(server.url, '/page')]);
          expect(replies.map((reply) => reply.text)).toEqual(['/page run 1', '/page run 1']);
          const later = await answered(server.url, '/page');
          expect(later.text).toBe('/page run 1');
          expect(later.headers['x-cache']).toBe('HIT');
          expect(view.calls).toBe(1);
        }),
      );
    }
  }
});

describe.each(STACKS)('a render that ends without a response, on %s', (_name, build) => {
  it(
    'releases its waiters, who render for themselves, and leaves the URL working',
    failsOnHang(async () => {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let calls = 0;
      let leaderRendering!: () => void;
      const inView = new Promise<void>((resolve) => (leaderRendering = resolve));
      server = await serve(build, [cacheMiddleware()], (req, res) => {
        const run = ++calls;
        if (run === 1) {
          // The first render fails midway: a stream error after the head and part of the body.
          res.writeHead(200, { 'Content-Type': 'text/plain' });
          res.write('partial');
          leaderRendering();
          void gate.then(() => res.destroy());
        } else {
          res.end(`run ${run}`);
        }
      });
      const base = server.url;
      const leader = answered(base, '/broken').then(
        () => 'answered',
        (error: Error) => error.message,
      );
      await inView;
      const arrived = requestsArrived(server.server, 3);
      const waiters = [answered(base, '/broken'), answered(base, '/broken'), answered(base, '/broken')];
      // The waiters reached the site while the leader is held in its view.
      await arrived;
      expect(calls).toBe(1);
      release();
      expect(await leader).toMatch(/socket hang up|aborted|ECONNRESET/);
      const texts = (await Promise.all(waiters)).map((reply) => reply.text);
      expect(texts.every((text) => /^run [234]$/.test(text))).toBe(true);
      const later = await answered(base, '/broken');
      expect(later.headers['x-cache']).toBe('HIT');
    }),
  );

  it(
    'does not wedge the URL when the client goes away mid-render',
    failsOnHang(async () => {
      let calls = 0;
      server = await serve(build, [cacheMiddleware()], (req, res) => {
        calls++;
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.write('start ');
        // The first client hangs up before the end: the render never finishes.
        if (calls === 1) req.socket.destroy();
        else res.end('end');
      });
      await answered(server.url, '/page').catch(() => undefined);
      const reply = await answered(server.url, '/page');
      expect(reply.text).toBe('start end');
      expect(calls).toBe(2);
    }),
  );

  it(
    'lets waiters render themselves when the first response may not be stored',
    failsOnHang(async () => {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let calls = 0;
      server = await serve(build, [cacheMiddleware()], (req, res) => {
        const run = ++calls;
        res.setHeader('Cache-Control', 'private');
        void gate.then(() => res.end(`run ${run}`));
      });
      const arrived = requestsArrived(server.server, 3);
      const replies = [answered(server.url, '/private'), answered(server.url, '/private'), answered(server.url, '/private')];
      await arrived;
      release();
      expect(new Set((await Promise.all(replies)).map((reply) => reply.text)).size).toBe(3);
    }),
  );
});

describe.each(STACKS)('HEAD on %s', (_name, build) => {
  it(
    'is answered from the GET entry and never stored under a key of its own',
    failsOnHang(async () => {
      const view = countingView();
      server = await serve(build, [cacheMiddleware()], view);
      const heads = [await answered(server.url, '/page', { method: 'HEAD' }), await answered(server.url, '/page', { method: 'HEAD' })];
      expect(heads.map((reply) => reply.headers['x-cache'])).toEqual(['MISS', 'MISS']);
      expect(view.calls).toBe(2);
      expect((await answered(server.url, '/page')).headers['x-cache']).toBe('MISS');
      const head = await answered(server.url, '/page', { method: 'HEAD' });
      expect(head.headers['x-cache']).toBe('HIT');
      expect(head.body.length).toBe(0);
      expect(view.calls).toBe(3);
      const headKey = `views.decorators.cache.cache_page..HEAD.${md5(`${server!.url}/page`)}.d41d8cd98f00b204e9800998ecf8427e`;
      expect(await caches.get('default').hasKey(headKey)).toBe(false);
    }),
  );
});

describe.each(STACKS)('a 304 through the page cache on %s', (_name, build) => {
  it(
    'gets Expires and max-age as Django patches 200 and 304, and is not stored',
    failsOnHang(async () => {
      let calls = 0;
      const view = (_req: IncomingMessage, res: ServerResponse) => {
        calls++;
        res.setHeader('ETag', '"v1"');
        res.end('body');
      };
      const clock = Math.floor(Date.now() / 1000);
      caches.get('default').now = () => clock;
      server = await serve(build, [], view, [cachePage(60), conditionalGet()]);
      const notModified = await answered(server.url, '/page', { headers: { 'If-None-Match': '"v1"' } });
      expect(notModified.status).toBe(304);
      expect(notModified.headers['cache-control']).toBe('max-age=60');
      expect(notModified.headers['expires']).toBe(httpDate(clock + 60));
      const full = await answered(server.url, '/page');
      expect(full.headers['x-cache']).toBe('MISS');
      expect(calls).toBe(2);
    }),
  );
});
