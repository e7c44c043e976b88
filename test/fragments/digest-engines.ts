/**
 * The three engines as the template digest cases see them: a site is a folder of template files
 * (pages at its top, partials and the layout in `partials/`), started as a process would start it (a
 * fresh engine instance with `digests: true`), rendering a page and telling which fragments' bodies
 * ran. Each engine says how it writes a fragment, an include, a layout, an include by an expression,
 * a comment, and a branch never taken. Pug's templates are written as the fragment table writes them
 * (`toPug`); Pug names every template it includes by a literal path, and reads each as it compiles.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ejs from 'ejs';
import { Eta } from 'eta';
import { create as createExpressHandlebars } from 'express-handlebars';
import Handlebars from 'handlebars';
import { Liquid } from 'liquidjs';
import nunjucks from 'nunjucks';
import pug from 'pug';
import * as ejsTag from '../../src/engines/ejs.js';
import * as etaTag from '../../src/engines/eta.js';
import * as handlebarsTag from '../../src/engines/handlebars.js';
import * as liquidTag from '../../src/engines/liquid.js';
import * as nunjucksTag from '../../src/engines/nunjucks.js';
import * as pugTag from '../../src/engines/pug.js';
import type { TemplateDigestReport } from '../../src/digests/index.js';
import { BLOCK, END, LINE, toPug } from './engines.js';

/** A page (`page`, `other`) or a partial (any other name), as the cases name them. */
export type TemplateName = string;

export interface DigestEngine {
  name: 'nunjucks' | 'handlebars' | 'eta' | 'ejs' | 'pug' | 'liquid';
  extension: string;
  /** A template as its file holds it (Pug lays the text out in lines); as written for the others. */
  layOut?(source: string): string;
  /** The line of a page's body, as `page(body)` places it. */
  bodyLine: number;
  /** The line of a template `A:${fragment('A', include('b'))}` that names b. */
  includeLine: number;
  /** `source` edited: a comment added at its end. */
  edit(source: string): string;
  /** How a template names partial `name` in its code. */
  ref(name: TemplateName): string;
  /** The name a digest gives partial `name` (its dependency trees show it). */
  named(name: TemplateName): string;
  /** How a comment declares partial `name`. */
  declared(name: string): string;
  /** How a comment declares every partial, by the folder that holds them. */
  partialsFolder: string;
  /** A page whose content is `body`, in the layout. */
  page(body: string): string;
  /** The layout, `before` its slot for the page's content. */
  layout(before: string): string;
  /** A fragment named `name` (no vary-on value) whose body marks that it ran, then `body`. */
  fragment(name: string, body: string): string;
  include(name: TemplateName): string;
  /** An include of the template named by the context's variable `variable`. */
  includeNamed(variable: string): string;
  /** What the engine cannot do, and so the cases that do it leave out: name a template by an expression, render one that includes a missing or a cyclic one. */
  cannot?: { includeNamed?: true; renderMissing?: true; renderCycle?: true };
  /** `body` in a branch the render never takes (the context's `never` is false). */
  never(body: string): string;
  comment(text: string): string;
  /**
   * A page naming partials in every way the engine has (the partials `a`, `b`, `layout`, `price` and
   * `unused`), and the names its digest finds, in order.
   */
  everyForm: { source: string; found: string[] };
  /** Starts the engine over `dir`; `reloading`: as it runs in development (templates read again as they change). */
  start(dir: string, reloading?: boolean): DigestSite;
}

export interface DigestSite {
  /** Renders page `name`: its HTML, and the fragments whose bodies ran. */
  render(name: 'page' | 'other', context?: Record<string, unknown>): Promise<{ html: string; ran: string[] }>;
  /** The digest of template `name` (a page or a partial) by the adapter's `templateDigest`. */
  digest(name: TemplateName): TemplateDigestReport;
  close(): void;
}

/** A new folder holding `files` (a page or partial name → its source) as `engine` names its files. */
export function siteFolder(engine: DigestEngine, files: Record<TemplateName, string>): string {
  const dir = mkdtempSync(join(tmpdir(), `cachegrain-digests-${engine.name}-`));
  mkdirSync(join(dir, 'partials'));
  writeTemplates(engine, dir, files);
  return dir;
}

export function writeTemplates(engine: DigestEngine, dir: string, files: Record<TemplateName, string>): void {
  for (const [name, source] of Object.entries(files)) writeFileSync(fileOf(engine, dir, name), engine.layOut?.(source) ?? source);
}

export function fileOf(engine: DigestEngine, dir: string, name: TemplateName): string {
  return join(dir, isPage(name) ? '' : 'partials', `${name}.${engine.extension}`);
}

const isPage = (name: string) => name === 'page' || name === 'other';

