/**
 * The page cache over HTTP: a cache hit through `cacheMiddleware` (Express, node:http) and through
 * cachegrain/fastify, cachegrain/koa and cachegrain/hono, each against a server of the same framework
 * that sends the same prebuilt bytes from its first handler (the ceilings), and against apicache and route-cache;
 * and the latency of a hit whose page holds three holes.
 * Each server runs in a process of its own (bench/http-server.ts), started afresh for each comparison;
 * load comes from autocannon in another, so the server under test has a core to itself.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Agent } from 'node:http';
import { get, percentile, type Sample } from '../test/http/fixtures/load.js';
import { type Comparison, compared, median, type Measurement, print } from './harness.js';

const require = createRequire(import.meta.url);
const WARMUP_SECONDS = 1;
const DURATION_SECONDS = 1;
/** Fresh pairs of server processes per comparison, and rounds run on each pair. */
const PAIRS = 3;
const ROUNDS_PER_PAIR = 8;
const CONNECTIONS = 50;
const SERVER = fileURLToPath(new URL('./http-server.js', import.meta.url));

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

/** Starts the named server of bench/http-server.ts in a fresh process; answers it and the URL of its page, in the cache. */
async function startServer(app: string): Promise<{ child: ChildProcess; url: string }> {
  const child = fork(SERVER, [app], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv: [] });
  const ready = once(child, 'message') as Promise<[{ url: string }]>;
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`the ${app} server exited with ${String(code)} before it was ready`);
  });
  const [{ url }] = await Promise.race([ready, exited]);
  return { child, url };
}

async function stopServer(child: ChildProcess): Promise<void> {
  const exited = child.exitCode === null ? once(child, 'exit') : Promise.resolve();
  child.kill();
  await exited;
}

/** A comparison of the runs of `pair`, with each round's ratio shown. */
function comparedPair(name: string, pair: Pair, anchorName: string, target?: number): Comparison {
  const result = compared('http', name, pair.ours, anchorName, pair.anchor, target);
  print(result);
  console.log(`${''.padEnd(13)}rounds: ${pair.ours.map((run, round) => `${(run.opsPerSec / pair.anchor[round]!.opsPerSec).toFixed(2)}×`).join(' ')}`);
  return result;
}

interface Pair {
  /** Round by round: the anchor's run and ours, one just after the other. */
  anchor: Measurement[];
  ours: Measurement[];
}

/**
 * Both servers run side by side, each in a fresh process warmed up for 1 s (so the JIT has settled),
 * and are loaded in turn, one at a time: a round is a 1 s run of each, the order flipping every round
 * so that neither always runs just after the other. The ratio is the median of the rounds' ratios: on
 * a shared machine the load from elsewhere drifts and one run over loopback swings by more than the
 * gap measured here, but the two runs of one round, a second apart, see much the same machine, and
 * the median is not moved by a round that caught a quiet (or a busy) moment for one side only, as the
 * best of each side's runs is. A pair of processes also has an offset of its own that holds for all
 * its rounds (where the JIT and the allocator happened to put things), so the rounds are spread over
 * several fresh pairs.
 */
async function rounds(ours: string, anchor: string): Promise<Pair> {
  const pair: Pair = { anchor: [], ours: [] };
  for (let fresh = 0; fresh < PAIRS; fresh++) {
    const servers = new Map<string, { child: ChildProcess; url: string }>();
    try {
      for (const app of [anchor, ours]) servers.set(app, await startServer(app));
      for (const app of [anchor, ours]) await autocannon(servers.get(app)!.url, WARMUP_SECONDS);
      for (let round = 0; round < ROUNDS_PER_PAIR; round++) {
        for (const app of round % 2 === 0 ? [anchor, ours] : [ours, anchor]) {
          const rate = await autocannon(servers.get(app)!.url, DURATION_SECONDS);
          (app === anchor ? pair.anchor : pair.ours).push({ opsPerSec: rate, meanMicros: 1e6 / rate });
        }
      }
    } finally {
      for (const { child } of servers.values()) await stopServer(child);
    }
  }
  return pair;
}

