/**
 * One server of the HTTP benchmark, in a process of its own (`node http-server.js <stack>:<side>`,
 * or `holes-ours` / `one-timer`): every server starts from a fresh heap and a JIT that has seen no
 * other server's code, so none pays for what ran before it. It fills its cache with one request of
 * each kind, then tells its parent its origin. Asked `start` and then `stop` over IPC, it answers the
 * CPU time it spent between the two and the requests it served: its own cost per request, which the
 * load generator sharing the machine moves much less than the requests per second.
 */
import type { IncomingMessage, RequestListener } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import nunjucks from 'nunjucks';
import { cacheMiddleware, defineHole } from '../src/frameworks/express.js';
import { installCacheTag, renderString } from '../src/engines/nunjucks.js';
import { LocMemCache } from '../src/index.js';
import { serveMeasured } from './sockets.js';
import { buildApp, type Kind, KINDS, kindsOf, PAGE, type Side, SIDES, type Stack, STACKS } from './http-apps.js';

/** How long each hole's builder of the holes page waits, in ms: a query or a call to another service. */
export const HOLE_BUILDER_MS = 5;
/** The holes page: the same page with a greeting, a cart and a stock count, each a hole. */
const HOLES_PAGE = `<!doctype html><title>Page</title><header>{% hole "greeting" %} {% hole "cart" %}</header>${'<p>Some cached paragraph of a page.</p>'.repeat(50)}<p>{% hole "stock" 7 %}</p>`;

function holesView(): RequestListener {
  const env = installCacheTag(new nunjucks.Environment(null, { autoescape: true }));
  const visitor = (req: IncomingMessage) => req.headers.cookie ?? 'guest';
  defineHole('greeting', async (req) => (await sleep(HOLE_BUILDER_MS), `Hello, ${visitor(req)}`));
  defineHole('cart', async (req) => (await sleep(HOLE_BUILDER_MS), `Cart of ${visitor(req)}: 3`));
  defineHole('stock', async (_req, id: number) => (await sleep(HOLE_BUILDER_MS), `${id * 3} left`));
  return (_req, res) => {
    void renderString(env, HOLES_PAGE, {}).then((html) => {
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      res.end(html);
    });
  };
}

/** The holes row's servers: a hit whose page holds three holes, and what one hole's builder alone costs. */
function holesApp(name: string): RequestListener | undefined {
  if (name === 'holes-ours') {
    // A hit: the page is stored once, its three holes filled for each request.
    const cached = cacheMiddleware({ cache: new LocMemCache({ location: 'bench-holes' }), keyPrefix: 'holes' });
    const view = holesView();
    return (req, res) => cached(req, res, () => view(req, res));
  }
  if (name === 'one-timer') {
    const headers = { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': String(PAGE.length), 'X-Cache': 'HIT' };
    return (_req, res) => void sleep(HOLE_BUILDER_MS).then(() => res.writeHead(200, headers).end(PAGE));
  }
  return undefined;
}

/** The server's listener, and the requests that fill its cache (the holes page is stored by its first request). */
async function appOf(name: string): Promise<{ listener: RequestListener; kinds: Kind[] }> {
  const holes = holesApp(name);
  if (holes !== undefined) return { listener: holes, kinds: ['plain'] };
  const [stack, side] = name.split(':') as [Stack, Side];
  if (!STACKS.includes(stack) || !SIDES.includes(side))
    throw new Error(`http-server: unknown app ${name} (<stack>:<side> of ${STACKS.join(', ')} and ${SIDES.join(', ')}, or holes-ours, one-timer)`);
  return { listener: (await buildApp(stack, side)).listener, kinds: kindsOf(side) };
}

const { listener, kinds } = await appOf(process.argv[2] ?? '');
serveMeasured(
  listener,
  kinds.map((kind) => KINDS[kind]),
);
