/**
 * Fragment caching in each engine. On locmem: a page whose 20 fragments all hit, against the same
 * page without cache tags (target: a hit render takes at most 1.2× the plain render's time, that is
 * ≥ 0.83× its throughput), and against the pre-rendered loop, the same loop emitting each fragment's
 * HTML raw: what a cache with no overhead at all still costs (target: at most 1.5× its time, ≥ 0.67×);
 * and, in the engines that read template digests, the page with them on, against the same page
 * without them (target: at most 1.05× its time, ≥ 0.952×).
 * For Eta, EJS and Pug, also the least any in-process hit costs there: each hit's lookup, checks and
 * count written into the template by hand (the floor), against the same pre-rendered loop; and the
 * page's hits against the floor. In EJS and Pug the pre-rendered loop costs a fraction of the floor,
 * so their hits are judged against the floor instead (target: at most 1.2× its time, ≥ 0.83×). The
 * floor finds its entries by position, as the bench's small integer ids allow; beside it, the same
 * hand-written hits finding them in Maps by id and generation, as a lookup by values of any kind must.
 * On Redis: the same page cold (every fragment missed and written back) and warm (one MGET), each
 * against the same commands sent by hand with ioredis around the plain page (cold) or the
 * pre-rendered loop (warm), so that both sides wait on the same server; and warm with `l1`, against
 * the page on locmem (target ≥ 0.9×): as the fragments' cache, and named by each tag's `using=`,
 * with and without `tags=`.
 */
import { createRequire } from 'node:module';
import { Redis } from 'ioredis';
import type { ILoader } from 'nunjucks';
import { type CacheConfig, caches, configureCaches } from '../src/index.js';
import { startRedisServer } from '../test/setup/redis.js';
import { compare, type Comparison, compared, type Measurement, measure, print, ROUNDS } from './harness.js';

const FRAGMENTS = 20;
/** How many times each cached page misses before its hits are measured (see `runEngine`). */
const MISSES_BEFORE_HITS = 10;
const items = Array.from({ length: FRAGMENTS }, (_, id) => ({
  id,
  title: `Item <${id}>`,
  body: 'Some text & a little more text to escape, then a sentence or two of description, as a product list or a feed would show under each title, long enough for the fragment to weigh what a real one does.',
  tags: ['one', 'two', 'three', 'four'],
}));

/** The plain page is rendered by an engine instance without the cache tag installed. */
interface Page {
  engine: string;
  /**
   * Renders the page with cache tags; `generation` is a vary-on value (a new one makes every fragment
   * miss). `keywords`: the tags name the cache `frag_l1` (`using`), and tag their fragments too (`tagged`).
   */
  cached(generation: number, keywords?: Keywords): Promise<string>;
  /** The same page, its tags' keys carrying template digests (an engine installed with `digests: true`), where the engine reads them. */
  digested?(generation: number): Promise<string>;
  plain(): Promise<string>;
  /** The same loop emitting each item's already-rendered fragment raw. */
  prerendered(): Promise<string>;
  /**
   * The least a hit can cost in this engine: the same loop with each hit's lookup, checks and count
   * written into the template by hand, against entries indexed beforehand (no cache, no call). The
   * floor finds them `indexed` by position, as only the bench's small integer ids allow; `keyed`, in
   * Maps by the vary-on values, as a lookup must for values of any kind.
   */
  handWrittenHits?(lookup: Lookup): Promise<string>;
  /**
   * Where the engine's hits are judged: against the pre-rendered loop (at most 1.5× its time), or,
   * where the loop itself costs that much less than any hit (EJS, Pug), against the hand-written
   * hits (at most 1.2× their time).
   */
  judgedAgainst?: 'pre-rendered' | 'hand-written';
}

type Keywords = 'using' | 'tagged';
type Lookup = 'indexed' | 'keyed';
/** The keywords of each kind of tag, as every engine writes them. */
const KEYWORDS: Record<Keywords | 'none', string> = { none: '', using: ' using="frag_l1"', tagged: ' using="frag_l1" tags="items"' };

