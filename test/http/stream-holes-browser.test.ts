/**
 * Streamed holes in a real browser, Debian's chromium driven by puppeteer-core, on a shop whose
 * pages carry `Content-Security-Policy: script-src 'self'` (no 'unsafe-inline', no nonce): the
 * first visit gets its holes in order and runs the holes' script, which marks the browser; its next
 * page shows the whole shell, fallbacks in place, before any hole is made, then each hole moved into
 * its placeholder in the order they are made, with no violation of the policy; a template whose id
 * is not the response's own fills nothing; with JavaScript off, every hole is in place. Each hole's
 * builder waits on a gate the test opens: the page records, in order, what it saw appear.
 */
import type { Server } from 'node:http';
import { once } from 'node:events';
import express from 'express';
import nunjucks from 'nunjucks';
import puppeteer, { type Browser, type BrowserContext, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cacheMiddleware, defineHole } from '../../src/frameworks/express.js';
import { installCacheTag, renderString } from '../../src/engines/nunjucks.js';
import { forgetHole } from '../../src/http/index.js';
import { caches, configureCaches } from '../../src/index.js';
import { chromiumPath } from '../setup/chromium.js';
import { HoleGates } from './streamed.js';

const env = installCacheTag(new nunjucks.Environment(null, { autoescape: true }));
const POLICY = "default-src 'self'; script-src 'self'";
const PAGE =
  '<!doctype html><html><head><title>shop</title></head><body>{{ forged | safe }}<h1 id="top">shop</h1><aside>{% hole "cart" %}</aside>' +
  '{% cache 600 "recs" %}<main>{% hole "recs" %}</main>{% endcache %}<p id="last">end of the shell</p></body></html>';
/** What an application's own HTML may hold: a placeholder and a template of an id that is no response's. */
const FORGED = '<p><cachegrain-hole id="x-0">kept</cachegrain-hole></p><template data-cachegrain-hole="x-0"><b id="forged">forged</b></template>\n';

let browser: Browser;
let site: Server;
let origin: string;
let gates: HoleGates;
const reported: string[] = [];

beforeAll(async () => {
  await configureCaches({ default: { backend: 'locmem', location: 'stream-holes-browser' } });
  caches.get('default').on('error', (error: Error) => reported.push(error.message));
  defineHole(
    'cart',
    async () => {
      await gates.hold('cart');
      return '<span id="cart">2 items</span>';
    },
    { fallback: '<i id="cart-fallback">your cart</i>' },
  );
  defineHole(
    'recs',
    async () => {
      await gates.hold('recs');
      return '<ul id="recs"><li>tea</li></ul>';
    },
    { fallback: '<i id="recs-fallback">picks for you</i>' },
  );
  const app = express();
  app.use((_req, res, next) => {
    res.setHeader('Content-Security-Policy', POLICY);
    next();
  });
  // The icon a browser asks for: none, and no error in its console.
  app.get('/favicon.ico', (_req, res) => void res.status(204).end());
  app.use(cacheMiddleware({ seconds: 600, holes: 'stream' }));
  app.get(['/shop', '/forged'], (req, res, next) => {
    renderString(env, PAGE, { forged: req.path === '/forged' ? FORGED : '' }).then((html) => res.type('html').send(html), next);
  });
  site = app.listen(0, '127.0.0.1');
  await once(site, 'listening');
  origin = `http://127.0.0.1:${(site.address() as { port: number }).port}`;
  browser = await puppeteer.launch({ executablePath: chromiumPath(), headless: true, args: ['--no-sandbox', '--disable-gpu'] });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => site?.close(resolve));
  for (const name of ['cart', 'recs']) forgetHole(name);
  await caches.closeAll();
});

beforeEach(() => {
  gates = new HoleGates();
  reported.length = 0;
});

/**
 * What a page runs before its own scripts (as text: it runs in the page, not here): it notes in
 * `streamEvents`, in order, when the shell's last element and each hole's content appeared (what
 * appears in one batch of changes in the order of the document), DOMContentLoaded, load, and any
 * violation of the policy.
 */
const RECORDER = `(() => {
  const events = (window.streamEvents = []);
  const seen = new Set();
  const check = () => {
    const appeared = [];
    for (const [id, name] of [['last', 'shell'], ['cart', 'cart'], ['recs', 'recs']]) {
      const element = seen.has(name) ? null : document.getElementById(id);
      if (element !== null) appeared.push([name, element]);
    }
    appeared.sort(([, a], [, b]) => (a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1));
    for (const [name] of appeared) {
      seen.add(name);
      events.push(name);
    }
  };
  new MutationObserver(check).observe(document, { childList: true, subtree: true });
  document.addEventListener('DOMContentLoaded', () => events.push('DOMContentLoaded'));
  window.addEventListener('load', () => events.push('load'));
  document.addEventListener('securitypolicyviolation', (event) => events.push('violation of ' + event.violatedDirective + ' by ' + event.blockedURI));
})();`;

