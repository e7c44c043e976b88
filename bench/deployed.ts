/**
 * Pages as a deployed site serves them (`npm run bench -- deployed`): a 57 KB product list in
 * Nunjucks (bench/product-list.ts) behind the page cache on a locmem, its cart a hole in its
 * header, loaded by autocannon with 20 connections and a browser's `Accept-Encoding: gzip, deflate,
 * br, zstd`, judged by the server's CPU time per request, each row against the least a server can
 * do for it in the same run:
 * - a HIT of the page with its hole, against the framework sending the filled page prebuilt, on
 *   Express, node:http, Fastify, Koa and Hono;
 * - the same HIT with `compress` (gzip, its holes joined to the shell's parts deflated once),
 *   against Express sending the filled page gzipped once; and with compression() in front of the
 *   page cache, which passes its bytes through; beside them, with no target, that anchor with
 *   compression() in front of it: what compression() costs a response it passes through;
 * - a HIT of the page without its hole with `compress` (Brotli), against Express sending the page
 *   Brotli-compressed once at quality 11;
 * - the bytes of that page on the wire, against compression() after the page cache;
 * - a MISS of the page with its hole, every request a URL of its own (a locmem of 10,000 pages),
 *   against Express rendering the page with its cart written in and no page cache; beside it, with
 *   no target, that route keeping the bytes of its last 10,000 responses: what keeping the pages
 *   costs the server by itself, which any cache in the process pays;
 * - the first byte and the whole page of a HIT of the page with a 100 ms and a 300 ms hole, streamed
 *   against filled in place (bench/deployed-streamed.ts: latencies, not CPU);
 * - the hits above in one process, warm and with the processor's caches swept before each, for
 *   reference (bench/deployed-cold.ts): what the socket path adds to a hit.
 *
 * Each server runs in a process of its own (bench/deployed-server.ts); every row measures ours
 * against a second server of ours in the same rounds too, for the same-build ratio beside it.
 */
import { get, type IncomingHttpHeaders } from 'node:http';
import { fileURLToPath } from 'node:url';
import { type Comparison, median, medianOf, type Measurement, print, roundRatio } from './harness.js';
import { BROWSER_HEADERS, MISS_PAGES_KEPT, type Stack } from './deployed-apps.js';
import { load, type LoadRequest, type Server, startServer, stopServer, type Warmup, warmUp } from './sockets.js';
import { streamedRows } from './deployed-streamed.js';
import { coldRows } from './deployed-cold.js';

const SERVER = fileURLToPath(new URL('./deployed-server.js', import.meta.url));
const CONNECTIONS = 20;
/**
 * Each server is loaded this long, and on until it has served this many requests, before it is
 * measured (see `Warmup`): a hit is served thousands of times a second, a MISS a few hundred times,
 * and both are measured as a server that has been up a while runs them, its JIT done with them.
 */
const WARMUP: Warmup = { seconds: 3, requests: 5_000 };
const DURATION_SECONDS = 1;
/** Fresh sets of server processes per unit, and rounds run on each set (see bench/http.ts). */
const FRESH_SETS = 4;
const ROUNDS_PER_SET = 2;

const FRAMEWORK: Record<Stack, string> = { 'node-http': 'node:http', express: 'Express 5', fastify: 'Fastify 5', koa: 'Koa 3', hono: 'Hono 4' };
/** What every row asks: the product list, as a browser of the visitor asks it. */
const PAGE_REQUEST: LoadRequest = { path: '/', headers: BROWSER_HEADERS, status: 200 };

/**
 * A row: ours against its anchor, two servers of deployed-server.ts, with the target its ratio must
 * meet; a row with none is a reference, what a part of a deployment costs beside its anchor.
 */
interface Row {
  name: string;
  ours: string;
  anchorName: string;
  anchor: string;
  target?: number;
}

/** A HIT of the page with its hole, against the framework sending the filled page prebuilt (the first row, on each stack). */
const holeHit = (stack: Stack): Row => ({
  name: `${FRAMEWORK[stack]}: HIT of the product list with its cart hole`,
  ours: `${stack}:holes`,
  anchorName: `${FRAMEWORK[stack]} sending the filled page prebuilt`,
  anchor: `${stack}:holes-prebuilt`,
  target: 0.8,
});

