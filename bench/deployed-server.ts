/**
 * One server of the deployed benchmark, in a process of its own (`node deployed-server.js
 * <stack>:<side>`, see `SIDES`): a fresh heap and JIT for each. An anchor takes what it sends from a
 * hit of ours built in its own process first, then serves that. Asked `start` and `stop` over IPC,
 * it answers its CPU time per request (bench/sockets.ts).
 */
import type { RequestListener } from 'node:http';
import { BROWSER_HEADERS, hitOf, pageCacheApp, prebuiltAfter, prebuiltApp, STACKS, type Stack } from './deployed-apps.js';
import { SLOW_RECOMMENDATIONS_MS } from './product-list.js';
import { serveMeasured } from './sockets.js';

/**
 * The servers by side: ours, the page cache's hit of the product list with its cart hole (`holes`)
 * or with its cart written in (`static`); the anchor, the framework sending the hit's status,
 * headers and bytes prebuilt. And the product list with holes that take 100 and 300 ms, streamed
 * (`streamed`) or filled in place (`filled`), and its filled hit sent after one 300 ms timer alone
 * (`slowest-hole`).
 */
export const SIDES: Record<string, (stack: Stack) => Promise<RequestListener>> = {
  holes: (stack) => pageCacheApp(stack, 'holes'),
  static: (stack) => pageCacheApp(stack, 'static'),
  'holes-prebuilt': async (stack) => prebuiltApp(stack, await hitOf(await pageCacheApp(stack, 'holes'), BROWSER_HEADERS)),
  streamed: (stack) => pageCacheApp(stack, 'slow-holes', { holes: 'stream' }),
  filled: (stack) => pageCacheApp(stack, 'slow-holes'),
  'slowest-hole': async (stack) => prebuiltAfter(await hitOf(await pageCacheApp(stack, 'slow-holes'), BROWSER_HEADERS), SLOW_RECOMMENDATIONS_MS),
};

const [stack, side] = (process.argv[2] ?? '').split(':') as [Stack, string];
if (!STACKS.includes(stack) || SIDES[side] === undefined)
  throw new Error(`deployed-server: unknown app ${process.argv[2]} (<stack>:<side> of ${STACKS.join(', ')} and ${Object.keys(SIDES).join(', ')})`);
serveMeasured(await SIDES[side](stack), [{ path: '/', headers: BROWSER_HEADERS }]);
