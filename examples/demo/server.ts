/**
 * The demo site: a catalogue in three sections, each rendered by another template engine, showing
 * the four levels of caching: the low-level API (slow queries through `getOrSet` on the `queries`
 * cache, counters with `incr`), template fragments (per item, per visitor, nested, in loops),
 * per-view caching (`cachePage` on the JSON API) and per-site caching (`cacheMiddleware` in front of
 * the HTML pages). Surprise: a page-cache hit replays the first render's footer, so its numbers are
 * that render's, and a line of script says how old the copy is.
 */
import { pathToFileURL } from 'node:url';
import express, { type NextFunction, type Request, type Response } from 'express';
import { cache, type CachesConfig, caches, configureCaches } from 'cachegrain';
import {
  addCacheContexts,
  addCacheTags,
  cacheControl,
  cacheDashboard,
  cacheMiddleware,
  cachePage,
  conditionalGet,
  defineCacheContext,
  neverCache,
} from 'cachegrain/express';
import { demoCaches } from './caches.js';
import {
  getItem,
  type Item,
  itemTag,
  listSection,
  recommendationsFor,
  recommendationTags,
  type Section,
  sectionItemIds,
  sectionOf,
  sectionPages,
  sectionPath,
  sections,
  updateItem,
} from './catalogue.js';
import { invalidateItem } from './edits.js';
import { clock, installEngines, money, VIEWS } from './engines.js';
import { addToCart, defineDemoHoles, visitorName, visitorOf } from './holes.js';
import { currentMetrics, fragmentTotals, measure, totals } from './metrics.js';

export interface DemoOptions {
  /** The cache configuration. @default the embedded default, or the servers named by CACHE_URL, FRAGMENT_CACHE_URL, QUERY_CACHE_URL */
  caches?: CachesConfig;
  /** Seconds the per-site cache keeps an HTML page. @default 60 */
  pageSeconds?: number;
  /** Seconds `cachePage` keeps an API answer. @default 30 */
  apiSeconds?: number;
}

/** Which engine renders which section. */
const ENGINES: Record<Section, { engine: string; extension: string; heading: string }> = {
  books: { engine: 'Nunjucks', extension: 'njk', heading: 'Books' },
  music: { engine: 'Handlebars', extension: 'hbs', heading: 'Music' },
  films: { engine: 'Eta', extension: 'eta', heading: 'Films' },
};

const FOOTER = '<!--demo-footer-->';
/** The key prefixes of the per-site page cache (HTML pages) and of the per-view one (the JSON API). */
const SITE_PREFIX = 'site';
const API_PREFIX = 'api';

