/**
 * Holes under load, over real HTTP: two site processes (`fixtures/holes-site.ts`) share one real
 * Redis, as two servers behind a load balancer do. 100 visitors sign in, each with a secret of their
 * own planted in their session, and ask for every page, 16 requests in flight, alternately of the two
 * processes; then they ask again. Every page greets the visitor, shows their cart and carries a form
 * token of theirs: three holes. Every answer must hold its own visitor's secret three times and no
 * other secret (not once in the whole run), while after the first round nearly every page is a hit.
 * Then the same with `holes: 'esi'`, the test assembling each page from the shell and its includes
 * as a CDN would, the includes asked of the other process, and a forged include refused.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from './client.js';
import { type SiteProcess, startSiteProcess } from './fixtures/site-process.js';
import { STACK_NAMES, stackKey } from './stacks.js';

const redisUrl = process.env.CACHEGRAIN_TEST_REDIS_URL;
const VISITORS = 100;
const PAGES = 5;
const IN_FLIGHT = 16;
const HOST = 'shop.example';
const SECRET = /secret-[0-9a-f]{32}/g;
const HOLE_SECRET = 'the key both processes sign hole URLs with';
const INCLUDE = /<esi:include src="([^"]+)"\/>/g;
/** What an ESI processor in front announces: the shells then carry their includes. */
const ESI_CAPABILITY = 'cachegrain="ESI/1.0"';

interface Visitor {
  secret: string;
  cookie: string;
}

interface Round {
  pages: number;
  hits: number;
  /** What went wrong: another visitor's secret in an answer, or an answer without the visitor's own three. */
  leaks: string[];
}

/** A page as the visitor's browser gets it, and whether the page cache answered it from a stored page. */
type Fetch = (sites: SiteProcess[], site: number, path: string, visitor: Visitor) => Promise<{ text: string; hit: boolean }>;

/** A page with its holes filled by the page cache: one visitor's, so never for a shared cache to keep. */
const filledPage: Fetch = async (sites, site, path, visitor) => {
  const reply = await send(sites[site]!.url, path, { headers: { Host: HOST, Cookie: visitor.cookie } });
  if (reply.status !== 200) throw new Error(`${path} answered ${reply.status}: ${reply.text}`);
  if (!/\bprivate\b/.test(String(reply.headers['cache-control']))) throw new Error(`${path} went out shared: ${reply.headers['cache-control']}`);
  return { text: reply.text, hit: reply.headers['x-cache'] === 'HIT' };
};

/** A page assembled as an ESI proxy does: the shell it keeps, then each include asked of the other process with the visitor's request. */
const assembledPage: Fetch = async (sites, site, path, visitor) => {
  const shell = await send(sites[site]!.url, path, { headers: { Host: HOST, Cookie: visitor.cookie, 'Surrogate-Capability': ESI_CAPABILITY } });
  if (shell.status !== 200) throw new Error(`${path} answered ${shell.status}: ${shell.text}`);
  // The shell is the ESI proxy's to keep (Surrogate-Control), and the page assembled from it private.
  if (!/^max-age=\d+, content="ESI\/1\.0"$/.test(String(shell.headers['surrogate-control'])) || !/\bprivate\b/.test(String(shell.headers['cache-control'])))
    throw new Error(`the shell of ${path} went out ${shell.headers['cache-control']}, Surrogate-Control ${shell.headers['surrogate-control']}`);
  if (SECRET.test(shell.text)) throw new Error(`the shell of ${path} is one visitor's`);
  SECRET.lastIndex = 0;
  const parts = await Promise.all(
    [...shell.text.matchAll(INCLUDE)].map(async ([, src]) => {
      const part = await send(sites[1 - site]!.url, src!, { headers: { Host: HOST, Cookie: visitor.cookie } });
      if (part.status !== 200 || part.headers['cache-control'] !== 'private, no-store')
        throw new Error(`${src} answered ${part.status}, ${part.headers['cache-control']}`);
      return part.text;
    }),
  );
  let next = 0;
  return { text: shell.text.replace(INCLUDE, () => parts[next++]!), hit: shell.headers['x-cache'] === 'HIT' };
};

