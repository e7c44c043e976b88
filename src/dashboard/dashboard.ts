/**
 * The cache dashboard: one server-rendered page showing what every cache, fragment and
 * page route did, the recent invalidations, and (with `actions: true`) forms to invalidate tags and
 * clear a cache. Framework-free: `makeDashboard` answers a request as its framework's adapter reads it,
 * and the adapter sends the answer its framework's way (`cacheDashboard` of each adapter; here, a
 * `(req, res, next)` handler over node:http), mounted by the user behind their own authentication.
 *
 * A GET never changes anything. A change is a POST carrying a token only this page hands out (an
 * HMAC of a per-process secret and the hour), so another site cannot make a visitor's browser
 * post one.
 */
import { cacheForDashboard } from './cache-for-dashboard.js';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { subscribe } from 'node:diagnostics_channel';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BaseCache } from '../cache/base-cache.js';
import type { ServerHealth } from '../backends/server.js';
import { caches } from '../config/cache-registry.js';
import { InvalidCacheBackendError } from '../errors/errors.js';
import { EdgeWaitError } from '../edge/purge-queue.js';
import { checkOptions, MUST_BE, optionShape, ValueRule } from '../options/option-rules.js';
import { fragmentStats } from '../fragments/index.js';
import { type CacheEvent, channelName, type HitCounts } from '../observation/observation.js';
import { pageStats } from '../pages/page-cache.js';
import { pageVariants, type RouteVariants, variantsUncounted } from '../pages/page-stats.js';

export interface DashboardOptions {
  /** The aliases to show. @default every configured alias */
  caches?: string[];
  /** Shows the forms that invalidate tags and clear a cache, and accepts their POSTs. @default false */
  actions?: boolean;
  /** The page's heading. @default 'Cache' */
  title?: string;
  /** How many fragment names and routes each table lists. @default 20 */
  top?: number;
}

export const DASHBOARD_OPTIONS = optionShape<DashboardOptions>({
  caches: new ValueRule('a list of cache aliases', (value) => Array.isArray(value) && value.every((alias) => typeof alias === 'string')),
  actions: MUST_BE.boolean,
  title: MUST_BE.string,
  top: MUST_BE.nonNegativeInteger,
});

type Next = (error?: unknown) => void;

/** What an invalidation looked like, as the dashboard lists it. */
interface Invalidation {
  at: Date;
  alias: string;
  what: string;
  soft: boolean;
}

const RECENT_LIMIT = 50;
const TOKEN_WINDOW_MS = 60 * 60 * 1000;
/** Larger than any of the page's forms: a body past it is refused. */
export const BODY_LIMIT = 16 * 1024;

/** The invalidations this process made, newest first: every dashboard shows the same list. */
const recent: Invalidation[] = [];
let listening = false;

function listenForInvalidations(): void {
  if (listening) return;
  listening = true;
  const remember = (what: (event: CacheEvent) => string) => (message: unknown) => {
    const event = message as CacheEvent;
    // An edge that did not take its purge fails the call that waited for it, not the invalidation.
    if (event.outcome !== 'ok' && !(event.error instanceof EdgeWaitError)) return;
    recent.unshift({ at: new Date(), alias: event.alias, what: what(event), soft: event.soft === true });
    recent.length = Math.min(recent.length, RECENT_LIMIT);
  };
  subscribe(
    channelName('invalidateTags'),
    remember((event) => `tags ${(event.tags ?? []).join(', ')}`),
  );
  subscribe(
    channelName('clear'),
    remember(() => 'everything (clear)'),
  );
  subscribe(
    channelName('delete'),
    remember((event) => `key ${event.key}`),
  );
  subscribe(
    channelName('deleteMany'),
    remember((event) => `keys ${(event.keys ?? []).join(', ')}`),
  );
}

