/**
 * A purge that fails never fails or delays the invalidation that made it: it is tried again on a
 * 5xx, a 429, a timeout or a refused connection, and given up, reported with what it did not purge
 * and counted in stats.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type BaseCache, caches, configureCaches } from '../../src/index.js';
import { EdgePurgeError } from '../../src/edge/purge-queue.js';
import type { EdgePurgeConfig } from '../../src/edge/purge-options.js';
import { closedPort } from '../setup/closed-port.js';
import { recordingEdge, type RecordingEdge } from './recording-edge.js';
import { cacheDashboard } from '../../src/frameworks/express.js';
import { listen, send } from '../http/client.js';

let edge: RecordingEdge;
beforeAll(async () => {
  edge = await recordingEdge();
});
afterEach(() => {
  edge.received.length = 0;
  edge.answers.length = 0;
});
afterAll(async () => {
  await caches.closeAll();
  await edge.close();
});

/** A cache purging `purge`, and every error it reports. */
async function reportingCache(purge: EdgePurgeConfig): Promise<{ cache: BaseCache; reported: Error[] }> {
  await configureCaches({ default: { backend: 'locmem', location: 'purge-failures', purge: [purge] } });
  const cache = caches.get('default');
  const reported: Error[] = [];
  cache.on('error', (error: Error) => reported.push(error));
  return { cache, reported };
}