/** Every visitor asks for every page once, each in their own order, alternately of the two processes, IN_FLIGHT at a time. */
async function round(sites: SiteProcess[], visitors: Visitor[], seed: number, fetch: Fetch): Promise<Round> {
  const asks = visitors.flatMap((visitor, v) => Array.from({ length: PAGES }, (_, p) => ({ visitor, page: ((p + v + seed) % PAGES) + 1, site: (v + p) % 2 })));
  const result: Round = { pages: 0, hits: 0, leaks: [] };
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < asks.length) {
        const { visitor, page, site } = asks[next++]!;
        const { text, hit } = await fetch(sites, site, `/p/${page}`, visitor);
        result.pages++;
        if (hit) result.hits++;
        const secrets = text.match(SECRET) ?? [];
        const others = secrets.filter((secret) => secret !== visitor.secret);
        if (others.length > 0 || secrets.length !== 3) result.leaks.push(`/p/${page} for ${visitor.secret} held ${secrets.join(', ') || 'no secret'}`);
      }
    }),
  );
  return result;
}

/** VISITORS visitors, each signed in on one of the processes with a secret of their own in their session. */
async function signIn(sites: SiteProcess[]): Promise<Visitor[]> {
  return Promise.all(
    Array.from({ length: VISITORS }, async (_, i) => {
      const secret = `secret-${randomBytes(16).toString('hex')}`;
      const reply = await send(sites[i % 2]!.url, '/login', {
        method: 'POST',
        headers: { Host: HOST, 'Content-Type': 'application/x-www-form-urlencoded' },
        body: `secret=${secret}&cart=${i}`,
      });
      const sid = /sid=([\w-]+)/.exec(String(reply.headers['set-cookie']))?.[1];
      if (reply.status !== 200 || sid === undefined) throw new Error(`signing in answered ${reply.status}: ${reply.text}`);
      return { secret, cookie: `sid=${sid}; theme=dark` };
    }),
  );
}

/** The stack the sites run on: set as its tests begin. */
let stack = '';

function sitePair(prefix: string, env: Record<string, string> = {}): SiteProcess[] {
  const sites: SiteProcess[] = [];
  beforeAll(async () => {
    if (redisUrl === undefined) throw new Error('CACHEGRAIN_TEST_REDIS_URL is not set: the test setup starts redis-server (Debian package redis-server)');
    const start = () =>
      startSiteProcess(new URL('./fixtures/holes-site.ts', import.meta.url), {
        CACHEGRAIN_TEST_STACK: stack,
        SITE_KEY_PREFIX: `${prefix}${process.pid}${stackKey(stack)}`,
        ...env,
      });
    sites.push(...(await Promise.all([start(), start()])));
  }, 30_000);
  afterAll(() => Promise.all(sites.map((site) => site.close())));
  return sites;
}

describe.each(STACK_NAMES)('on %s', (name) => {
  beforeAll(() => {
    stack = name;
  });
  describe('pages with three holes filled per visitor, two processes on one Redis, 100 visitors', () => {
    const sites = sitePair('holes');
    it("every answer holds its own visitor's secret and no other, and after a first round at least 98% of pages are hits", async () => {
      const visitors = await signIn(sites);
      const first = await round(sites, visitors, 0, filledPage);
      const measured = await round(sites, visitors, 3, filledPage);
      expect([...first.leaks, ...measured.leaks]).toEqual([]);
      expect(measured.pages).toBe(VISITORS * PAGES);
      expect(measured.hits / measured.pages).toBeGreaterThanOrEqual(0.98);
    }, 120_000);
  });

  describe('the same pages with holes as ESI includes, assembled as a CDN does', () => {
    const sites = sitePair('holes-esi', { HOLES: 'esi', HOLE_SECRET });
    it("every page assembled holds its own visitor's secret and no other, the shells are hits, and a forged include is refused", async () => {
      const visitors = await signIn(sites);
      const first = await round(sites, visitors, 0, assembledPage);
      const measured = await round(sites, visitors, 3, assembledPage);
      expect([...first.leaks, ...measured.leaks]).toEqual([]);
      expect(measured.hits / measured.pages).toBeGreaterThanOrEqual(0.98);
      const shell = await send(sites[0]!.url, '/p/1', { headers: { Host: HOST, 'Surrogate-Capability': ESI_CAPABILITY } });
      const csrf = [...shell.text.matchAll(INCLUDE)].map(([, src]) => src!).find((src) => src.includes('/csrf?'))!;
      const headers = { Host: HOST, Cookie: visitors[0]!.cookie };
      expect((await send(sites[1]!.url, csrf, { headers })).status).toBe(200);
      // The token of another page under this page's signature, and a signature made up.
      expect((await send(sites[1]!.url, csrf.replace('%2C%221%22%5D', '%2C%222%22%5D'), { headers })).status).toBe(403);
      expect((await send(sites[1]!.url, csrf.replace(/sig=[\w-]+/, `sig=${'A'.repeat(43)}`), { headers })).status).toBe(403);
    }, 120_000);
  });
});