/** Configures the caches and builds the app; the catalogue's cached query results from an earlier run are dropped. */
export async function createDemoApp(options: DemoOptions = {}): Promise<express.Express> {
  await configureCaches(options.caches ?? demoCaches());
  // The catalogue lives in memory: results cached by an earlier run would show edits it has forgotten.
  await caches.get('queries').clear();

  const app = express();
  app.set('etag', false); // conditionalGet gives the strong ETags
  installEngines(app);
  app.use((_req, _res, next) => measure(next));

  // The dashboard: a real site mounts it behind its own staff authentication.
  app.use('/_cache', cacheDashboard({ actions: true, title: 'Demo caches' }));

  app.get('/style.css', cacheControl({ public: true, maxAge: 3600 }), (_req, res) => res.sendFile('style.css', { root: VIEWS }));

  // Each page comes in a light and a dark theme (a cookie), and shows staff a menu of their own (a role,
  // kept in a cookie here: a real site reads it from the session). The pages vary on those, not on
  // the whole Cookie header: one copy per theme and role, not one per visitor.
  defineCacheContext('user.roles', roleOf);
  app.post('/theme', express.urlencoded({ extended: false }), (req, res) => {
    res.cookie('theme', req.body?.theme === 'dark' ? 'dark' : 'light', { sameSite: 'lax' });
    res.redirect(303, sameSiteReferer(req) ?? '/');
  });
  app.post('/role', express.urlencoded({ extended: false }), (req, res) => {
    res.cookie('role', req.body?.role === 'staff' ? 'staff' : 'reader', { sameSite: 'lax', httpOnly: true });
    res.redirect(303, sameSiteReferer(req) ?? '/');
  });

  // The header greets the signed-in visitor and shows their cart through holes (./holes.ts): filled
  // for each request, hit or miss, while the pages around them are one cached copy for everyone.
  defineDemoHoles();
  app.post('/visitor', express.urlencoded({ extended: false }), (req, res) => {
    const name = visitorName(req.body?.name);
    if (name === '') res.clearCookie('visitor');
    else res.cookie('visitor', name, { sameSite: 'lax', httpOnly: true });
    res.redirect(303, sameSiteReferer(req) ?? '/');
  });
  app.post('/cart', express.urlencoded({ extended: false }), async (req, res) => {
    const visitor = visitorOf(req);
    if (visitor !== undefined && catalogueId(req.body?.item) !== undefined) await addToCart(visitor);
    res.redirect(303, sameSiteReferer(req) ?? '/');
  });

  // Level 3, per view: one route cached on its own, whatever the rest of the site does.
  app.get('/api/items/:id', cachePage(options.apiSeconds ?? 30, { keyPrefix: API_PREFIX }), conditionalGet(), async (req, res) => {
    const id = itemId(req);
    const item = id === undefined ? undefined : await getItem(id);
    if (item === undefined) return void res.status(404).json({ error: `no item ${req.params.id}` });
    addCacheTags(res, itemTag(item.id));
    res.json({ item, generatedAt: new Date().toISOString() });
  });

  app.post('/items/:id', express.urlencoded({ extended: false }), async (req, res) => {
    const id = itemId(req);
    if (id === undefined) return void notFound(res);
    const price = Number(req.body?.price);
    const title = String(req.body?.title ?? '').trim();
    if (title === '' || !Number.isFinite(price) || price < 0) return void res.status(400).type('text').send('A title and a non-negative price are needed.');
    updateItem(id, { title, price, description: String(req.body?.description ?? '') });
    await invalidateItem(id);
    await count(`edits:${id}`);
    await count('edits');
    res.redirect(303, `/items/${id}`);
  });

  // Counted before the page cache answers, so that hits count as views too.
  app.get('/items/:id', async (req, _res, next) => {
    if (itemId(req) !== undefined) await count(`views:${req.params.id}`);
    next();
  });

  // Level 4, per site: every HTML page below is cached whole, once per value of what it varies on:
  // the theme cookie the layout reads, and the role its staff menu fragment varies on; not per visitor.
  const site = express.Router();
  site.use(cacheMiddleware({ seconds: options.pageSeconds ?? 60, keyPrefix: SITE_PREFIX, debug: true }), conditionalGet());

  site.get('/', (req, res) => renderPage(req, res, 'nunjucks/home.njk', 'Nunjucks', { title: 'Home' }));

  // Never cached (neverCache): they pass the page cache, which says so (X-Cache: BYPASS, and why).
  site.get('/stats', neverCache, async (req, res) => {
    const views = await cache.getMany<number>(Array.from({ length: 300 }, (_, index) => `views:${index + 1}`));
    const mostViewed = [...views]
      .map(([key, count]) => ({ id: Number(String(key).slice('views:'.length)), views: count }))
      .sort((a, b) => b.views - a.views)
      .slice(0, 10);
    const stats = { ...totals, ...fragmentTotals(), edits: (await cache.get<number>('edits')) ?? 0, mostViewed, generatedAt: new Date().toISOString() };
    if (req.accepts(['html', 'json']) === 'json') return void res.json(stats);
    renderPage(req, res, 'nunjucks/stats.njk', 'Nunjucks', { title: 'Stats', stats });
  });

  site.get('/items/:id/edit', neverCache, async (req, res) => {
    const id = itemId(req);
    if (id === undefined) return void notFound(res);
    renderPage(req, res, 'nunjucks/edit.njk', 'Nunjucks', { title: 'Edit', item: await loadItem(id), edits: (await cache.get<number>(`edits:${id}`)) ?? 0 });
  });

  site.get('/:section', async (req, res, next) => {
    const section = sections.find((candidate) => candidate === req.params.section);
    if (section === undefined) return next();
    const pages = sectionPages(section);
    const page = req.query.page === undefined ? 1 : Number(req.query.page);
    if (!Number.isSafeInteger(page) || page < 1 || page > pages) return void notFound(res);
    if (req.query.page !== undefined && page === 1) return void res.redirect(301, sectionPath(section, 1));
    // Level 1, the low-level API: the slow list query, kept in the `queries` cache, tagged with what it lists.
    const items = await caches
      .get('queries')
      .getOrSet(`section:${section}:${page}`, () => listSection(section, page), { tags: sectionItemIds(section, page).map(itemTag) });
    const { engine, extension, heading } = ENGINES[section];
    const pageLinks = Array.from({ length: pages }, (_, index) => ({ number: index + 1, href: sectionPath(section, index + 1), current: index + 1 === page }));
    renderPage(req, res, `${engine.toLowerCase()}/section.${extension}`, engine, {
      title: heading,
      heading,
      section,
      items: await withRecommendations(section, items),
      page,
      pages,
      pageLinks,
    });
  });

  site.get('/items/:id', async (req, res) => {
    const id = itemId(req);
    if (id === undefined) return void notFound(res);
    const item = await loadItem(id);
    // The page shows the item outside its fragments too (the title).
    addCacheTags(res, itemTag(id));
    const { engine, extension } = ENGINES[item.section];
    const [withRecs] = await withRecommendations(item.section, [item]);
    renderPage(req, res, `${engine.toLowerCase()}/item.${extension}`, engine, { title: item.title, item: withRecs });
  });

  app.use(site);
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    console.error(error);
    res
      .status(500)
      .type('text')
      .send(`The demo failed: ${(error as Error).message}`);
  });
  return app;
}