/** The HIT of the page with its hole, with `compress` (and compression() in front), against the filled page gzipped once. */
const compressedHoleHit = (front: boolean): Row => ({
  name: `Express 5${front ? ', compression() in front' : ''}: HIT of the product list with its cart hole, compress`,
  ours: front ? 'express:holes-compress-front' : 'express:holes-compress',
  anchorName: 'Express 5 sending the filled page gzipped once',
  anchor: 'express:holes-gzipped-once',
  target: 0.8,
});

/**
 * The units the runner runs each in a process of its own, each a set of rows measured in the same
 * rounds. The hit of a page without holes over sockets, against each framework sending it prebuilt,
 * is the http section's.
 */
const UNITS: Record<string, Row[]> = {
  express: [holeHit('express')],
  'node-http': [holeHit('node-http')],
  fastify: [holeHit('fastify')],
  koa: [holeHit('koa')],
  hono: [holeHit('hono')],
  'express-gzip': [
    compressedHoleHit(false),
    compressedHoleHit(true),
    {
      name: 'Express 5, compression() in front: the filled page gzipped once, passed through (no page cache)',
      ours: 'express:holes-gzipped-once-front',
      anchorName: 'Express 5 sending the filled page gzipped once',
      anchor: 'express:holes-gzipped-once',
    },
  ],
  'express-miss': [
    {
      name: 'Express 5: MISS of the product list with its cart hole, every URL new',
      ours: 'express:miss',
      anchorName: 'Express 5 rendering the product list, its cart written in, with no page cache',
      anchor: 'express:miss-uncached',
      target: 0.8,
    },
    {
      name: `Express 5: the product list rendered with no page cache, the bytes of its last ${MISS_PAGES_KEPT.toLocaleString('en')} responses kept, every URL new`,
      ours: 'express:miss-uncached-kept',
      anchorName: 'Express 5 rendering the product list, its cart written in, with no page cache',
      anchor: 'express:miss-uncached',
    },
  ],
  'express-brotli': [
    {
      name: 'Express 5: HIT of the product list without its hole, compress',
      ours: 'express:static-compress',
      anchorName: 'Express 5 sending the page Brotli-compressed once (quality 11)',
      anchor: 'express:static-brotli-once',
      target: 0.9,
    },
  ],
};

/** The units each measured its own way: latencies (bench/deployed-streamed.ts), bytes, and hits in one process (bench/deployed-cold.ts). */
const LATENCY_UNITS: Record<string, () => Promise<Comparison[]>> = {
  streamed: streamedRows,
  bytes: bytesOnTheWire,
  cold: coldRows,
};

/** The most of compression()'s bytes ours may send for the page without its hole. */
const BYTES_TARGET = 0.85;

/** Each server's runs, set by set, round by round; `again:<app>` is the second server of ours. */
type Runs = Map<string, Measurement[][]>;

/**
 * The servers of a unit (each row's ours, a second ours, and its anchor) run side by side, each in
 * a fresh process warmed up (see `WARMUP`), and are loaded one at a time for 1 s each, the order flipping
 * every round; the rounds are spread over fresh sets of processes, whose offsets the second ours shows.
 */
async function socketRuns(rows: readonly Row[]): Promise<Runs> {
  const apps = [...new Set(rows.flatMap((row) => [row.anchor, row.ours, `again:${row.ours}`]))];
  const runs: Runs = new Map(apps.map((app) => [app, []]));
  for (let fresh = 0; fresh < FRESH_SETS; fresh++) {
    const servers = new Map<string, Server>();
    try {
      for (const app of apps) servers.set(app, await startServer(SERVER, app.replace(/^again:/, '')));
      for (const server of servers.values()) await warmUp(server.origin, PAGE_REQUEST, WARMUP, CONNECTIONS);
      for (const app of apps) runs.get(app)!.push([]);
      for (let round = 0; round < ROUNDS_PER_SET; round++) {
        for (const app of round % 2 === 0 ? apps : [...apps].reverse())
          runs
            .get(app)!
            .at(-1)!
            .push(await load(servers.get(app)!, PAGE_REQUEST, DURATION_SECONDS, CONNECTIONS));
      }
    } finally {
      for (const { child } of servers.values()) await stopServer(child);
    }
  }
  return runs;
}