/** How long each round of the holes row asks its page, one request at a time, and how many rounds it takes. */
const HOLES_ROUND_MS = 1500;
const HOLES_ROUNDS = 6;

/** The p50 latency (ms) of `url` asked one request at a time over a kept-alive connection for `ms`. */
async function p50(url: string, ms: number): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const samples: Sample[] = [];
  const began = performance.now();
  try {
    while (performance.now() - began < ms) {
      const sentAt = performance.now();
      const reply = await get(agent, url);
      if (reply.status !== 200) throw new Error(`${url} answered ${reply.status}`);
      samples.push({ sentAt, ms: performance.now() - sentAt, ...reply });
    }
  } finally {
    agent.destroy();
  }
  return percentile(samples, 0.5);
}

/**
 * A page-cache hit whose page holds three holes, each builder awaiting a 5 ms timer: p50 latency,
 * one request at a time, against a view that awaits one such timer. The builders run at once, so
 * the hit costs one wait, not three (target: under 10 ms).
 */
export async function holesLatency(): Promise<Comparison> {
  const ours = await startServer('holes-ours');
  const anchor = await startServer('one-timer');
  const oursP50: number[] = [];
  const anchorP50: number[] = [];
  try {
    for (let round = 0; round < HOLES_ROUNDS; round++) {
      for (const side of round % 2 === 0 ? [anchor, ours] : [ours, anchor]) {
        (side === ours ? oursP50 : anchorP50).push(await p50(side.url, HOLES_ROUND_MS));
      }
    }
  } finally {
    await Promise.all([stopServer(ours.child), stopServer(anchor.child)]);
  }
  const asMeasurement = (ms: number): Measurement => ({ opsPerSec: 1000 / ms, meanMicros: ms * 1000 });
  const result: Comparison = {
    section: 'http',
    name: 'p50 of a hit with 3 holes, each builder 5 ms',
    unit: 'ms',
    ours: asMeasurement(median(oursP50)),
    anchorName: 'a view awaiting one 5 ms timer',
    anchor: asMeasurement(median(anchorP50)),
    ratio: median(anchorP50.map((anchorMs, round) => anchorMs / oursP50[round]!)),
    target: '< 10 ms',
    threshold: { of: 'ms', value: 10 },
    met: median(oursP50) < 10,
  };
  print(result);
  return result;
}

/** Each comparison, a unit the runner runs on its own: the servers it loads are started afresh for it. */
const UNITS = {
  express: async () =>
    comparedPair('hit via cacheMiddleware, Express 5', await rounds('express-ours', 'express-ceiling'), 'Express sending prebuilt bytes', 0.95),
  'node-http': async () => comparedPair('hit via cacheMiddleware, node:http', await rounds('bare-ours', 'bare-ceiling'), 'node:http sending prebuilt bytes'),
  fastify: async () => comparedPair('page hit, Fastify', await rounds('fastify-ours', 'fastify-ceiling'), 'Fastify sending prebuilt bytes', 0.95),
  koa: async () => comparedPair('page hit, Koa', await rounds('koa-ours', 'koa-ceiling'), 'Koa sending prebuilt bytes', 0.95),
  hono: async () => comparedPair('page hit, Hono', await rounds('hono-ours', 'hono-ceiling'), 'Hono sending prebuilt bytes', 0.95),
  apicache: async () => comparedPair('hit via cacheMiddleware, Express 5', await rounds('express-ours', 'apicache'), 'apicache', 1),
  'route-cache': async () => comparedPair('hit via cacheMiddleware, Express 5', await rounds('express-ours', 'route-cache'), 'route-cache', 1),
  holes: holesLatency,
} satisfies Record<string, () => Promise<Comparison>>;

export const units = Object.keys(UNITS);
/** Each comparison already spreads its rounds over fresh pairs of server processes. */
export const processes = 1;

export async function run(unit?: string): Promise<Comparison[]> {
  const comparison = UNITS[unit as keyof typeof UNITS];
  if (comparison === undefined) throw new Error(`bench/http: runs one comparison of ${units.join(', ')}, not ${String(unit)}`);
  return [await comparison()];
}
