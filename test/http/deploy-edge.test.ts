/**
 * A deploy that edits a template reaches the edge in front. Each release of a site
 * (`fixtures/deploy-site.ts`) runs in a process of its own over a copy of its templates, its pages
 * stored in one real Redis; a real Varnish running the shipped VCL (BAN, and xkey) stands in front
 * of the port every release listens on. After a release that edits a partial, the next request
 * through Varnish shows the new partial, while a page that does not include it is still answered by
 * Varnish. Purges counted at a recording edge: the processes of a release starting together
 * invalidate a changed template once, and the processes of the last release, still running beside
 * them as in a rolling deploy, never invalidate it back. A template that reaches a partial its
 * engine does not hold as a release starts is compared at its first render instead.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Handlebars from 'handlebars';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cachePage } from '../../src/frameworks/express.js';
import { installCacheHelper, render } from '../../src/engines/handlebars.js';
import { caches, configureCaches } from '../../src/index.js';
import { listen, type Reply, send } from './client.js';
import { type SiteProcess, startSiteProcess } from './fixtures/site-process.js';
import { recordingEdge } from '../edge/recording-edge.js';
import { startShippedVarnish } from '../setup/proxies.js';
import { freePort } from '../setup/process.js';
import { eventually } from '../setup/eventually.js';

const folders: string[] = [];
const running: SiteProcess[] = [];
let prefix = '';
let tests = 0;

beforeEach(() => {
  prefix = `deploys${process.pid}n${++tests}`;
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((site) => site.close()));
});
afterAll(async () => {
  await caches.closeAll();
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

/** A release's templates: a copy of the last release's (of the fixture's, for the first), in a folder of its own. */
function release(from = new URL('./fixtures/deploy-views', import.meta.url).pathname): string {
  const folder = mkdtempSync(join(tmpdir(), 'cachegrain-deploy-'));
  folders.push(folder);
  cpSync(from, folder, { recursive: true });
  return folder;
}

function edit(folder: string, file: string, from: string, to: string): void {
  const text = readFileSync(join(folder, file), 'utf8');
  expect(text).toContain(from);
  writeFileSync(join(folder, file), text.replace(from, to));
}

function redisUrl(): string {
  const url = process.env.CACHEGRAIN_TEST_REDIS_URL;
  if (url === undefined) throw new Error('CACHEGRAIN_TEST_REDIS_URL is not set: the test setup starts redis-server (Debian package redis-server)');
  return url;
}

/**
 * Starts a process of the release in `folder`, purging `purge`, on `port` (0: any), with `more` in
 * its environment (see the fixture); it answers once its start's purges were taken.
 */
async function start(folder: string, purge: object[], port = 0, more: Record<string, string> = {}): Promise<SiteProcess> {
  const env = { DEPLOY_REDIS_URL: redisUrl(), SITE_KEY_PREFIX: prefix, DEPLOY_PURGE: JSON.stringify(purge), SITE_PORT: String(port), ...more };
  const site = await startSiteProcess(new URL('./fixtures/deploy-site.ts', import.meta.url), env, folder);
  running.push(site);
  return site;
}

/** How many requests for each page reached the process. */
async function reached(site: SiteProcess): Promise<Record<string, number>> {
  return JSON.parse((await send(site.url, '/_test/reached')).text) as Record<string, number>;
}

/** Resolves once the work the process's caches do behind (stores, the record of its templates) has settled. */
async function settled(...sites: SiteProcess[]): Promise<void> {
  for (const site of sites) expect((await send(site.url, '/_test/settled')).text).toBe('settled');
}

const summary = (reply: Reply) => [reply.status, reply.text.trim()];

describe.each([
  ['BAN', 'ban', false],
  ['xkey', 'xkey', true],
] as const)('a deploy behind Varnish purging by %s', (_name, tags, xkey) => {
  it('that edits a partial renews the pages including it at the edge, and only those', async () => {
    const port = await freePort();
    const varnish = await startShippedVarnish({ backendPort: port, xkey });
    const purge = [{ edge: 'varnish', url: varnish.url, tags }];
    const get = (path: string) => send(varnish.url, path);
    try {
      const first = release();
      const one = await start(first, purge, port);
      for (let visit = 0; visit < 2; visit++) {
        expect(summary(await get('/'))).toEqual([200, '<h1>Shop</h1><p>Spring sale</p>']);
        expect(summary(await get('/other'))).toEqual([200, '<h1>About us</h1>']);
      }
      expect(await reached(one), 'requests that reached the first release').toEqual({ '/': 1, '/other': 1 });
      await settled(one);
      await one.close();

      const second = release(first);
      edit(second, 'partials/banner.liquid', 'Spring', 'Summer');
      const two = await start(second, purge, port);
      expect(summary(await get('/'))).toEqual([200, '<h1>Shop</h1><p>Summer sale</p>']);
      expect(summary(await get('/other'))).toEqual([200, '<h1>About us</h1>']);
      expect(await reached(two), 'requests that reached the second release').toEqual({ '/': 1 });
    } finally {
      await varnish.stop();
    }
  }, 60_000);
});

