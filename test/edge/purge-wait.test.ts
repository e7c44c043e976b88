/**
 * `waitForEdges` on `invalidateTags`, `invalidatePage` and `clear`: the call resolves once each edge
 * answered the requests that carried its own purge (merged with others queued behind one in flight,
 * or not), and no later purge; bounded, it rejects with an `EdgeWaitError` naming the edge that
 * refused the purge or had not answered, while the failure is reported as every failed purge is.
 * The dashboard's forms redirect only once the edges took their purge.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type BaseCache, caches, configureCaches, EdgePurgeError, EdgeWaitError, invalidateTags } from '../../src/index.js';
import { dashboardHandler, invalidatePage } from '../../src/http/index.js';
import type { EdgePurgeConfig } from '../../src/edge/purge-options.js';
import { errorOf } from '../setup/error-of.js';
import { silentServer } from '../setup/silent-server.js';
import { closedPort } from '../setup/closed-port.js';
import { listen, send } from '../http/client.js';
import { recordingEdge, type RecordingEdge } from './recording-edge.js';

let edge: RecordingEdge;
let configured = 0;
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

/** A cache purging `purge` (the recording edge by default), and every error it reports. */
async function purgingCache(...purge: EdgePurgeConfig[]): Promise<{ cache: BaseCache; reported: Error[] }> {
  const edges = purge.length === 0 ? [{ edge: 'http' as const, url: edge.url }] : purge;
  await configureCaches({ default: { backend: 'locmem', location: `purge-wait-${++configured}`, purge: edges } });
  const cache = caches.get('default');
  const reported: Error[] = [];
  cache.on('error', (error: Error) => reported.push(error));
  return { cache, reported };
}

/** Holds the edge's answer to its next request until `release` is called, which `order` records. */
function holdNextAnswer(order: string[], name: string): () => void {
  let release!: () => void;
  edge.answers.push(
    new Promise<number>(
      (resolve) =>
        (release = () => {
          order.push(`the edge answered ${name}`);
          resolve(200);
        }),
    ),
  );
  return release;
}

const tagsSent = () => edge.received.map((request) => (JSON.parse(request.body) as { tags?: string[] }).tags?.filter((tag) => !tag.startsWith('cachegrain:')));

