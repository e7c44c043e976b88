/**
 * The three engines as the fragment case table sees them: how each writes a tag, a variable, a
 * counted call and a text-transforming block, and how each renders inline source, template files,
 * the fixture page (layout, loop, includes or partials, nested fragments) and an Express view, both
 * through cachegrain's own entry points and through the engine's usual ones.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';
import express from 'express';
import { create as createExpressHandlebars } from 'express-handlebars';
import Handlebars from 'handlebars';
import { Liquid } from 'liquidjs';
import nunjucks from 'nunjucks';
import pug from 'pug';
import ejs from 'ejs';
import * as ejsTag from '../../src/engines/ejs.js';
import * as etaTag from '../../src/engines/eta.js';
import * as handlebarsTag from '../../src/engines/handlebars.js';
import * as liquidTag from '../../src/engines/liquid.js';
import * as nunjucksTag from '../../src/engines/nunjucks.js';
import * as pugTag from '../../src/engines/pug.js';

export const FIXTURES = fileURLToPath(new URL('../../fixtures/templates/', import.meta.url));

/** How an engine spells what the cases need. `$name` in a tag argument is a template variable. */
export interface FragmentEngine {
  name: 'nunjucks' | 'handlebars' | 'eta' | 'ejs' | 'pug' | 'liquid';
  /** A tag; `keywords` are written after the vary-on values (`using` a literal alias, the others as `variable` reads them). */
  cache(timeout: string, name: string, varyOn: string[], body: string, keywords?: string | TagKeywordArgs): string;
  /** The tag with only the given raw arguments (for the too-few-arguments case). */
  bareCache(args: string, body: string): string;
  /** The end tag as `cache` writes it. */
  endCache: string;
  /** The extension of the engine's template files. */
  extension: string;
  /** Ways to render a template file of `directory` by its name, each by a name for the tests' titles. */
  fileRenderers: Record<string, (directory: string, file: string, context: Record<string, unknown>) => Promise<string>>;
  out(variable: string): string;
  /** A call of the context's `count()`, which counts how often a body was evaluated. */
  count(): string;
  /** `body`'s output upper-cased by the engine's own block construct. */
  upper(body: string): string;
  /** A call of the template function `uncacheable(why)`, `why` a literal. */
  uncacheable(why: string): string;
  /** A hole: its literal name, then its arguments, each a `$variable` or a literal as the engine writes it. */
  hole(name: string, args?: string[]): string;
  /** The fixture template or partial `name` included, with the variables in scope. */
  include(name: string): string;
  renderSource(source: string, context: Record<string, unknown>): Promise<string>;
  /** The fixture page: a layout, a nested fragment, and one fragment per item inside an include/partial. */
  renderPage(context: Record<string, unknown>): Promise<string>;
  /** An Express app whose GET /page renders the fixture page with `locals`. */
  app(locals: () => Record<string, unknown>): express.Express;
  /** The same app wired the way the engine's own documentation wires Express. */
  usualApp(locals: () => Record<string, unknown>): express.Express;
}

const promised = (run: (callback: (error: unknown, html?: string | null) => void) => void) =>
  new Promise<string>((resolve, reject) => run((error, html) => (error ? reject(error) : resolve(html!))));

const variable = (arg: string, prefix = '') => (arg.startsWith('$') ? prefix + arg.slice(1) : arg);
/** Keyword arguments as a case writes them: `$name` is a variable, other values are literals (tags quoted). */
export interface TagKeywordArgs {
  using?: string;
  tags?: string;
  stale?: string;
  lock?: string;
  /** As the engine writes it: a quoted literal (`'"cookie:theme, user.roles"'`) or a `$variable`. */
  contexts?: string;
  if?: string;
}

/** The keywords written after the vary-on values, each engine's variables spelled by `prefix`. */
const keywordArgs = (keywords: string | TagKeywordArgs | undefined, prefix = '', separator = '=') => {
  const given = typeof keywords === 'string' ? { using: keywords } : (keywords ?? {});
  const literal = (name: string, value: string) => (name === 'tags' || name === 'using' ? JSON.stringify(value) : value);
  return Object.entries(given)
    .map(([name, value]) => ` ${name}${separator}${value.startsWith('$') ? variable(value, prefix) : literal(name, value)}`)
    .join('');
};

