/**
 * Requests handled in process from inside another request's async context: Fastify's `inject()`
 * called by a route while its page renders, and a request made by a handler once its own response
 * has gone (warming the next page into the cache). The async context carries the earlier request's
 * scope into them; each is still a request of its own, as it would be over the network: its holes
 * filled for it, its fragments' tags on its own page. And code a request left running once its
 * response went out runs in no scope, however many other requests are open.
 */
import Fastify from 'fastify';
import nunjucks from 'nunjucks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { installCacheTag, renderString } from '../../src/engines/nunjucks.js';
import * as fastifyCache from '../../src/frameworks/fastify.js';
import { defineHole } from '../../src/frameworks/express.js';
import { forgetHole } from '../../src/http/index.js';
import { caches, configureCaches, invalidateTags } from '../../src/index.js';

const env = installCacheTag(new nunjucks.Environment(null, { autoescape: true }));
const INNER = '<p>{{ n }}</p>{% cache 600 "inner-box" tags="box" %}<b>box {{ n }}</b>{% endcache %}<nav>{% hole "greeting" %}</nav>';
const OUTER = '<h1>{{ n }}</h1>{% cache 600 "outer-box" tags="frame" %}<i>frame {{ n }}</i>{% endcache %}';

let location = 0;
const apps: Array<ReturnType<typeof Fastify>> = [];

beforeEach(async () => {
  await configureCaches({ default: { backend: 'locmem', location: `sub-requests-${++location}` } });
  defineHole('greeting', () => 'hi ann');
});
afterEach(async () => {
  forgetHole('greeting');
  await Promise.all(apps.splice(0).map((app) => app.close()));
  await caches.closeAll();
});

/** A Fastify app behind the page cache: `/inner` with a tagged fragment and a hole, `/outer` with a fragment of its own around `/inner` injected. */
async function site(): Promise<{ app: ReturnType<typeof Fastify>; renders: { inner: number; outer: number } }> {
  const app = Fastify();
  apps.push(app);
  await app.register(fastifyCache.cachegrain, { seconds: 60 });
  const renders = { inner: 0, outer: 0 };
  app.get('/inner', async (_request, reply) => reply.type('text/html').send(await renderString(env, INNER, { n: ++renders.inner })));
  app.get('/outer', async (_request, reply) => {
    const frame = await renderString(env, OUTER, { n: ++renders.outer });
    const inner = await app.inject({ method: 'GET', url: '/inner' });
    return reply.type('text/html').send(`${frame}<main>${inner.body}</main>`);
  });
  return { app, renders };
}

describe('a page injected while another page renders', () => {
  it("gets its holes filled in its own response, and is stored under its own fragments' tags", async () => {
    const { app, renders } = await site();
    const outer = await app.inject({ method: 'GET', url: '/outer' });
    expect([outer.statusCode, outer.headers['x-cache']]).toEqual([200, 'MISS']);
    expect(outer.body).toBe('<h1>1</h1><i>frame 1</i><main><p>1</p><b>box 1</b><nav>hi ann</nav></main>');

    const innerHit = await app.inject({ method: 'GET', url: '/inner' });
    expect([innerHit.headers['x-cache'], innerHit.body]).toEqual(['HIT', '<p>1</p><b>box 1</b><nav>hi ann</nav>']);

    // The inner page carries its fragment's tag: invalidated, it is rendered again. The outer page's
    // own fragment is not the inner page's, so its tag leaves the inner page alone.
    await invalidateTags(['frame']);
    expect((await app.inject({ method: 'GET', url: '/inner' })).headers['x-cache']).toBe('HIT');
    await invalidateTags(['box']);
    const innerAgain = await app.inject({ method: 'GET', url: '/inner' });
    expect([innerAgain.headers['x-cache'], innerAgain.body]).toEqual(['MISS', '<p>2</p><b>box 2</b><nav>hi ann</nav>']);
    expect(renders).toEqual({ inner: 2, outer: 1 });
  });
});

describe('a request handed to the app from the context of one that ended', () => {
  it('is answered in a scope of its own: its holes are filled, and its page stored', async () => {
    const app = Fastify();
    apps.push(app);
    await app.register(fastifyCache.cachegrain, { seconds: 60 });
    const warmed: Array<Promise<{ status: number; cache: unknown; body: string }>> = [];
    // Each page, once answered, has the next one rendered into the cache: the next request is made
    // from a callback of this one, after it ended.
    app.get('/warm/:n', async (request, reply) => {
      const n = Number((request.params as { n: string }).n);
      reply.raw.once('finish', () => {
        if (n < 3)
          setImmediate(() =>
            warmed.push(
              app.inject({ method: 'GET', url: `/warm/${n + 1}` }).then((r) => ({ status: r.statusCode, cache: r.headers['x-cache'], body: r.body })),
            ),
          );
      });
      return reply.type('text/html').send(await renderString(env, INNER, { n }));
    });
    const first = await app.inject({ method: 'GET', url: '/warm/1' });
    expect(first.body).toBe('<p>1</p><b>box 1</b><nav>hi ann</nav>');
    await expect.poll(() => warmed.length).toBe(2);
    expect(await Promise.all(warmed)).toEqual([
      { status: 200, cache: 'MISS', body: '<p>2</p><b>box 1</b><nav>hi ann</nav>' },
      { status: 200, cache: 'MISS', body: '<p>3</p><b>box 1</b><nav>hi ann</nav>' },
    ]);
    const hit = await app.inject({ method: 'GET', url: '/warm/3' });
    expect([hit.headers['x-cache'], hit.body]).toEqual(['HIT', '<p>3</p><b>box 1</b><nav>hi ann</nav>']);
  });
});

describe('code a request left running after its response closed', () => {
  it('runs in no request scope, whatever other requests are open: a hole it renders is outside any request', async () => {
    const app = Fastify();
    apps.push(app);
    await app.register(fastifyCache.cachegrain, { seconds: 60 });
    const later: Array<Promise<string>> = [];
    let release!: () => void;
    let arrived!: () => void;
    const slowArrived = new Promise<void>((resolve) => (arrived = resolve));
    app.get('/slow', async (_request, reply) => {
      arrived();
      await new Promise<void>((resolve) => (release = resolve));
      return reply.type('text/html').send('<p>slow</p>');
    });
    // Answers, then renders a hole once its response has closed, as a background job it started would.
    app.get('/kick', async (_request, reply) => {
      reply.raw.once('close', () =>
        later.push(new Promise((resolve) => setImmediate(resolve)).then(() => renderString(env, '<nav>{% hole "greeting" %}</nav>', {}))),
      );
      return reply.type('text/html').send('<p>kick</p>');
    });

    const slow = app.inject({ method: 'GET', url: '/slow' });
    await slowArrived;
    await app.inject({ method: 'GET', url: '/kick?while=slow' });
    await expect.poll(() => later.length).toBe(1);
    // Rendered while the slow request is still open.
    await Promise.allSettled(later);
    release();
    expect((await slow).body).toBe('<p>slow</p>');
    await app.inject({ method: 'GET', url: '/kick?alone' });
    await expect.poll(() => later.length).toBe(2);
    const outcomes = await Promise.allSettled(later);
    expect(outcomes.map((outcome) => (outcome.status === 'rejected' ? (outcome.reason as Error).message : outcome.value))).toEqual([
      expect.stringContaining("hole 'greeting' is filled for the request being answered, and this render is outside any request"),
      expect.stringContaining("hole 'greeting' is filled for the request being answered, and this render is outside any request"),
    ]);
  });
});
