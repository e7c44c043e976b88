/**
 * The holes table: the per-visitor parts of a cached page, in each engine, through its
 * real renderer, over real HTTP (a hole is filled for the request), behind the page cache or the
 * request scope alone, on locmem and on a store that holds nothing in process.
 */
import { once } from 'node:events';
import type { Server } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import request from 'supertest';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { cacheMiddleware, cacheScope, defineHole } from '../../src/frameworks/express.js';
import { forgetHole, type PageCacheOptions } from '../../src/http/index.js';
import { STREAM_SCRIPT_PATH } from '../../src/holes/stream-script.js';
import { caches, configureCaches, makeTemplateFragmentKey } from '../../src/index.js';
import { CountingLocMem, type FragmentStore } from './cases.js';
import type { FragmentEngine } from './engines.js';
import { RemoteLikeStore } from './remote-like-store.js';
import { sleep } from '../setup/sleep.js';

interface Harness {
  engine: FragmentEngine;
  /** How often a counted template call ran. */
  counted: number;
  /** A site whose every URL renders `source`, behind the page cache when `pageCache` is given, else in the request scope alone. */
  site(source: string, options?: { pageCache?: PageCacheOptions }): Promise<Server>;
  render(source: string, context?: Record<string, unknown>): Promise<string>;
}

const visitorOf = (req: { headers: { cookie?: string } }) => /visitor=(\w+)/.exec(req.headers.cookie ?? '')?.[1] ?? 'guest';
const as = (visitor: string) => ({ Cookie: `visitor=${visitor}; session=${visitor}-session` });
const get = (server: Server, path = '/', headers: Record<string, string> = {}) => request(server).get(path).set(headers);

/** Waits until the page cache answers the request from a stored page (it stores behind the response). */
async function storedHit(server: Server, path: string, headers: Record<string, string>) {
  let response!: request.Response;
  await vi.waitFor(async () => {
    response = await get(server, path, headers);
    expect(response.headers['x-cache']).toBe('HIT');
  });
  return response;
}

/** A placeholder as a store keeps it, written by hand: what data could carry into a page. */
const FORGED = `\u0002cgh:${encodeURIComponent(JSON.stringify(['greeting']))}\u0003`;
const DISARMED = `\ufffd${FORGED.slice(1)}`;