export function nunjucksEngine(): FragmentEngine {
  const env = nunjucksTag.installCacheTag(new nunjucks.Environment(new nunjucks.FileSystemLoader(`${FIXTURES}nunjucks`), { autoescape: true }));
  return {
    name: 'nunjucks',
    cache: (timeout, name, varyOn, body, keywords) =>
      `{% cache ${variable(timeout === 'null' ? 'None' : timeout)} ${name} ${varyOn.map((v) => variable(v)).join(' ')}${keywordArgs(keywords)} %}${body}{% endcache %}`,
    bareCache: (args, body) => `{% cache ${args} %}${body}{% endcache %}`,
    endCache: '{% endcache %}',
    extension: 'njk',
    fileRenderers: {
      'env.render with a callback': (directory, file, context) =>
        promised((callback) => nunjucksTag.installCacheTag(new nunjucks.Environment(new nunjucks.FileSystemLoader(directory))).render(file, context, callback)),
      'render from cachegrain/nunjucks': (directory, file, context) =>
        nunjucksTag.render(nunjucksTag.installCacheTag(new nunjucks.Environment(new nunjucks.FileSystemLoader(directory))), file, context),
    },
    out: (name) => `{{ ${name} }}`,
    count: () => '{{ count() }}',
    upper: (body) => `{% filter upper %}${body}{% endfilter %}`,
    uncacheable: (why) => `{{ uncacheable(${JSON.stringify(why)}) }}`,
    hole: (name, args = []) => `{% hole "${name}"${args.map((arg) => ` ${variable(arg)}`).join('')} %}`,
    include: (name) => `{% include "${name}.njk" %}`,
    renderSource: (source, context) => nunjucksTag.renderString(env, source, context),
    renderPage: (context) => nunjucksTag.render(env, 'page.njk', context),
    app(locals) {
      const app = express();
      app.engine('njk', nunjucksTag.expressEngine(env));
      app.set('views', `${FIXTURES}nunjucks`);
      app.get('/page', (_req, res) => res.render('page.njk', locals()));
      return app;
    },
    usualApp(locals) {
      const app = express();
      nunjucksTag.installCacheTag(nunjucks.configure(`${FIXTURES}nunjucks`, { autoescape: true, express: app }));
      app.set('view engine', 'njk');
      app.get('/page', (_req, res) => res.render('page', locals()));
      return app;
    },
  };
}

/** `(tag "item" id)` → `item:<id>`: the fixture's tags, as a Handlebars site would make them. */
const tagHelper = (kind: string, id: unknown) => `${kind}:${String(id)}`;

export function handlebarsEngine(): FragmentEngine {
  const handlebars = handlebarsTag.installCacheHelper(Handlebars.create());
  handlebars.registerHelper('upper', function upper(this: unknown, options: Handlebars.HelperOptions) {
    return String(options.fn(this)).toUpperCase();
  });
  handlebars.registerHelper('inc', (n: number) => n + 1);
  handlebars.registerHelper('tag', tagHelper);
  for (const partial of ['layout', 'item', 'themed']) {
    handlebars.registerPartial(partial, readFileSync(`${FIXTURES}handlebars/partials/${partial}.hbs`, 'utf8'));
  }
  const page = handlebars.compile(readFileSync(`${FIXTURES}handlebars/page.hbs`, 'utf8'));
  return {
    name: 'handlebars',
    cache: (timeout, name, varyOn, body, keywords) =>
      `{{#cache ${variable(timeout)} "${name}" ${varyOn.map((v) => variable(v)).join(' ')}${keywordArgs(keywords)}}}${body}{{/cache}}`,
    bareCache: (args, body) => `{{#cache ${args}}}${body}{{/cache}}`,
    endCache: '{{/cache}}',
    extension: 'hbs',
    fileRenderers: {
      'express-handlebars render': (directory, file, context) =>
        handlebarsTag.installExpressHandlebars(createExpressHandlebars({ handlebars: Handlebars.create() })).render(join(directory, file), context),
      'expressEngine from cachegrain/handlebars': (directory, file, context) =>
        promised((callback) => handlebarsTag.expressEngine(handlebarsTag.installCacheHelper(Handlebars.create()))(join(directory, file), context, callback)),
    },
    out: (name) => `{{${name}}}`,
    count: () => '{{count}}',
    upper: (body) => `{{#upper}}${body}{{/upper}}`,
    uncacheable: (why) => `{{uncacheable ${JSON.stringify(why)}}}`,
    hole: (name, args = []) => `{{hole "${name}"${args.map((arg) => ` ${variable(arg)}`).join('')}}}`,
    include: (name) => `{{> ${name}}}`,
    renderSource: (source, context) => {
      try {
        return handlebarsTag.render(handlebars.compile(source), context);
      } catch (error) {
        return Promise.reject(error);
      }
    },
    renderPage: (context) => handlebarsTag.render(page, context),
    app(locals) {
      const app = express();
      app.engine('hbs', handlebarsTag.expressEngine(handlebars, { partialsDir: `${FIXTURES}handlebars/partials` }));
      app.set('views', `${FIXTURES}handlebars`);
      app.get('/page', (_req, res) => res.render('page.hbs', locals()));
      return app;
    },
    usualApp(locals) {
      const app = express();
      const hbs = handlebarsTag.installExpressHandlebars(
        createExpressHandlebars({
          handlebars: Handlebars.create(),
          extname: '.hbs',
          defaultLayout: false,
          partialsDir: `${FIXTURES}handlebars/partials`,
          helpers: { inc: (n: number) => n + 1, tag: tagHelper },
        }),
      );
      app.engine('hbs', hbs.engine);
      app.set('view engine', 'hbs');
      app.set('views', `${FIXTURES}handlebars`);
      app.get('/page', (_req, res) => res.render('page', locals()));
      return app;
    },
  };
}