/** Each item with its fragment's HTML, for the pre-rendered loop; filled from the plain render. */
const prerenderedItems: Array<{ html: string }> = [];

/**
 * What a hit written into a template by hand reads: each item's entry found by id and generation
 * beforehand (no key made, no cache called), by position (`index`) and in Maps (`keyed`), and the
 * count it bumps.
 */
interface HandWrittenIndex {
  generation: 0;
  index: Array<Array<HandWrittenEntry>>;
  keyed: Map<number, Map<number, HandWrittenEntry>>;
  counts: { hits: number };
}
interface HandWrittenEntry {
  value: string;
  entry: { retired: boolean; expiresAt: number };
}
let handWrittenIndex: HandWrittenIndex | undefined;
function handWrittenIndexes(): HandWrittenIndex {
  if (handWrittenIndex !== undefined) return handWrittenIndex;
  const entries = prerenderedItems.map(({ html }) => ({ value: html, entry: { retired: false, expiresAt: Date.now() / 1000 + 600 } }));
  return (handWrittenIndex = {
    generation: 0,
    index: entries.map((entry) => [entry]),
    keyed: new Map(entries.map((entry, id) => [id, new Map([[0, entry]])])),
    counts: { hits: 0 },
  });
}

async function nunjucksPage(): Promise<Page> {
  const { default: nunjucks } = await import('nunjucks');
  const { installCacheTag, render: renderNunjucks } = await import('../src/engines/nunjucks.js');
  const body = '<li class="item">{{ item.title }}: {{ item.body }}{% for tag in item.tags %}<span>{{ tag }}</span>{% endfor %}</li>';
  const sources: Record<string, string> = { plain: `<ul>{% for item in items %}${body}{% endfor %}</ul>` };
  for (const [kind, keywords] of Object.entries(KEYWORDS)) {
    sources[kind] = `<ul>{% for item in items %}{% cache 600 item item.id generation${keywords} %}${body}{% endcache %}{% endfor %}</ul>`;
  }
  // A loader each: nunjucks keeps compiled templates on the loader, and each environment compiles its own.
  const loader = () => ({ getSource: (name: string) => ({ src: sources[name]!, path: name, noCache: false }) }) as unknown as ILoader;
  const env = installCacheTag(new nunjucks.Environment(loader(), { autoescape: true }));
  const digestedEnv = installCacheTag(new nunjucks.Environment(loader(), { autoescape: true }), { digests: true });
  const pristine = new nunjucks.Environment(loader(), { autoescape: true });
  sources.prerendered = '<ul>{% for item in items %}{{ item.html | safe }}{% endfor %}</ul>';
  return {
    engine: 'nunjucks',
    cached: (generation, keywords) => renderNunjucks(env, keywords ?? 'none', { items, generation }),
    digested: (generation) => renderNunjucks(digestedEnv, 'none', { items, generation }),
    plain: async () => pristine.render('plain', { items }),
    prerendered: async () => pristine.render('prerendered', { items: prerenderedItems }),
  };
}

async function handlebarsPage(): Promise<Page> {
  const { default: Handlebars } = await import('handlebars');
  const { installCacheHelper, render: renderHandlebars } = await import('../src/engines/handlebars.js');
  const handlebars = installCacheHelper(Handlebars.create());
  const digestedHandlebars = installCacheHelper(Handlebars.create(), { digests: true });
  const body = '<li class="item">{{title}}: {{body}}{{#each tags}}<span>{{this}}</span>{{/each}}</li>';
  const plain = Handlebars.create().compile(`<ul>{{#each items}}${body}{{/each}}</ul>`);
  const cached = Object.fromEntries(
    Object.entries(KEYWORDS).map(([kind, keywords]) => [
      kind,
      handlebars.compile(`<ul>{{#each items}}{{#cache 600 "item" id @root.generation${keywords}}}${body}{{/cache}}{{/each}}</ul>`),
    ]),
  );
  const digested = digestedHandlebars.compile(`<ul>{{#each items}}{{#cache 600 "item" id @root.generation}}${body}{{/cache}}{{/each}}</ul>`);
  const prerendered = Handlebars.create().compile('<ul>{{#each items}}{{{html}}}{{/each}}</ul>');
  return {
    engine: 'handlebars',
    cached: (generation, keywords) => renderHandlebars(cached[keywords ?? 'none']!, { items, generation }),
    digested: (generation) => renderHandlebars(digested, { items, generation }),
    plain: async () => plain({ items }),
    prerendered: async () => prerendered({ items: prerenderedItems }),
  };
}