/** What every render's context holds: the fragments' `mark`, the name an include by expression reads, and `never`. */
function contextOf(engine: DigestEngine, ran: string[], context: Record<string, unknown>): Record<string, unknown> {
  return { mark: (name: string) => (ran.push(name), ''), partialName: engine.ref('price'), never: false, ...context };
}

export const nunjucksDigests: DigestEngine = {
  name: 'nunjucks',
  includeLine: 1,
  edit: (source) => `${source}<!-- edited -->`,
  bodyLine: 2,
  extension: 'njk',
  ref: (name) => (isPage(name) ? `${name}.njk` : `partials/${name}.njk`),
  named: (name) => nunjucksDigests.ref(name),
  // A declared name may leave out the extension.
  declared: (name) => `partials/${name}`,
  partialsFolder: 'partials/*',
  page: (body) => `{% extends "partials/layout.njk" %}\n{% block content %}${body}{% endblock %}`,
  layout: (before) => `${before}<main>{% block content %}{% endblock %}</main>`,
  fragment: (name, body) => `{% cache 600 "${name}" %}{{ mark("${name}") }}${body}{% endcache %}`,
  include: (name) => `{% include "${nunjucksDigests.ref(name)}" %}`,
  includeNamed: (variable) => `{% include ${variable} %}`,
  never: (body) => `{% if never %}${body}{% endif %}`,
  comment: (text) => `{# ${text} #}`,
  everyForm: {
    source:
      '{% extends "partials/layout.njk" %}{% import "partials/a.njk" as a %}{% from "partials/b.njk" import x %}\n' +
      '{% block content %}{% cache 60 "every" %}{% include "partials/price.njk" %}{% endcache %}{% include "partials/gone.njk" ignore missing %}' +
      '{% if never %}{% include "partials/unused.njk" %}{% endif %}{% endblock %}',
    found: ['partials/layout.njk', 'partials/a.njk', 'partials/b.njk', 'partials/price.njk', 'partials/gone.njk', 'partials/unused.njk'],
  },
  start(dir, reloading = false) {
    const env = nunjucksTag.installCacheTag(new nunjucks.Environment(new nunjucks.FileSystemLoader(dir, { watch: reloading }), { autoescape: true }), {
      digests: true,
    });
    return {
      async render(name, context = {}) {
        const ran: string[] = [];
        const html = await nunjucksTag.render(env, `${name}.njk`, contextOf(nunjucksDigests, ran, context));
        return { html, ran };
      },
      digest: (name) => nunjucksTag.templateDigest(env, nunjucksDigests.ref(name)),
      close: () => undefined,
    };
  },
};

export const handlebarsDigests: DigestEngine = {
  name: 'handlebars',
  includeLine: 1,
  edit: (source) => `${source}<!-- edited -->`,
  bodyLine: 2,
  extension: 'hbs',
  ref: (name) => name,
  named: (name) => name,
  declared: (name) => name,
  // Partials are named from the partials folder: they are all at the top.
  partialsFolder: '*',
  page: (body) => `{{#> layout}}\n${body}{{/layout}}`,
  layout: (before) => `${before}<main>{{> @partial-block}}</main>`,
  fragment: (name, body) => `{{#cache 600 "${name}"}}{{mark "${name}"}}${body}{{/cache}}`,
  include: (name) => `{{> ${name}}}`,
  includeNamed: (variable) => `{{> (lookup . "${variable}")}}`,
  never: (body) => `{{#if never}}${body}{{/if}}`,
  comment: (text) => `{{!-- ${text} --}}`,
  everyForm: {
    source:
      '{{#*inline "local"}}inline{{/inline}}{{#> layout}}\n{{> a}}{{#each items}}{{> "b" this}}{{/each}}' +
      '{{#cache 60 "every"}}{{> price}}{{/cache}}{{#if never}}{{> [unused]}}{{/if}}{{> local}}{{/layout}}',
    found: ['layout', 'a', 'b', 'price', 'unused'],
  },
  start(dir, reloading = false) {
    let ran: string[] = [];
    const handlebars = Handlebars.create();
    handlebars.registerHelper('mark', (name: string) => (ran.push(name), ''));
    // In development, express-handlebars reads views and partials again on every render.
    const hbs = handlebarsTag.installExpressHandlebars(createExpressHandlebars({ handlebars, extname: '.hbs', partialsDir: join(dir, 'partials') }), {
      digests: true,
    });
    return {
      async render(name, context = {}) {
        ran = [];
        const html = await hbs.render(join(dir, `${name}.hbs`), contextOf(handlebarsDigests, ran, context), { cache: !reloading } as never);
        return { html, ran };
      },
      digest: (name) => {
        if (isPage(name)) throw new Error('a Handlebars page is digested through its compiled template');
        return handlebarsTag.templateDigest(handlebars, name);
      },
      close: () => undefined,
    };
  },
};

