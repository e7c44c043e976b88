/**
 * The cache tag through each engine's own ways of rendering, beside cachegrain's `render`:
 * Nunjucks `env.render`/`renderString` with a callback, express-handlebars with a layout and partials
 * over real HTTP, and the synchronous calls that cannot resolve a fragment failing with a message that
 * names the template and the call to use instead.
 */
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Eta } from 'eta';
import express from 'express';
import { create as createExpressHandlebars } from 'express-handlebars';
import Handlebars from 'handlebars';
import nunjucks from 'nunjucks';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cachePlugin } from '../../src/engines/eta.js';
import { installCacheHelper, installExpressHandlebars, render } from '../../src/engines/handlebars.js';
import { installCacheTag } from '../../src/engines/nunjucks.js';
import { caches, configureCaches, makeTemplateFragmentKey } from '../../src/index.js';
import { RemoteLikeStore } from './remote-like-store.js';
import { FIXTURES } from './engines.js';

let serial = 0;
let cache: RemoteLikeStore;
let counted = 0;
const count = () => ++counted;

beforeEach(async () => {
  // What is checked here is how a page's fragments are batched: on a store that holds nothing in
  // process, every hit is read after the pass.
  await configureCaches({ default: { backend: RemoteLikeStore, location: `standard-renders-${++serial}` } });
  cache = caches.get<RemoteLikeStore>('default');
  counted = 0;
});
afterAll(() => caches.closeAll());

const callbackResult = (run: (callback: (error: Error | null, html?: string | null) => void) => void) =>
  new Promise<string>((resolve, reject) => run((error, html) => (error ? reject(error) : resolve(html!))));

/** `renderString(src, ctx, opts, cb)`: nunjucks takes options such as `path`, its type definitions do not say so. */
const withOptions = (environment: nunjucks.Environment) =>
  environment.renderString.bind(environment) as unknown as (
    source: string,
    context: object,
    options: { path?: string },
    callback?: (error: Error | null, html?: string | null) => void,
  ) => string;

describe("nunjucks: the environment's own render calls", () => {
  const env = () => installCacheTag(new nunjucks.Environment(new nunjucks.FileSystemLoader(`${FIXTURES}nunjucks`), { autoescape: true }));
  const items = [
    { id: 1, title: 'One' },
    { id: 2, title: 'Two' },
  ];

  it("env.render(name, ctx, cb) caches the page's fragments, read in one round trip when warm", async () => {
    const environment = env();
    const first = await callbackResult((cb) => environment.render('page.njk', { user: 'ann', items, count }, cb));
    expect(first).toContain('<li>21. One</li>');
    expect(await cache.get(makeTemplateFragmentKey('item', [2]))).toBe('<li>32. Two</li>');
    const reads = cache.reads;
    expect(await callbackResult((cb) => environment.render('page.njk', { user: 'ann', items, count }, cb))).toBe(first);
    expect(cache.reads - reads).toBe(1);
    expect(counted).toBe(3);
  });

  it('env.renderString(src, ctx, cb) and (src, ctx, opts, cb) cache their fragments', async () => {
    const environment = env();
    const source = '{% cache 60 hello name %}Hi {{ name }}{{ count() }}{% endcache %}';
    expect(await callbackResult((cb) => environment.renderString(source, { name: 'ann', count }, cb))).toBe('Hi ann1');
    expect(await callbackResult((cb) => withOptions(environment)(source, { name: 'ann', count }, { path: 'hello.njk' }, cb))).toBe('Hi ann1');
    expect(await cache.get(makeTemplateFragmentKey('hello', ['ann']))).toBe('Hi ann1');
  });

  it('a render without a callback works without tags and, reaching a tag, says to pass one, naming the template', () => {
    const environment = env();
    expect(environment.renderString('<p>{{ x }}</p>', { x: 1 })).toBe('<p>1</p>');
    expect(() => environment.render('page.njk', { user: 'ann', items, count })).toThrow(/page\.njk[\s\S]*render '[^']*page\.njk' with a callback/);
    expect(() => withOptions(environment)('\n{% cache 60 box %}x{% endcache %}', {}, { path: 'box.njk' })).toThrow(/box\.njk, line 2[\s\S]*with a callback/);
    expect(counted).toBe(0);
  });

  it('getTemplate(name).render(ctx, cb) resolves fragments too; an environment without the tag is untouched', async () => {
    const environment = env();
    const template = environment.getTemplate('page.njk');
    const html = await callbackResult((cb) => template.render({ user: 'bob', items, count }, cb));
    expect(html).toContain('<p>Hello bob</p>');
    expect(await cache.get(makeTemplateFragmentKey('greeting', ['bob']))).toBe('<p>Hello bob</p>');
    const plain = new nunjucks.Environment();
    expect(plain.renderString('<p>{{ x }}</p>', { x: 2 })).toBe('<p>2</p>');
  });

  it('renders a template string many times, the same fragment each time', async () => {
    const environment = env();
    for (let i = 0; i < 50; i++) {
      const html = await callbackResult((cb) => environment.renderString(`{% cache 60 loop %}{{ count() }}{% endcache %}<!--${i}-->`, { count }, cb));
      expect(html).toBe(`1<!--${i}-->`);
    }
  });
});