export function etaEngine(): FragmentEngine {
  const eta = new Eta({ views: `${FIXTURES}eta`, plugins: [etaTag.cachePlugin()], cache: true });
  return {
    name: 'eta',
    cache: (timeout, name, varyOn, body, keywords) =>
      `<% cache ${variable(timeout, 'it.')} ${name} ${varyOn.map((v) => variable(v, 'it.')).join(' ')}${keywordArgs(keywords, 'it.')} %>${body}<% endcache %>`,
    bareCache: (args, body) => `<% cache ${args} %>${body}<% endcache %>`,
    endCache: '<% endcache %>',
    extension: 'eta',
    fileRenderers: {
      'eta.renderAsync': (directory, file, context) => new Eta({ views: directory, plugins: [etaTag.cachePlugin()] }).renderAsync(file, context),
    },
    out: (name) => `<%= it.${name} %>`,
    count: () => '<%= it.count() %>',
    upper: (body) => `<%~ capture(() => { %>${body}<% }).toUpperCase() %>`,
    uncacheable: (why) => `<%~ uncacheable(${JSON.stringify(why)}) %>`,
    hole: (name, args = []) => `<%~ hole("${name}"${args.map((arg) => `, ${variable(arg, 'it.')}`).join('')}) %>`,
    include: (name) => `<%~ await includeAsync('${name}', it) %>`,
    renderSource: async (source, context) => eta.renderStringAsync(source, context),
    renderPage: (context) => eta.renderAsync('page', context),
    app(locals) {
      const app = express();
      app.engine('eta', etaTag.expressEngine(eta));
      app.set('views', `${FIXTURES}eta`);
      app.get('/page', (_req, res) => res.render('page.eta', locals()));
      return app;
    },
    // Eta ships no Express integration of its own: an engine function is the usual wiring.
    usualApp(locals) {
      return this.app(locals);
    },
  };
}

/** The keywords as the object an EJS `cache()` call takes, or nothing when there are none. */
const keywordObject = (keywords: string | TagKeywordArgs | undefined) => {
  const pairs = keywordArgs(keywords, 'locals.', ': ').trim();
  return pairs === '' ? '' : `{ ${pairs.split(/ (?=\w+: )/).join(', ')} }, `;
};

