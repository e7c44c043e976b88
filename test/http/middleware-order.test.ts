/**
 * Middleware order: cache contexts and hole builders get the request a user of
 * the framework reads the visitor from (Express's `req`, Fastify's `request`, Koa's `ctx`, Hono's
 * `c`), on a MISS and on a HIT, when the middleware that finds the visitor comes before the page
 * cache, as the README says to mount it. Mounted after it, that middleware runs on a miss only: a page
 * whose contexts or holes read what it set is never stored (so no HIT is keyed or filled without it),
 * and the mistake is reported once, with the fix. Over real HTTP on every stack, on locmem and Redis,
 * in one process and in two sharing Redis.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import nunjucks from 'nunjucks';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { addCacheContexts, defineCacheContext, defineHole } from '../../src/frameworks/express.js';
import * as fastifyCache from '../../src/frameworks/fastify.js';
import * as honoCache from '../../src/frameworks/hono.js';
import * as koaCache from '../../src/frameworks/koa.js';
import { installCacheTag, renderString } from '../../src/engines/nunjucks.js';
import { forgetCacheContext, forgetHole } from '../../src/http/index.js';
import { caches, configureCaches } from '../../src/index.js';
import { listen, type Reply, send, storedHit } from './client.js';
import { type SiteProcess, startSiteProcess } from './fixtures/site-process.js';
import { cacheMiddleware, parseCookies, parseVisitor, STACKS, stackKey, type View, VISITOR_READS } from './stacks.js';

const redisUrl = process.env.CACHEGRAIN_TEST_REDIS_URL;
const env = installCacheTag(new nunjucks.Environment(null, { autoescape: true }));
const FIX = 'mount the page cache after the middleware that sets what it reads (cookie parsing, the session, authentication)';

const staff = (name: string) => ({ headers: { Cookie: `visitor=${name}; kind=staff` } });
const anonymous = (name: string) => ({ headers: { Cookie: `visitor=${name}` } });

let renders = 0;
let location = 0;
const servers: Array<{ close(): Promise<void> }> = [];

/**
 * The page: a menu for the visitor's kind, varying on the context `user.kind` with `context`, and
 * with `hole` a greeting hole; the view reads the kind from the Cookie header, as it runs after
 * every middleware whatever the order.
 */
function menuView({ context, hole }: { context: boolean; hole: boolean }): View {
  return (req: IncomingMessage, res: ServerResponse) => {
    if (context) addCacheContexts(res, 'user.kind');
    const kind = parseCookies(req.headers.cookie).kind ?? 'anon';
    const source = `<nav>menu for {{ kind }} #{{ n }}</nav>${hole ? '<p>{% hole "greeting" %}</p>' : ''}`;
    return renderString(env, source, { kind, n: ++renders }).then((html) => {
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      res.end(html);
    });
  };
}

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = await listen(handler);
  servers.push(server);
  return server.url;
}