describe('waitForEdges', () => {
  it('resolves invalidateTags once the edge answered its purge, not before', async () => {
    const { cache, reported } = await purgingCache();
    const order: string[] = [];
    const release = holdNextAnswer(order, 'item:1');
    const invalidated = cache.invalidateTags(['item:1'], { waitForEdges: true }).then(() => order.push('invalidateTags resolved'));
    await edge.receivedCount(1);
    order.push('the edge received the purge');
    release();
    await invalidated;
    expect(order).toEqual(['the edge received the purge', 'the edge answered item:1', 'invalidateTags resolved']);
    expect(reported).toEqual([]);
    expect(cache.stats()).toMatchObject({ purgesSent: 1, purgesFailed: 0 });
  });

  it('waits for the batch its purge was merged into behind one in flight, and for no purge queued after it', async () => {
    const { cache } = await purgingCache();
    const order: string[] = [];
    const releaseFirst = holdNextAnswer(order, 'first');
    await cache.invalidateTags(['first']);
    await edge.receivedCount(1);
    const releaseBatch = holdNextAnswer(order, 'the batch');
    const waited = cache.invalidateTags(['waited'], { waitForEdges: true }).then(() => order.push('the waiting call resolved'));
    await cache.invalidateTags(['merged']);
    releaseFirst();
    await edge.receivedCount(2);
    // Queued once the batch carrying the waited purge was sent: it goes in a request of its own, held.
    const releaseLater = holdNextAnswer(order, 'later');
    await cache.invalidateTags(['later']);
    releaseBatch();
    await waited;
    await edge.receivedCount(3);
    releaseLater();
    await cache.purgesSettled();
    expect(tagsSent()).toEqual([['first'], ['waited', 'merged'], ['later']]);
    expect(order).toEqual(['the edge answered first', 'the edge answered the batch', 'the waiting call resolved', 'the edge answered later']);
  });

  it('rejects with an EdgeWaitError naming the edge that refused the purge, which is reported too', async () => {
    const { cache, reported } = await purgingCache({ edge: 'http', url: edge.url, tries: 3 });
    await cache.set('page', 'old', { tags: ['item:1'] });
    edge.answers.push(403);
    const error = await errorOf(() => cache.invalidateTags(['item:1'], { waitForEdges: true }));
    expect(error).toBeInstanceOf(EdgeWaitError);
    expect(error.message).toBe(
      `cache 'default': the edge http ${edge.url} did not purge tags item:1 cachegrain:overflow (tried once; last: POST ${edge.url} answered 403: {"success":false})`,
    );
    const { failures, unanswered } = error as EdgeWaitError;
    expect([failures, unanswered]).toEqual([reported, []]);
    expect(failures[0]).toBeInstanceOf(EdgePurgeError);
    // The cache's own invalidation landed all the same.
    expect(await cache.get('page')).toBeUndefined();
  });

  it('rejects once its bound passed against an edge that never answers; the purge goes on, and is reported when given up', async () => {
    const silent = await silentServer();
    try {
      const url = `http://127.0.0.1:${silent.port}`;
      const { cache, reported } = await purgingCache({ edge: 'http', url, tries: 1, timeoutMs: 400 });
      const error = await errorOf(() => cache.invalidateTags(['item:1'], { waitForEdges: 0.05 }));
      expect(error).toBeInstanceOf(EdgeWaitError);
      expect(error.message).toBe(`cache 'default': the edge http ${url} had not taken the purge within 0.05 s`);
      expect([(error as EdgeWaitError).failures, (error as EdgeWaitError).unanswered]).toEqual([[], [`http ${url}`]]);
      await cache.purgesSettled();
      expect(reported.map((each) => each.message)).toEqual([
        `cache 'default': the edge http ${url} did not purge tags item:1 cachegrain:overflow (tried once; last: POST ${url} had no answer within 400 ms)`,
      ]);
    } finally {
      await silent.close();
    }
  });

  it('rejects when the purge is given up before its bound, against an edge that never answers', async () => {
    const silent = await silentServer();
    try {
      const url = `http://127.0.0.1:${silent.port}`;
      const { cache, reported } = await purgingCache({ edge: 'http', url, tries: 2, timeoutMs: 50 });
      const error = await errorOf(() => invalidatePage('/news', { waitForEdges: true }));
      expect(error).toBeInstanceOf(EdgeWaitError);
      expect(error.message).toMatch(`the edge http ${url} did not purge tags url:/news `);
      expect(error.message).toMatch(/\(tried 2 times; last: POST .* had no answer within 50 ms\)$/);
      expect((error as EdgeWaitError).failures).toEqual(reported);
      expect(silent.connections).toBe(2);
      expect(cache.stats()).toMatchObject({ purgesFailed: 1 });
    } finally {
      await silent.close();
    }
  });

  it('waits for every edge, and names each that did not take the purge', async () => {
    const nginx = `http://127.0.0.1:${await closedPort()}`;
    await purgingCache({ edge: 'http', url: edge.url }, { edge: 'nginx', url: nginx });
    const order: string[] = [];
    const release = holdNextAnswer(order, 'the clear');
    // nginx cannot clear: its failure is known at once, and the call still waits for the other edge.
    const cleared = errorOf(() => caches.get('default').clear({ waitForEdges: true })).then((error) => {
      order.push('clear rejected');
      return error;
    });
    await edge.receivedCount(1);
    release();
    const error = await cleared;
    expect(order).toEqual(['the edge answered the clear', 'clear rejected']);
    expect(error).toBeInstanceOf(EdgeWaitError);
    const { failures, unanswered } = error as EdgeWaitError;
    expect([failures.map((failure) => [failure.edge, failure.notPurged]), unanswered]).toEqual([[[`nginx ${nginx}`, 'everything']], []]);
    expect(edge.received.map((request) => request.body)).toEqual(['{"everything":true}']);
  });

  it('resolves clear and the module-level invalidateTags once the edge answered', async () => {
    await purgingCache();
    const order: string[] = [];
    let release = holdNextAnswer(order, 'the clear');
    const cleared = caches
      .get('default')
      .clear({ waitForEdges: true })
      .then(() => order.push('clear resolved'));
    await edge.receivedCount(1);
    release();
    await cleared;
    release = holdNextAnswer(order, 'item:2');
    const invalidated = invalidateTags(['item:2'], { waitForEdges: 1 }).then(() => order.push('invalidateTags resolved'));
    await edge.receivedCount(2);
    release();
    await invalidated;
    expect(order).toEqual(['the edge answered the clear', 'clear resolved', 'the edge answered item:2', 'invalidateTags resolved']);
  });

  it('resolves at once where the cache purges no edge', async () => {
    await configureCaches({ default: { backend: 'locmem', location: 'purge-wait-none' } });
    await invalidateTags(['item:1'], { waitForEdges: true });
    await invalidatePage('/news', { waitForEdges: true });
    await caches.get('default').clear({ waitForEdges: true });
    expect(edge.received).toEqual([]);
  });

  it('is refused when misspelt or not a boolean or a positive number of seconds', async () => {
    const { cache } = await purgingCache();
    const refusals: Array<[() => Promise<unknown>, string]> = [
      [
        () => cache.invalidateTags(['a'], { waitForEdge: true } as never),
        "cache 'default': invalidateTags: unknown option 'options.waitForEdge' (did you mean",
      ],
      [
        () => cache.invalidateTags(['a'], { waitForEdges: 0 }),
        "cache 'default': invalidateTags: options.waitForEdges must be a boolean or a positive number of seconds (got 0)",
      ],
      [
        () => cache.clear({ waitForEdges: 'yes' } as never),
        "cache 'default': clear: options.waitForEdges must be a boolean or a positive number of seconds (got 'yes')",
      ],
      [() => cache.clear({ wait: true } as never), "cache 'default': clear: unknown option 'options.wait'"],
      [() => invalidatePage('/news', { waitForEdges: -5 }), 'invalidatePage: options.waitForEdges must be a boolean or a positive number of seconds (got -5)'],
      [
        () => invalidateTags(['a'], { waitForEdges: Infinity }),
        'invalidateTags: options.waitForEdges must be a boolean or a positive number of seconds (got Infinity)',
      ],
    ];
    for (const [call, message] of refusals) {
      const error = await errorOf(call);
      expect([error.name, error.message.startsWith(message)], error.message).toEqual(['TypeError', true]);
    }
    expect(edge.received).toEqual([]);
  });
});

