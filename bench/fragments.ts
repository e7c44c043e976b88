/**
 * Fragment caching in each engine. On locmem: a page whose 20 fragments all hit, against the same
 * page without cache tags (target: a hit render takes at most 1.2× the plain render's time, that is
 * ≥ 0.83× its throughput). On Redis: the same page cold (every fragment missed and written back) and
 * warm (one MGET), each against the plain render.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';
import Handlebars from 'handlebars';
import nunjucks from 'nunjucks';
import { cachePlugin } from '../adapters/eta.js';
import { installCacheHelper, render as renderHandlebars } from '../adapters/handlebars.js';
import { installCacheTag, render as renderNunjucks } from '../adapters/nunjucks.js';
import { caches, configureCaches } from '../src/index.js';
import { startRedisServer } from '../test/setup/redis.js';
import { compare, type Comparison } from './harness.js';

const FRAGMENTS = 20;
const items = Array.from({ length: FRAGMENTS }, (_, id) => ({
  id,
  title: `Item <${id}>`,
  body: 'Some text & a little more text to escape',
  tags: ['one', 'two', 'three', 'four'],
}));

/** The plain page is rendered by an engine instance without the cache tag installed. */
interface Page {
  engine: string;
  /** Renders the page with cache tags; `generation` is a vary-on value (a new one makes every fragment miss). */
  cached(generation: number): Promise<string>;
  plain(): Promise<string>;
}

function nunjucksPage(): Page {
  const body = '<li class="item">{{ item.title }}: {{ item.body }}{% for tag in item.tags %}<span>{{ tag }}</span>{% endfor %}</li>';
  const sources: Record<string, string> = {
    plain: `<ul>{% for item in items %}${body}{% endfor %}</ul>`,
    cached: `<ul>{% for item in items %}{% cache 600 item item.id generation %}${body}{% endcache %}{% endfor %}</ul>`,
  };
  const loader = { getSource: (name: string) => ({ src: sources[name]!, path: name, noCache: false }) } as unknown as nunjucks.ILoader;
  const env = installCacheTag(new nunjucks.Environment(loader, { autoescape: true }));
  const pristine = new nunjucks.Environment(loader, { autoescape: true });
  return {
    engine: 'nunjucks',
    cached: (generation) => renderNunjucks(env, 'cached', { items, generation }),
    plain: async () => pristine.render('plain', { items }),
  };
}

function handlebarsPage(): Page {
  const handlebars = installCacheHelper(Handlebars.create());
  const body = '<li class="item">{{title}}: {{body}}{{#each tags}}<span>{{this}}</span>{{/each}}</li>';
  const plain = Handlebars.create().compile(`<ul>{{#each items}}${body}{{/each}}</ul>`);
  const cached = handlebars.compile(`<ul>{{#each items}}{{#cache 600 "item" id @root.generation}}${body}{{/cache}}{{/each}}</ul>`);
  return {
    engine: 'handlebars',
    cached: (generation) => renderHandlebars(cached, { items, generation }),
    plain: async () => plain({ items }),
  };
}

function etaPage(): Page {
  const eta = new Eta({ plugins: [cachePlugin()] });
  const body = '<li class="item"><%= item.title %>: <%= item.body %><% for (const tag of item.tags) { %><span><%= tag %></span><% } %></li>';
  const pristine = new Eta();
  pristine.loadTemplate('@plain', `<ul><% for (const item of it.items) { %>${body}<% } %></ul>`, { async: true });
  eta.loadTemplate('@cached', `<ul><% for (const item of it.items) { %><% cache 600 item item.id it.generation %>${body}<% endcache %><% } %></ul>`, { async: true });
  return {
    engine: 'eta',
    cached: (generation) => eta.renderAsync('@cached', { items, generation }),
    plain: () => pristine.renderAsync('@plain', { items }),
  };
}

/**
 * Each engine is measured in a process of its own, as an application that uses one engine runs:
 * measured one after another in one process, the shared fragment core is compiled for whichever
 * engine came first, and the next ones pay for it.
 */
export async function run(): Promise<Comparison[]> {
  const results: Comparison[] = [];
  for (const engine of Object.keys(PAGES)) {
    const output = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), engine], { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      child.stdout.on('data', (chunk) => (text += chunk));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`the ${engine} fragment benchmark exited with ${code}`))));
    });
    const lines = output.trim().split('\n');
    results.push(...(JSON.parse(lines.pop()!) as Comparison[]));
    for (const line of lines) console.log(line);
  }
  return results;
}

/** One engine's figures: its page on locmem (all hits), then on Redis (cold and warm). */
async function runEngine(page: Page): Promise<Comparison[]> {
  const results: Comparison[] = [];
  await configureCaches({ default: { backend: 'locmem', location: 'bench-fragments', options: { maxEntries: 10_000 } } });
  if ((await page.cached(0)) !== (await page.plain())) throw new Error(`${page.engine}: the cached page differs from the plain one`);
  results.push(
    await compare('fragments', `${page.engine}: ${FRAGMENTS} hits, locmem (time ≤ 1.2× plain)`, () => page.cached(0), 'same page, no tags', () => page.plain(), { target: 0.83 }),
  );
  const redis = await startRedisServer();
  try {
    await configureCaches({
      default: { backend: 'locmem', location: 'bench-fragments' },
      template_fragments: { backend: 'redis', location: redis.url, keyPrefix: `bench-${page.engine}` },
    });
    let generation = 1;
    results.push(await compare('fragments', `${page.engine}: ${FRAGMENTS} misses + setMany, redis`, () => page.cached(++generation), 'same page, no tags', () => page.plain()));
    await page.cached(0);
    results.push(await compare('fragments', `${page.engine}: ${FRAGMENTS} hits, one MGET, redis`, () => page.cached(0), 'same page, no tags', () => page.plain()));
  } finally {
    await caches.closeAll();
    await redis.stop();
  }
  return results;
}

const PAGES: Record<string, () => Page> = { nunjucks: nunjucksPage, handlebars: handlebarsPage, eta: etaPage };

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const engine = process.argv[2]!;
  const results = await runEngine(PAGES[engine]!());
  console.log(JSON.stringify(results));
  process.exit(0);
}
