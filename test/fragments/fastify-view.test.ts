/**
 * Handlebars under @fastify/view: the view compiles its page from text with no `srcName`
 * and awaits what calling it answers. Given `fastifyViewEngine(handlebars)`, pages resolve their
 * fragments, in partials and layouts too; given the bare instance, the error says what to give it, at
 * the tag's line, without calling the page a partial.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fastifyView from '@fastify/view';
import Fastify from 'fastify';
import Handlebars from 'handlebars';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fastifyViewEngine, installCacheHelper } from '../../src/engines/handlebars.js';
import { caches, configureCaches } from '../../src/index.js';

const root = mkdtempSync(join(tmpdir(), 'cachegrain-fastify-view-'));
beforeAll(() => configureCaches({ default: { backend: 'locmem', location: 'fastify-view' } }));
afterAll(async () => {
  rmSync(root, { recursive: true, force: true });
  await caches.closeAll();
});

describe('a Handlebars page rendered by @fastify/view', () => {
  it('given fastifyViewEngine(handlebars), resolves the fragments of the page, of its partials and of its layout, and keeps them', async () => {
    writeFileSync(join(root, 'cached.hbs'), '<p>{{#cache 60 "side"}}side {{n}}{{/cache}}</p>{{> part}}');
    writeFileSync(join(root, 'part.hbs'), '{{#cache 60 "part"}}<i>part {{n}}</i>{{/cache}}');
    writeFileSync(join(root, 'layout.hbs'), '<main>{{{body}}}</main>{{#cache 60 "foot"}}<footer>foot {{n}}</footer>{{/cache}}');
    const app = Fastify();
    const handlebars = installCacheHelper(Handlebars.create());
    await app.register(fastifyView, {
      engine: { handlebars: fastifyViewEngine(handlebars) },
      root,
      layout: 'layout.hbs',
      options: { partials: { part: 'part.hbs' } },
    });
    let n = 0;
    app.get('/', (_request, reply) => reply.view('cached.hbs', { n: ++n }));
    try {
      const pages = [];
      for (let i = 0; i < 2; i++) pages.push((await app.inject({ method: 'GET', url: '/' })).body);
      expect(pages).toEqual(Array(2).fill('<main><p>side 1</p><i>part 1</i></main><footer>foot 1</footer>'));
      expect(n).toBe(2);
    } finally {
      await app.close();
    }
    expect(() => fastifyViewEngine(Handlebars.create())).toThrow(
      'fastifyViewEngine: the Handlebars instance has no cache helper: give it installCacheHelper(handlebars)',
    );
  });

  it('given the bare instance, fails at the line of the tag, naming the page as a template string', async () => {
    writeFileSync(join(root, 'page.hbs'), 'one\n{{#cache 60 "side"}}x{{/cache}}\n');
    const app = Fastify();
    await app.register(fastifyView, { engine: { handlebars: installCacheHelper(Handlebars.create()) }, root });
    app.get('/', (_request, reply) => reply.view('page.hbs', {}));
    try {
      const response = await app.inject({ method: 'GET', url: '/' });
      expect(response.statusCode).toBe(500);
      expect(response.json().message).toMatch(
        /^the 'cache' helper needs the page rendered with render\(\).*given fastifyViewEngine\(handlebars\) \(a template string, line 2\)$/,
      );
    } finally {
      await app.close();
    }
  });
});