const CASES: Array<[string, (h: Harness) => Promise<void>]> = [
  [
    "fills a fragment's hole and the page's for each visitor, while every visitor gets the one stored page (a HIT)",
    async (h) => {
      const { cache, count, hole, out } = h.engine;
      const source = `<p>${cache('60', 'product', ['$id'], `<h1>${out('id')}.${count()}</h1>${hole('stock', ['$id'])}`)}|${hole('greeting')}</p>`;
      const server = await h.site(source, { pageCache: { seconds: 600 } });
      const ann = await get(server, '/item', as('ann'));
      expect([ann.headers['x-cache'], ann.text]).toEqual(['MISS', '<p><h1>7.1</h1>stock 7 for ann|hi ann</p>']);
      // One visitor's page downstream: no shared cache may keep it; the browser keeps its max-age.
      expect(ann.headers['cache-control']).toBe('max-age=60, private');
      const bob = await storedHit(server, '/item', as('bob'));
      expect(bob.text).toBe('<p><h1>7.1</h1>stock 7 for bob|hi bob</p>');
      expect(bob.headers['cache-control']).toBe('max-age=60, private');
      expect((await get(server, '/item', as('cy'))).text).toBe('<p><h1>7.1</h1>stock 7 for cy|hi cy</p>');
      expect(h.counted).toBe(1);
      // The fragment was stored with the hole's placeholder, never with its output.
      const stored = await caches.get('default').get<string>(makeTemplateFragmentKey('product', [7]));
      expect(stored).toMatch(/^<h1>7\.1<\/h1>\u0002cgh:[^\u0003]+\u0003$/);
    },
  ],
  [
    "streams a page's holes under holes: 'stream': in place to a first visit; to a browser that ran the script, after the shell as templates for their placeholders",
    async (h) => {
      const { cache, count, hole, out } = h.engine;
      const source = `<p>${cache('60', 'product', ['$id'], `<h1>${out('id')}.${count()}</h1>${hole('stock', ['$id'])}`)}|${hole('greeting')}</p>`;
      const server = await h.site(source, { pageCache: { seconds: 600, holes: 'stream' } });
      const ann = await get(server, '/item', as('ann'));
      // In place, with the script's tag at its end: a browser that runs it gets its next pages out of order.
      expect([ann.headers['x-cache'], ann.text]).toEqual([
        'MISS',
        `<p><h1>7.1</h1>stock 7 for ann|hi ann</p><script src="${STREAM_SCRIPT_PATH}" async></script>`,
      ]);
      expect([ann.headers['cache-control'], ann.headers['x-accel-buffering'], ann.headers['content-length']]).toEqual(['max-age=60, private', 'no', undefined]);
      const bob = await storedHit(server, '/item', { Cookie: `${as('bob').Cookie}; cachegrain-holes=script` });
      const nonce = /data-cachegrain-holes="([\w-]+)"/.exec(bob.text)?.[1];
      // The stock is made behind (its builder waits): its placeholder stands in the shell, its template follows; the greeting is made at once, in place.
      expect(bob.text).toBe(
        `<p><h1>7.1</h1><cachegrain-hole id="${nonce}-0"></cachegrain-hole>|hi bob</p>` +
          `<script src="${STREAM_SCRIPT_PATH}" async data-cachegrain-holes="${nonce}"></script>` +
          `<template data-cachegrain-hole="${nonce}-0">stock 7 for bob</template>\n`,
      );
      expect(h.counted).toBe(1);
    },
  ],
  [
    'fills a hole inside a fragment that is a hit, in a page with no page cache around it (the request scope alone), sent private',
    async (h) => {
      const { cache, count, hole } = h.engine;
      const server = await h.site(cache('60', 'card', ['$id'], `<b>${count()}</b>${hole('greeting')}${hole('stock', ['$id'])}`));
      const ann = await get(server, '/', as('ann'));
      expect(ann.text).toBe('<b>1</b>hi annstock 7 for ann');
      expect(ann.headers['cache-control']).toBe('private');
      const bob = await get(server, '/', as('bob'));
      expect(bob.text).toBe('<b>1</b>hi bobstock 7 for bob');
      expect(bob.headers['cache-control']).toBe('private');
      expect(h.counted).toBe(1);
      // A render outside any request has no visitor to fill a hole for, whether it places the hole or a hit holds it.
      const outside = "hole 'greeting' is filled for the request being answered, and this render is outside any request";
      await expect(h.render(hole('greeting'))).rejects.toThrow(outside);
      await expect(h.render(cache('60', 'card', ['$id'], `<b>${count()}</b>${hole('greeting')}`))).rejects.toThrow(outside);
      expect(h.counted).toBe(1);
    },
  ],
  [
    'a builder that fails puts its fallback in, nothing by default, and is reported once, behind the page cache or not',
    async (h) => {
      const { cache, count, hole } = h.engine;
      defineHole('flaky', () => Promise.reject(new Error('stock service down')), { fallback: '<i>soon</i>' });
      defineHole('broken', () => {
        throw new Error('cart service down');
      });
      const reported: string[] = [];
      caches.get('default').on('error', (error: Error) => reported.push(error.message));
      const withFallback = await h.site(cache('60', 'f', [], `${count()}${hole('flaky')}`), { pageCache: { seconds: 600 } });
      const first = await get(withFallback, '/a', as('ann'));
      expect([first.status, first.text]).toEqual([200, '1<i>soon</i>']);
      expect(reported).toEqual([expect.stringContaining("hole 'flaky' failed on GET /a: stock service down")]);
      const failing = await h.site(`<p>${hole('broken')}</p>`, { pageCache: { seconds: 600 } });
      const failed = await get(failing, '/b', as('ann'));
      expect([failed.status, failed.text, failed.headers['cache-control']]).toEqual([200, '<p></p>', 'max-age=600, private']);
      expect(reported.slice(1)).toEqual([expect.stringContaining("hole 'broken' failed on GET /b: cart service down")]);
      // With no page cache around it, the render puts the fallback in all the same.
      const plain = await h.site(`<p>${hole('broken')}</p>`);
      const unbroken = await get(plain, '/c', as('ann'));
      expect([unbroken.status, unbroken.text]).toEqual([200, '<p></p>']);
      expect(reported.slice(2)).toEqual(["hole 'broken' failed on GET /c: cart service down"]);
      const plainFallback = await get(await h.site(`<p>${hole('flaky')}</p>`), '/d', as('ann'));
      expect([plainFallback.status, plainFallback.text]).toEqual([200, '<p><i>soon</i></p>']);
      expect(reported.slice(3)).toEqual(["hole 'flaky' failed on GET /d: stock service down"]);
    },
  ],
  [
    'an unknown hole is an error naming the template, the line and the closest name',
    async (h) => {
      const server = await h.site(`<p>one</p>\n<p>${h.engine.hole('greting')}</p>`, { pageCache: { seconds: 600 } });
      const refused = await get(server, '/', as('ann'));
      expect(refused.status).toBe(500);
      expect(refused.text).toContain("unknown hole 'greting' (did you mean 'greeting'?)");
      expect(refused.text).toMatch(/\bline 2\b/);
      // Checked before anything else, outside a request too.
      await expect(h.render(h.engine.hole('nowhere'))).rejects.toThrow(/unknown hole 'nowhere'.*line 1/);
    },
  ],
  [
    'refuses arguments that are not strings, numbers, booleans or null, naming the hole and the template',
    async (h) => {
      const { hole } = h.engine;
      for (const [argument, shown] of [
        ['$product', '{"id":7}'],
        ['$tags', '["a","b"]'],
        ['$missing', 'undefined'],
      ]) {
        const server = await h.site(`<p>${hole('stock', [argument!])}</p>`, { pageCache: { seconds: 600 } });
        const refused = await get(server, '/', as('ann'));
        expect(refused.status, argument).toBe(500);
        expect(refused.text).toContain(`hole 'stock' got ${shown} as its argument 1: a hole's arguments are stored with the page`);
        expect(refused.text).toMatch(/\bline 1\b/);
      }
    },
  ],
  [
    "a hole's record stays its own: a builder rendering fragments that vary per visitor and an uncacheable part leaves the page one shared HIT",
    async (h) => {
      const { cache, count, hole, uncacheable } = h.engine;
      const basket = `${cache('60', 'basket', [], `[${count()}]`, { contexts: '"cookie:visitor"' })}${uncacheable('a live basket')}`;
      defineHole('basket', () => h.render(basket));
      const server = await h.site(`<p>${cache('60', 'shell', [], 'shell')}${hole('basket')}</p>`, { pageCache: { seconds: 600, debug: true } });
      const ann = await get(server, '/', as('ann'));
      expect([ann.headers['x-cache'], ann.text]).toEqual(['MISS', '<p>shell[1]</p>']);
      expect(ann.headers['x-cache-contexts']).toBeUndefined();
      const bob = await storedHit(server, '/', as('bob'));
      expect(bob.text).toBe('<p>shell[2]</p>');
      // Each visitor's basket fragment is cached for that visitor, inside the hole.
      expect((await get(server, '/', as('ann'))).text).toBe('<p>shell[1]</p>');
      expect(h.counted).toBe(2);
    },
  ],
  [
    "a hole inside template code that changes its block's text fails the render, naming the fault, rather than send a broken page",
    async (h) => {
      const server = await h.site(`<p>${h.engine.upper(`x${h.engine.hole('greeting')}`)}</p>`, { pageCache: { seconds: 600 } });
      const refused = await get(server, '/', as('ann'));
      expect(refused.status).toBe(500);
      expect(refused.text).toContain("a hole's placeholder was changed by template code around it");
      expect(refused.text).toContain('move the hole outside that block');
    },
  ],
  [
    'text that only looks like a placeholder is never filled: it is stored disarmed, and the page cache sends it so on a MISS as on a HIT',
    async (h) => {
      const { cache, hole, out } = h.engine;
      const server = await h.site(`<p>${out('forged')}${cache('60', 'comment', [], out('forged'))}${hole('greeting')}</p>`, { pageCache: { seconds: 600 } });
      const ann = await get(server, '/', as('ann'));
      // The same bytes a HIT sends for the same holes, under the same ETag.
      expect(ann.text).toBe(`<p>${DISARMED}${DISARMED}hi ann</p>`);
      expect(await caches.get('default').get(makeTemplateFragmentKey('comment'))).toBe(DISARMED);
      const bob = await storedHit(server, '/', as('bob'));
      expect(bob.text).toBe(`<p>${DISARMED}${DISARMED}hi bob</p>`);
    },
  ],
];

