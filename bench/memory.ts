/**
 * What the page cache holds in memory as a site is asked for ever new URLs (random query strings,
 * say): 100,000 distinct URLs over HTTP through `cacheMiddleware` on a locmem of 1,000 entries, its
 * pages tagged and its operations watched by a subscriber. The most the server's heap (with the
 * memory its objects hold outside it) came to while asked for them, against its own heap before them
 * (target: at most 64 MB over it), and against the same server without the page cache asked for the
 * same URLs. Each server runs in a fresh process (bench/memory-server.ts); its garbage is collected
 * before each reading.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { Agent, get } from 'node:http';
import { fileURLToPath } from 'node:url';
import { type Comparison, lowerIsBetter, print } from './harness.js';
import type { HeapReport, MemoryApp } from './memory-server.js';

const SERVER = fileURLToPath(new URL('./memory-server.js', import.meta.url));
/** Distinct URLs asked for after the baseline reading. */
const URLS = 100_000;
/** How many URLs apart the heap is read. */
const READ_EVERY = 10_000;
/** Distinct URLs asked for first, so that the code has run and the store is full before the baseline. */
const WARMUP_URLS = 5_000;
/** Requests in flight at once, each on a kept-alive connection. */
const IN_FLIGHT = 8;
/** Items of the site: every URL is one of their pages with a query string of its own. */
const ITEMS = 1000;
/** The most the page cache may hold over its baseline while asked for `URLS` distinct URLs, in MB. */
const TARGET_MB = 64;
const MB = 2 ** 20;

interface Server {
  child: ChildProcess;
  url: string;
}

async function startServer(app: MemoryApp): Promise<Server> {
  const child = fork(SERVER, [app], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv: ['--expose-gc'] });
  const ready = once(child, 'message') as Promise<[{ url: string }]>;
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`the ${app} memory server exited with ${String(code)} before it was ready`);
  });
  const [{ url }] = await Promise.race([ready, exited]);
  return { child, url };
}

async function stopServer({ child }: Server): Promise<void> {
  const exited = child.exitCode === null ? once(child, 'exit') : Promise.resolve();
  child.kill();
  await exited;
}

/** The server's heap and buffers in MB, after a full collection. */
async function heapMb({ child }: Server): Promise<number> {
  const reply = once(child, 'message') as Promise<[HeapReport]>;
  child.send('heap');
  const [{ bytes }] = await reply;
  return bytes / MB;
}

/** Asks for the URLs numbered `from` up to `to`, each a page of its own (`?v=` the number), `IN_FLIGHT` at a time. */
async function askFor({ url }: Server, from: number, to: number): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
  let next = from;
  const one = (path: string) =>
    new Promise<void>((resolve, reject) => {
      get(`${url}${path}`, { agent }, (reply) => {
        if (reply.statusCode !== 200) reject(new Error(`${path} answered ${reply.statusCode}`));
        reply.resume().on('end', resolve).on('error', reject);
      }).on('error', reject);
    });
  try {
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < to) {
          const n = next++;
          await one(`/items/${n % ITEMS}?v=${n}`);
        }
      }),
    );
  } finally {
    agent.destroy();
  }
}

/**
 * The server's heap before `URLS` distinct URLs (warmed up first) and the most it held while asked
 * for them, read every `READ_EVERY` URLs: a memo that starts afresh when full holds least just after.
 */
async function heapsOf(app: MemoryApp): Promise<{ before: number; most: number }> {
  const server = await startServer(app);
  try {
    await askFor(server, 0, WARMUP_URLS);
    const before = await heapMb(server);
    let most = before;
    for (let from = WARMUP_URLS; from < WARMUP_URLS + URLS; from += READ_EVERY) {
      await askFor(server, from, from + READ_EVERY);
      most = Math.max(most, await heapMb(server));
    }
    console.log(`${''.padEnd(13)}${app}: ${before.toFixed(1)} MB before, at most ${most.toFixed(1)} MB over ${URLS.toLocaleString('en-US')} distinct URLs`);
    return { before, most };
  } finally {
    await stopServer(server);
  }
}

const NAME = 'most heap over 100,000 distinct URLs via cacheMiddleware (locmem, maxEntries 1000, tags, a subscriber)';

export async function run(): Promise<Comparison[]> {
  const ours = await heapsOf('ours');
  const anchor = await heapsOf('anchor');
  const overBaseline: Comparison = {
    section: 'memory',
    name: NAME,
    unit: 'MB',
    ours: lowerIsBetter(ours.most),
    anchorName: 'its heap before them',
    anchor: lowerIsBetter(ours.before),
    ratio: ours.before / ours.most,
    target: `≤ ${TARGET_MB} MB over the anchor`,
    threshold: { of: 'MB over anchor', value: TARGET_MB },
    met: ours.most - ours.before <= TARGET_MB,
  };
  const overNoCache: Comparison = {
    section: 'memory',
    name: NAME,
    unit: 'MB',
    ours: lowerIsBetter(ours.most),
    anchorName: 'the same server without the page cache',
    anchor: lowerIsBetter(anchor.most),
    ratio: anchor.most / ours.most,
  };
  for (const row of [overBaseline, overNoCache]) print(row);
  return [overBaseline, overNoCache];
}

/** One process: the servers it reads are fresh processes of their own, and a heap does not swing as a throughput does. */
export const processes = 1;