async function etaPage(): Promise<Page> {
  const { Eta } = await import('eta');
  const { cachePlugin } = await import('../src/engines/eta.js');
  const eta = new Eta({ plugins: [cachePlugin()] });
  const digestedEta = new Eta({ plugins: [cachePlugin({ digests: true })] });
  const body = '<li class="item"><%= item.title %>: <%= item.body %><% for (const tag of item.tags) { %><span><%= tag %></span><% } %></li>';
  const pristine = new Eta();
  pristine.loadTemplate('@plain', `<ul><% for (const item of it.items) { %>${body}<% } %></ul>`, { async: true });
  // Named once: a name built for each render would be hashed afresh by each lookup.
  const names: Record<Keywords | 'none', string> = { none: '@none', using: '@using', tagged: '@tagged' };
  for (const [kind, keywords] of Object.entries(KEYWORDS)) {
    eta.loadTemplate(
      names[kind as Keywords | 'none'],
      `<ul><% for (const item of it.items) { %><% cache 600 item item.id it.generation${keywords} %>${body}<% endcache %><% } %></ul>`,
      {
        async: true,
      },
    );
  }
  digestedEta.loadTemplate('@none', `<ul><% for (const item of it.items) { %><% cache 600 item item.id it.generation %>${body}<% endcache %><% } %></ul>`, {
    async: true,
  });
  pristine.loadTemplate('@prerendered', '<ul><% for (const item of it.items) { %><%~ item.html %><% } %></ul>', { async: true });
  // A hit as an in-process cache must take it at the least: found by the item's id and the
  // generation, checked against the entry's replacement and expiry at one clock reading, counted.
  const heldBy: Record<Lookup, string> = { indexed: 'it.index[item.id]?.[it.generation]', keyed: 'it.keyed.get(item.id)?.get(it.generation)' };
  for (const [lookup, held] of Object.entries(heldBy)) {
    pristine.loadTemplate(
      `@handWritten-${lookup}`,
      '<ul><% const now = Date.now() / 1000; for (const item of it.items) { %>' +
        `<% { const held = ${held}; if (held !== undefined && !held.entry.retired && held.entry.expiresAt > now) { it.counts.hits++; __eta.res += held.value; } else __eta.res += "miss"; } %>` +
        '<% } %></ul>',
      { async: true },
    );
  }
  return {
    engine: 'eta',
    cached: (generation, keywords) => eta.renderAsync(names[keywords ?? 'none'], { items, generation }),
    digested: (generation) => digestedEta.renderAsync('@none', { items, generation }),
    plain: () => pristine.renderAsync('@plain', { items }),
    prerendered: () => pristine.renderAsync('@prerendered', { items: prerenderedItems }),
    handWrittenHits: (lookup) => pristine.renderAsync(`@handWritten-${lookup}`, { items, ...handWrittenIndexes() }),
  };
}

