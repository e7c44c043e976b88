/**
 * A site as its operator runs it behind Varnish: an Express application whose page cache
 * sends the tags its Nunjucks fragments bubble up in `xkey`, a cache configured to purge the edges in
 * front, and real Varnishes running the shipped VCL (BAN, and xkey) with nothing but the backend
 * changed. Each change of the data is followed by the invalidation the application makes anyway; the
 * next visitor through the edge sees the new page, and the pages the change did not touch stay at the
 * edge (the application does not see their requests).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import nunjucks from 'nunjucks';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { addCacheTags } from '../../src/frameworks/express.js';
import { installCacheTag, renderString } from '../../src/engines/nunjucks.js';
import { invalidatePage } from '../../src/http/index.js';
import { type BaseCache, caches, configureCaches } from '../../src/index.js';
import { type Proxy, startShippedVarnish } from '../setup/proxies.js';
import { listen, send } from './client.js';
import { cacheMiddleware, express5, expressApp } from './stacks.js';

const env = installCacheTag(new nunjucks.Environment(null, { autoescape: true }));
const CARD = `{% cache 600 'card' id tags=['item:' + id] %}<b>item {{ id }}: {{ price }}</b>{% endcache %}`;

/** The site's data, edited by the tests as an application's admin would. */
const prices = new Map<string, number>();
/** The paths the application was asked for: what no edge answered. */
const rendered: string[] = [];

function view(req: IncomingMessage, res: ServerResponse): Promise<void> | void {
  const path = req.url!.split('?')[0]!;
  rendered.push(path);
  const [, kind, id] = path.split('/');
  if (kind === 'tagged') {
    // A listing with thousands of tags: its header is shortened, and any one of them still purges it.
    const count = Number(id);
    addCacheTags(res, ...Array.from({ length: count }, (_, i) => `category:shoes-and-boots:${i}`));
    res.end(`tagged ${count} at ${prices.get('tagged') ?? 0}`);
    return;
  }
  if (kind === 'plain') return void res.end(`plain ${id} at ${prices.get(id!) ?? 0}`);
  return renderString(env, CARD, { id, price: prices.get(id!) ?? 0 }).then((html) => void res.end(html));
}

let app: Awaited<ReturnType<typeof listen>>;
const edges: Array<[string, Proxy]> = [];
let cache: BaseCache;
const reported: Error[] = [];

beforeAll(async () => {
  app = await listen(expressApp(express5)([cacheMiddleware({ seconds: 600 })], view));
  const backendPort = Number(new URL(app.url).port);
  const [ban, xkey] = await Promise.all([startShippedVarnish({ backendPort }), startShippedVarnish({ backendPort, xkey: true })]);
  edges.push(['Varnish with BAN', ban], ['Varnish with xkey', xkey]);
  await configureCaches({
    default: {
      backend: 'locmem',
      location: 'edge-end-to-end',
      purge: [
        { edge: 'varnish', url: ban.url, tags: 'ban' },
        { edge: 'varnish', url: xkey.url, tags: 'xkey' },
      ],
    },
  });
  cache = caches.get('default');
  cache.on('error', (error: Error) => reported.push(error));
}, 60_000);
afterAll(async () => {
  await Promise.allSettled([...edges.map(([, edge]) => edge.stop()), app?.close()]);
  await caches.closeAll();
});
beforeEach(() => {
  rendered.length = 0;
});

/** What each edge answers for `path`. */
async function throughEachEdge(path: string): Promise<string[]> {
  const answers: string[] = [];
  for (const [, edge] of edges) {
    const reply = await send(edge.url, path);
    expect(reply.status, `${path} through ${edge.url}`).toBe(200);
    answers.push(reply.text);
  }
  return answers;
}

describe('a site behind Varnish running the shipped VCL, purged by the application', () => {
  it('serves a page whose fragment was invalidated by tag fresh at every edge, and keeps the others there', async () => {
    prices.set('1', 10).set('2', 20);
    await throughEachEdge('/item/1');
    await throughEachEdge('/item/2');
    rendered.length = 0;
    expect(await throughEachEdge('/item/1')).toEqual(['<b>item 1: 10</b>', '<b>item 1: 10</b>']);
    expect(rendered).toEqual([]);

    prices.set('1', 11);
    await cache.invalidateTags(['item:1']);
    await cache.purgesSettled();
    expect(await throughEachEdge('/item/1')).toEqual(['<b>item 1: 11</b>', '<b>item 1: 11</b>']);
    expect(await throughEachEdge('/item/2')).toEqual(['<b>item 2: 20</b>', '<b>item 2: 20</b>']);
    // One render of the invalidated page for each edge (each sends its own Host, a page of its own), none of the other.
    expect(rendered).toEqual(['/item/1', '/item/1']);
    expect(reported).toEqual([]);
  });

  it('serves a page invalidated by URL fresh at every edge, and keeps the others there', async () => {
    prices.set('3', 30).set('5', 50);
    await throughEachEdge('/plain/3');
    await throughEachEdge('/plain/5');
    prices.set('3', 31).set('5', 51);
    await invalidatePage('/plain/3');
    await cache.purgesSettled();
    expect(await throughEachEdge('/plain/3')).toEqual(['plain 3 at 31', 'plain 3 at 31']);
    expect(await throughEachEdge('/plain/5')).toEqual(['plain 5 at 50', 'plain 5 at 50']);
    expect(reported).toEqual([]);
  });

  it('serves every page fresh at every edge after clear', async () => {
    prices.set('4', 40);
    await throughEachEdge('/item/4');
    prices.set('4', 41);
    await cache.clear();
    await cache.purgesSettled();
    expect(await throughEachEdge('/item/4')).toEqual(['<b>item 4: 41</b>', '<b>item 4: 41</b>']);
    expect(reported).toEqual([]);
  });

  it.each([300, 3_000])('keeps a page with %i tags at the edge, and purges it by any one of them', async (count) => {
    prices.set('tagged', 1);
    const path = `/tagged/${count}`;
    expect(await throughEachEdge(path)).toEqual([`tagged ${count} at 1`, `tagged ${count} at 1`]);
    rendered.length = 0;
    await throughEachEdge(path);
    expect(rendered).toEqual([]);

    prices.set('tagged', 2);
    await cache.invalidateTags([`category:shoes-and-boots:${count - 1}`]);
    await cache.purgesSettled();
    expect(await throughEachEdge(path)).toEqual([`tagged ${count} at 2`, `tagged ${count} at 2`]);
    expect(reported).toEqual([]);
  });
});