describe('handlebars: express-handlebars with a layout and partials, over HTTP', () => {
  it('renders view, layout and partials as one render: one read when warm, bodies not run on hits', async () => {
    const app = express();
    const hbs = installExpressHandlebars(createExpressHandlebars({ handlebars: Handlebars.create(), extname: '.hbs', defaultLayout: 'main' }));
    app.engine('hbs', hbs.engine);
    app.set('view engine', 'hbs');
    app.set('views', `${FIXTURES}express-handlebars`);
    app.get('/', (_req, res) => res.render('home', { user: 'ann', ids: [1, 2, 3], count }));
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
      const first = await fetch(url);
      expect(first.status).toBe(200);
      const html = (await first.text()).replace(/\s+/g, '');
      expect(html).toBe('<html><body><nav>ann</nav><h1>1</h1><ul><li>12</li><li>23</li><li>34</li></ul></body></html>');
      expect(cache.reads).toBe(1);
      expect(await cache.get(makeTemplateFragmentKey('nav', ['ann']))).toBe('<nav>ann</nav>');
      expect(await cache.get(makeTemplateFragmentKey('card', [3]))).toBe('<li>34</li>');
      const second = await fetch(url);
      expect((await second.text()).replace(/\s+/g, '')).toBe(html.replace('<h1>1</h1>', '<h1>5</h1>'));
      expect(cache.reads).toBe(2);
      expect(counted).toBe(5);
    } finally {
      server.close();
    }
  });

  it("a tag error inside a partial names the partial: express-handlebars' partial file, or a partial registered as text", async () => {
    const directory = mkdtempSync(join(tmpdir(), 'cachegrain-hbs-partials-'));
    try {
      mkdirSync(join(directory, 'partials'));
      writeFileSync(join(directory, 'view.hbs'), '<main>\n{{> broken}}\n</main>\n');
      writeFileSync(join(directory, 'partials', 'broken.hbs'), '<p>one</p>\n{{#cache 60 "box" using="nope"}}x{{/cache}}\n');
      const hbs = installExpressHandlebars(
        createExpressHandlebars({ handlebars: Handlebars.create(), extname: '.hbs', partialsDir: join(directory, 'partials') }),
      );
      await expect(hbs.render(join(directory, 'view.hbs'), {})).rejects.toThrow(
        `Invalid cache name specified for cache tag: 'nope' (${join(directory, 'partials', 'broken.hbs')}, line 2)`,
      );
      const handlebars = installCacheHelper(Handlebars.create());
      handlebars.registerPartial('broken', '<p>one</p>\n\n{{#cache 60 "box" using="nope"}}x{{/cache}}');
      await expect(render(handlebars.compile('{{> broken}}', { srcName: 'view.hbs' } as CompileOptions), {})).rejects.toThrow("(partial 'broken', line 3)");
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  it("registers uncacheable and hole with the first template that names them: compiled by the instance, as a partial's text, or precompiled", async () => {
    const helpers = (handlebars: typeof Handlebars) => ['uncacheable', 'hole'].filter((name) => name in handlebars.helpers);
    const handlebars = installCacheHelper(Handlebars.create());
    handlebars.compile('{{#cache 60 "plain"}}<p>{{count}}</p>{{/cache}}');
    expect(helpers(handlebars)).toEqual([]);
    const marked = handlebars.compile('<p>{{uncacheable "a clock"}}</p>', { srcName: 'views/clock.hbs' } as CompileOptions);
    expect(helpers(handlebars)).toEqual(['uncacheable', 'hole']);
    expect(await render(marked, {})).toBe('<p></p>');
    const asPartial = installCacheHelper(Handlebars.create());
    asPartial.registerPartial('clock', '{{uncacheable "a clock"}}');
    expect(await render(asPartial.compile('<p>{{> clock}}</p>'), {})).toBe('<p></p>');
    expect(helpers(asPartial)).toEqual(['uncacheable', 'hole']);
    const precompiled = installCacheHelper(Handlebars.create());
    const spec = new Function(`return ${Handlebars.precompile('<p>{{uncacheable "a clock"}}</p>')}`)() as TemplateSpecification;
    expect(await render(precompiled.template(spec), {})).toBe('<p></p>');
    expect(helpers(precompiled)).toEqual(['uncacheable', 'hole']);
  });

  it('a template called directly, outside any render, fails naming its srcName and line', () => {
    const handlebars = installCacheHelper(Handlebars.create());
    const template = handlebars.compile('<p>x</p>\n{{#cache 60 "box"}}x{{/cache}}', { srcName: 'views/box.hbs' } as CompileOptions);
    expect(() => template({})).toThrow(/needs the page rendered with render\(\)[\s\S]*views\/box\.hbs, line 2/);
  });
});

describe('eta: the synchronous render', () => {
  it('works without tags and, reaching a tag, says to use renderAsync, naming the template and line', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'cachegrain-eta-sync-'));
    try {
      writeFileSync(join(directory, 'box.eta'), '<p>box</p>\n\n<% cache 60 box %><%= it.count() %><% endcache %>\n');
      const eta = new Eta({ views: directory, plugins: [cachePlugin()] });
      expect(eta.renderString('<p><%= it.x %></p>', { x: 1 })).toBe('<p>1</p>');
      expect(() => eta.render('box', { count })).toThrow(/renderAsync\(\)[\s\S]*box\.eta, line 3/);
      expect(counted).toBe(0);
      expect(await eta.renderAsync('box', { count })).toBe('<p>box</p>\n\n1');
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});