export function ejsEngine(): FragmentEngine {
  ejsTag.installCacheTag(ejs);
  const views = [`${FIXTURES}ejs`];
  return {
    name: 'ejs',
    cache: (timeout, name, varyOn, body, keywords) =>
      `<% cache(${variable(timeout, 'locals.')}, '${name.replace(/^["']|["']$/g, '')}', [${varyOn.map((v) => variable(v, 'locals.')).join(', ')}], ${keywordObject(keywords)}async () => { %>${body}<% }) %>`,
    bareCache: (args, body) => `<% cache(${args}, async () => { %>${body}<% }) %>`,
    endCache: '<% }) %>',
    extension: 'ejs',
    fileRenderers: {
      'ejs.renderFile': (directory, file, context) => ejs.renderFile(join(directory, file), context, { async: true }),
      'expressEngine from cachegrain/ejs': (directory, file, context) =>
        promised((callback) => ejsTag.expressEngine(ejs)(join(directory, file), context, callback)),
    },
    out: (name) => `<%= ${name} %>`,
    count: () => '<%= count() %>',
    // EJS has no block construct: the template changes its own output as a helper would.
    upper: (body) => `<% { const start = __output.length; %>${body}<% __output = __output.slice(0, start) + __output.slice(start).toUpperCase(); } %>`,
    uncacheable: (why) => `<%- uncacheable(${JSON.stringify(why)}) %>`,
    hole: (name, args = []) => `<%- hole('${name}'${args.map((arg) => `, ${variable(arg, 'locals.')}`).join('')}) %>`,
    include: (name) => `<%- await include('${name}') %>`,
    renderSource: async (source, context) => ejs.render(source, context, { async: true, views }),
    renderPage: (context) => ejs.renderFile(`${FIXTURES}ejs/page.ejs`, context, { async: true }),
    app(locals) {
      const app = express();
      app.engine('ejs', ejsTag.expressEngine(ejs));
      app.set('views', `${FIXTURES}ejs`);
      app.get('/page', (_req, res) => res.render('page.ejs', locals()));
      return app;
    },
    // EJS's own Express entry cannot render asynchronously: an engine function is the usual wiring.
    usualApp(locals) {
      const app = express();
      app.engine('ejs', ejsTag.expressEngine(ejs));
      app.set('view engine', 'ejs');
      app.set('views', `${FIXTURES}ejs`);
      app.get('/page', (_req, res) => res.render('page', locals()));
      return app;
    },
  };
}

/**
 * Pug is written in lines and indentation, the cases in text: an engine method writes a construct
 * that stands on lines of its own as `\u0001statement\u0003indented block\u0002`, and `toPug` lays
 * the text out as piped lines around such statements, each block indented under its statement.
 */
export const LINE = '\u0001';
export const BLOCK = '\u0003';
export const END = '\u0002';

export function toPug(source: string, indent = ''): string {
  const lines: string[] = [];
  let text = '';
  const flush = () => {
    const pieces = text.split('\n');
    if (pieces.at(-1) === '') pieces.pop();
    for (const piece of pieces) lines.push(`${indent}|${piece === '' ? '' : ` ${piece}`}`);
    text = '';
  };
  for (let i = 0; i < source.length; i++) {
    if (source[i] !== LINE) {
      text += source[i];
      continue;
    }
    flush();
    let depth = 0;
    let end = i + 1;
    let block = -1;
    for (; end < source.length && !(source[end] === END && depth === 0); end++) {
      if (source[end] === LINE) depth++;
      else if (source[end] === END) depth--;
      else if (source[end] === BLOCK && depth === 0 && block === -1) block = end;
    }
    lines.push(`${indent}${source.slice(i + 1, block === -1 ? end : block)}`);
    if (block !== -1) lines.push(toPug(source.slice(block + 1, end), `${indent}  `));
    i = end;
  }
  flush();
  return lines.filter((line) => line !== '').join('\n');
}