/** The cache of an alias `options.caches` names; one that is not configured is refused, naming it and the option. */
function shownCache(alias: string): BaseCache {
  try {
    return caches.get(alias);
  } catch (error) {
    if (!(error instanceof InvalidCacheBackendError) || caches.has(alias)) throw error;
    throw new InvalidCacheBackendError(`cacheDashboard: options.caches names '${alias}': ${error.message}`, { alias, cause: error });
  }
}

/** A request to the dashboard, as its framework's adapter reads it. */
export interface DashboardRequest {
  method: string;
  /** The path under the dashboard's mount: `/` (or '') is the page, `/invalidate-tags` and `/clear` its actions. */
  path: string;
  /** Where the dashboard is mounted, without a trailing slash: its forms post there, and its redirect leads back. */
  mount: string;
  /** The query string, without its `?`. */
  query: string;
  /** The posted form; undefined when it is larger than any of the page's forms. */
  form(): Promise<URLSearchParams | undefined>;
}

/** What the dashboard answers, for its adapter to send the way its framework sends a response. */
export interface DashboardAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** The dashboard's answer to a request; undefined for a path that is not its own, which its adapter passes on. */
export type Dashboard = (request: DashboardRequest) => Promise<DashboardAnswer> | undefined;

/** The dashboard, whatever serves it: every adapter mounts this one. */
export function makeDashboard(options: DashboardOptions = {}): Dashboard {
  checkOptions(options, DASHBOARD_OPTIONS, 'cacheDashboard');
  // The caches may be configured after the dashboard is made: its aliases are checked now only if they
  // were configured before, and on every request otherwise.
  for (const alias of options.caches ?? []) caches.checkAlias(alias, 'cacheDashboard: options.caches');
  const { actions = false, title = 'Cache', top = 20 } = options;
  listenForInvalidations();
  const secret = randomBytes(32);
  const token = (window: number) => createHmac('sha256', secret).update(String(window)).digest('base64url');
  const validToken = (given: string | undefined) => {
    if (given === undefined) return false;
    const window = Math.floor(Date.now() / TOKEN_WINDOW_MS);
    // The previous hour's token still works: a page loaded just before the hour turned.
    return [window, window - 1].some((each) => {
      const expected = Buffer.from(token(each));
      const actual = Buffer.from(given);
      return actual.length === expected.length && timingSafeEqual(actual, expected);
    });
  };
  const shown = (): BaseCache[] => (options.caches === undefined ? caches.all() : options.caches.map(shownCache));

  const act = async (request: DashboardRequest): Promise<DashboardAnswer> => {
    const form = await request.form();
    if (form === undefined) return text(413, 'Payload Too Large');
    if (!validToken(form.get('token') ?? undefined)) return text(403, 'Forbidden: the form is out of date or did not come from this page; load the page again');
    const alias = form.get('alias') ?? '';
    const known = shown().find((each) => each.alias === alias);
    if (known === undefined) return text(400, `Bad Request: no cache '${alias}' on this dashboard`);
    let done: string;
    // The change, waited for until the edges in front took its purge: the page the browser is sent
    // back to, and any page opened from it, no longer shows what the change replaced.
    let change: Promise<void>;
    if (request.path === '/clear') {
      change = known.clear({ waitForEdges: true });
      done = `Cleared cache '${alias}'.`;
    } else {
      const tags = (form.get('tags') ?? '').split(/[\s,]+/).filter((tag) => tag !== '');
      if (tags.length === 0) return text(400, 'Bad Request: name at least one tag');
      const soft = form.get('soft') === 'on';
      change = known.invalidateTags(tags, { soft, waitForEdges: true });
      done = `Invalidated ${soft ? 'softly ' : ''}tags ${tags.join(', ')} in cache '${alias}'.`;
    }
    const unconfirmed = await change.then(
      () => undefined,
      (error: unknown) => {
        if (error instanceof EdgeWaitError) return error.message.replace(`cache '${alias}': `, '');
        throw error;
      },
    );
    if (unconfirmed !== undefined) done += ` The edges in front may still answer with what it replaced: ${unconfirmed}.`;
    // After a POST, a GET of the page: reloading it does not post again.
    return { status: 303, headers: { Location: `${request.mount}/?done=${encodeURIComponent(done)}`, 'Cache-Control': 'no-store' }, body: '' };
  };

  return (request) => {
    const { method, path } = request;
    if (path === '/' || path === '') {
      if (method !== 'GET' && method !== 'HEAD') return Promise.resolve(text(405, 'Method Not Allowed', { Allow: 'GET, HEAD' }));
      const flash = new URLSearchParams(request.query).get('done') ?? undefined;
      const page = { title, top, actions, token: token(Math.floor(Date.now() / TOKEN_WINDOW_MS)), flash, mount: request.mount };
      return Promise.resolve()
        .then(() => renderPage(shown(), page))
        .then((html) => answer(200, 'text/html; charset=utf-8', html));
    }
    if (path !== '/invalidate-tags' && path !== '/clear') return undefined;
    if (!actions) return Promise.resolve(text(404, 'Not Found'));
    if (method !== 'POST') return Promise.resolve(text(405, 'Method Not Allowed', { Allow: 'POST' }));
    return act(request);
  };
}