async function ejsPage(): Promise<Page> {
  const { default: ejs } = await import('ejs');
  const { installCacheTag: installEjsTag } = await import('../src/engines/ejs.js');
  // The pristine EJS is the CommonJS copy of the module; the tag is installed on the ES module's.
  const pristine = createRequire(import.meta.url)('ejs') as typeof ejs;
  installEjsTag(ejs);
  const body = '<li class="item"><%= item.title %>: <%= item.body %><% for (const tag of item.tags) { %><span><%= tag %></span><% } %></li>';
  const keywords: Record<Keywords | 'none', string> = { none: '', using: "{ using: 'frag_l1' }, ", tagged: "{ using: 'frag_l1', tags: 'items' }, " };
  const cached = Object.fromEntries(
    Object.entries(keywords).map(([kind, written]) => [
      kind,
      ejs.compile(`<ul><% for (const item of items) { %><% cache(600, 'item', [item.id, generation], ${written}async () => { %>${body}<% }) %><% } %></ul>`, {
        async: true,
      }),
    ]),
  );
  const plain = pristine.compile(`<ul><% for (const item of items) { %>${body}<% } %></ul>`, { async: true });
  const prerendered = pristine.compile('<ul><% for (const item of items) { %><%- item.html %><% } %></ul>', { async: true });
  // The least a hit can cost here: Eta's hand-written hit, in EJS.
  const heldBy: Record<Lookup, string> = { indexed: 'index[item.id]?.[generation]', keyed: 'keyed.get(item.id)?.get(generation)' };
  const handWrittenHits = (lookup: Lookup) =>
    pristine.compile(
      '<ul><% const now = Date.now() / 1000; for (const item of items) { %>' +
        `<% const held = ${heldBy[lookup]}; if (held !== undefined && !held.entry.retired && held.entry.expiresAt > now) { counts.hits++; %><%- held.value %><% } else { %>miss<% } %>` +
        '<% } %></ul>',
      { async: true },
    );
  const handWritten = { indexed: handWrittenHits('indexed'), keyed: handWrittenHits('keyed') };
  return {
    engine: 'ejs',
    judgedAgainst: 'hand-written',
    cached: (generation, kind) => cached[kind ?? 'none']!({ items, generation }) as Promise<string>,
    plain: () => plain({ items }),
    prerendered: () => prerendered({ items: prerenderedItems }),
    handWrittenHits: (lookup) => handWritten[lookup]({ items, ...handWrittenIndexes() }),
  };
}

async function pugPage(): Promise<Page> {
  const { default: pug } = await import('pug');
  const { installCacheTag: installPugTag } = await import('../src/engines/pug.js');
  const body = '      li.item #{item.title}: #{item.body}\n        each tag in item.tags\n          span= tag';
  const keywords: Record<Keywords | 'none', string> = { none: '', using: "(using='frag_l1')", tagged: "(using='frag_l1' tags='items')" };
  // Templates without the tag compile as Pug compiles them: the plain and pre-rendered loops are Pug's own.
  installPugTag(pug);
  const cached = Object.fromEntries(
    Object.entries(keywords).map(([kind, written]) => [
      kind,
      pug.compile(`ul\n  each item in items\n    +cache(600, 'item', item.id, generation)${written}\n${body}`) as unknown as (
        locals: object,
      ) => Promise<string>,
    ]),
  );
  const plain = pug.compile(`ul\n  each item in items\n${body.replace(/^ {2}/gm, '')}`);
  const prerendered = pug.compile('ul\n  each item in items\n    != item.html');
  // The least a hit can cost here: Eta's hand-written hit, in Pug.
  const heldBy: Record<Lookup, string> = { indexed: 'index[item.id] && index[item.id][generation]', keyed: 'keyed.get(item.id)?.get(generation)' };
  const handWrittenHits = (lookup: Lookup) =>
    pug.compile(
      [
        '- const now = Date.now() / 1000',
        'ul',
        '  each item in items',
        `    - const held = ${heldBy[lookup]}`,
        '    if held !== undefined && !held.entry.retired && held.entry.expiresAt > now',
        '      - counts.hits++',
        '      != held.value',
        '    else',
        '      | miss',
      ].join('\n'),
    );
  const handWritten = { indexed: handWrittenHits('indexed'), keyed: handWrittenHits('keyed') };
  return {
    engine: 'pug',
    judgedAgainst: 'hand-written',
    cached: (generation, kind) => cached[kind ?? 'none']!({ items, generation }),
    plain: async () => plain({ items }),
    prerendered: async () => prerendered({ items: prerenderedItems }),
    handWrittenHits: async (lookup) => handWritten[lookup]({ items, ...handWrittenIndexes() }),
  };
}

