/**
 * The page cache over HTTP: a cache hit through `cacheMiddleware` against servers that send the
 * same prebuilt bytes from their first handler (the ceilings), and against apicache and route-cache.
 * Load comes from autocannon in a child process, so the server under test keeps this one's CPU.
 */
import { spawn } from 'node:child_process';
import http, { type RequestListener, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { cacheMiddleware } from '../adapters/express.js';
import { LocMemCache } from '../src/index.js';
import { type Comparison, type Measurement, print } from './harness.js';

const require = createRequire(import.meta.url);
const DURATION_SECONDS = 3;
const HTTP_ROUNDS = 5;
const CONNECTIONS = 50;
const PAGE = Buffer.from(`<!doctype html><title>Page</title>${'<p>Some cached paragraph of a page.</p>'.repeat(50)}`);

function view(_req: unknown, res: http.ServerResponse): void {
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.end(PAGE);
}

/** The headers a hit sends, for the ceilings to send as well. */
const PREBUILT = [
  'Content-Type',
  'text/html; charset=utf-8',
  'Cache-Control',
  'max-age=600',
  'Expires',
  new Date(Date.now() + 600_000).toUTCString(),
  'Content-Length',
  String(PAGE.length),
  'Age',
  '0',
  'X-Cache',
  'HIT',
];

/** Runs autocannon against the URL in a child process; answers requests per second. */
async function autocannon(url: string, seconds: number): Promise<number> {
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [require.resolve('autocannon/autocannon.js'), '-c', String(CONNECTIONS), '-d', String(seconds), '-j', url], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let text = '';
    child.stdout.on('data', (chunk) => (text += chunk));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`autocannon exited with ${code}`))));
  });
  const result = JSON.parse(output) as { requests: { average: number }; non2xx: number; errors: number };
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${url}: ${result.non2xx} non-2xx replies, ${result.errors} errors`);
  return result.requests.average;
}

/** One server's throughput: a 1 s warm-up (so the JIT has settled), then the measured run. */
async function load(handler: RequestListener): Promise<Measurement> {
  const server: Server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/page`;
  try {
    await fetch(url).then((reply) => reply.arrayBuffer()); // fills the cache
    // The same clean heap for every run, whatever ran before in this process.
    globalThis.gc?.();
    await autocannon(url, 1);
    const rate = await autocannon(url, DURATION_SECONDS);
    return { opsPerSec: rate, meanMicros: 1e6 / rate };
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

function compared(name: string, ours: Measurement, anchorName: string, anchor: Measurement, target?: number): Comparison {
  const result: Comparison = { section: 'http', name, ours, anchorName, anchor, ratio: ours.opsPerSec / anchor.opsPerSec };
  if (target !== undefined) {
    result.target = `≥ ${target}×`;
    result.met = result.ratio >= target;
  }
  print(result);
  return result;
}

export async function run(): Promise<Comparison[]> {
  const cache = new LocMemCache({ location: 'bench-http', options: { maxEntries: 10_000 } });

  const ceilingApp = express();
  ceilingApp.use((_req, res) => void res.writeHead(200, PREBUILT).end(PAGE));
  const cachedApp = express();
  cachedApp.use(cacheMiddleware({ cache }), view as never);
  const apicache = require('apicache') as { middleware(duration: string): express.RequestHandler };
  const apicacheApp = express();
  apicacheApp.get('/page', apicache.middleware('10 minutes'), view as never);
  const routeCache = require('route-cache') as { cacheSeconds(seconds: number): express.RequestHandler };
  const routeCacheApp = express();
  routeCacheApp.get('/page', routeCache.cacheSeconds(600), view as never);

  const bareCached = cacheMiddleware({ cache, keyPrefix: 'bare' });
  const bareHandler: RequestListener = (req, res) => bareCached(req, res, () => view(req, res));
  const bareCeiling: RequestListener = (_req, res) => void res.writeHead(200, PREBUILT).end(PAGE);

  // Anchor and ours alternate and each keeps its best run, as the harness's `compare` does; five
  // rounds rather than three, because a run over loopback swings by more than the gap measured here.
  const best = async (handler: RequestListener, other: RequestListener) => {
    let anchor: Measurement | undefined;
    let ours: Measurement | undefined;
    for (let round = 0; round < HTTP_ROUNDS; round++) {
      const a = await load(other);
      const o = await load(handler);
      if (anchor === undefined || a.opsPerSec > anchor.opsPerSec) anchor = a;
      if (ours === undefined || o.opsPerSec > ours.opsPerSec) ours = o;
    }
    return [anchor!, ours!] as const;
  };
  const [expressCeiling, expressOurs] = await best(cachedApp as never, ceilingApp as never);
  const [bareAnchor, bareOurs] = await best(bareHandler, bareCeiling);
  const [apicacheRate, oursBesideApicache] = await best(cachedApp as never, apicacheApp as never);
  const [routeCacheRate, oursBesideRouteCache] = await best(cachedApp as never, routeCacheApp as never);
  await cache.close();
  return [
    compared('hit via cacheMiddleware, Express 5', expressOurs, 'Express sending prebuilt bytes', expressCeiling, 0.95),
    compared('hit via cacheMiddleware, node:http', bareOurs, 'node:http sending prebuilt bytes', bareAnchor),
    compared('hit via cacheMiddleware, Express 5', oursBesideApicache, 'apicache', apicacheRate, 1),
    compared('hit via cacheMiddleware, Express 5', oursBesideRouteCache, 'route-cache', routeCacheRate, 1),
  ];
}