/** The median over rounds of the anchor's CPU per request ÷ ours. */
const cpuRatio = (ours: Measurement[], anchor: Measurement[]) => median(ours.map((run, round) => roundRatio(run, anchor[round]!, 'cpu')));

function socketRow(row: Row, runs: Runs): Comparison {
  const ours = runs.get(row.ours)!;
  const anchor = runs.get(row.anchor)!;
  const again = runs.get(`again:${row.ours}`)!;
  const perSet = ours.map((set, i) => cpuRatio(set, anchor[i]!));
  const sameBuildPerSet = ours.map((set, i) => cpuRatio(set, again[i]!));
  const ratio = cpuRatio(ours.flat(), anchor.flat());
  const result: Comparison = {
    section: 'deployed',
    name: `${row.name} (server CPU per request)`,
    ours: medianOf(ours.flat()),
    anchorName: row.anchorName,
    anchor: medianOf(anchor.flat()),
    judgedBy: 'cpu',
    ratio,
    spread: [Math.min(...perSet), Math.max(...perSet)],
    sameBuild: cpuRatio(ours.flat(), again.flat()),
    sameBuildSpread: [Math.min(...sameBuildPerSet), Math.max(...sameBuildPerSet)],
  };
  if (row.target !== undefined) {
    result.target = `≥ ${row.target}×`;
    result.threshold = { of: 'ratio', value: row.target };
    result.met = ratio >= row.target;
  }
  print(result);
  return result;
}

/**
 * The bytes of the page without its hole on the wire, as a browser asks it: the page cache with
 * `compress` against the page cache with compression() after it (a copy per Accept-Encoding, each
 * compressed for the request that stores it). Counted once each: the bytes do not vary.
 */
async function bytesOnTheWire(): Promise<Comparison[]> {
  const sizes: number[] = [];
  for (const app of ['express:static-compress', 'express:static-compression-after']) {
    const server = await startServer(SERVER, app);
    try {
      sizes.push(await fetchedBytes(server.origin));
    } finally {
      await stopServer(server.child);
    }
  }
  const [ours, anchor] = sizes as [number, number];
  const asMeasurement = (bytes: number): Measurement => ({ opsPerSec: 1000 / (bytes / 1024), meanMicros: (bytes / 1024) * 1000 });
  const ratio = anchor / ours;
  const result: Comparison = {
    section: 'deployed',
    name: 'Express 5: bytes of the product list without its hole on the wire, compress',
    unit: 'KB',
    ours: asMeasurement(ours),
    anchorName: 'compression() after the page cache',
    anchor: asMeasurement(anchor),
    ratio,
    target: `≤ ${BYTES_TARGET}× its bytes`,
    threshold: { of: 'ratio', value: 1 / BYTES_TARGET },
    met: ratio >= 1 / BYTES_TARGET,
  };
  print(result);
  return [result];
}

/** The bytes of the body `origin` sends for `/` once it answers a HIT in Brotli (the page cache's, made behind; compression()'s, made for it). */
async function fetchedBytes(origin: string): Promise<number> {
  for (let tries = 0; tries < 500; tries++) {
    const reply = await rawGet(origin);
    if (reply.headers['x-cache'] === 'HIT' && reply.headers['content-encoding'] === 'br') return reply.body.length;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`${origin}/ never answered a HIT in Brotli`);
}

/** One GET of `/` as a browser asks it, its body as it came (not decoded). */
function rawGet(origin: string): Promise<{ headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    get(`${origin}/`, { headers: BROWSER_HEADERS, agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ headers: response.headers, body: Buffer.concat(chunks) }));
      response.on('error', reject);
    }).on('error', reject);
  });
}

export const units = [...Object.keys(UNITS), ...Object.keys(LATENCY_UNITS)];
/** Each unit spreads its rounds over fresh server processes of its own. */
export const processes = 1;

export async function run(unit?: string): Promise<Comparison[]> {
  const latencies = LATENCY_UNITS[unit ?? ''];
  if (latencies !== undefined) return latencies();
  const rows = UNITS[unit ?? ''];
  if (rows === undefined) throw new Error(`bench/deployed: runs one unit of ${units.join(', ')}, not ${String(unit)}`);
  const runs = await socketRuns(rows);
  return rows.map((row) => socketRow(row, runs));
}