/** Options of the dashboard where no router takes its path off the URL. */
export interface MountedDashboardOptions extends DashboardOptions {
  /** The path the dashboard answers under (`'/_cache'`), where no router takes it off the URL: a bare node:http server, Koa. */
  path?: string;
}

export const MOUNTED_DASHBOARD_OPTIONS = optionShape<MountedDashboardOptions>({
  ...DASHBOARD_OPTIONS,
  path: new ValueRule("a path starting with '/'", (value) => typeof value === 'string' && value.startsWith('/')),
});

/** `path` without its trailing slash: '' for the root. */
export const mountOf = (path: string): string => path.replace(/\/$/, '');

/** A request's URL as its path and its query string (without the `?`). */
export function pathAndQuery(url: string): [path: string, query: string] {
  const mark = url.indexOf('?');
  return mark === -1 ? [url, ''] : [url.slice(0, mark), url.slice(mark + 1)];
}

/** The path of `url` under `mount` (`/clear`, '' for the mount itself); undefined when it is not under it. */
export function pathUnder(url: string, mount: string): string | undefined {
  if (url === mount) return '';
  return url.startsWith(`${mount}/`) ? url.slice(mount.length) : undefined;
}

/**
 * The dashboard as a node:http handler: GET `/` shows it; POST `/invalidate-tags` and `/clear` act.
 * Under a router that takes its mount path off the URL (Express, Connect), it answers the rest of the
 * URL; with `path`, it answers under that path of the whole URL (a bare node:http server). Any other
 * path goes to `next`, or answers 404 without one.
 */
export function dashboardHandler(options: MountedDashboardOptions = {}): (req: IncomingMessage, res: ServerResponse, next?: Next) => void {
  checkOptions(options, MOUNTED_DASHBOARD_OPTIONS, 'cacheDashboard');
  const { path: under, ...shown } = options;
  const dashboard = makeDashboard(shown);
  const mount = under === undefined ? undefined : mountOf(under);
  return (req, res, next) => {
    const [url, query] = pathAndQuery(req.url ?? '/');
    const path = mount === undefined ? url : pathUnder(url, mount);
    const answered =
      path === undefined ? undefined : dashboard({ method: req.method ?? 'GET', path, mount: mount ?? mountPath(req, path), query, form: () => readForm(req) });
    if (answered === undefined) return next === undefined ? sendAnswer(res, text(404, 'Not Found')) : next();
    answered.then(
      (answer) => sendAnswer(res, answer),
      (error: unknown) => (next === undefined ? sendAnswer(res, text(500, String(error))) : next(error)),
    );
  };
}