export const etaDigests: DigestEngine = {
  name: 'eta',
  includeLine: 1,
  edit: (source) => `${source}<!-- edited -->`,
  bodyLine: 2,
  extension: 'eta',
  ref: (name) => (isPage(name) ? name : `/partials/${name}`),
  named: (name) => `${isPage(name) ? '' : 'partials/'}${name}.eta`,
  declared: (name) => `partials/${name}`,
  partialsFolder: 'partials/*',
  page: (body) => `<% layout('/partials/layout') %>\n${body}`,
  layout: (before) => `${before}<main><%~ it.body %></main>`,
  fragment: (name, body) => `<% cache 600 "${name}" %><%= it.mark("${name}") %>${body}<% endcache %>`,
  include: (name) => `<%~ await includeAsync('${etaDigests.ref(name)}', it) %>`,
  includeNamed: (variable) => `<%~ await includeAsync(it.${variable}, it) %>`,
  never: (body) => `<% if (it.never) { %>${body}<% } %>`,
  comment: (text) => `<%/* ${text} */%>`,
  everyForm: {
    source:
      "<% layout('/partials/layout') %>\n<%~ include('/partials/a', it) %><%~ await includeAsync(\"/partials/b\", it) %>" +
      '<% cache 60 every %><%~ await includeAsync(`./price`, it) %><% endcache %><% if (it.never) { %><%~ include ( "../partials/unused" ) %><% } %>',
    found: ['partials/layout.eta', 'partials/a.eta', 'partials/b.eta', 'partials/price.eta', 'partials/unused.eta'],
  },
  start(dir, reloading = false) {
    const eta = new Eta({ views: dir, plugins: [etaTag.cachePlugin({ digests: true })], cache: !reloading });
    return {
      async render(name, context = {}) {
        const ran: string[] = [];
        const html = await eta.renderAsync(name, contextOf(etaDigests, ran, context));
        return { html, ran };
      },
      digest: (name) => etaTag.templateDigest(eta, etaDigests.ref(name)),
      close: () => undefined,
    };
  },
};

export const ejsDigests: DigestEngine = {
  name: 'ejs',
  includeLine: 1,
  edit: (source) => `${source}<!-- edited -->`,
  extension: 'ejs',
  bodyLine: 2,
  ref: (name) => (isPage(name) ? name : `/partials/${name}`),
  named: (name) => `${isPage(name) ? '' : 'partials/'}${name}.ejs`,
  declared: (name) => `partials/${name}`,
  partialsFolder: 'partials/*',
  page: (body) => `<%- await include('/partials/layout') %>\n${body}`,
  layout: (before) => `${before}<main></main>`,
  fragment: (name, body) => `<% cache(600, '${name}', [], async () => { %><%= mark('${name}') %>${body}<% }) %>`,
  include: (name) => `<%- await include('${ejsDigests.ref(name)}') %>`,
  includeNamed: (variable) => `<%- await include(${variable}) %>`,
  never: (body) => `<% if (never) { %>${body}<% } %>`,
  // An EJS comment ends at the first close of a tag, and holds no tag of its own: what it mentions is written without theirs.
  comment: (text) => `<%# ${text.replace(/<%-?|%>/g, '')} %>`,
  everyForm: {
    source:
      '<%- await include(\'/partials/layout\') %>\n<%- await include("/partials/a") %><%- await include(`/partials/b`, { x: 1 }) %>' +
      "<% cache(60, 'every', [], async () => { %><%- await include('./price') %><% }) %><% if (never) { %><%- await include ( '../partials/unused' ) %><% } %>",
    found: ['partials/layout.ejs', 'partials/a.ejs', 'partials/b.ejs', 'partials/price.ejs', 'partials/unused.ejs'],
  },
  start(dir, reloading = false) {
    ejsTag.installCacheTag(ejs, { digests: true });
    // A process starts with no template compiled.
    ejs.clearCache();
    return {
      async render(name, context = {}) {
        const ran: string[] = [];
        const html = await ejs.renderFile(join(dir, `${name}.ejs`), contextOf(ejsDigests, ran, context), {
          async: true,
          root: dir,
          views: [dir],
          cache: !reloading,
        });
        return { html, ran };
      },
      digest: (name) => ejsTag.templateDigest(ejs, ejsDigests.named(name)),
      close: () => undefined,
    };
  },
};

/** Pug's lines, as the fragment table lays them out: a statement, and the block indented under it. */
const pugLine = (statement: string, block?: string) => `${LINE}${statement}${block === undefined ? '' : `${BLOCK}${block}`}${END}`;