/** A tab whose pages run the recorder, with its console errors and page errors collected. */
async function recordingTab(context: BrowserContext): Promise<{ page: Page; problems: string[] }> {
  const page = await context.newPage();
  // Each visit asks the site: the browser would keep a page for its max-age, holes and all.
  await page.setCacheEnabled(false);
  const problems: string[] = [];
  page.on('console', (message) => message.type() === 'error' && problems.push(message.text()));
  page.on('pageerror', (error) => problems.push(String(error)));
  await page.evaluateOnNewDocument(RECORDER);
  return { page, problems };
}

const eventsOf = (page: Page) => page.evaluate('window.streamEvents') as Promise<string[]>;
const textsOf = (page: Page, selector: string) => page.$$eval(selector, (elements) => elements.map((element) => element.textContent));

describe('streamed holes in chromium, under a Content-Security-Policy with no inline script', () => {
  it('show the shell before the holes: in order on a first visit, which runs the script; out of order, in the order the holes come, from then on', async () => {
    const context = await browser.createBrowserContext();
    try {
      const { page, problems } = await recordingTab(context);
      const first = page.goto(`${origin}/shop`);
      // The shell up to the first hole shows while both holes are held.
      await page.waitForSelector('#top');
      expect(await page.$('#last')).toBeNull();
      await gates.open('cart');
      await page.waitForSelector('#cart');
      await gates.open('recs');
      await first;
      expect(await eventsOf(page)).toEqual(['cart', 'recs', 'shell', 'DOMContentLoaded', 'load']);
      // The script ran under the policy: it marked the browser.
      await page.waitForFunction("document.cookie.includes('cachegrain-holes=script')");

      const next = page.goto(`${origin}/shop`);
      // The whole shell shows, its fallbacks in their placeholders, while both holes are held.
      await page.waitForSelector('#last');
      expect(await textsOf(page, 'cachegrain-hole')).toEqual(['your cart', 'picks for you']);
      // The second hole is made first: it is in place while the first's fallback still stands.
      await gates.open('recs');
      await page.waitForSelector('#recs');
      expect([await page.$('#cart'), await page.$('#cart-fallback')]).toEqual([null, expect.anything()]);
      await gates.open('cart');
      await next;
      // The last hole may arrive with the end of the document, and is then placed as the parser
      // finishes, on either side of DOMContentLoaded's listeners: the same moment to whoever looks.
      const events = await eventsOf(page);
      expect(events.filter((event) => event !== 'DOMContentLoaded')).toEqual(['shell', 'recs', 'cart', 'load']);
      expect(events.indexOf('DOMContentLoaded')).toBeGreaterThan(events.indexOf('recs'));
      expect(await textsOf(page, 'aside, main')).toEqual(['2 items', 'tea']);
      expect([await page.$('cachegrain-hole'), await page.$('template')]).toEqual([null, null]);
      expect(problems).toEqual([]);
      expect(reported).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);

  it("fills no placeholder from a template whose id is not the response's own, and gives each response ids of its own", async () => {
    const context = await browser.createBrowserContext();
    try {
      const { page, problems } = await recordingTab(context);
      await context.setCookie({ name: 'cachegrain-holes', value: 'script', domain: '127.0.0.1', path: '/' });
      const nonces: string[] = [];
      for (let load = 0; load < 2; load++) {
        const loaded = page.goto(`${origin}/forged`);
        await gates.open('cart');
        await gates.open('recs');
        await loaded;
        expect(await textsOf(page, 'aside, main')).toEqual(['2 items', 'tea']);
        // The application's own placeholder kept its text; the template for it stayed a template.
        expect(await textsOf(page, 'cachegrain-hole')).toEqual(['kept']);
        expect(await page.$('#forged')).toBeNull();
        expect(await page.$$eval('body > template', (templates) => templates.map((template) => template.getAttribute('data-cachegrain-hole')))).toEqual([
          'x-0',
        ]);
        nonces.push(await page.$eval('script[data-cachegrain-holes]', (script) => script.getAttribute('data-cachegrain-holes')!));
      }
      expect(nonces[0]).not.toBe(nonces[1]);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);

  it('are all in place with JavaScript off', async () => {
    const context = await browser.createBrowserContext();
    try {
      const page = await context.newPage();
      await page.setJavaScriptEnabled(false);
      const loaded = page.goto(`${origin}/shop`);
      await gates.open('recs');
      await gates.open('cart');
      await loaded;
      expect(await textsOf(page, 'aside, main')).toEqual(['2 items', 'tea']);
      expect([await page.$('cachegrain-hole'), await page.$('template'), await page.$('#cart-fallback')]).toEqual([null, null, null]);
    } finally {
      await context.close();
    }
  }, 60_000);
});
