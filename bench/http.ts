/**
 * The page cache over HTTP, for each stack (node:http and Express through `cacheMiddleware`,
 * cachegrain/fastify, cachegrain/koa, cachegrain/hono): a plain hit, a hit of a page that varies on a
 * context, and a conditional GET answered 304, each against the same framework sending the same
 * status, headers and bytes from its first handler (its ceiling, bench/http-apps.ts); Express also
 * against apicache and route-cache. Measured two ways:
 * - over sockets, each server in a process of its own (bench/http-server.ts) loaded by autocannon in
 *   another, judged by the server's own CPU time per request: the load generator shares the machine's
 *   cores and moves requests per second by ±25% from one run to the next, the CPU a request costs
 *   the server much less;
 * - in process, through the framework's own injection, where no socket or load generator adds noise.
 * Every row also measures ours against a second copy of ours in the same rounds (a fresh server
 * process over sockets), for the same-build ratio beside it. And the latency of a hit whose page
 * holds three holes.
 */
import { fileURLToPath } from 'node:url';
import { Agent } from 'node:http';
import { setImmediate as setImmediatePromise } from 'node:timers/promises';
import { get, percentile, type Sample } from '../test/http/fixtures/load.js';
import { compare, type Comparison, median, medianOf, type Measurement, print, roundRatio } from './harness.js';
import { type BenchApp, buildApp, fill, KINDS, type Kind, kindsOf, type Side, type Stack, STACKS } from './http-apps.js';
import { autocannon, load as loadServer, type LoadRequest, type Server, startServer as startSocketServer, stopServer } from './sockets.js';
const WARMUP_SECONDS = 1;
const DURATION_SECONDS = 1;
/**
 * Fresh sets of server processes per stack, and rounds run on each set. A process carries an offset
 * of its own through all its rounds (where the JIT and the allocator put things), larger than a
 * round's noise: more sets of fewer rounds each average it out, so the same build reads 1.00.
 */
const FRESH_SETS = 4;
const ROUNDS_PER_SET = 2;
const CONNECTIONS = 50;
const SERVER = fileURLToPath(new URL('./http-server.js', import.meta.url));

const FRAMEWORK: Record<Stack, string> = { 'node-http': 'node:http', express: 'Express 5', fastify: 'Fastify 5', koa: 'Koa 3', hono: 'Hono 4' };
const ROW: Record<Kind, string> = { plain: 'hit', contexts: 'hit varying on cookie:theme', conditional: 'conditional GET answered 304' };
/**
 * What each side's row is judged against: the ceiling at least nearly reached, the other caches
 * matched. apicache and route-cache hit within 0.85–0.98× of Express's own ceiling, so the ceiling
 * is the row that binds, and against them a hit need only cost no more.
 */
const TARGET: Record<Exclude<Side, 'ours'>, number> = { ceiling: 0.95, apicache: 1.0, 'route-cache': 1.0 };

function anchorName(stack: Stack, side: Exclude<Side, 'ours'>, kind: Kind): string {
  if (side !== 'ceiling') return side;
  return `${FRAMEWORK[stack]} sending ${kind === 'conditional' ? 'a prebuilt 304' : 'the prebuilt bytes'}`;
}

/** The sides measured against ours on a stack (apicache and route-cache on Express, the plain hit alone). */
function anchorsOf(stack: Stack): Array<Exclude<Side, 'ours'>> {
  return stack === 'express' ? ['ceiling', 'apicache', 'route-cache'] : ['ceiling'];
}

/** The request of a row's kind, as the load asks it. */
const requestOf = (kind: Kind): LoadRequest => KINDS[kind];

const startServer = (app: string): Promise<Server> => startSocketServer(SERVER, app);
const load = (server: Server, kind: Kind, seconds: number): Promise<Measurement> => loadServer(server, requestOf(kind), seconds, CONNECTIONS);

/** Each side's runs, round by round, for each kind; `again` is the second server of ours. */
type Runs = Record<Kind, Map<Side | 'again', Measurement[][]>>;