async function liquidPage(): Promise<Page> {
  const { Liquid } = await import('liquidjs');
  const { installCacheTag: installLiquidTag } = await import('../src/engines/liquid.js');
  const options = { outputEscape: 'escape' as const };
  const liquid = installLiquidTag(new Liquid(options));
  const pristine = new Liquid(options);
  const body = '<li class="item">{{ item.title }}: {{ item.body }}{% for tag in item.tags %}<span>{{ tag }}</span>{% endfor %}</li>';
  const keywords: Record<Keywords | 'none', string> = { none: '', using: " using: 'frag_l1'", tagged: " using: 'frag_l1' tags: 'items'" };
  const cached = Object.fromEntries(
    Object.entries(keywords).map(([kind, written]) => [
      kind,
      liquid.parse(`<ul>{% for item in items %}{% cache 600 'item' item.id generation${written} %}${body}{% endcache %}{% endfor %}</ul>`),
    ]),
  );
  const plain = pristine.parse(`<ul>{% for item in items %}${body}{% endfor %}</ul>`);
  const prerendered = pristine.parse('<ul>{% for item in items %}{{ item.html | raw }}{% endfor %}</ul>');
  return {
    engine: 'liquid',
    cached: (generation, kind) => liquid.render(cached[kind ?? 'none']!, { items, generation }) as Promise<string>,
    plain: () => pristine.render(plain, { items }) as Promise<string>,
    prerendered: () => pristine.render(prerendered, { items: prerenderedItems }) as Promise<string>,
  };
}

/**
 * The engines, each a unit the runner starts a process of its own for, which loads that engine and
 * its adapter alone, as an application that uses one engine runs: measured one after another in one
 * process, the shared fragment core is compiled for whichever engine came first, and the next ones
 * pay for it (and a process holding every engine's code runs each a little slower).
 */
export const units = ['nunjucks', 'handlebars', 'eta', 'ejs', 'pug', 'liquid'] as const;

export async function run(engine?: string): Promise<Comparison[]> {
  const page = PAGES[engine ?? ''];
  if (page === undefined) throw new Error(`bench/fragments: runs one engine of ${units.join(', ')}, not ${String(engine)}`);
  return runEngine(await page());
}

