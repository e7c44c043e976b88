/**
 * The deployed benchmark's anchors are honest: on each stack, the framework sending "the filled
 * page prebuilt" answers what the page cache's hit of the product list with its cart hole answers
 * (status, headers and bytes), so that the ratio between them is the cost of the hit alone; the
 * page gzipped once and Brotli-compressed once answer the compressed hits' status and headers, and
 * their bytes decode to the same page; and the streamed rows compare one page: streamed, filled in
 * place, and sent after its slowest hole's wait; the MISS's reference sends what the uncached route
 * sends, keeping the bytes of its last responses.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import type { RequestListener } from 'node:http';
import {
  BROWSER_HEADERS,
  headerOf,
  hitOf,
  keepingResponses,
  pageCacheApp,
  prebuiltAfter,
  prebuiltApp,
  type Reply,
  SIDES,
  STACKS,
  uncachedApp,
} from '../../bench/deployed-apps.js';
import { cartOf, recommendationsOf, SLOW_RECOMMENDATIONS_MS } from '../../bench/product-list.js';
import { STREAM_SCRIPT_PATH } from '../../src/holes/stream-script.js';
import { forgetHole } from '../../src/http/index.js';
import { listen, send } from './client.js';

/** Headers that name the moment of the response rather than the response: compared by name alone. */
const OF_THE_MOMENT = new Set(['expires', 'age']);
/** Headers of the bytes sent, which differ where the bytes do (one coding's bytes made another way). */
const OF_THE_BYTES = new Set(['content-length']);

function comparable(reply: Reply, decoded = (body: Buffer) => body): { status: number; headers: Record<string, string>; body: string } {
  const headers: Record<string, string> = {};
  for (let i = 0; i < reply.headers.length; i += 2) {
    const name = reply.headers[i]!.toLowerCase();
    headers[name] = OF_THE_MOMENT.has(name) || (OF_THE_BYTES.has(name) && decoded(reply.body) !== reply.body) ? '(present)' : reply.headers[i + 1]!;
  }
  return { status: reply.status, headers, body: decoded(reply.body).toString('latin1') };
}

afterEach(() => {
  forgetHole('cart');
  forgetHole('recommendations');
});

describe.each(STACKS)('the deployed bench on %s', (stack) => {
  it('sends the filled page prebuilt as the hit of the page with its hole sends it', async () => {
    const hit = await hitOf(await pageCacheApp(stack, 'holes'), BROWSER_HEADERS);
    expect(hit.body.toString()).toContain(`<div class="cart">${cartOf('ann')}</div>`);
    expect(hit.body.length).toBeGreaterThan(50_000);
    const prebuilt = await hitOf(await prebuiltApp(stack, hit), BROWSER_HEADERS);
    expect(comparable(prebuilt)).toEqual(comparable(hit));
  });
});

describe('the streamed rows of the deployed bench', () => {
  it('stream the page the filled side fills, and time the slowest hole alone by that page', async () => {
    const filled = await hitOf(await pageCacheApp('express', 'slow-holes'), BROWSER_HEADERS);
    expect(filled.body.toString()).toContain(`<div class="cart">${cartOf('ann')}</div>`);
    expect(filled.body.toString()).toContain(`<aside class="recommendations">${recommendationsOf('ann')}</aside>`);
    // Asked as a first visit asks it: the holes in place, the script's tag before the end of the body.
    const streamed = await hitOf(await pageCacheApp('express', 'slow-holes', { holes: 'stream' }), BROWSER_HEADERS);
    expect(streamed.body.toString()).toBe(filled.body.toString().replace('</body>', `<script src="${STREAM_SCRIPT_PATH}" async></script></body>`));
    const slowest = await hitOf(prebuiltAfter(filled, SLOW_RECOMMENDATIONS_MS), BROWSER_HEADERS);
    expect(comparable(slowest)).toEqual(comparable(filled));
  });
});

describe('the deployed bench on Express, compressed', () => {
  it.each([
    ['holes-compress', 'holes-gzipped-once', 'gzip', gunzipSync],
    ['holes-gzipped-once-front', 'holes-gzipped-once', 'gzip', gunzipSync],
    ['static-compress', 'static-brotli-once', 'br', brotliDecompressSync],
  ] as const)('sends %s as %s does, its bytes compressed once', async (ours, anchor, coding, decode) => {
    const inCoding = (reply: Reply) => headerOf(reply, 'content-encoding') === coding;
    const hit = await hitOf(await SIDES[ours]!('express'), BROWSER_HEADERS, inCoding);
    const once = await hitOf(await SIDES[anchor]!('express'), BROWSER_HEADERS, inCoding);
    expect(comparable(once, decode)).toEqual(comparable(hit, decode));
    expect(headerOf(once, 'content-length')).toBe(String(once.body.length));
  });
});

/** The bodies `listener` answers to GETs of `paths`, asked one after the other over a socket. */
async function bodiesOf(listener: RequestListener, paths: readonly string[]): Promise<string[]> {
  const site = await listen(listener);
  try {
    const bodies: string[] = [];
    for (const path of paths) bodies.push((await send(site.url, path, { headers: BROWSER_HEADERS })).text);
    return bodies;
  } finally {
    site.server.closeAllConnections();
    await site.close();
  }
}

describe("the MISS's reference of the deployed bench", () => {
  it('keeps the bytes of the last responses sent, the oldest let go', async () => {
    const kept: Buffer[] = [];
    const echo: RequestListener = (req, res) => res.end(Buffer.from(req.url ?? ''));
    await bodiesOf(keepingResponses(echo, 2, kept), ['/a', '/b', '/c']);
    expect(kept.map(String).sort()).toEqual(['/b', '/c']);
  });

  it('sends what the route alone sends', async () => {
    const kept: Buffer[] = [];
    const [alone] = await bodiesOf(await uncachedApp('express'), ['/']);
    const [keeping] = await bodiesOf(keepingResponses(await uncachedApp('express'), 10, kept), ['/']);
    expect(keeping).toBe(alone);
    expect(alone!.length).toBeGreaterThan(50_000);
    expect(kept.map(String)).toEqual([alone]);
  });
});
