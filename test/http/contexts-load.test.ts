/**
 * Cache contexts under load, over real HTTP: two site processes (`fixtures/contexts-site.ts`) share one real
 * Redis, as two servers behind a load balancer do. 200 visitors, each with a session cookie of their
 * own, one of 2 themes and one of 2 roles, ask for every page, whose fragments vary on `cookie:theme`
 * and `user.roles`; then 200 more do. For those, nearly every page is a hit (the pages are stored once
 * per theme and role, not once per visitor), and in the whole run no response carries another theme's
 * or another role's fragment. The same site built with `Vary: Cookie` is measured beside it, where
 * the visitors after the warm-up find no copy of their own.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from './client.js';
import { type SiteProcess, startSiteProcess } from './fixtures/site-process.js';
import { STACK_NAMES, stackKey } from './stacks.js';

const redisUrl = process.env.CACHEGRAIN_TEST_REDIS_URL;
const VISITORS = 200;
const PAGES = 10;
const IN_FLIGHT = 16;
const THEMES = ['dark', 'light'];
const ROLES = ['editor', 'reader'];
// One host for both processes (as behind a load balancer), so that they share every page key.
const HOST = 'shop.example';

interface Visitor {
  cookie: string;
  theme: string;
  role: string;
}

/** VISITORS visitors, each with a session of their own, the themes and roles spread evenly among them. */
const crowd = (): Visitor[] =>
  Array.from({ length: VISITORS }, (_, i) => {
    const theme = THEMES[i % 2]!;
    const role = ROLES[Math.floor(i / 2) % 2]!;
    return { theme, role, cookie: `session=${randomUUID()}; theme=${theme}; role=${role}` };
  });

/** What a round of requests found: how many were hits, and how many carried another visitor's theme or role. */
interface Round {
  requests: number;
  hits: number;
  wrong: string[];
}

/** Every visitor asks for every page once, each in their own order, alternately of the two processes, IN_FLIGHT at a time. */
async function round(sites: SiteProcess[], visitors: Visitor[], seed: number): Promise<Round> {
  const asks = visitors.flatMap((visitor, v) =>
    Array.from({ length: PAGES }, (_, p) => ({ visitor, page: ((p + v + seed) % PAGES) + 1, site: sites[(v + p) % 2]! })),
  );
  const result: Round = { requests: 0, hits: 0, wrong: [] };
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < asks.length) {
        const { visitor, page, site } = asks[next++]!;
        const reply = await send(site.url, `/p/${page}`, { headers: { Host: HOST, Cookie: visitor.cookie } });
        result.requests++;
        if (reply.status !== 200) throw new Error(`/p/${page} answered ${reply.status}: ${reply.text}`);
        if (reply.headers['x-cache'] === 'HIT') result.hits++;
        const theme = /theme:(\w+)/.exec(reply.text)?.[1];
        const role = /role:(\w+)/.exec(reply.text)?.[1];
        if (theme !== visitor.theme || role !== visitor.role) {
          result.wrong.push(`/p/${page} for ${visitor.theme}/${visitor.role} carried ${theme}/${role} (${reply.headers['x-cache']})`);
        }
      }
    }),
  );
  return result;
}

/** The stack the sites run on: set as its tests begin. */
let stack = '';

function sitePair(prefix: string, env: Record<string, string> = {}): SiteProcess[] {
  const sites: SiteProcess[] = [];
  beforeAll(async () => {
    if (redisUrl === undefined) throw new Error('CACHEGRAIN_TEST_REDIS_URL is not set: the test setup starts redis-server (Debian package redis-server)');
    const start = () =>
      startSiteProcess(new URL('./fixtures/contexts-site.ts', import.meta.url), {
        CACHEGRAIN_TEST_STACK: stack,
        SITE_KEY_PREFIX: `${prefix}${process.pid}${stackKey(stack)}`,
        ...env,
      });
    sites.push(...(await Promise.all([start(), start()])));
  }, 30_000);
  afterAll(() => Promise.all(sites.map((site) => site.close())));
  return sites;
}

const ratio = (round: Round) => round.hits / round.requests;
const measured: Record<string, number> = {};

describe.each(STACK_NAMES)('on %s', (name) => {
  beforeAll(() => {
    stack = name;
  });
  describe('pages that vary on a theme cookie and a role, two processes on one Redis, 200 visitors', () => {
    const sites = sitePair('contexts');
    it('after a warm-up round, at least 98% of pages are hits, and no response carries another theme or role', async () => {
      const warmUp = await round(sites, crowd(), 0);
      const measuredRound = await round(sites, crowd(), 3);
      measured.contexts = ratio(measuredRound);
      expect([...warmUp.wrong, ...measuredRound.wrong]).toEqual([]);
      expect(measuredRound.requests).toBe(VISITORS * PAGES);
      expect(ratio(measuredRound)).toBeGreaterThanOrEqual(0.98);
    }, 120_000);
  });

  describe('the same site with Vary: Cookie, measured beside it', () => {
    const sites = sitePair('varycookie', { VARY: 'cookie' });
    it('stores one copy per visitor: the visitors after the same warm-up find hardly any', async () => {
      await round(sites, crowd(), 0);
      const measuredRound = await round(sites, crowd(), 3);
      measured.varyCookie = ratio(measuredRound);
      expect(measuredRound.wrong).toEqual([]);
      console.log(`page hit ratio after warm-up: contexts ${measured.contexts?.toFixed(3)}, Vary: Cookie ${measured.varyCookie.toFixed(3)}`);
      expect(measured.varyCookie).toBeLessThan(measured.contexts ?? 1);
    }, 120_000);
  });
});