/** One engine's figures: its page on locmem (all hits), then on Redis (cold and warm). */
async function runEngine(page: Page): Promise<Comparison[]> {
  const results: Comparison[] = [];
  await configureCaches({ default: { backend: 'locmem', location: 'bench-fragments', options: { maxEntries: 10_000 } } });
  const plainPage = await page.plain();
  if ((await page.cached(0)) !== plainPage) throw new Error(`${page.engine}: the cached page differs from the plain one`);
  // A site's pages miss as well as hit (new items, expired entries), so each cached page misses a few
  // times before it is measured, and V8 compiles it with its miss path, as on a running site. A page
  // that has only hit since its first render is compiled for hits alone; and in a comparison of two
  // cached pages, whichever happened to miss before V8 kept feedback for it would be the faster.
  for (let generation = 1; generation <= MISSES_BEFORE_HITS; generation++) {
    await page.cached(generation);
    await page.digested?.(generation);
  }
  const fragments = plainPage.slice('<ul>'.length, -'</ul>'.length).split(/(?=<li class="item">)/);
  prerenderedItems.push(...fragments.map((html) => ({ html })));
  if ((await page.prerendered()) !== plainPage) throw new Error(`${page.engine}: the pre-rendered loop differs from the plain page`);
  results.push(
    await compare(
      'fragments',
      `${page.engine}: ${FRAGMENTS} hits, locmem (time ≤ 1.2× plain)`,
      () => page.cached(0),
      'same page, no tags',
      () => page.plain(),
      {
        target: 0.83,
      },
    ),
  );
  results.push(
    await compare(
      'fragments',
      `${page.engine}: ${FRAGMENTS} hits, locmem (time ≤ 1.5× pre-rendered)`,
      () => page.cached(0),
      'pre-rendered loop',
      () => page.prerendered(),
      page.judgedAgainst === 'hand-written' ? {} : { target: 0.67 },
    ),
  );
  if (page.digested !== undefined) {
    if ((await page.digested(0)) !== plainPage) throw new Error(`${page.engine}: the page with digests differs from the plain one`);
    results.push(
      await compare(
        'fragments',
        `${page.engine}: ${FRAGMENTS} hits, locmem, template digests (time ≤ 1.05× without)`,
        () => page.digested!(0),
        'same page, no digests',
        () => page.cached(0),
        {
          target: 0.952,
        },
      ),
    );
  }
  if (page.handWrittenHits !== undefined) {
    for (const lookup of ['indexed', 'keyed'] as const)
      if ((await page.handWrittenHits(lookup)) !== plainPage) throw new Error(`${page.engine}: the hand-written hits (${lookup}) differ from the plain page`);
    results.push(
      await compare(
        'fragments',
        `${page.engine}: ${FRAGMENTS} hits written by hand, no cache (the floor)`,
        () => page.handWrittenHits!('indexed'),
        'pre-rendered loop',
        () => page.prerendered(),
      ),
    );
    results.push(
      await compare(
        'fragments',
        `${page.engine}: ${FRAGMENTS} hits, locmem (time ≤ 1.2× the floor)`,
        () => page.cached(0),
        'hits written by hand (the floor)',
        () => page.handWrittenHits!('indexed'),
        page.judgedAgainst === 'hand-written' ? { target: 0.83 } : {},
      ),
    );
    // What the floor's lookup by position leaves out: any cache finds an entry by the vary-on values
    // themselves, and a value of any kind is found in a Map, not at an index.
    results.push(
      await compare(
        'fragments',
        `${page.engine}: ${FRAGMENTS} hits written by hand, found in Maps by id and generation`,
        () => page.handWrittenHits!('keyed'),
        'hits written by hand (the floor)',
        () => page.handWrittenHits!('indexed'),
      ),
    );
  }
  const redis = await startRedisServer();
  try {
    await configureCaches({
      default: { backend: 'locmem', location: 'bench-fragments' },
      template_fragments: { backend: 'redis', location: redis.url, keyPrefix: `bench-${page.engine}` },
    });
    const byHand = new FragmentsByHand(redis.url, page);
    try {
      let generation = 1;
      results.push(
        await compare(
          'fragments',
          `${page.engine}: ${FRAGMENTS} misses + setMany, redis`,
          () => page.cached(++generation),
          'MGET, plain page, SETs by hand',
          () => byHand.miss(),
        ),
      );
      await page.cached(0);
      await byHand.miss(0);
      results.push(
        await compare(
          'fragments',
          `${page.engine}: ${FRAGMENTS} hits, one MGET, redis`,
          () => page.cached(0),
          'MGET by hand, pre-rendered loop',
          () => byHand.hit(),
        ),
      );
    } finally {
      byHand.close();
    }
    // The configurations alternate, ROUNDS rounds each, and each is compared with the locmem page of
    // its own round (as compare does). The anchor is the page without keywords on locmem; the others
    // read Redis through an L1, named by `template_fragments` or by each tag's `using=` (and, tagged,
    // their fragments carry a tag).
    const onRedisWithL1: CacheConfig = {
      backend: 'redis',
      location: redis.url,
      keyPrefix: `bench-${page.engine}`,
      options: { l1: { maxEntries: 10_000, timeout: 30 } },
    };
    const onLocmemOnly: CacheConfig = { backend: 'locmem', location: 'bench-fragments' };
    const variants: Record<string, { fragments: CacheConfig; keywords?: Keywords; name: string }> = {
      locmem: { fragments: onLocmemOnly, name: 'the same page on locmem' },
      l1: { fragments: onRedisWithL1, name: `${page.engine}: ${FRAGMENTS} hits, redis with l1, warm` },
      using: { fragments: onLocmemOnly, keywords: 'using', name: `${page.engine}: ${FRAGMENTS} hits, redis with l1 by using=, warm` },
      tagged: { fragments: onLocmemOnly, keywords: 'tagged', name: `${page.engine}: ${FRAGMENTS} hits, redis with l1 by using= and tags=, warm` },
      // The anchor measured again in each round: how far these rows' ratios move with nothing changed.
      again: { fragments: onLocmemOnly, name: 'the same page on locmem, again' },
    };
    const rounds: Record<string, Measurement[]> = { locmem: [], l1: [], using: [], tagged: [], again: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const [kind, { fragments, keywords }] of Object.entries(variants)) {
        await caches.closeAll();
        await configureCaches({ default: { backend: 'locmem', location: 'bench-fragments' }, template_fragments: fragments, frag_l1: onRedisWithL1 });
        if ((await page.cached(0, keywords)) !== plainPage) throw new Error(`${page.engine}: the ${kind} page differs from the plain one`);
        await page.cached(0, keywords);
        rounds[kind]!.push(await measure(() => page.cached(0, keywords)));
      }
    }
    for (const kind of ['l1', 'using', 'tagged']) {
      const vsLocmem = compared('fragments', variants[kind]!.name, rounds[kind]!, variants.locmem!.name, rounds.locmem!, 0.9);
      vsLocmem.sameBuild = compared('fragments', '', rounds.again!, '', rounds.locmem!).ratio;
      print(vsLocmem);
      results.push(vsLocmem);
    }
  } finally {
    await caches.closeAll();
    await redis.stop();
  }
  return results;
}

