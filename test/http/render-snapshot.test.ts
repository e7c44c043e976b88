/**
 * The tag snapshot taken when a render begins, over real HTTP on Express: a view reads its data,
 * an invalidation of the data's tag completes while the view is still rendering, and the view then
 * tags what it sends (`addCacheTags`, or a Nunjucks fragment with `tags=` that bubbles into the page).
 * What that render made is never served as fresh afterwards: not the page, not the fragment. On
 * locmem and Redis (with an L1 in front too), the invalidation made in this process or, on Redis, in a
 * second process whose clock is 30 s away from this one's.
 */
import express, { type Response } from 'express';
import nunjucks from 'nunjucks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { addCacheTags, cacheMiddleware } from '../../src/frameworks/express.js';
import { installCacheTag, renderString } from '../../src/engines/nunjucks.js';
import { type CacheConfig, caches, configureCaches, invalidateTags } from '../../src/index.js';
import { CachePeer } from '../backends/fixtures/peer.js';
import { integrationOf } from '../../src/cache/integration.js';
import { listen, send } from './client.js';

function required(name: string, debianPackage: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: the vitest global setup starts it (Debian package ${debianPackage})`);
  return value;
}

const keyPrefix = `render-snapshot-${process.pid}`;
const REDIS: CacheConfig = { backend: 'redis', location: required('CACHEGRAIN_TEST_REDIS_URL', 'redis-server'), keyPrefix };

/** Where the invalidation is made: this process, or a second one sharing the store (its clock 30 s ahead). */
type Invalidator = { config: CacheConfig; open(): Promise<(tags: string[]) => Promise<void>>; close(): Promise<void> };

function inThisProcess(config: CacheConfig): Invalidator {
  return { config, open: async () => (tags) => invalidateTags(tags), close: async () => undefined };
}

function inAnotherProcess(config: CacheConfig): Invalidator {
  let peer: CachePeer | undefined;
  return {
    config,
    async open() {
      peer = new CachePeer(config);
      await peer.ready;
      await peer.ask('shift', { seconds: 30 });
      return (tags) => peer!.ask('invalidateTags', { tags });
    },
    close: async () => peer?.close(),
  };
}

const CASES: Array<[string, string, Invalidator]> = [
  ['locmem', 'this process', inThisProcess({ backend: 'locmem', location: 'render-snapshot' })],
  ['redis', 'this process', inThisProcess(REDIS)],
  ['redis', 'another process', inAnotherProcess(REDIS)],
  // Each process with an in-process copy in front: neither answers from memory what keeps the render out.
  ['redis with an L1', 'another process', inAnotherProcess({ ...REDIS, keyPrefix: `${keyPrefix}-l1`, options: { l1: {} } })],
];

const env = installCacheTag(new nunjucks.Environment(null, { autoescape: true }));
const FRAGMENT = `{% cache 300 'product' 1 tags='p:1' %}<b>{{ name }}</b>{% endcache %}`;

describe.each(CASES)('a render that an invalidation overtook, on %s, invalidated from %s', (_backend, _where, invalidator) => {
  let invalidate: (tags: string[]) => Promise<void>;
  let server: Awaited<ReturnType<typeof listen>> | undefined;
  /** The data the views read: the test edits it before invalidating its tag, as an application would. */
  let product = 'before';
  let test = 0;

  beforeAll(async () => {
    await configureCaches({ default: invalidator.config });
    invalidate = await invalidator.open();
  }, 30_000);
  afterAll(async () => {
    await invalidator.close();
    await caches.get('default').clear();
    await caches.closeAll();
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  /** A view: it renders from `name`, read as its request began, and calls `pause` where it waits (the test edits and invalidates meanwhile). */
  type View = (res: Response, name: string, pause: () => Promise<void>) => Promise<void>;

  /**
   * Serves `view` behind the page cache; its first request renders with the data as it was, and the
   * edit and the invalidation complete while it waits. Answers where the page is.
   */
  async function renderOvertaken(view: View): Promise<{ base: string; path: string }> {
    product = 'before';
    let paused!: () => void;
    let go!: () => void;
    const pausing = new Promise<void>((resolve) => (paused = resolve));
    const released = new Promise<void>((resolve) => (go = resolve));
    let held = true;
    const pause = async () => {
      if (!held) return;
      held = false;
      paused();
      await released;
    };
    const app = express();
    app.use(cacheMiddleware({ seconds: 300 }));
    app.get(/.*/, (_req, res) => view(res, product, pause));
    server = await listen(app as never);
    const base = server.url;
    const path = `/product-${++test}`;
    const stored = pageStored(path);
    const first = send(base, path);
    await pausing;
    product = 'after';
    await invalidate(['p:1']);
    go();
    expect((await first).text).toContain('before');
    await stored;
    return { base, path };
  }

  /** Requests the page; a miss is answered once the page cache has settled its store of the page (so nothing is left in flight). */
  async function sendAgain(base: string, path: string) {
    const stored = pageStored(path);
    const reply = await send(base, path);
    if (reply.headers['x-cache'] === 'MISS') await stored;
    return reply;
  }

  /** Settles once the page cache's store of the page at `path` has settled (stored or left out). */
  function pageStored(path: string): Promise<unknown> {
    const integration = integrationOf(caches.get('default'));
    const setHeld = integration.setHeld;
    return new Promise((resolve) => {
      integration.setHeld = (key, value, options) => {
        const storing = setHeld(key, value, options);
        const tags = typeof options === 'object' ? (options?.tags ?? []) : [];
        if (tags.includes(`url:${path}`)) {
          integration.setHeld = setHeld;
          void storing.finally(() => resolve(undefined));
        }
        return storing;
      };
    });
  }

  it('a page tagged late in its render (addCacheTags after the data was read) is not served as fresh', async () => {
    const { base, path } = await renderOvertaken(async (res, name, pause) => {
      await pause();
      addCacheTags(res, 'p:1');
      res.type('text').send(name);
    });
    const next = await sendAgain(base, path);
    expect([next.headers['x-cache'], next.text]).toEqual(['MISS', 'after']);
  });

  it('a page tagged before it waited is not served as fresh either', async () => {
    const { base, path } = await renderOvertaken(async (res, name, pause) => {
      addCacheTags(res, 'p:1');
      await pause();
      res.type('text').send(name);
    });
    const next = await sendAgain(base, path);
    expect([next.headers['x-cache'], next.text]).toEqual(['MISS', 'after']);
  });

  it('a Nunjucks fragment with tags= rendered from data read before the invalidation is not stored, nor the page it bubbles into', async () => {
    const { base, path } = await renderOvertaken(async (res, name, pause) => {
      await pause();
      res.type('html').send(await renderString(env, FRAGMENT, { name }));
    });
    // The fragment alone, outside any page: rendered afresh, not the copy the overtaken render made.
    expect(await renderString(env, FRAGMENT, { name: 'after' })).toBe('<b>after</b>');
    const next = await sendAgain(base, path);
    expect([next.headers['x-cache'], next.text]).toEqual(['MISS', '<b>after</b>']);
  });
});