/** An item through the `queries` cache (level 1). */
function loadItem(id: number): Promise<Item> {
  return caches.get('queries').getOrSet(`item:${id}`, async () => (await getItem(id))!, { tags: [itemTag(id)] });
}

/**
 * Handlebars cannot wait inside a fragment, so its pages get the recommendations first, through the
 * `queries` cache; Nunjucks and Eta fetch them inside the fragment body instead.
 */
async function withRecommendations(section: Section, items: Item[]): Promise<Array<Item & { recommendations?: Item[] }>> {
  if (ENGINES[section].engine !== 'Handlebars') return items;
  const queries = caches.get('queries');
  return Promise.all(
    items.map(async (item) => ({
      ...item,
      recommendations: await queries.getOrSet(`recommendations:${item.id}`, () => recommendationsFor(item), { tags: recommendationTags(item) }),
    })),
  );
}

/** Renders a view and puts the footer in: what this render cost, known only once its fragments are resolved. */
function renderPage(req: Request, res: Response, view: string, engine: string, locals: Record<string, unknown>): void {
  // The layout shows the theme outside any fragment: the page varies on that cookie (the visitor's name is in a hole).
  addCacheContexts(res, 'cookie:theme');
  const theme = themeOf(req);
  const context = {
    ...locals,
    theme,
    otherTheme: theme === 'dark' ? 'light' : 'dark',
    staff: roleOf(req) === 'staff',
    clock,
    money,
    recommendations: recommendationsFor,
    itemTag,
    recommendationTags,
  };
  res.render(view, context, (error: Error | null, html?: string) => {
    if (error) return void res.status(500).type('text').send(`Rendering ${view} failed: ${error.message}`);
    res.type('html').send(html!.replace(FOOTER, footer(engine)));
  });
}

