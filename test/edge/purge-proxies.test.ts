/**
 * Purges of a real Varnish (BAN on the tag header, and the xkey vmod) in front of an application
 * whose pages carry their tags in `xkey`: a page invalidated by tag, by URL and by `clear` is served
 * fresh by the edge. Varnish runs the shipped VCL, with and without xkey.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { invalidatePage } from '../../src/http/index.js';
import { type BaseCache, caches, configureCaches } from '../../src/index.js';
import type { EdgePurgeConfig } from '../../src/edge/purge-options.js';
import { edgeToken } from '../../src/edge/tokens.js';
import { type Proxy, startShippedVarnish } from '../setup/proxies.js';
import { eventually } from '../setup/eventually.js';
import { listen, send } from '../http/client.js';

/** Each path's tags, as its page carries them; every answer of the application names how many it gave. */
const TAGS: Record<string, string[]> = {
  '/item/1': ['item:1', 'list', 'url:/item/1'],
  '/item/2': ['item:2', 'list', 'url:/item/2'],
  '/odd': ['price (€)', 'a.b*c+d|e\\f', 'url:/odd'],
};
let answered = 0;

function page(req: IncomingMessage, res: ServerResponse): void {
  const path = req.url!.split('?')[0]!;
  res.setHeader('Cache-Control', 'public, max-age=600');
  res.setHeader('xkey', (TAGS[path] ?? [`url:${path}`]).map(edgeToken).join(' '));
  res.end(`${path} answer ${++answered}`);
}

let app: Awaited<ReturnType<typeof listen>>;
const proxies: Proxy[] = [];

beforeAll(async () => {
  app = await listen(page);
}, 60_000);
afterAll(async () => {
  await Promise.allSettled([...proxies.map((proxy) => proxy.stop()), app?.close()]);
  await caches.closeAll();
});

/** The body the edge answers for `path` (with `host` as the Host, where given). */
async function throughEdge(proxy: Proxy, path: string, host?: string): Promise<string> {
  return (await send(proxy.url, path, host === undefined ? {} : { headers: { Host: host } })).text;
}

/** A cache purging `proxy`, and what it reports. */
async function purging(edge: EdgePurgeConfig): Promise<{ cache: BaseCache; reported: Error[] }> {
  await configureCaches({ default: { backend: 'locmem', location: `purge-proxies-${edge.edge}`, purge: [edge] } });
  const cache = caches.get('default');
  const reported: Error[] = [];
  cache.on('error', (error: Error) => reported.push(error));
  return { cache, reported };
}

const cases = [
  ['Varnish with BAN', () => startShippedVarnish({ backendPort: Number(new URL(app.url).port) }), 'ban'],
  ['Varnish with xkey', () => startShippedVarnish({ backendPort: Number(new URL(app.url).port), xkey: true }), 'xkey'],
] as const;

describe.each(cases)('%s', (_name, start, tags) => {
  let varnish: Proxy;
  beforeAll(async () => {
    varnish = await start();
    proxies.push(varnish);
  }, 60_000);

  it('serves a page invalidated by tag fresh, and keeps the others', async () => {
    const { cache, reported } = await purging({ edge: 'varnish', url: varnish.url, tags });
    const item1 = await throughEdge(varnish, '/item/1');
    const item2 = await throughEdge(varnish, '/item/2');
    expect(await throughEdge(varnish, '/item/1')).toBe(item1);
    await cache.invalidateTags(['item:1']);
    await cache.purgesSettled();
    expect(await throughEdge(varnish, '/item/1')).not.toBe(item1);
    expect(await throughEdge(varnish, '/item/2')).toBe(item2);
    expect(reported).toEqual([]);
  });

  it('purges by tags holding regex metacharacters, spaces and non-ASCII, and no other page', async () => {
    const { cache, reported } = await purging({ edge: 'varnish', url: varnish.url, tags });
    const odd = await throughEdge(varnish, '/odd');
    const item2 = await throughEdge(varnish, '/item/2');
    await cache.invalidateTags(['a.b*c+d|e\\f']);
    await cache.purgesSettled();
    expect(reported).toEqual([]);
    expect(await throughEdge(varnish, '/odd')).not.toBe(odd);
    expect(await throughEdge(varnish, '/item/2')).toBe(item2);
    const again = await throughEdge(varnish, '/odd');
    await cache.invalidateTags(['price (€)']);
    await cache.purgesSettled();
    expect(await throughEdge(varnish, '/odd')).not.toBe(again);
  });

  it('serves a page invalidated by path fresh (by its url: tag, on every host)', async () => {
    const { cache, reported } = await purging({ edge: 'varnish', url: varnish.url, tags });
    const before = [await throughEdge(varnish, '/item/2'), await throughEdge(varnish, '/item/2', 'shop.example')];
    await invalidatePage('/item/2');
    await cache.purgesSettled();
    expect(await throughEdge(varnish, '/item/2')).not.toBe(before[0]);
    expect(await throughEdge(varnish, '/item/2', 'shop.example')).not.toBe(before[1]);
    expect(reported).toEqual([]);
  });

  it('serves a page invalidated by absolute URL fresh on its host only (PURGE with its Host)', async () => {
    const { cache, reported } = await purging({ edge: 'varnish', url: varnish.url, tags });
    const before = [await throughEdge(varnish, '/item/2', 'shop.example'), await throughEdge(varnish, '/item/2', 'other.example')];
    await invalidatePage('http://shop.example/item/2');
    await cache.purgesSettled();
    expect(await throughEdge(varnish, '/item/2', 'shop.example')).not.toBe(before[0]);
    expect(await throughEdge(varnish, '/item/2', 'other.example')).toBe(before[1]);
    expect(reported).toEqual([]);
  });

  it('serves every page fresh after clear', async () => {
    const { cache, reported } = await purging({ edge: 'varnish', url: varnish.url, tags });
    const before = [await throughEdge(varnish, '/item/1'), await throughEdge(varnish, '/item/2')];
    await cache.clear();
    await cache.purgesSettled();
    const after = [await throughEdge(varnish, '/item/1'), await throughEdge(varnish, '/item/2')];
    expect(after[0]).not.toBe(before[0]);
    expect(after[1]).not.toBe(before[1]);
    expect(reported).toEqual([]);
  });

  it('purges 3,000 tags in requests under its header limit', async () => {
    const { cache, reported } = await purging({ edge: 'varnish', url: varnish.url, tags });
    const before = await throughEdge(varnish, '/item/2');
    await cache.invalidateTags([...Array.from({ length: 3_000 }, (_, i) => `product:${i}:variant`), 'item:2']);
    await cache.purgesSettled();
    expect(reported).toEqual([]);
    expect(cache.stats().purgesSent).toBeGreaterThan(1);
    expect(await throughEdge(varnish, '/item/2')).not.toBe(before);
  });
});

describe('Varnish with xkey, softly', () => {
  it('serves a softly purged page fresh once Varnish has fetched it again', async () => {
    const varnish = await cases[1][1]();
    proxies.push(varnish);
    const { cache, reported } = await purging({ edge: 'varnish', url: varnish.url, tags: 'xkey' });
    const before = await throughEdge(varnish, '/item/1');
    await cache.invalidateTags(['item:1'], { soft: true });
    await cache.purgesSettled();
    expect(reported).toEqual([]);
    await eventually(async () => expect(await throughEdge(varnish, '/item/1')).not.toBe(before));
  }, 60_000);
});
