/**
 * Pages stored compressed once (`compress`), read by real clients: curl `--compressed`, Chromium
 * loading them (puppeteer-core), Varnish in front with the shipped VCL (it asks for gzip, keeps it,
 * and gunzips it for a client that does not take gzip) and nginx in front with `gzip on` (it never
 * compresses what the page cache compressed). A page with holes, joined as one gzip member for each
 * visitor, reads as its filled page in each.
 */
import { execFile } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import nunjucks from 'nunjucks';
import puppeteer, { type Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineHole } from '../../src/frameworks/express.js';
import { installCacheTag, renderString } from '../../src/engines/nunjucks.js';
import { forgetHole } from '../../src/http/index.js';
import { caches, configureCaches } from '../../src/index.js';
import { eventually } from '../setup/eventually.js';
import { findExecutable } from '../setup/process.js';
import { type Proxy, startNginx, startShippedVarnish } from '../setup/proxies.js';
import { listen, type Reply, send } from './client.js';
import { bare, cacheMiddleware, cookieHeaderOf } from './stacks.js';

const PAGE = `<!doctype html><html><head><title>Shop</title></head><body><ul>${Array.from(
  { length: 150 },
  (_, i) => `<li>Item ${i}: ${['red', 'green', 'blue', 'amber'][i % 4]} wool, ${i * 7} left</li>`,
).join('')}</ul></body></html>`;
const HOLES = `<!doctype html><html><head><title>Cart</title></head><body><header>{% hole "cart" %}</header>${PAGE.slice(PAGE.indexOf('<ul>'), PAGE.indexOf('</body>'))}</body></html>`;
const env = installCacheTag(new nunjucks.Environment(null, { autoescape: true }));
const visitorOf = (request: object) => /visitor=(\w+)/.exec(cookieHeaderOf(request) ?? '')?.[1] ?? 'guest';
const filled = (visitor: string) => HOLES.replace('{% hole "cart" %}', `<b>cart of ${visitor}</b>`);

let app: Awaited<ReturnType<typeof listen>>;
/** The Accept-Encoding of each request the application received, by path. */
const askedWith = new Map<string, Array<string | undefined>>();

beforeAll(async () => {
  await configureCaches({ default: { backend: 'locmem', location: 'compression-clients' } });
  defineHole('cart', (req) => `<b>cart of ${visitorOf(req)}</b>`);
  const pages = bare([cacheMiddleware({ seconds: 600, compress: true })], async (req: IncomingMessage, res: ServerResponse) => {
    const html = req.url!.startsWith('/holes') ? await renderString(env, HOLES, {}) : PAGE;
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.setHeader('ETag', '"v1"');
    res.end(html);
  });
  app = await listen((req, res) => {
    const path = req.url!.split('?')[0]!;
    askedWith.set(path, [...(askedWith.get(path) ?? []), req.headers['accept-encoding']]);
    pages(req, res);
  });
});

afterAll(async () => {
  forgetHole('cart');
  await app?.close();
  await caches.closeAll();
});

/** Asks the application `path` until its page is stored and its Brotli made: every later request finds them. */
async function stored(path: string, coding = 'br', headers: Record<string, string> = {}): Promise<Reply> {
  let reply!: Reply;
  await eventually(async () => {
    reply = await send(app.url, path, { headers: { ...headers, 'Accept-Encoding': 'gzip, br' } });
    expect([reply.headers['x-cache'], reply.headers['content-encoding']]).toEqual(['HIT', coding]);
  });
  return reply;
}

describe('curl --compressed', () => {
  const curl = promisify(execFile);
  const curlPath = () => findExecutable(['curl'], 'curl');

  /** What curl shows of `url`: the headers of the response, lower-cased, and its body as curl writes it. */
  async function curlGet(url: string, args: string[] = []): Promise<{ headers: Record<string, string>; body: string }> {
    const { stdout } = await curl(curlPath(), ['-s', '-i', ...args, url], { encoding: 'latin1', maxBuffer: 1 << 24 });
    const end = stdout.indexOf('\r\n\r\n');
    const headers: Record<string, string> = {};
    for (const line of stdout.slice(0, end).split('\r\n').slice(1)) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    return { headers, body: Buffer.from(stdout.slice(end + 4), 'latin1').toString('utf8') };
  }

  it('gets the page in Brotli, and a page with holes in gzip joined for its visitor, both read as sent; without --compressed, the identity', async () => {
    await stored('/curl');
    const page = await curlGet(`${app.url}/curl`, ['--compressed']);
    expect([page.headers['content-encoding'], page.headers['x-cache'], page.body]).toEqual(['br', 'HIT', PAGE]);
    await stored('/holes/curl', 'gzip');
    const holes = await curlGet(`${app.url}/holes/curl`, ['--compressed', '-H', 'Cookie: visitor=ann']);
    expect([holes.headers['content-encoding'], holes.body]).toEqual(['gzip', filled('ann')]);
    const plain = await curlGet(`${app.url}/curl`);
    expect([plain.headers['content-encoding'], plain.body]).toEqual([undefined, PAGE]);
  });
});

