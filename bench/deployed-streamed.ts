/**
 * The deployed benchmark's streamed row (`npm run bench -- deployed:streamed`): a HIT of the product
 * list whose cart hole takes 100 ms and whose recommendations hole takes 300 ms, on Express, timed
 * to the first byte of its body and to its end, with its holes streamed (to a browser that ran the
 * holes' script: the shell at once, each hole after it) against the same page filled in place.
 * Latencies, not CPU: each side is asked by 10 clients at a time, their first requests spread over
 * the page's time, each waiting for its answer before asking again, and a round's figure is the p50 of its requests. The targets: the first byte
 * under 5 ms, the whole page within 5 ms of its slowest hole, which a page waiting on one 300 ms
 * timer alone measures in the same rounds (a machine shared with other work runs timers late).
 */
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { type Comparison, lowerIsBetter, median, print } from './harness.js';
import { BROWSER_HEADERS } from './deployed-apps.js';
import { SLOW_RECOMMENDATIONS_MS } from './product-list.js';
import { type Server, startServer, stopServer } from './sockets.js';

const SERVER = fileURLToPath(new URL('./deployed-server.js', import.meta.url));
/** Clients asking at once, each one request at a time. */
const CLIENTS = 10;
const ROUND_SECONDS = 3;
const ROUNDS = 4;
/** A browser that ran the holes' script: it gets them out of order, the whole shell first. */
const STREAMED_HEADERS = { ...BROWSER_HEADERS, cookie: `${BROWSER_HEADERS.cookie}; cachegrain-holes=script` };

/** One request's times, in ms from its sending: to the first byte of its body, and to its end. */
interface Timing {
  firstByte: number;
  whole: number;
}

/** GETs `/` of `origin` over `agent`, timed; refuses an answer that is not the whole page (or, `streamed`, not streamed). */
function timed(agent: http.Agent, origin: string, headers: Record<string, string>, streamed: boolean): Promise<Timing> {
  const sentAt = performance.now();
  return new Promise((resolve, reject) => {
    http
      .get(`${origin}/`, { agent, headers }, (response) => {
        let firstByte: number | undefined;
        let tail = '';
        response.on('data', (chunk: Buffer) => {
          firstByte ??= performance.now() - sentAt;
          tail = (tail + chunk.toString('latin1')).slice(-200);
        });
        response.on('end', () => {
          const whole = performance.now() - sentAt;
          const complete = response.statusCode === 200 && response.headers['x-cache'] === 'HIT' && tail.trimEnd().endsWith('</html>');
          if (!complete || (streamed && !tail.includes('</template>'))) reject(new Error(`${origin}/ answered ${response.statusCode} ${tail}`));
          else resolve({ firstByte: firstByte!, whole });
        });
        response.on('error', reject);
      })
      .on('error', reject);
  });
}

/** The p50 first byte and whole page of `origin`'s page over `seconds`, asked by `CLIENTS` clients at once. */
async function p50s(origin: string, streamed: boolean): Promise<Timing> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
  const timings: Timing[] = [];
  const until = performance.now() + ROUND_SECONDS * 1000;
  const client = async (i: number) => {
    // Spread over the page's time: clients that all asked at once would ask again at once, each
    // first byte behind the others', where a site's visitors come one after another.
    await sleep((i * SLOW_RECOMMENDATIONS_MS) / CLIENTS);
    while (performance.now() < until) timings.push(await timed(agent, origin, streamed ? STREAMED_HEADERS : BROWSER_HEADERS, streamed));
  };
  try {
    await Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(i)));
  } finally {
    agent.destroy();
  }
  return { firstByte: median(timings.map((timing) => timing.firstByte)), whole: median(timings.map((timing) => timing.whole)) };
}

/** The servers of the unit: ours twice (for the same-build ratio), and the two anchors. */
const SIDES = { streamed: 'express:streamed', again: 'express:streamed', filled: 'express:filled', slowest: 'express:slowest-hole' } as const;
type Side = keyof typeof SIDES;

/** Each side's p50s, round by round, its servers run side by side and asked one at a time, the order flipping every round. */
async function rounds(): Promise<Map<Side, Timing[]>> {
  const sides = Object.keys(SIDES) as Side[];
  const servers = new Map<Side, Server>();
  const timings = new Map<Side, Timing[]>(sides.map((side) => [side, []]));
  try {
    for (const side of sides) servers.set(side, await startServer(SERVER, SIDES[side]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const side of round % 2 === 0 ? sides : [...sides].reverse())
        timings.get(side)!.push(await p50s(servers.get(side)!.origin, side === 'streamed' || side === 'again'));
    }
  } finally {
    for (const { child } of servers.values()) await stopServer(child);
  }
  return timings;
}

/**
 * The streamed rows: the first byte and the whole page, streamed against filled in place; and the
 * whole page against its slowest hole alone (the filled page sent after one 300 ms timer, as the
 * machine runs timers in the same rounds), which it must come within 5 ms of.
 */
export async function streamedRows(): Promise<Comparison[]> {
  const timings = await rounds();
  const figures = (side: Side, figure: keyof Timing) => timings.get(side)!.map((timing) => timing[figure]);
  const row = (figure: keyof Timing, name: string, anchor: { side: Side; name: string }, bound?: { ms: number; target: string }): Comparison => {
    const [ours, again, theirs] = [figures('streamed', figure), figures('again', figure), figures(anchor.side, figure)];
    const ratios = theirs.map((ms, i) => ms / ours[i]!);
    const result: Comparison = {
      section: 'deployed',
      name,
      unit: 'ms',
      ours: lowerIsBetter(median(ours)),
      anchorName: anchor.name,
      anchor: lowerIsBetter(median(theirs)),
      ratio: median(ratios),
      spread: [Math.min(...ratios), Math.max(...ratios)],
      sameBuild: median(again.map((ms, i) => ms / ours[i]!)),
    };
    if (bound !== undefined) Object.assign(result, { target: bound.target, threshold: { of: 'ms', value: bound.ms }, met: median(ours) < bound.ms });
    print(result);
    return result;
  };
  const page = 'Express 5: HIT of the product list with a 100 ms and a 300 ms hole, streamed';
  const filled = { side: 'filled', name: 'the same page filled in place' } as const;
  const slowestHole = median(figures('slowest', 'whole'));
  return [
    row('firstByte', `${page}: first byte (p50)`, filled, { ms: 5, target: '< 5 ms' }),
    row('whole', `${page}: whole page (p50)`, filled),
    row(
      'whole',
      `${page}: whole page (p50), against its slowest hole`,
      { side: 'slowest', name: 'the filled page after one 300 ms timer alone' },
      {
        ms: slowestHole + 5,
        target: `< ${(slowestHole + 5).toFixed(1)} ms, its slowest hole's + 5`,
      },
    ),
  ];
}