/**
 * The servers of a stack (its ceiling, ours, a second ours, and for Express apicache and
 * route-cache) run side by side, each in a fresh process warmed up for 1 s (so the JIT has settled),
 * and are loaded one at a time: a round loads each server with each kind for 1 s, the order flipping
 * every round so that no side always runs just after another. On a shared machine the load from
 * elsewhere drifts, but the runs of one round, seconds apart, see much the same machine; the median
 * of the rounds' ratios is not moved by a round that caught a quiet (or a busy) moment for one side
 * only. A set of processes also has an offset of its own that holds for all its rounds (where the JIT
 * and the allocator happened to put things): the rounds are spread over fresh sets, and the second
 * server of ours, a process of its own, shows how far that offset alone moves a ratio.
 */
async function socketRuns(stack: Stack): Promise<Runs> {
  const sides: Array<Side | 'again'> = [...anchorsOf(stack), 'ours', 'again'];
  const runs = Object.fromEntries(Object.keys(KINDS).map((kind) => [kind, new Map(sides.map((side) => [side, [] as Measurement[][]]))])) as Runs;
  for (let fresh = 0; fresh < FRESH_SETS; fresh++) {
    const servers = new Map<Side | 'again', Server>();
    try {
      for (const side of sides) servers.set(side, await startServer(`${stack}:${side === 'again' ? 'ours' : side}`));
      for (const [side, server] of servers)
        for (const kind of kindsOf(side === 'again' ? 'ours' : side)) await autocannon(server.origin, requestOf(kind), WARMUP_SECONDS, CONNECTIONS);
      for (const kind of Object.keys(KINDS) as Kind[]) for (const side of sides) runs[kind].get(side)!.push([]);
      for (let round = 0; round < ROUNDS_PER_SET; round++) {
        for (const kind of Object.keys(KINDS) as Kind[]) {
          const asked = sides.filter((side) => kindsOf(side === 'again' ? 'ours' : side).includes(kind));
          for (const side of round % 2 === 0 ? asked : asked.reverse())
            runs[kind]
              .get(side)!
              .at(-1)!
              .push(await load(servers.get(side)!, kind, DURATION_SECONDS));
        }
      }
    } finally {
      for (const { child } of servers.values()) await stopServer(child);
    }
  }
  return runs;
}

/** The median over rounds of the anchor's CPU per request ÷ ours (higher is better, as a throughput's ratio). */
const cpuRatio = (ours: Measurement[], anchor: Measurement[]) => median(ours.map((run, round) => roundRatio(run, anchor[round]!, 'cpu')));

/** A row over sockets: ours against one anchor in CPU per request, with each fresh set's ratio and the same-build ratio beside it. */
function socketRow(stack: Stack, kind: Kind, side: Exclude<Side, 'ours'>, runs: Runs): Comparison {
  const ours = runs[kind].get('ours')!;
  const anchor = runs[kind].get(side)!;
  const again = runs[kind].get('again')!;
  const perSet = ours.map((set, i) => cpuRatio(set, anchor[i]!));
  const sameBuildPerSet = ours.map((set, i) => cpuRatio(set, again[i]!));
  const ratio = cpuRatio(ours.flat(), anchor.flat());
  const target = TARGET[side];
  const result: Comparison = {
    section: 'http',
    name: `${FRAMEWORK[stack]}: ${ROW[kind]}, sockets (server CPU per request)`,
    ours: medianOf(ours.flat()),
    anchorName: anchorName(stack, side, kind),
    anchor: medianOf(anchor.flat()),
    judgedBy: 'cpu',
    ratio,
    target: `≥ ${target}×`,
    threshold: { of: 'ratio', value: target },
    met: ratio >= target,
    spread: [Math.min(...perSet), Math.max(...perSet)],
    sameBuild: cpuRatio(ours.flat(), again.flat()),
    sameBuildSpread: [Math.min(...sameBuildPerSet), Math.max(...sameBuildPerSet)],
  };
  print(result);
  console.log(
    `${''.padEnd(13)}rounds: ${ours
      .flat()
      .map((run, round) => `${(anchor.flat()[round]!.cpuMicros! / run.cpuMicros!).toFixed(2)}×`)
      .join(' ')}`,
  );
  return result;
}

