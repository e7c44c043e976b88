/**
 * One server of the deployed benchmark, in a process of its own (`node deployed-server.js
 * <stack>:<side>`, see `SIDES`): a fresh heap and JIT for each. An anchor takes what it sends from a
 * hit of ours built in its own process first, then serves that. Asked `start` and `stop` over IPC,
 * it answers its CPU time per request (bench/sockets.ts).
 */
import type { RequestListener } from 'node:http';
import { brotliCompressSync, brotliDecompressSync, constants, gunzipSync, gzipSync } from 'node:zlib';
import { BROWSER_HEADERS, headerOf, hitOf, pageCacheApp, prebuiltApp, STACKS, type Stack, withBody } from './deployed-apps.js';
import { serveMeasured } from './sockets.js';

/**
 * The servers by side: ours, the page cache's hit of the product list with its cart hole (`holes`)
 * or with its cart written in (`static`), with `compress` (and compression() in front); each
 * anchor, the framework sending that hit's status and headers prebuilt, with its bytes as they are,
 * or its page gzipped once (compression()'s level), or Brotli-compressed once at quality 11.
 */
export const SIDES: Record<string, (stack: Stack) => Promise<RequestListener>> = {
  holes: (stack) => pageCacheApp(stack, 'holes'),
  'holes-prebuilt': async (stack) => prebuiltApp(stack, await hitOf(await pageCacheApp(stack, 'holes'), BROWSER_HEADERS)),
  'holes-compress': (stack) => pageCacheApp(stack, 'holes', { compress: true }),
  'holes-compress-front': (stack) => pageCacheApp(stack, 'holes', { compress: true }, 'front'),
  'holes-gzipped-once': async (stack) => {
    const hit = await hitOf(await pageCacheApp(stack, 'holes', { compress: true }), BROWSER_HEADERS, (reply) => headerOf(reply, 'content-encoding') === 'gzip');
    return prebuiltApp(stack, withBody(hit, gzipSync(gunzipSync(hit.body))));
  },
  'static-compress': (stack) => pageCacheApp(stack, 'static', { compress: true }),
  'static-compression-after': (stack) => pageCacheApp(stack, 'static', {}, 'after'),
  'static-brotli-once': async (stack) => {
    const hit = await hitOf(await pageCacheApp(stack, 'static', { compress: true }), BROWSER_HEADERS, (reply) => headerOf(reply, 'content-encoding') === 'br');
    return prebuiltApp(stack, withBody(hit, brotliCompressSync(brotliDecompressSync(hit.body), { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } })));
  },
};

const [stack, side] = (process.argv[2] ?? '').split(':') as [Stack, string];
if (!STACKS.includes(stack) || SIDES[side] === undefined)
  throw new Error(`deployed-server: unknown app ${process.argv[2]} (<stack>:<side> of ${STACKS.join(', ')} and ${Object.keys(SIDES).join(', ')})`);
serveMeasured(await SIDES[side](stack), [{ path: '/', headers: BROWSER_HEADERS }]);