describe('the processes of a deploy', () => {
  it('invalidate a changed template once, however many start together, and those of the last release still running never invalidate it back', async () => {
    const redis = new Redis(redisUrl());
    const edge = await recordingEdge();
    const purge = [{ edge: 'http', url: edge.url }];
    /** The template tags of each purge the edge received. */
    const templatePurges = () =>
      edge.received.map((request) => (JSON.parse(request.body) as { tags: string[] }).tags.filter((tag) => tag.startsWith('template:')).sort());
    const index = 'template:liquid:./index.liquid';
    const deal = 'template:liquid:./deal.liquid';
    const page = async (site: SiteProcess, path: string) => {
      const reply = await send(site.url, path);
      return [reply.headers['x-cache'], reply.text.trim()];
    };
    try {
      const old = release();
      const a = await start(old, purge);
      expect(await page(a, '/')).toEqual(['MISS', '<h1>Shop</h1><p>Spring sale</p>']);
      expect(await page(a, '/other')).toEqual(['MISS', '<h1>About us</h1>']);
      await settled(a);
      expect(templatePurges(), 'the first release changes nothing').toEqual([]);

      const next = release(old);
      edit(next, 'partials/banner.liquid', 'Spring', 'Summer');
      // Both compare at once, and each takes its time to write the record: without the record's lock, both would invalidate.
      const gated = { START_GATE: 'yes', SLOW_RECORD_MS: '300' };
      const starting = [start(next, purge, 0, gated), start(next, purge, 0, gated)];
      await eventually(async () => expect(await redis.llen(`${prefix}:arrived`)).toBe(2));
      await redis.rpush(`${prefix}:gate`, 'go', 'go');
      const [b, c] = (await Promise.all(starting)) as [SiteProcess, SiteProcess];
      expect(templatePurges(), 'two processes of the next release, started together').toEqual([[index]]);

      // The last release, still running, renders the pages the next one stored from its own templates:
      // one it rendered before, and one it renders for the first time, which the next release recorded.
      expect(await page(b, '/')).toEqual(['MISS', '<h1>Shop</h1><p>Summer sale</p>']);
      expect(await page(b, '/deal')).toEqual(['MISS', '<h1>Deals</h1><p>Summer sale</p>']);
      await settled(b);
      expect(await page(a, '/')).toEqual(['MISS', '<h1>Shop</h1><p>Spring sale</p>']);
      expect(await page(a, '/deal')).toEqual(['MISS', '<h1>Deals</h1><p>Spring sale</p>']);
      await settled(a, b, c);
      const d = await start(next, purge);
      await settled(d);
      expect(templatePurges(), 'the last release rendering beside it, and another process of the next release').toEqual([[index]]);

      // A process of the last release started again during the rollout is a deploy of its templates, and the next one of the new release is another.
      await start(old, purge);
      expect(templatePurges()).toEqual([[index], [deal, index]]);
      await start(next, purge);
      expect(templatePurges()).toEqual([[index], [deal, index], [deal, index]]);
    } finally {
      redis.disconnect();
      await edge.close();
    }
  }, 60_000);
});

describe('a template whose engine is handed a partial only at a render', () => {
  it('is compared at the first render of a page from it, not as a release starts without the partial', async () => {
    const edge = await recordingEdge();
    const location = mkdtempSync(join(tmpdir(), 'cachegrain-deploy-store-'));
    folders.push(location);
    const handlebars = installCacheHelper(Handlebars.create(), { digests: true });
    const template = handlebars.compile('<h1>Shop</h1>{{> banner}}');
    /** A release in this process: a cache of its own over the shared folder, and a page cache made over it. */
    const deploy = async () => {
      await configureCaches({ default: { backend: 'filebased', location, purge: [{ edge: 'http', url: edge.url }] } });
      const page = cachePage(120);
      return listen((req, res) => page(req, res, () => void render(template, {}).then((html) => res.end(html))));
    };
    const templatePurges = () =>
      edge.received.map((request) => (JSON.parse(request.body) as { tags: string[] }).tags.filter((tag) => tag.startsWith('template:')));
    const sites: Array<{ close(): Promise<void> }> = [];
    try {
      handlebars.registerPartial('banner', '<p>Spring sale</p>');
      const first = await deploy();
      sites.push(first);
      expect((await send(first.url, '/')).text).toBe('<h1>Shop</h1><p>Spring sale</p>');
      await caches.settled();

      // The next release starts before its partial is registered, as express-handlebars hands partials over at a render.
      handlebars.unregisterPartial('banner');
      const second = await deploy();
      sites.push(second);
      await caches.settled();
      expect(templatePurges(), 'as the release starts').toEqual([]);
      handlebars.registerPartial('banner', '<p>Summer sale</p>');
      expect((await send(second.url, '/')).text).toBe('<h1>Shop</h1><p>Summer sale</p>');
      await caches.settled();
      expect(templatePurges(), 'after its first render').toEqual([[expect.stringMatching(/^template:handlebars:[0-9a-f]{32}$/)]]);
    } finally {
      await Promise.all(sites.map((site) => site.close()));
      await edge.close();
    }
  });
});