async function overSockets(stack: Stack): Promise<Comparison[]> {
  const runs = await socketRuns(stack);
  return anchorsOf(stack).flatMap((side) => kindsOf(side).map((kind) => socketRow(stack, kind, side, runs)));
}

/** How long each in-process measurement runs, and its warm-up: three sides a round, five rounds a row. */
const IN_PROCESS = { durationMs: 300, warmupMs: 100, judgedBy: 'cpu' } as const;

/**
 * The same rows in process: each request through the framework's own injection (light-my-request,
 * Fastify's `inject`), ours and its anchor in the same process, interleaved in the same rounds. The
 * ratio is of CPU time per request, the injection's own cost on both sides; operations per second
 * stand beside it.
 */
async function inProcess(stack: Stack): Promise<Comparison[]> {
  // An injected response leaves work for the event loop's next turn (its timers, its sockets' ends),
  // which a loop of awaited injections never reaches: that work would pile up and slow every later
  // request. A server turns the loop between requests; here both sides turn it every few.
  const turning = (app: BenchApp, kind: Kind) => (i: number) => (i % 16 === 15 ? app.inject(kind).then(() => setImmediatePromise()) : app.inject(kind));
  const ours = await buildApp(stack, 'ours');
  await fill(ours, 'ours');
  const results: Comparison[] = [];
  for (const side of anchorsOf(stack)) {
    const anchor = await buildApp(stack, side);
    await fill(anchor, side);
    for (const kind of kindsOf(side)) {
      const name = `${FRAMEWORK[stack]}: ${ROW[kind]}, in process`;
      results.push(
        await compare('http', name, turning(ours, kind), anchorName(stack, side, kind), turning(anchor, kind), { ...IN_PROCESS, target: TARGET[side] }),
      );
    }
  }
  return results;
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
  const again = await startServer('holes-ours');
  const anchor = await startServer('one-timer');
  const p50s = new Map<Server, number[]>([ours, again, anchor].map((server) => [server, []]));
  try {
    for (let round = 0; round < HOLES_ROUNDS; round++) {
      for (const side of round % 2 === 0 ? [anchor, ours, again] : [again, ours, anchor])
        p50s.get(side)!.push(await p50(`${side.origin}/page`, HOLES_ROUND_MS));
    }
  } finally {
    await Promise.all([ours, again, anchor].map((server) => stopServer(server.child)));
  }
  const [oursP50, againP50, anchorP50] = [p50s.get(ours)!, p50s.get(again)!, p50s.get(anchor)!];
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
    sameBuild: median(againP50.map((againMs, round) => againMs / oursP50[round]!)),
  };
  print(result);
  return result;
}

/** Each stack's rows over sockets and in process, and the holes row: units the runner runs on their own. */
const UNITS: Record<string, () => Promise<Comparison[]>> = {
  ...Object.fromEntries(STACKS.map((stack) => [stack, () => overSockets(stack)])),
  ...Object.fromEntries(STACKS.map((stack) => [`${stack}-in-process`, () => inProcess(stack)])),
  holes: async () => [await holesLatency()],
};

export const units = Object.keys(UNITS);
/** The socket units spread their rounds over fresh server processes of their own; the in-process ones run in the runner's count of processes. */
export const processes = (unit: string): number | undefined => (unit.endsWith('-in-process') ? undefined : 1);

export async function run(unit?: string): Promise<Comparison[]> {
  const comparison = UNITS[unit ?? ''];
  if (comparison === undefined) throw new Error(`bench/http: runs one comparison of ${units.join(', ')}, not ${String(unit)}`);
  return comparison();
}