async function renderPage(
  shown: BaseCache[],
  page: { title: string; top: number; actions: boolean; token: string; flash: string | undefined; mount: string },
): Promise<string> {
  const rows = await Promise.all(
    shown.map(async (cache) => {
      const stats = cache.stats();
      const entries = await cacheForDashboard(cache)
        .countEntries()
        .catch(() => undefined);
      const servers = 'health' in cache && typeof cache.health === 'function' ? (cache.health() as ServerHealth[]) : [];
      return { cache, stats, entries, servers };
    }),
  );
  const cacheRows = rows
    .map(({ cache, stats, entries, servers }) => {
      const served = stats.hits + stats.staleHits;
      return `<tr data-alias="${escape(cache.alias)}">
  <th scope="row">${escape(cache.alias)}</th><td>${escape(cache.constructor.name)}</td>
  <td class="n" data-field="entries">${entries === undefined ? '<span class="muted">—</span>' : entries}</td>
  <td class="n" data-field="ratio">${ratio(served, served + stats.misses)}</td>
  <td class="n" data-field="hits">${stats.hits}</td><td class="n" data-field="misses">${stats.misses}</td><td class="n" data-field="staleHits">${stats.staleHits}</td>
  <td class="n" data-field="sets">${stats.sets}</td><td class="n" data-field="deletes">${stats.deletes}</td>
  <td class="n${stats.errors > 0 ? ' bad' : ''}" data-field="errors">${stats.errors}</td>
  <td class="n${stats.purgesFailed > 0 ? ' bad' : ''}" data-field="purges">${stats.purgesSent + stats.purgesFailed === 0 ? '<span class="muted">—</span>' : `${stats.purgesSent} sent, ${stats.purgesFailed} failed`}</td>
  <td data-field="servers">${servers.length === 0 ? '<span class="muted">in process</span>' : servers.map((server) => `<span class="state ${escape(server.state)}">${escape(server.server)}: ${escape(healthInWords(server))}</span>`).join(' ')}</td>
</tr>`;
    })
    .join('\n');
  const recentRows =
    recent.length === 0
      ? '<p class="muted">None since this process started.</p>'
      : `<table><thead><tr><th>When</th><th>Cache</th><th>What</th><th>Soft</th></tr></thead><tbody>
${recent.map((each) => `<tr><td>${when(each.at)}</td><td>${escape(each.alias)}</td><td>${escape(each.what)}</td><td>${each.soft ? 'soft' : ''}</td></tr>`).join('\n')}
</tbody></table>`;
  const aliasOptions = shown.map((cache) => `<option>${escape(cache.alias)}</option>`).join('');
  const forms = page.actions
    ? `<section><h2>Act</h2><div class="forms">
<form method="post" action="${escape(page.mount)}/invalidate-tags" id="invalidate-tags">
  <input type="hidden" name="token" value="${escape(page.token)}">
  <label>Cache <select name="alias">${aliasOptions}</select></label>
  <label>Tags <input name="tags" placeholder="item:42 section:news" required></label>
  <label class="check"><input type="checkbox" name="soft"> soft (serve stale while refreshed)</label>
  <button>Invalidate tags</button>
</form>
<form method="post" action="${escape(page.mount)}/clear" id="clear">
  <input type="hidden" name="token" value="${escape(page.token)}">
  <label>Cache <select name="alias">${aliasOptions}</select></label>
  <button class="danger">Clear cache</button>
</form></div></section>`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>${escape(page.title)}</title>
<style>
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:14px 28px}header h1{margin:0;font-size:20px;font-weight:600}
main{padding:8px 28px 40px;max-width:1180px}h2{font-size:16px;margin:26px 0 10px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde1e7;border-radius:6px;overflow:hidden}
th,td{padding:7px 10px;border-bottom:1px solid #eceef2;text-align:left;vertical-align:top}thead th{background:#eef0f4;font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#4a5262}
td.n{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#8a91a0}.bad{color:#b3261e;font-weight:600}
.state{display:inline-block;padding:1px 7px;border-radius:10px;font-size:12px;background:#e3f4e6;color:#1e6b2f}.state.open,.state.probing{background:#fde7e5;color:#b3261e}
.flash{background:#e3f4e6;border:1px solid #b9e0c1;padding:9px 12px;border-radius:6px;margin-top:18px}
.forms{display:flex;gap:16px;flex-wrap:wrap}form{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:12px 14px;display:flex;gap:10px;align-items:center;flex-wrap:wrap}
input,select,button{font:inherit}input[name=tags]{width:220px}button{background:#2b59c3;color:#fff;border:0;border-radius:5px;padding:6px 12px;cursor:pointer}button.danger{background:#b3261e}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:20px}@media (max-width:800px){.grid{grid-template-columns:1fr}}
</style></head>
<body><header><h1>${escape(page.title)}</h1></header><main>
${page.flash === undefined ? '' : `<p class="flash" role="status">${escape(page.flash)}</p>`}
<section><h2>Caches</h2><table id="caches"><thead><tr><th>Alias</th><th>Backend</th><th>Entries</th><th>Hit ratio</th><th>Hits</th><th>Misses</th><th>Stale</th><th>Sets</th><th>Deletes</th><th>Errors</th><th>Edge purges</th><th>Servers</th></tr></thead>
<tbody>
${cacheRows}
</tbody></table></section>
<div class="grid">
<section><h2>Fragments</h2>${countsTable({ id: 'fragments', what: 'Fragment' }, fragmentStats(), page.top)}</section>
<section><h2>Pages</h2>${countsTable({ id: 'routes', what: 'Route', extra: variantColumns(pageVariants()) }, pageStats(), page.top)}</section>
</div>
<section><h2>Recent invalidations</h2>${recentRows}</section>
${forms}
</main></body></html>
`;
}

/** When something happened, as the page shows it: `2026-05-14 09:00:00 UTC`. */
function when(at: Date): string {
  return `${at.toISOString().replace('T', ' ').slice(0, 19)} UTC`;
}

/** A server's breaker as a person reads it: healthy, or open since when (and whether it is being tried again). */
function healthInWords(health: ServerHealth): string {
  if (health.state === 'closed') return 'healthy';
  const since = `open since ${when(new Date(health.openedAt ?? Date.now()))}`;
  return health.state === 'probing' ? `${since}, one request is trying it again` : since;
}

/**
 * Where the dashboard is mounted, from the request: the path the router took off the URL (Express's
 * `baseUrl`, else what the full URL has in front of the dashboard's own path), without a trailing
 * slash. Its links start from there, so they work whether the page was asked for with the slash or not.
 */
function mountPath(req: IncomingMessage, path: string): string {
  const { baseUrl, originalUrl } = req as IncomingMessage & { baseUrl?: unknown; originalUrl?: unknown };
  if (typeof baseUrl === 'string') return baseUrl.replace(/\/$/, '');
  const full = (typeof originalUrl === 'string' ? originalUrl : (req.url ?? '/')).split('?')[0]!;
  const own = path === '/' ? '' : path;
  return (full.endsWith(own) ? full.slice(0, full.length - own.length) : '').replace(/\/$/, '');
}

/** Columns a table adds after the counts: their headings, and each row's cells (`<td>` elements) by its name. */
interface ExtraColumns {
  headings: string[];
  cells(name: string): string[];
}

/** The routes' variants: what their pages vary on (cache contexts and request headers), and how many were stored. */
function variantColumns(variants: Map<string, RouteVariants>): ExtraColumns {
  return {
    headings: ['Varies on', 'Variants'],
    cells(name) {
      const known = variants.get(name);
      if (known === undefined) return ['<td data-field="variesOn" class="muted">—</td>', '<td class="n muted" data-field="variants">—</td>'];
      const variesOn =
        known.variesOn.length === 0 ? '<span class="muted">nothing</span>' : known.variesOn.map((item) => `<code>${escape(item)}</code>`).join(' ');
      return [`<td data-field="variesOn">${variesOn}</td>`, `<td class="n" data-field="variants">${known.variants}${variantsUncounted(name) ? '+' : ''}</td>`];
    },
  };
}

/** A table of counts: its element id, what its names are of (its first heading), and its columns beyond the counts. */
interface CountsTable {
  id: string;
  what: string;
  extra?: ExtraColumns;
}

/** The busiest names (by hits and misses together), `top` of them, each with its counts and hit ratio. */
function countsTable({ id, what, extra }: CountsTable, counts: Map<string, HitCounts>, top: number): string {
  if (counts.size === 0) return '<p class="muted">Nothing counted yet.</p>';
  const busiest = [...counts].sort(([, a], [, b]) => b.hits + b.staleHits + b.misses - (a.hits + a.staleHits + a.misses)).slice(0, top);
  const headings = (extra?.headings ?? []).map((heading) => `<th>${heading}</th>`).join('');
  return `<table id="${id}"><thead><tr><th>${what}</th><th>Hit ratio</th><th>Hits</th><th>Misses</th><th>Stale</th>${headings}</tr></thead><tbody>
${busiest
  .map(
    ([name, each]) =>
      `<tr data-name="${escape(name)}"><td>${escape(name)}</td><td class="n">${ratio(each.hits + each.staleHits, each.hits + each.staleHits + each.misses)}</td><td class="n" data-field="hits">${each.hits}</td><td class="n" data-field="misses">${each.misses}</td><td class="n" data-field="staleHits">${each.staleHits}</td>${(extra?.cells(name) ?? []).join('')}</tr>`,
  )
  .join('\n')}
</tbody></table>`;
}

function ratio(part: number, whole: number): string {
  return whole === 0 ? '<span class="muted">—</span>' : `${((100 * part) / whole).toFixed(1)}%`;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
function escape(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ESCAPES[char]!);
}

/**
 * The fields of a form a body parser in front has read (an object, or the text of a body it took as
 * text); an empty form for no body at all.
 */
export function formOf(parsed: unknown): URLSearchParams {
  if (parsed instanceof URLSearchParams) return parsed;
  if (typeof parsed === 'string' || Buffer.isBuffer(parsed)) return new URLSearchParams(parsed.toString());
  if (parsed === null || typeof parsed !== 'object') return new URLSearchParams();
  return new URLSearchParams(Object.entries(parsed as Record<string, unknown>).map(([name, value]): [string, string] => [name, String(value)]));
}

/** A urlencoded form body, from Node's request or a web stream; undefined when it is larger than any of this page's forms. */
export async function readForm(body: AsyncIterable<Uint8Array>): Promise<URLSearchParams | undefined> {
  // A body parser in front (express.urlencoded) has read it already.
  const parsed = (body as { body?: unknown }).body;
  if (parsed !== undefined) return formOf(parsed);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    // Past the limit the rest is read and dropped: to stop reading would destroy Node's request, and the answer with it.
    if (size <= BODY_LIMIT) chunks.push(chunk);
  }
  return size > BODY_LIMIT ? undefined : new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function answer(status: number, type: string, body: string, headers: Record<string, string> = {}): DashboardAnswer {
  // What this page shows is this moment's state, for the people allowed to see it: never stored.
  return { status, headers: { 'Content-Type': type, 'Cache-Control': 'no-store', 'Content-Length': String(Buffer.byteLength(body)), ...headers }, body };
}

function text(status: number, words: string, headers: Record<string, string> = {}): DashboardAnswer {
  return answer(status, 'text/plain; charset=utf-8', `${words}\n`, headers);
}

function sendAnswer(res: ServerResponse, { status, headers, body }: DashboardAnswer): void {
  res.writeHead(status, headers).end(body);
}
