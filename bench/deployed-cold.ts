/**
 * The deployed section's hits in one process, warm and cold (`npm run bench -- deployed:cold`), for
 * reference, with no target. Each request is made on a socket that discards what it is sent, and
 * timed from the call of the application to the end of its response; ours, a second copy of ours and
 * the anchor take turns, round by round. With no socket's cost on either side, a change to a hit
 * shows here with less noise than over sockets, and larger: the rows over sockets are the ones judged.
 * Warm, one hit follows another and finds its code and data in the processor's caches. Cold, a sweep
 * of 64 MB goes before each hit, as a server's kernel, its other connections and its client pass
 * through the caches between two of its requests: a hit then pays for each line of code and data it
 * touches, and the fewer it touches, the less it pays.
 */
import { IncomingMessage, type RequestListener, ServerResponse } from 'node:http';
import { Duplex } from 'node:stream';
import { BROWSER_HEADERS, SIDES, type Stack } from './deployed-apps.js';
import { type Comparison, median, type Measurement, print } from './harness.js';

/** What is swept between two cold hits: more than the processor's last cache holds. */
const SWEPT_BYTES = 64 * 1024 * 1024;
const CACHE_LINE = 64;
const HITS_PER_ROUND = { warm: 2000, cold: 200 } as const;
const ROUNDS = 6;
const WARMUP_HITS = 3000;

/** A row: its name, then ours and its anchor, each a side of bench/deployed-apps.ts on a stack (`stack:side`). */
interface ColdRow {
  name: string;
  ours: string;
  anchorName: string;
  anchor: string;
}

const CART_HOLE = 'HIT of the product list with its cart hole';
const ROWS: ColdRow[] = [
  { name: `Express 5: ${CART_HOLE}`, ours: 'express:holes', anchorName: 'the filled page prebuilt', anchor: 'express:holes-prebuilt' },
  { name: `node:http: ${CART_HOLE}`, ours: 'node-http:holes', anchorName: 'the filled page prebuilt', anchor: 'node-http:holes-prebuilt' },
  {
    name: `Express 5: ${CART_HOLE}, compress`,
    ours: 'express:holes-compress',
    anchorName: 'the filled page gzipped once',
    anchor: 'express:holes-gzipped-once',
  },
  {
    name: 'Express 5: HIT of the product list without its hole, compress',
    ours: 'express:static-compress',
    anchorName: 'the page Brotli-compressed once',
    anchor: 'express:static-brotli-once',
  },
];

/** The application of a side of bench/deployed-apps.ts, named `stack:side`. */
function appOf(named: string): Promise<RequestListener> {
  const [stack, side] = named.split(':') as [Stack, string];
  return SIDES[side]!(stack);
}

const swept = new Uint8Array(SWEPT_BYTES);
/** Touches every line of `swept`, so that what a hit finds in the caches is what it brought there itself. */
function sweep(): void {
  for (let i = 0; i < swept.length; i += CACHE_LINE) swept[i]!++;
}

/** A socket that takes whatever it is sent and sends nothing. */
function discardingSocket(): Duplex {
  const socket = new Duplex({
    read() {},
    write: (_chunk, _encoding, done) => done(),
    writev: (_chunks, done) => done(),
  });
  return Object.assign(socket, { remoteAddress: '127.0.0.1', setTimeout: () => socket, setNoDelay: () => socket, setKeepAlive: () => socket });
}

const REQUEST_HEADERS = { host: '127.0.0.1', ...BROWSER_HEADERS };

/** One GET of `/` as a browser asks it, through `listener`: the microseconds from its call to the end of its response. */
function timedHit(listener: RequestListener, cold: boolean): Promise<number> {
  const socket = discardingSocket();
  const req = new IncomingMessage(socket as never);
  Object.assign(req, {
    method: 'GET',
    url: '/',
    httpVersion: '1.1',
    httpVersionMajor: 1,
    httpVersionMinor: 1,
    headers: { ...REQUEST_HEADERS },
    complete: true,
  });
  req.push(null);
  const res = new ServerResponse(req);
  res.assignSocket(socket as never);
  if (cold) sweep();
  return new Promise((resolve) => {
    const began = process.hrtime.bigint();
    res.on('finish', () => {
      const micros = Number(process.hrtime.bigint() - began) / 1000;
      res.detachSocket(socket as never);
      resolve(micros);
    });
    listener(req, res);
  });
}

/** The median time of `hits` hits through `listener`, one after the other. */
async function medianHit(listener: RequestListener, hits: number, cold: boolean): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < hits; i++) times.push(await timedHit(listener, cold));
  return median(times);
}

const asMeasurement = (micros: number): Measurement => ({ opsPerSec: 1e6 / micros, meanMicros: micros });

async function coldRow(row: ColdRow): Promise<Comparison[]> {
  const sides = {
    ours: await appOf(row.ours),
    again: await appOf(row.ours),
    anchor: await appOf(row.anchor),
  };
  for (const listener of Object.values(sides)) await medianHit(listener, WARMUP_HITS, false);
  const results: Comparison[] = [];
  for (const cold of [false, true]) {
    const times = { ours: [] as number[], again: [] as number[], anchor: [] as number[] };
    for (let round = 0; round < ROUNDS; round++) {
      const order = (round % 2 === 0 ? ['anchor', 'ours', 'again'] : ['again', 'ours', 'anchor']) as Array<keyof typeof sides>;
      for (const side of order) times[side].push(await medianHit(sides[side], HITS_PER_ROUND[cold ? 'cold' : 'warm'], cold));
    }
    const perRound = (against: number[]) => times.ours.map((ours, round) => against[round]! / ours);
    const result: Comparison = {
      section: 'deployed',
      name: `${row.name}, in one process, ${cold ? 'its caches swept before each hit' : 'warm'} (time of a hit)`,
      ours: asMeasurement(median(times.ours)),
      anchorName: row.anchorName,
      anchor: asMeasurement(median(times.anchor)),
      ratio: median(perRound(times.anchor)),
      spread: [Math.min(...perRound(times.anchor)), Math.max(...perRound(times.anchor))],
      sameBuild: median(perRound(times.again)),
    };
    print(result);
    results.push(result);
  }
  return results;
}

/** The rows of the hits of the deployed section, warm and cold, in one process. */
export async function coldRows(): Promise<Comparison[]> {
  const results: Comparison[] = [];
  for (const row of ROWS) results.push(...(await coldRow(row)));
  return results;
}