describe.each(STACKS)('on %s', (stack, build) => {
  const reads = VISITOR_READS[stack]!;

  describe.each(['locmem', 'redis'])('over %s', (backend) => {
    let reports: string[] = [];
    beforeEach(async () => {
      renders = 0;
      location++;
      if (backend === 'redis' && redisUrl === undefined) {
        throw new Error('CACHEGRAIN_TEST_REDIS_URL is not set: the test setup starts redis-server (Debian package redis-server)');
      }
      await configureCaches({
        default:
          backend === 'redis'
            ? { backend: 'redis', location: redisUrl!, keyPrefix: `order${process.pid}-${location}` }
            : { backend: 'locmem', location: `order-${location}` },
      });
      reports = [];
      caches.get('default').on('error', (error: Error) => reports.push(error.message));
      // As the README writes them, reading what the framework's middleware put on its request.
      defineCacheContext('user.kind', (request: object) => reads.kind(request) ?? 'anon');
      defineHole('greeting', (request: object) => `hi ${reads.name(request)}`);
    });
    afterEach(async () => {
      forgetCacheContext('user.kind');
      forgetHole('greeting');
      await Promise.all(servers.splice(0).map((server) => server.close()));
      await caches.closeAll();
    });

    it('with the visitor found before the page cache, contexts and holes read it on a MISS and on a HIT', async () => {
      const base = await serve(build([parseVisitor(), cacheMiddleware({ seconds: 600 })], menuView({ context: true, hole: true })));
      const ann = await send(base, '/menu', staff('ann'));
      expect([ann.status, ann.headers['x-cache'], ann.text]).toEqual([200, 'MISS', '<nav>menu for staff #1</nav><p>hi ann</p>']);
      // A request may come before the store behind the first response landed, and render again.
      const bob = await storedHit(base, '/menu', staff('bob'));
      expect(bob.text).toMatch(/^<nav>menu for staff #\d+<\/nav><p>hi bob<\/p>$/);
      const cy = await send(base, '/menu', anonymous('cy'));
      expect([cy.status, cy.headers['x-cache'], cy.text]).toEqual([200, 'MISS', `<nav>menu for anon #${renders}</nav><p>hi cy</p>`]);
      const dee = await storedHit(base, '/menu', anonymous('dee'));
      expect(dee.text).toMatch(/^<nav>menu for anon #\d+<\/nav><p>hi dee<\/p>$/);
      // A render that missed while waiting for the first store may land later and replace it: the same page but for its number.
      const eve = await send(base, '/menu', staff('eve'));
      expect([eve.headers['x-cache'], eve.text]).toEqual(['HIT', expect.stringMatching(/^<nav>menu for staff #\d+<\/nav><p>hi eve<\/p>$/)]);
      const fay = await send(base, '/menu', anonymous('fay'));
      expect([fay.headers['x-cache'], fay.text]).toEqual(['HIT', expect.stringMatching(/^<nav>menu for anon #\d+<\/nav><p>hi fay<\/p>$/)]);
      expect(reports).toEqual([]);
    });

    it('with the visitor found after the page cache, a page whose holes read it is never stored, never a 500, and reported once', async () => {
      const base = await serve(build([cacheMiddleware({ seconds: 600 }), parseVisitor()], menuView({ context: false, hole: true })));
      const replies: Reply[] = [];
      for (const name of ['ann', 'bob', 'ann', 'bob']) replies.push(await send(base, '/menu', staff(name)));
      expect(replies.map((reply) => [reply.status, reply.headers['x-cache'], reply.text])).toEqual(
        ['ann', 'bob', 'ann', 'bob'].map((name, i) => [200, 'MISS', `<nav>menu for staff #${i + 1}</nav><p>hi ${name}</p>`]),
      );
      expect(reports).toHaveLength(1);
      expect(reports[0]).toMatch(/^page cache: the page http:\/\/127\.0\.0\.1:\d+\/menu was not stored: /);
      expect(reports[0]).toContain(`its holes read the request, and ${reads.gained}`);
      expect(reports[0]).toContain(FIX);
    });

    it('with the visitor found after the page cache, a context that reads it is never stored under either value and is reported once, naming it', async () => {
      const base = await serve(build([cacheMiddleware({ seconds: 600 }), parseVisitor()], menuView({ context: true, hole: false })));
      const visits: Array<[string, ReturnType<typeof staff>]> = [
        ['staff', staff('ann')],
        ['anon', anonymous('cy')],
        ['staff', staff('bob')],
        ['anon', anonymous('dee')],
        ['staff', staff('ann')],
      ];
      const replies: Reply[] = [];
      for (const [, visit] of visits) replies.push(await send(base, '/menu', visit));
      // Each gets its own menu, rendered afresh: never the page stored for another kind.
      expect(replies.map((reply) => [reply.status, reply.headers['x-cache'], reply.text])).toEqual(
        visits.map(([kind], i) => [200, 'MISS', `<nav>menu for ${kind} #${i + 1}</nav>`]),
      );
      expect(reports).toHaveLength(1);
      expect(reports[0]).toContain(
        "was not stored: cache context 'user.kind' gave one value when the page cache looked the page up and another when the page was rendered, for the same request",
      );
      expect(reports[0]).toContain(FIX);
    });
  });

  describe('with the visitor found after the page cache, in two processes sharing Redis', () => {
    let sites: SiteProcess[] = [];
    beforeAll(async () => {
      if (redisUrl === undefined) throw new Error('CACHEGRAIN_TEST_REDIS_URL is not set: the test setup starts redis-server (Debian package redis-server)');
      const keyPrefix = `order${process.pid}${stackKey(stack)}`;
      const startSite = () =>
        startSiteProcess(new URL('./fixtures/order-site.ts', import.meta.url), { CACHEGRAIN_TEST_STACK: stack, PAGE_KEY_PREFIX: keyPrefix });
      sites = await Promise.all([startSite(), startSite()]);
    }, 30_000);
    afterAll(async () => {
      await Promise.all(sites.map((site) => site.close()));
    });

    it('stores no page whose contexts and holes read the visitor, answers each visitor their own, and each process reports it once', async () => {
      const replies: Array<[Reply, string]> = [];
      for (let round = 0; round < 3; round++) {
        for (const [i, site] of sites.entries()) {
          // One host for both processes, as behind a load balancer, so they share every page key.
          const headers = { Host: 'shop.example' };
          replies.push([await send(site.url, '/menu', { headers: { ...headers, ...staff(`s${round}${i}`).headers } }), `staff s${round}${i}`]);
          replies.push([await send(site.url, '/menu', { headers: { ...headers, ...anonymous(`a${round}${i}`).headers } }), `anon a${round}${i}`]);
        }
      }
      expect(replies.map(([reply]) => [reply.status, reply.headers['x-cache'], reply.text])).toEqual(
        replies.map(([, who]) => [200, 'MISS', `<nav>menu for ${who.split(' ')[0]}</nav><p>hi ${who.split(' ')[1]}</p>`]),
      );
      for (const site of sites) {
        const reported = site
          .output()
          .split('\n')
          .filter((line) => line.includes('was not stored'));
        expect(reported).toHaveLength(1);
        expect(reported[0]).toContain("'user.kind'");
        expect(reported[0]).toContain(FIX);
      }
    }, 30_000);
  });
});

/**
 * Never called: the type check compiles it, and refuses a builder that reads another framework's
 * request (each adapter's defineHole and defineCacheContext type the request as the framework's own).
 */
export function typedBuilders(): void {
  fastifyCache.defineHole('typed', (request) => request.routeOptions.url);
  fastifyCache.defineCacheContext('typed', (request) => request.hostname);
  koaCache.defineHole('typed', (ctx) => ctx.cookies.get('visitor'));
  koaCache.defineCacheContext('typed', (ctx) => (ctx.state.user as { kind?: string } | undefined)?.kind ?? ctx.session?.kind);
  honoCache.defineHole('typed', (c) => c.req.header('cookie'));
  honoCache.defineCacheContext('typed', (c) => c.req.path);
  // @ts-expect-error Koa's context is not Node's request: its cookies are ctx.cookies
  koaCache.defineHole('typed', (ctx) => ctx.rawHeaders);
  // @ts-expect-error Hono's context is not Node's request: c.req reads it
  honoCache.defineCacheContext('typed', (c) => c.headers.cookie);
}

describe("each adapter's defineHole", () => {
  /** Each framework's hole builder reads the visitor as only that framework's request object offers it. */
  const FRAMEWORK_HOLES: Array<[string, () => void]> = [
    ['Fastify', () => fastifyCache.defineHole('visitor.query', (request) => (request.query as { who?: string }).who)],
    ['Koa', () => koaCache.defineHole('visitor.query', (ctx) => ctx.cookies.get('who'))],
    ['Hono', () => honoCache.defineHole('visitor.query', (c) => c.req.query('who'))],
  ];
  it.each(FRAMEWORK_HOLES)("on %s hands a hole's builder the framework's own request, on a MISS and on a HIT", async (stack, define) => {
    await configureCaches({ default: { backend: 'locmem', location: `typed-${stackKey(stack)}` } });
    define();
    try {
      const build = STACKS.find(([name]) => name === stack)![1];
      const view: View = (_req, res) =>
        renderString(env, '<p>{% hole "visitor.query" %}</p>', {}).then((html) => {
          res.setHeader('Content-Type', 'text/html; charset=utf-8');
          res.end(html);
        });
      const base = await serve(build([cacheMiddleware({ seconds: 600 })], view));
      const miss = await send(base, '/typed?who=ann', { headers: { Cookie: 'who=ann' } });
      expect([miss.status, miss.headers['x-cache'], miss.text]).toEqual([200, 'MISS', '<p>ann</p>']);
      const hit = await send(base, '/typed?who=ann', { headers: { Cookie: 'who=ann' } });
      expect([hit.status, hit.headers['x-cache'], hit.text]).toEqual([200, 'HIT', '<p>ann</p>']);
    } finally {
      forgetHole('visitor.query');
      await Promise.all(servers.splice(0).map((server) => server.close()));
      await caches.closeAll();
    }
  });
});