describe("the dashboard's forms", () => {
  let dashboard: Awaited<ReturnType<typeof listen>>;
  beforeAll(async () => {
    dashboard = await listen(dashboardHandler({ path: '/_cache', actions: true }));
  });
  afterAll(() => dashboard.close());

  /** Posts `form` (with the page's token) to `action` of the dashboard. */
  async function post(action: string, form: string): Promise<Awaited<ReturnType<typeof send>>> {
    const token = /name="token" value="([^"]+)"/.exec((await send(dashboard.url, '/_cache/')).text)![1]!;
    return send(dashboard.url, `/_cache/${action}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: `${form}&token=${encodeURIComponent(token)}`,
    });
  }
  const noteOf = (location: string | undefined) => new URLSearchParams(location!.split('?')[1]).get('done');

  it.each([
    ['invalidate-tags', 'alias=default&tags=item%3A7', "Invalidated tags item:7 in cache 'default'."],
    ['clear', 'alias=default', "Cleared cache 'default'."],
  ])('redirect after %s only once the edge answered its purge', async (action, form, note) => {
    await purgingCache();
    const order: string[] = [];
    const release = holdNextAnswer(order, 'the purge');
    const redirected = post(action, form).then((reply) => {
      order.push('the redirect arrived');
      return reply;
    });
    await edge.receivedCount(1);
    release();
    const reply = await redirected;
    expect(order).toEqual(['the edge answered the purge', 'the redirect arrived']);
    expect([reply.status, noteOf(reply.headers.location)]).toEqual([303, note]);
  });

  it('redirect with a note naming the edge that refused the purge, and list the invalidation', async () => {
    const { reported } = await purgingCache({ edge: 'http', url: edge.url, tries: 1 });
    edge.answers.push(500);
    const reply = await post('invalidate-tags', 'alias=default&tags=item%3A8');
    expect(reported).toHaveLength(1);
    expect([reply.status, noteOf(reply.headers.location)]).toEqual([
      303,
      `Invalidated tags item:8 in cache 'default'. The edges in front may still answer with what it replaced: the edge http ${edge.url} did not purge tags item:8 cachegrain:overflow (tried once; last: POST ${edge.url} answered 500: {"success":false}).`,
    ]);
    expect((await send(dashboard.url, '/_cache/')).text).toMatch(/<td>default<\/td><td>tags item:8<\/td>/);
  });
});