export const pugDigests: DigestEngine = {
  name: 'pug',
  // A Pug line for each statement: `| A:`, `+cache(…)`, its `- mark(…)`, then the include.
  includeLine: 4,
  // A page that extends another holds blocks and comments only.
  edit: (source) => `${source}${pugLine('//- edited')}`,
  extension: 'pug',
  layOut: (source) => toPug(source),
  bodyLine: 3,
  ref: (name) => (isPage(name) ? name : `/partials/${name}`),
  named: (name) => `${isPage(name) ? '' : 'partials/'}${name}.pug`,
  declared: (name) => `partials/${name}`,
  partialsFolder: 'partials/*',
  page: (body) => `${pugLine('extends /partials/layout')}${pugLine('block content', body)}`,
  layout: (before) => `${before}${pugLine('main', pugLine('block content'))}`,
  fragment: (name, body) => pugLine(`+cache(600, '${name}')`, `${pugLine(`- mark('${name}')`)}${body}`),
  include: (name) => pugLine(`include ${pugDigests.ref(name)}`),
  // Pug names every template by a literal path: the cases' include by an expression includes what it would name.
  includeNamed: () => pugDigests.include('price'),
  cannot: { includeNamed: true, renderMissing: true, renderCycle: true },
  never: (body) => pugLine('if never', body),
  // A comment is one line: what it mentions stays in it.
  comment: (text) => pugLine(`//- ${text.replace(/[\u0001\u0002\u0003]/g, ' ')}`),
  everyForm: {
    source:
      `${pugLine('extends /partials/layout')}${pugLine('mixin card', pugLine('include b'))}` +
      pugLine(
        'block content',
        `${pugLine('include /partials/a')}${pugLine("+cache(60, 'every')", pugLine('include ../partials/price.pug'))}${pugLine('if never', pugLine('include unused'))}`,
      ),
    found: ['partials/layout.pug', 'partials/b.pug', 'partials/a.pug', 'partials/price.pug', 'partials/unused.pug'],
  },
  start(dir, reloading = false) {
    pugTag.installCacheTag(pug, { digests: true });
    // A process starts with no template compiled.
    const compiled = (pug as unknown as { cache: Record<string, unknown> }).cache;
    for (const file of Object.keys(compiled)) delete compiled[file];
    return {
      async render(name, context = {}) {
        const ran: string[] = [];
        const html = await pug.renderFile(join(dir, `${name}.pug`), { ...contextOf(pugDigests, ran, context), basedir: dir, cache: !reloading });
        return { html, ran };
      },
      digest: (name) => pugTag.templateDigest(pug, pugDigests.named(name)),
      close: () => undefined,
    };
  },
};

export const liquidDigests: DigestEngine = {
  name: 'liquid',
  includeLine: 1,
  edit: (source) => `${source}<!-- edited -->`,
  extension: 'liquid',
  bodyLine: 2,
  ref: (name) => (isPage(name) ? name : `partials/${name}`),
  named: (name) => `${isPage(name) ? '' : 'partials/'}${name}.liquid`,
  declared: (name) => `partials/${name}`,
  partialsFolder: 'partials/*',
  page: (body) => `{% layout 'partials/layout' %}\n{% block content %}${body}{% endblock %}`,
  layout: (before) => `${before}<main>{% block content %}{% endblock %}</main>`,
  fragment: (name, body) => `{% cache 600 '${name}' %}{{ '${name}' | mark }}${body}{% endcache %}`,
  include: (name) => `{% render '${liquidDigests.ref(name)}' %}`,
  includeNamed: (variable) => `{% include ${variable} %}`,
  never: (body) => `{% if never %}${body}{% endif %}`,
  comment: (text) => `{% comment %}${text}{% endcomment %}`,
  everyForm: {
    source:
      "{% layout 'partials/layout' %}\n{% block content %}{% render 'partials/a' %}{% include \"partials/b\", x: 1 %}" +
      "{% cache 60 'every' %}{% render './price' with x as y %}{% endcache %}{% if never %}{% liquid\n  include 'partials/unused'\n%}{% endif %}{% endblock %}",
    found: ['partials/layout.liquid', 'partials/a.liquid', 'partials/b.liquid', 'partials/price.liquid', 'partials/unused.liquid'],
  },
  start(dir, reloading = false) {
    let ran: string[] = [];
    const liquid = liquidTag.installCacheTag(new Liquid({ root: dir, extname: '.liquid', cache: !reloading }), { digests: true });
    liquid.registerFilter('mark', (name: string) => (ran.push(name), ''));
    return {
      async render(name, context = {}) {
        ran = [];
        const html = (await liquid.renderFile(name, contextOf(liquidDigests, [], context))) as string;
        return { html, ran };
      },
      digest: (name) => liquidTag.templateDigest(liquid, liquidDigests.named(name)),
      close: () => undefined,
    };
  },
};

export const DIGEST_ENGINES = [nunjucksDigests, handlebarsDigests, etaDigests, ejsDigests, pugDigests, liquidDigests];