describe('Chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await puppeteer.launch({
      executablePath: findExecutable(['chromium', 'chromium-browser'], 'chromium'),
      headless: true,
      args: ['--no-sandbox', '--disable-gpu'],
    });
  }, 60_000);
  afterAll(() => browser?.close());

  it('loads the page in the best coding it asks for, and a page with holes as its visitor’s filled page', async () => {
    await stored('/chromium');
    await stored('/holes/chromium', 'gzip', { Cookie: 'visitor=ann' });
    const tab = await browser.newPage();
    try {
      const page = (await tab.goto(`${app.url}/chromium`))!;
      const asked = askedWith.get('/chromium')!.at(-1)!;
      expect(asked).toMatch(/gzip/);
      expect(page.headers()['content-encoding']).toBe(/\bbr\b/.test(asked) ? 'br' : 'gzip');
      expect(await page.text()).toBe(PAGE);
      expect(await tab.$$eval('li', (items) => items.length)).toBe(150);
      await tab.setCookie({ name: 'visitor', value: 'bob', url: app.url });
      const holes = (await tab.goto(`${app.url}/holes/chromium`))!;
      expect([holes.headers()['content-encoding'], holes.headers()['x-cache']]).toEqual(['gzip', 'HIT']);
      expect(await holes.text()).toBe(filled('bob'));
      expect(await tab.$eval('header', (header) => header.textContent)).toBe('cart of bob');
    } finally {
      await tab.close();
    }
  });
});

describe('Varnish in front, with the shipped VCL', () => {
  let varnish: Proxy;
  beforeAll(async () => {
    varnish = await startShippedVarnish({ backendPort: Number(new URL(app.url).port) });
  }, 60_000);
  afterAll(() => varnish?.stop());

  /** As Varnish asks for them: the page cache keys a page by the Host it is asked on, which Varnish passes on. */
  const throughVarnish = () => ({ Host: new URL(varnish.url).host });

  it('keeps the gzip it asks for, sends it to a client that takes gzip and gunzips it for one that does not', async () => {
    // Stored and compressed before Varnish asks for it, as a page another request stored is.
    await stored('/varnish', 'br', throughVarnish());
    const gzip = await send(varnish.url, '/varnish', { headers: { 'Accept-Encoding': 'gzip, deflate, br' } });
    expect([gzip.status, gzip.headers['content-encoding']]).toEqual([200, 'gzip']);
    expect(gunzipSync(gzip.body).toString()).toBe(PAGE);
    // Varnish asked the application for gzip alone, as it asks for every page it keeps.
    expect(askedWith.get('/varnish')!.at(-1)).toBe('gzip');
    for (const headers of [{}, { 'Accept-Encoding': 'br' }] as Array<Record<string, string>>) {
      const plain = await send(varnish.url, '/varnish', { headers });
      expect([plain.status, plain.headers['content-encoding'], plain.text], JSON.stringify(headers)).toEqual([200, undefined, PAGE]);
      expect(plain.headers['content-length'] ?? String(plain.body.length)).toBe(String(plain.body.length));
    }
  });

  it("passes a page with holes, private, to each visitor as that visitor's filled page, gzip or not", async () => {
    await stored('/holes/varnish', 'gzip', throughVarnish());
    const gzip = await send(varnish.url, '/holes/varnish', { headers: { 'Accept-Encoding': 'gzip', Cookie: 'visitor=ann' } });
    expect(gzip.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gzip.body).toString()).toBe(filled('ann'));
    const plain = await send(varnish.url, '/holes/varnish', { headers: { Cookie: 'visitor=bob' } });
    expect([plain.headers['content-encoding'], plain.text]).toEqual([undefined, filled('bob')]);
  });
});

describe('nginx in front, with gzip on', () => {
  let nginx: Proxy;
  beforeAll(async () => {
    nginx = await startNginx({
      http: 'gzip on; gzip_types text/html; gzip_min_length 20; gzip_proxied any; gzip_vary on;',
      server: `location / { proxy_pass http://127.0.0.1:${new URL(app.url).port}; }`,
    });
  }, 60_000);
  afterAll(() => nginx?.stop());

  /** A reply's body read as its Content-Encoding says, once. */
  const decodedOnce = (reply: Reply) =>
    reply.headers['content-encoding'] === 'br'
      ? brotliDecompressSync(reply.body).toString()
      : reply.headers['content-encoding'] === 'gzip'
        ? gunzipSync(reply.body).toString()
        : reply.text;

  it('passes the coding the page cache chose through, compressed once, and the identity to a client without gzip', async () => {
    const direct = await stored('/nginx');
    const br = await send(nginx.url, '/nginx', { headers: { 'Accept-Encoding': 'gzip, deflate, br' } });
    expect(br.headers['x-cache']).toBe('HIT');
    expect([br.headers['content-encoding'], decodedOnce(br)]).toEqual(['br', PAGE]);
    // The bytes the page cache sent, as they were: nginx compressed none of them again.
    expect(br.body.equals(direct.body)).toBe(true);
    const gzip = await send(nginx.url, '/nginx', { headers: { 'Accept-Encoding': 'gzip' } });
    expect([gzip.headers['content-encoding'], decodedOnce(gzip)]).toEqual(['gzip', PAGE]);
    const plain = await send(nginx.url, '/nginx');
    expect([plain.headers['content-encoding'], plain.text]).toEqual([undefined, PAGE]);
    const holes = await send(nginx.url, '/holes/nginx', { headers: { 'Accept-Encoding': 'gzip, br', Cookie: 'visitor=cy' } });
    // A MISS goes out as the view made it, which nginx compresses itself; a HIT as the page cache joined it.
    expect(decodedOnce(holes)).toBe(filled('cy'));
    await stored('/holes/nginx', 'gzip');
    const joined = await send(nginx.url, '/holes/nginx', { headers: { 'Accept-Encoding': 'gzip, br', Cookie: 'visitor=dee' } });
    expect([joined.headers['content-encoding'], decodedOnce(joined)]).toEqual(['gzip', filled('dee')]);
  });
});