function footer(engine: string): string {
  const metrics = currentMetrics();
  const took = metrics === undefined ? 0 : performance.now() - metrics.startedAt;
  const renderedAt = Date.now();
  return (
    `<footer data-rendered-at="${renderedAt}">Rendered by ${engine} at ${clock()} in ${took.toFixed(0)} ms · ` +
    `fragments: ${metrics?.fragmentHits ?? 0} hit, ${metrics?.fragmentMisses ?? 0} missed · ` +
    `slow queries: ${metrics?.queries ?? 0}<span class="age"></span></footer>\n` +
    `<script>{const f=document.querySelector('footer[data-rendered-at]');const s=Math.round((Date.now()-Number(f.dataset.renderedAt))/1000);` +
    `if(s>0)f.querySelector('.age').textContent=' · this copy is '+s+' s old: the page cache served it (X-Cache: HIT)';}</script>`
  );
}

function themeOf(req: Request): 'light' | 'dark' {
  return /(?:^|;\s*)theme=dark(?:;|$)/.test(req.headers.cookie ?? '') ? 'dark' : 'light';
}

/** The visitor's role: `staff` or `reader`. */
function roleOf(req: { headers: { cookie?: string } }): string {
  return /(?:^|;\s*)role=staff(?:;|$)/.test(req.headers.cookie ?? '') ? 'staff' : 'reader';
}

function sameSiteReferer(req: Request): string | undefined {
  const referer = req.get('referer');
  if (referer === undefined) return undefined;
  const url = new URL(referer, `${req.protocol}://${req.get('host')}`);
  return url.host === req.get('host') ? url.pathname + url.search : undefined;
}

function itemId(req: Request): number | undefined {
  return catalogueId(req.params.id);
}

/** An item's id as a URL or a form gives it, if the catalogue holds such an item. */
function catalogueId(value: unknown): number | undefined {
  const id = Number(value);
  return Number.isSafeInteger(id) && sectionOf(id) !== undefined ? id : undefined;
}

function notFound(res: Response): void {
  res.status(404).type('text').send('Not found');
}

/** Adds one to a counter kept forever in the default cache (level 1: `add` then `incr`). */
async function count(key: string): Promise<number> {
  await cache.add(key, 0, null);
  return cache.incr(key);
}

async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 3000);
  const app = await createDemoApp();
  const server = app.listen(port, (error?: Error) => {
    // Express 5 hands a listen failure (a busy port) to this callback instead of throwing.
    if (error !== undefined) {
      const busy = (error as NodeJS.ErrnoException).code === 'EADDRINUSE';
      console.error(
        busy ? `cachegrain demo: port ${port} is already in use; set PORT to another port` : `cachegrain demo: cannot listen on port ${port}: ${error.message}`,
      );
      process.exit(1);
    }
    const base = `http://localhost:${port}`;
    console.log(`cachegrain demo on ${base}\n`);
    console.log('Try (each page says in its footer what it cost; X-Cache says whether the page cache answered):');
    for (const [path, what] of [
      ['/books', 'Nunjucks, nested fragments, recommendations fetched inside them'],
      ['/music', 'Handlebars, data loaded with getOrSet on the queries cache'],
      ['/films', 'Eta, recommendations awaited inside fragments'],
      ['/items/3', 'an item page; /items/3/edit changes it and invalidates exactly what shows it'],
      ['/items/5', 'sign in by name and add it to your cart: the greeting and the cart are holes, the page a HIT for everyone'],
      ['/api/items/3', 'JSON behind cachePage(30)'],
      ['/stats', 'live counters behind neverCache'],
      ['/_cache/', 'the cache dashboard: hits and misses of every cache, fragment and route'],
    ]) {
      console.log(`  ${base}${path}  ${what}`);
    }
    console.log(`\n  curl -si ${base}/books | grep -i x-cache     (twice: MISS, then HIT)`);
  });
  const stop = () => server.close(() => void caches.closeAll().then(() => process.exit(0)));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