export function pugEngine(): FragmentEngine {
  pugTag.installCacheTag(pug);
  /** The template files already laid out as Pug, so that a second renderer of one reads what the first wrote. */
  const laidOut = new Set<string>();
  const layOut = (path: string) => {
    if (!laidOut.has(path)) writeFileSync(path, toPug(readFileSync(path, 'utf8')));
    laidOut.add(path);
    return path;
  };
  let lastBlock = '';
  const cacheCall = (args: string, body: string, keywords = '') => {
    lastBlock = /[\n\u0001]/.test(body) ? `${BLOCK}${body}` : body;
    return lastBlock === body ? `#[+cache(${args})${keywords} ${body}]` : `${LINE}+cache(${args})${keywords}${lastBlock}${END}`;
  };
  return {
    name: 'pug',
    cache: (timeout, name, varyOn, body, keywords) => {
      const attributes = keywordArgs(keywords).trim();
      return cacheCall(
        [variable(timeout), `'${name.replace(/^["']|["']$/g, '')}'`, ...varyOn.map((v) => variable(v))].join(', '),
        body,
        attributes === '' ? '' : `(${attributes})`,
      );
    },
    bareCache: (args, body) => cacheCall(args, body.includes('\n') ? body : `${body}\n`),
    // A Pug tag ends where its block does: the block, as the last tag wrote it.
    get endCache() {
      return lastBlock;
    },
    extension: 'pug',
    fileRenderers: {
      'pug.renderFile': async (directory, file, context) => pug.renderFile(layOut(join(directory, file)), context),
      'pug.compileFile': async (directory, file, context) => pug.compileFile(layOut(join(directory, file)))(context),
    },
    out: (name) => `#{${name}}`,
    count: () => '#{count()}',
    upper: (body) =>
      `${LINE}- var upperFrom = pug_html.length${END}${body}${LINE}- pug_html = pug_html.slice(0, upperFrom) + pug_html.slice(upperFrom).toUpperCase()${END}`,
    uncacheable: (why) => `#[+uncacheable(${JSON.stringify(why)})]`,
    hole: (name, args = []) => `#[+hole('${name}'${args.map((arg) => `, ${variable(arg)}`).join('')})]`,
    include: (name) => `${LINE}include ${name}.pug${END}`,
    renderSource: async (source, context) => pug.render(toPug(source), { ...context, filename: `${FIXTURES}pug/source.pug` }),
    renderPage: async (context) => pug.renderFile(`${FIXTURES}pug/page.pug`, context),
    app(locals) {
      const app = express();
      app.engine('pug', pugTag.expressEngine(pug));
      app.set('views', `${FIXTURES}pug`);
      app.get('/page', (_req, res) => res.render('page.pug', locals()));
      return app;
    },
    usualApp(locals) {
      const app = express();
      app.set('view engine', 'pug');
      app.set('views', `${FIXTURES}pug`);
      app.get('/page', (_req, res) => res.render('page', locals()));
      return app;
    },
  };
}

/** A Liquid for the templates of `root`, HTML-escaping its output as a site's should, with the tag installed. */
const liquidFor = (root: string) => liquidTag.installCacheTag(new Liquid({ root, extname: '.liquid', outputEscape: 'escape' }));

export function liquidEngine(): FragmentEngine {
  const liquid = liquidFor(`${FIXTURES}liquid`);
  return {
    name: 'liquid',
    cache: (timeout, name, varyOn, body, keywords) =>
      `{% cache ${variable(timeout === 'null' ? 'nil' : timeout)} ${name} ${varyOn.map((v) => variable(v)).join(' ')}${keywordArgs(keywords, '', ': ')} %}${body}{% endcache %}`,
    bareCache: (args, body) => `{% cache ${args} %}${body}{% endcache %}`,
    endCache: '{% endcache %}',
    extension: 'liquid',
    fileRenderers: {
      'liquid.renderFile': (directory, file, context) => liquidFor(directory).renderFile(file, context),
      'liquid.render of a parsed file': async (directory, file, context) => {
        const engine = liquidFor(directory);
        return engine.render(await engine.parseFile(file), context);
      },
    },
    out: (name) => `{{ ${name} }}`,
    count: () => '{{ count }}',
    upper: (body) => `{% capture shouted %}${body}{% endcapture %}{{ shouted | upcase }}`,
    uncacheable: (why) => `{% uncacheable ${JSON.stringify(why)} %}`,
    hole: (name, args = []) => `{% hole "${name}"${args.map((arg) => ` ${variable(arg)}`).join('')} %}`,
    include: (name) => `{% include '${name}' %}`,
    renderSource: (source, context) => liquid.parseAndRender(source, context),
    renderPage: (context) => liquid.renderFile('page', context),
    app(locals) {
      const app = express();
      app.engine('liquid', liquid.express());
      app.set('views', `${FIXTURES}liquid`);
      app.get('/page', (_req, res) => res.render('page.liquid', locals()));
      return app;
    },
    // LiquidJS's own Express integration is the one its documentation gives.
    usualApp(locals) {
      const app = express();
      app.engine('liquid', liquidFor(`${FIXTURES}liquid`).express());
      app.set('views', `${FIXTURES}liquid`);
      app.set('view engine', 'liquid');
      app.get('/page', (_req, res) => res.render('page', locals()));
      return app;
    },
  };
}

/** Every engine the fragment table runs over, in the order the tests name them. */
export const ENGINES: Array<() => FragmentEngine> = [nunjucksEngine, handlebarsEngine, etaEngine, ejsEngine, pugEngine, liquidEngine];
