/**
 * The three engines as the template digest cases see them: a site is a folder of template files
 * (pages at its top, partials and the layout in `partials/`), started as a process would start it (a
 * fresh engine instance with `digests: true`), rendering a page and telling which fragments' bodies
 * ran. Each engine says how it writes a fragment, an include, a layout, an include by an expression,
 * a comment, and a branch never taken.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Eta } from 'eta';
import { create as createExpressHandlebars } from 'express-handlebars';
import Handlebars from 'handlebars';
import nunjucks from 'nunjucks';
import * as etaTag from '../../adapters/eta.js';
import * as handlebarsTag from '../../adapters/handlebars.js';
import * as nunjucksTag from '../../adapters/nunjucks.js';
import type { TemplateDigestReport } from '../../src/digests/index.js';

/** A page (`page`, `other`) or a partial (any other name), as the cases name them. */
export type TemplateName = string;

export interface DigestEngine {
  name: 'nunjucks' | 'handlebars' | 'eta';
  extension: string;
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
  for (const [name, source] of Object.entries(files)) writeFileSync(fileOf(engine, dir, name), source);
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
  extension: 'njk',
  ref: (name) => (isPage(name) ? `${name}.njk` : `partials/${name}.njk`),
  named: (name) => nunjucksDigests.ref(name),
  // As SPEC §15 writes it: a declared name may leave out the extension.
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

export const DIGEST_ENGINES = [nunjucksDigests, handlebarsDigests, etaDigests];
