/**
 * The site of the outage test (test/http/fixtures/outage-site.ts: pages, view calls and a fragment on
 * one Redis with `failOpen`) under load once its Redis is killed and the breaker is open: p50 and p99
 * latency against the same site with that Redis healthy, and against the same pages rendered with no
 * cache at all (what a dead cache adds to the view), in the same run. Each round measures the
 * uncached site and the healthy one, kills Redis, waits for the breaker to open, measures again, and
 * restarts Redis on its port; the ratio is the median of the rounds'.
 */
import { fileURLToPath } from 'node:url';
import { load, percentile, type Sample } from '../test/http/fixtures/load.js';
import { type SiteProcess, startSiteProcess } from '../test/http/fixtures/site-process.js';
import { type RedisServer, startRedisServer } from '../test/setup/redis.js';
import { type Comparison, median, print } from './harness.js';

const ROUNDS = 5;
const WARMUP_MS = 1000;
const MEASURE_MS = 3000;
const CONNECTIONS = 20;
const PAGES = 40;
const TIMEOUT_MS = 100;
const SITE = new URL('../test/http/fixtures/outage-site.js', import.meta.url);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The samples of requests sent after a warm-up, under load on `url`. */
async function measureLoad(url: string): Promise<Sample[]> {
  const traffic = load(url, CONNECTIONS, PAGES);
  await sleep(WARMUP_MS + MEASURE_MS);
  await traffic.stop();
  const failed = traffic.samples.filter((sample) => sample.status !== 200).length;
  if (failed > 0) throw new Error(`${url}: ${failed} requests failed`);
  return traffic.samples.filter((sample) => sample.sentAt >= WARMUP_MS);
}

/** Polls the site until its page cache's breaker is in `state`. */
async function breakerBecomes(site: SiteProcess, state: 'open' | 'closed'): Promise<void> {
  for (;;) {
    const health = (await fetch(`${site.url}/health`).then((reply) => reply.json())) as Array<{ state: string }>;
    if (health[0]?.state === state) return;
    await sleep(50);
  }
}

interface Latencies {
  p50: number;
  p99: number;
}

const latencies = (samples: Sample[]): Latencies => ({ p50: percentile(samples, 0.5), p99: percentile(samples, 0.99) });

/** Its rounds each start the site afresh and kill its Redis: one process is enough, and takes long. */
export const processes = 1;

export async function run(): Promise<Comparison[]> {
  let redis: RedisServer = await startRedisServer();
  const site = await startSiteProcess(SITE, { OUTAGE_REDIS_URL: redis.url, OUTAGE_TIMEOUT_MS: String(TIMEOUT_MS) });
  const uncachedSite = await startSiteProcess(SITE, { OUTAGE_REDIS_URL: redis.url, OUTAGE_TIMEOUT_MS: String(TIMEOUT_MS), OUTAGE_LAYER: 'none' });
  const uncached: Latencies[] = [];
  const healthy: Latencies[] = [];
  const outage: Latencies[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      uncached.push(latencies(await measureLoad(uncachedSite.url)));
      healthy.push(latencies(await measureLoad(site.url)));
      await redis.stop();
      // Requests make the cache notice the outage; the breaker opens after a few failures.
      const traffic = load(site.url, CONNECTIONS, PAGES);
      await breakerBecomes(site, 'open');
      await traffic.stop();
      outage.push(latencies(await measureLoad(site.url)));
      redis = await startRedisServer({ port: redis.port });
      const recovering = load(site.url, CONNECTIONS, PAGES);
      await breakerBecomes(site, 'closed');
      await recovering.stop();
    }
  } finally {
    await Promise.all([site.close(), uncachedSite.close()]);
    await redis.stop();
  }
  return [
    ...(['p50', 'p99'] as const).map((figure) => compared(figure, outage, healthy, 'the same site, Redis healthy')),
    ...(['p50', 'p99'] as const).map((figure) => compared(figure, outage, uncached, 'the same pages, no cache')),
  ];
}

/** A latency comparison: each side's median over the rounds, and the median of the rounds' ratios (anchor ÷ outage: higher is better). */
function compared(figure: 'p50' | 'p99', outage: Latencies[], anchor: Latencies[], anchorName: string): Comparison {
  const asMeasurement = (ms: number) => ({ opsPerSec: 1000 / ms, meanMicros: ms * 1000 });
  const result: Comparison = {
    section: 'outage',
    name: `${figure} latency, Redis killed, breaker open`,
    unit: 'ms',
    ours: asMeasurement(median(outage.map((round) => round[figure]))),
    anchorName,
    anchor: asMeasurement(median(anchor.map((round) => round[figure]))),
    ratio: median(anchor.map((round, i) => round[figure] / outage[i]![figure])),
  };
  print(result);
  return result;
}
