/**
 * One server of the deployed benchmark, in a process of its own (`node deployed-server.js
 * <stack>:<side>`, see `SIDES` in deployed-apps.ts): a fresh heap and JIT for each. An anchor takes what it sends from a
 * hit of ours built in its own process first, then serves that. Asked `start` and `stop` over IPC,
 * it answers its CPU time per request (bench/sockets.ts).
 */
import { BROWSER_HEADERS, SIDES, STACKS, type Stack } from './deployed-apps.js';
import { serveMeasured } from './sockets.js';

const [stack, side] = (process.argv[2] ?? '').split(':') as [Stack, string];
if (!STACKS.includes(stack) || SIDES[side] === undefined)
  throw new Error(`deployed-server: unknown app ${process.argv[2]} (<stack>:<side> of ${STACKS.join(', ')} and ${Object.keys(SIDES).join(', ')})`);
serveMeasured(await SIDES[side](stack), [{ path: '/', headers: BROWSER_HEADERS }]);
