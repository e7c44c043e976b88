/**
 * Every way a template can write the template functions: in each engine, each form of
 * `uncacheable(…)` and `hole(…)` either works, over real HTTP behind the page cache, or fails when the
 * template compiles, naming the template, the line and the form to use; never does nothing.
 */
import { once } from 'node:events';
import type { Server } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheMiddleware, defineHole } from '../../src/frameworks/express.js';
import { forgetHole } from '../../src/http/index.js';
import { caches, configureCaches } from '../../src/index.js';
import { ENGINES, type FragmentEngine } from './engines.js';

/** A construct on a Pug line of its own (the engines' Pug source is otherwise piped text). */
const pugLine = (line: string) => `\u0001${line}\u0002`;

interface Forms {
  /** Forms that keep the page out of the cache. */
  uncacheable: string[];
  /** Forms that place the hole 'cart'. */
  hole: string[];
  /** Forms refused as the template compiles, each with what the error says. */
  refused: Array<[string, RegExp]>;
}

const FORMS: Record<FragmentEngine['name'], Forms> = {
  eta: {
    uncacheable: [
      '<% uncacheable("live score") %>',
      '<%= uncacheable("live score") %>',
      '<%~ uncacheable("live score") %>',
      '<%- uncacheable("live score") _%>',
      '<% if (it.live) uncacheable("live score") %>',
      '<%~ it.live ? uncacheable("live score") : "" %>',
      '<% cache 60 "score-eta" %><% uncacheable("live score") %><% endcache %>',
    ],
    hole: ['<% hole("cart") %>', '<% hole("cart"); %>', '<%= hole("cart") %>', '<%~ hole("cart") %>', '<% const cart = hole("cart") %><%~ cart %>'],
    refused: [
      [
        '<%~ cache 60 "x" %>y<% endcache %>',
        /the 'cache' tag outputs its fragment itself: write it without '~', as in <% cache 60 "sidebar" %>…<% endcache %> \(a template string, line 1\)/,
      ],
      ['\n<%= cache 60 "x" %>y<% endcache %>', /the 'cache' tag outputs its fragment itself: write it without '=', .*\(a template string, line 2\)/],
      [
        '<% cache(60, "x") %>y<% endcache %>',
        /'cache' tag takes its arguments separated by spaces, not as a call: <% cache 60 "sidebar" it\.user\.id %> \(a template string, line 1\)/,
      ],
    ],
  },
  ejs: {
    uncacheable: [
      "<% uncacheable('live score') %>",
      "<%= uncacheable('live score') %>",
      "<%- uncacheable('live score') %>",
      "<%_ uncacheable('live score') _%>",
      "<% if (live) uncacheable('live score') %>",
      "<%- live ? uncacheable('live score') : '' %>",
      "<% cache(60, 'score-ejs', async () => { %><% uncacheable('live score') %><% }) %>",
    ],
    hole: ["<% hole('cart') %>", "<% hole('cart'); %>", "<%= hole('cart') %>", "<%- hole('cart') %>", "<% const cart = hole('cart') %><%- cart %>"],
    refused: [
      [
        "<%- cache(60, 'x', async () => { %>y<% }) %>",
        /the 'cache' call starts a scriptlet of its own.*<% cache\(600, 'sidebar'.*\(a template string, line 1\)/,
      ],
      ["\n<% if (true) cache(60, 'x', async () => { %>y<% }) %>", /the 'cache' call starts a scriptlet of its own.*\(a template string, line 2\)/],
    ],
  },
  pug: {
    uncacheable: [
      pugLine("- uncacheable('live score')"),
      pugLine("= uncacheable('live score')"),
      pugLine("!= uncacheable('live score')"),
      pugLine("+uncacheable('live score')"),
      pugLine("span #{uncacheable('live score')}"),
      pugLine("- if (live) uncacheable('live score')"),
      pugLine("+cache(60, 'score-pug')\u0003\u0001- uncacheable('live score')\u0002"),
    ],
    hole: [
      pugLine("- hole('cart')"),
      pugLine("= hole('cart')"),
      pugLine("!= hole('cart')"),
      pugLine("+hole('cart')"),
      pugLine("span !{hole('cart')}"),
      pugLine('mixin box(html)\u0003\u0001span!= html\u0002') + pugLine("+box(hole('cart'))"),
    ],
    refused: [
      [pugLine("- cache(60, 'x')"), /'cache' is called as a mixin, its body indented under it: \+cache\(60, 'sidebar'\) \(.*source\.pug, line 1\)/],
      [pugLine("p= cache(60, 'x')"), /'cache' is called as a mixin.*line 1\)/],
    ],
  },
  nunjucks: {
    uncacheable: [
      '{{ uncacheable("live score") }}',
      '{% uncacheable "live score" %}',
      '{% cache 60 "score-nunjucks" %}{% uncacheable "live score" %}{% endcache %}',
    ],
    hole: ['{% hole "cart" %}', '{{ hole("cart") }}', '{% set cart = hole("cart") %}{{ cart }}'],
    refused: [
      [
        '{% if uncacheable("live score") %}x{% endif %}',
        /uncacheable\(\) is written .*\{\{ uncacheable\("why"\) \}\} or \{% uncacheable "why" %\}.*\(a template string, line 1\)/,
      ],
      ['\n{% set live = uncacheable("live score") %}', /uncacheable\(\) is written .*\(a template string, line 2\)/],
      ['{{ cache(60, "x") }}', /'cache' is a tag, not a function: \{% cache 60 "sidebar" %\}…\{% endcache %\} \(a template string, line 1\)/],
      ['{{ uncacheable("live score") | upper }}', /uncacheable\(\) is written .*\(a template string, line 1\)/],
    ],
  },
  handlebars: {
    uncacheable: ['{{uncacheable "live score"}}', '{{{uncacheable "live score"}}}', '{{#cache 60 "score-handlebars"}}{{uncacheable "live score"}}{{/cache}}'],
    hole: ['{{hole "cart"}}', '{{{hole "cart"}}}'],
    refused: [
      ['{{#uncacheable "live score"}}x{{/uncacheable}}', /'uncacheable' takes no block: write \{\{uncacheable "why"\}\} \(a template string, line 1\)/],
      ['{{#hole "cart"}}x{{/hole}}', /'hole' takes no block: write \{\{hole "name" args…\}\} \(a template string, line 1\)/],
      [
        '\n{{#if (uncacheable "live score")}}x{{/if}}',
        /'uncacheable' is written as a mustache of its own, \{\{uncacheable "why"\}\}.*\(a template string, line 2\)/,
      ],
      ['{{#if (cache 60 "x")}}y{{/if}}', /'cache' is a block helper: \{\{#cache 60 "sidebar"\}\}…\{\{\/cache\}\} \(a template string, line 1\)/],
      ['{{cache 60 "x"}}', /'cache' is a block helper: \{\{#cache 60 "sidebar"\}\}…\{\{\/cache\}\} \(a template string, line 1\)/],
    ],
  },
  liquid: {
    uncacheable: ['{% uncacheable "live score" %}', '{% cache 60 "score-liquid" %}{% uncacheable "live score" %}{% endcache %}'],
    hole: ['{% hole "cart" %}'],
    refused: [],
  },
};

let server: Server;
/** What each path renders: set by the test before it asks. */
const pages = new Map<string, { engine: FragmentEngine; source: string }>();
let serial = 0;

beforeAll(async () => {
  await configureCaches({ default: { backend: 'locmem', location: 'spellings' } });
  defineHole('cart', () => '<b>cart</b>');
  const app = express();
  app.use(cacheMiddleware({ seconds: 600 }));
  app.get('/{*path}', async (req, res, next) => {
    const page = pages.get(req.path)!;
    try {
      res.send(await page.engine.renderSource(page.source, { live: true }));
    } catch (error) {
      next(error);
    }
  });
  app.use((error: Error, _req: Request, res: Response, _next: NextFunction) => void res.status(500).send(error.message));
  server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
});

afterAll(async () => {
  forgetHole('cart');
  await new Promise((resolve) => server.close(resolve));
  await caches.closeAll();
});

/** A page's text without its spaces and the `span` a Pug form is written in. */
const visible = (html: string) => html.replace(/\s+|<\/?span>/g, '');

/** Serves `source` at a path of its own; answers the path. */
function serve(engine: FragmentEngine, source: string): string {
  const path = `/${engine.name}/${++serial}`;
  pages.set(path, { engine, source });
  return path;
}

describe.each(ENGINES.map((make) => make()).map((engine) => [engine.name, engine] as const))('%s: the forms of the template functions', (name, engine) => {
  const forms = FORMS[name];

  it.each(forms.uncacheable)('%s keeps the page out of the cache', async (form) => {
    const path = serve(engine, `<p>${form}</p>`);
    for (let i = 0; i < 2; i++) {
      const response = await request(server).get(path).expect(200);
      expect([response.headers['x-cache'], visible(response.text)]).toEqual(['BYPASS', '<p></p>']);
    }
  });

  it.each(forms.hole)('%s places the hole', async (form) => {
    const path = serve(engine, `<p>${form}</p>`);
    const response = await request(server).get(path).expect(200);
    expect([response.headers['x-cache'], visible(response.text)]).toEqual(['MISS', '<p><b>cart</b></p>']);
  });

  if (name === 'eta' || name === 'ejs') {
    it('leaves text in quotes that reads as a call as it is', async () => {
      const source = `<%= "hole(1) " + 'uncacheable(2)' %>`;
      expect(await engine.renderSource(source, {})).toBe('hole(1) uncacheable(2)');
    });
  }

  if (forms.refused.length > 0) {
    it.each(forms.refused)('%s is refused as the template compiles', async (form, error) => {
      await expect(engine.renderSource(form, { live: true })).rejects.toThrow(error);
    });
  }
});