/**
 * A page of fragments on Redis with no cache framework at all, the anchor of the Redis rows: raw
 * ioredis sends what the fragment cache sends (one MGET of the page's keys; on a miss, a SET with
 * an expiry for each fragment in one pipeline, awaited as the page awaits its write-back) around the
 * plain page (a miss renders every body) or the pre-rendered loop (a hit renders none).
 */
class FragmentsByHand {
  private readonly client: Redis;
  private generation = 1;
  /** The keys a warm page reads. */
  private readonly warmKeys: string[];

  constructor(
    url: string,
    private readonly page: Page,
  ) {
    this.client = new Redis(url);
    this.warmKeys = this.keysOf(0);
  }

  private keysOf(generation: number): string[] {
    return items.map((item) => `bench-by-hand-${this.page.engine}:item:${item.id}:${generation}`);
  }

  /** A cold page: its keys read, its bodies rendered, its fragments written (`generation` 0 fills the keys a hit reads). */
  async miss(generation = ++this.generation): Promise<string> {
    const keys = this.keysOf(generation);
    await this.client.mget(keys);
    const html = await this.page.plain();
    const writes = this.client.pipeline();
    keys.forEach((key, i) => writes.set(key, prerenderedItems[i]!.html, 'EX', 600));
    await writes.exec();
    return html;
  }

  /** A warm page: its keys read in one MGET, each fragment's HTML emitted as it is. */
  async hit(): Promise<string> {
    await this.client.mget(this.warmKeys);
    return this.page.prerendered();
  }

  close(): void {
    this.client.disconnect();
  }
}

const PAGES: Record<string, () => Promise<Page>> = {
  nunjucks: nunjucksPage,
  handlebars: handlebarsPage,
  eta: etaPage,
  ejs: ejsPage,
  pug: pugPage,
  liquid: liquidPage,
};