let serial = 0;

/** Runs the holes table against one engine. */
export function describeHoleCases(engine: FragmentEngine, store: FragmentStore = 'locmem'): void {
  const Store = store === 'remote-like' ? RemoteLikeStore : CountingLocMem;
  describe(`holes in ${engine.name}${store === 'remote-like' ? ', every hit read after the pass' : ''}`, () => {
    let harness: Harness;
    const servers: Server[] = [];
    beforeEach(async () => {
      await configureCaches({ default: { backend: Store, location: `holes-${engine.name}-${++serial}` } });
      defineHole('greeting', (req) => `hi ${visitorOf(req)}`);
      defineHole('stock', async (req, id: number) => {
        await sleep(1);
        return `stock ${id} for ${visitorOf(req)}`;
      });
      const context = (extra: Record<string, unknown> = {}) => ({
        count: () => ++harness.counted,
        id: 7,
        product: { id: 7 },
        tags: ['a', 'b'],
        forged: FORGED,
        ...extra,
      });
      harness = {
        engine,
        counted: 0,
        render: (source, extra) => engine.renderSource(source, context(extra)),
        async site(source, options = {}) {
          const app = express();
          app.use(options.pageCache === undefined ? cacheScope() : cacheMiddleware(options.pageCache));
          app.get('/{*path}', async (_req, res, next) => {
            try {
              res.send(await engine.renderSource(source, context()));
            } catch (error) {
              next(error);
            }
          });
          app.use((error: Error, _req: Request, res: Response, _next: NextFunction) => void res.status(500).send(error.message));
          const server = app.listen(0, '127.0.0.1');
          await once(server, 'listening');
          servers.push(server);
          return server;
        },
      };
    });
    afterEach(async () => {
      for (const name of ['greeting', 'stock', 'flaky', 'broken', 'basket']) forgetHole(name);
      await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
    });
    afterAll(() => caches.closeAll());
    for (const [title, run] of CASES) it(title, () => run(harness));
  });
}