describe('a purge that fails', () => {
  it('is tried again after a 500 and a 429, and counted once sent', async () => {
    const { cache, reported } = await reportingCache({ edge: 'http', url: edge.url, tries: 3 });
    edge.answers.push(500, 429);
    await cache.invalidateTags(['item:1']);
    await cache.purgesSettled();
    expect(edge.received.map((request) => JSON.parse(request.body))).toEqual(Array(3).fill({ tags: ['item:1', 'cachegrain:overflow'] }));
    expect(reported).toEqual([]);
    expect(cache.stats()).toMatchObject({ purgesSent: 1, purgesFailed: 0, errors: 0 });
  });

  it('is given up after its tries, reported naming the edge and what was not purged, and counted', async () => {
    const { cache, reported } = await reportingCache({ edge: 'http', url: edge.url, tries: 2 });
    edge.answers.push(503, 503);
    await cache.invalidateTags(['item:1', 'item:2']);
    await cache.purgesSettled();
    expect(edge.received).toHaveLength(2);
    expect(reported).toHaveLength(1);
    const error = reported[0] as EdgePurgeError;
    expect(error).toBeInstanceOf(EdgePurgeError);
    expect(error.message).toBe(
      `cache 'default': the edge http ${edge.url} did not purge tags item:1 item:2 cachegrain:overflow (tried 2 times; last: POST ${edge.url} answered 503: {"success":false})`,
    );
    expect([error.edge, error.notPurged]).toEqual([`http ${edge.url}`, 'tags item:1 item:2 cachegrain:overflow']);
    expect(cache.stats()).toMatchObject({ purgesSent: 0, purgesFailed: 1, errors: 1 });
    const dashboard = await listen((req, res) => cacheDashboard()(req, res, () => res.writeHead(404).end()));
    try {
      const html = (await send(dashboard.url, '/')).text;
      expect(html).toMatch(/<td class="n bad" data-field="purges">0 sent, 1 failed<\/td>/);
    } finally {
      await dashboard.close();
    }
  });

  it('is not tried again when the edge refuses it (a 4xx)', async () => {
    const { cache, reported } = await reportingCache({ edge: 'http', url: edge.url, tries: 3 });
    edge.answers.push(403);
    await cache.clear();
    await cache.purgesSettled();
    expect(edge.received).toHaveLength(1);
    expect(reported[0]!.message).toContain('did not purge everything (tried once; last: POST');
  });

  it('is done when nginx answers 404: it held nothing under that URL', async () => {
    const { cache, reported } = await reportingCache({ edge: 'nginx', url: edge.url, contexts: ['theme=dark'] });
    edge.answers.push(404, 404, 404, 404);
    await cache.invalidateTags(['url://shop.example/news', 'item:1']);
    await cache.purgesSettled();
    // One request per copy: under each scheme, the one without a context and each context's. The tag reaches nothing there.
    const sent = edge.received.map(({ method, url, headers }) => [
      method,
      url,
      headers.host,
      headers['cachegrain-purge-scheme'],
      headers['cachegrain-purge-context'],
    ]);
    expect(sent).toEqual([
      ['PURGE', '/news', 'shop.example', 'http', undefined],
      ['PURGE', '/news', 'shop.example', 'http', 'theme=dark'],
      ['PURGE', '/news', 'shop.example', 'https', undefined],
      ['PURGE', '/news', 'shop.example', 'https', 'theme=dark'],
    ]);
    expect(reported).toEqual([]);
    expect(cache.stats()).toMatchObject({ purgesSent: 4, purgesFailed: 0 });
  });

  it('to an edge that is down is reported, and the invalidation still lands', async () => {
    const port = await closedPort();
    const { cache, reported } = await reportingCache({ edge: 'nginx', url: `http://127.0.0.1:${port}`, tries: 2 });
    await cache.set('page', 'old', { tags: ['url:/news'] });
    await cache.invalidateTags(['url:/news']);
    expect(await cache.get('page')).toBeUndefined();
    await cache.purgesSettled();
    expect(reported.map((error) => error.message)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^cache 'default': the edge nginx http://127.0.0.1:${port} did not purge URL http://127.0.0.1:${port}/news \\(tried 2 times; last: PURGE http://127.0.0.1:${port}/news: .*ECONNREFUSED`,
        ),
      ),
      expect.stringContaining(`did not purge URL https://127.0.0.1:${port}/news (tried 2 times`),
    ]);
    expect(cache.stats()).toMatchObject({ purgesSent: 0, purgesFailed: 2 });
  });

  it('is reported as not purged, never sent, when nginx cannot do it: a clear', async () => {
    const { cache, reported } = await reportingCache({ edge: 'nginx', url: edge.url });
    await cache.clear();
    await cache.purgesSettled();
    expect(edge.received).toEqual([]);
    expect(reported.map((error) => [error.message, (error as EdgePurgeError).notPurged])).toEqual([
      [
        `cache 'default': the edge nginx ${edge.url} did not purge everything (not sent: Debian's cache-purge module purges one URL at a time and cannot list what it keeps)`,
        'everything',
      ],
    ]);
    expect(cache.stats()).toMatchObject({ purgesSent: 0, purgesFailed: 1 });
  });

  it('to an edge that never answers does not delay the invalidation, and is given up at its timeout', async () => {
    const { cache, reported } = await reportingCache({ edge: 'http', url: edge.url, tries: 2, timeoutMs: 200 });
    edge.answers.push('hang', 'hang');
    const order: string[] = [];
    void edge.receivedCount(1).then(() => order.push('the edge received the purge'));
    await cache.invalidateTags(['item:1']);
    order.push('invalidateTags resolved');
    await edge.receivedCount(1);
    expect(order).toEqual(['invalidateTags resolved', 'the edge received the purge']);
    await cache.purgesSettled();
    expect(edge.received).toHaveLength(2);
    expect(reported.map((error) => error.message)).toEqual([
      expect.stringContaining('(tried 2 times; last: POST ' + edge.url + ' had no answer within 200 ms)'),
    ]);
    expect(cache.stats()).toMatchObject({ purgesFailed: 1 });
  });

  it('is logged once per edge and purge when nobody listens for errors', async () => {
    const port = await closedPort();
    const logged: string[] = [];
    await configureCaches({
      default: {
        backend: 'locmem',
        location: 'purge-logged',
        purge: [{ edge: 'varnish', url: `http://127.0.0.1:${port}`, tags: 'xkey', tries: 1 }],
        logger: { warn: (message) => logged.push(message) },
      },
    });
    const cache = caches.get('default');
    await cache.invalidateTags(['item:1']);
    await cache.purgesSettled();
    expect(logged).toEqual([
      expect.stringMatching(
        /^cachegrain: cache 'default': the edge varnish http:\/\/127\.0\.0\.1:\d+ did not purge tags item:1 cachegrain:overflow \(tried once; last: PURGE/,
      ),
    ]);
  });
});
