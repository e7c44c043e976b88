/**
 * "Edit, then redirect" through a real Varnish (the shipped xkey VCL) and a real nginx (the shipped
 * files) in front of a page cache whose `purge` option names them: an admin handler saves the change,
 * awaits its invalidation with `waitForEdges`, and redirects to the page. The browser's next request,
 * through the edge, gets the new page every time: the edges took the purge before the redirect left.
 */
import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addCacheTags } from '../../src/frameworks/express.js';
import { invalidatePage } from '../../src/http/index.js';
import { caches, configureCaches, invalidateTags } from '../../src/index.js';
import { type Proxy, startShippedNginx, startShippedVarnish } from '../setup/proxies.js';
import { listen, send } from './client.js';
import { bare, cacheMiddleware, type Handler } from './stacks.js';

/** Each page's version, raised by every edit of it. */
const versions = new Map<string, number>();
/** Requests the application received, by path: what the edges in front did not answer themselves. */
const received = new Map<string, number>();
const reported: Error[] = [];
let app: { url: string; close(): Promise<void> };
const edges: Partial<Record<'varnish' | 'nginx', Proxy>> = {};

/** A product page carries the product's tag; an article page none but its URL's (nginx keeps no other). */
function site(): Handler {
  const page = bare([cacheMiddleware({ seconds: 300 })], (req, res) => {
    const path = req.url!.split('?')[0]!;
    const [, kind, id] = path.split('/');
    if (kind === 'products') addCacheTags(res, `product:${id}`, 'products');
    res.end(`${path} version ${versions.get(path) ?? 0}`);
  });
  return (req, res) => {
    const path = req.url!.split('?')[0]!;
    received.set(path, (received.get(path) ?? 0) + 1);
    if (req.method === 'POST' && path.startsWith('/admin/')) return void edit(path.slice('/admin'.length), res);
    page(req, res);
  };
}

/**
 * The admin's handler: the change saved, its invalidations awaited until the edges took them (an
 * article's listing first, then the article), then the redirect to the page changed.
 */
async function edit(path: string, res: ServerResponse): Promise<void> {
  versions.set(path, (versions.get(path) ?? 0) + 1);
  const [, kind, id] = path.split('/');
  try {
    if (kind === 'products') await invalidateTags([`product:${id}`, 'products'], { waitForEdges: true });
    else {
      await invalidatePage(`/${kind}`, { waitForEdges: true });
      await invalidatePage(path, { waitForEdges: true });
    }
    res.writeHead(303, { Location: path }).end();
  } catch (error) {
    res.writeHead(500).end(String(error));
  }
}

beforeAll(async () => {
  app = await listen(site());
  const backendPort = Number(new URL(app.url).port);
  [edges.varnish, edges.nginx] = await Promise.all([startShippedVarnish({ backendPort, xkey: true }), startShippedNginx({ backendPort })]);
  await configureCaches({
    default: {
      backend: 'locmem',
      location: 'edge-wait',
      purge: [
        { edge: 'varnish', url: edges.varnish.url, tags: 'xkey' },
        { edge: 'nginx', url: edges.nginx.url },
      ],
    },
  });
  caches.get('default').on('error', (error: Error) => reported.push(error));
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([...Object.values(edges).map((edge) => edge.stop()), app?.close()]);
  await caches.closeAll();
});

describe('an edit awaited with waitForEdges, then a redirect, through the shipped edges', () => {
  it.each([
    ['varnish', 'invalidateTags', '/products/2'],
    ['nginx', 'invalidatePage', '/articles/2'],
  ] as const)('shows the new page through %s after %s, 20 times of 20', async (name, _how, path) => {
    const edge = edges[name]!;
    const stale: string[] = [];
    for (let edit = 1; edit <= 20; edit++) {
      const kept = (await send(edge.url, path)).text;
      const reached = received.get(path);
      expect((await send(edge.url, path)).text, 'the edge keeps the page').toBe(kept);
      expect(received.get(path), 'requests that reached the application').toBe(reached);
      const redirect = await send(edge.url, `/admin${path}`, { method: 'POST' });
      expect([redirect.status, redirect.headers.location, redirect.text]).toEqual([303, path, '']);
      const after = (await send(edge.url, redirect.headers.location!)).text;
      if (after !== `${path} version ${edit}`) stale.push(`edit ${edit}: ${after}`);
    }
    expect(stale).toEqual([]);
    expect(reported).toEqual([]);
  });
});
