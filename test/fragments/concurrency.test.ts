import { once } from 'node:events';
import express from 'express';
import nunjucks from 'nunjucks';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheScope } from '../../adapters/express.js';
import { renderString, installCacheTag } from '../../adapters/nunjucks.js';
import { caches, configureCaches } from '../../src/index.js';
import { RemoteLikeStore } from './remote-like-store.js';

/** A store whose writes take a while, as a server's do. */
class SlowWrites extends RemoteLikeStore {
  protected override write(...args: Parameters<RemoteLikeStore['write']>) {
    return new Promise<string[]>((resolve) => setTimeout(() => resolve(super.write(...args)), 100));
  }
}

describe('concurrent renders', () => {
  beforeAll(() => configureCaches({ default: { backend: 'locmem', location: 'fragments-concurrency' } }));
  afterAll(() => caches.closeAll());

  it('render a fragment missed by many renders at once only once', async () => {
    let bodies = 0;
    const env = installCacheTag(new nunjucks.Environment());
    env.addGlobal('count', () => ++bodies);
    const source = '{% cache 60 shared %}body {{ count() }}{% endcache %}';
    const pages = await Promise.all(Array.from({ length: 10 }, () => renderString(env, source)));
    expect(new Set(pages)).toEqual(new Set(['body 1']));
    expect(bodies).toBe(1);
  });

  it('finish when two pages nest the same two fragments in opposite orders', async () => {
    const env = installCacheTag(new nunjucks.Environment());
    const xThenY = '{% cache 60 outer_x %}x[{% cache 60 inner_y %}y{% endcache %}]{% endcache %}';
    const yThenX = '{% cache 60 inner_y %}y[{% cache 60 outer_x %}x{% endcache %}]{% endcache %}';
    const bothDone = Promise.all([renderString(env, xThenY), renderString(env, yThenX)]);
    const stuck = new Promise((resolve) => setTimeout(() => resolve('stuck'), 2000));
    expect(await Promise.race([bothDone, stuck])).toEqual(['x[y]', 'y[x]']);
  });
});

describe('a render that comes while a fragment is being written', () => {
  beforeAll(() => configureCaches({ default: { backend: SlowWrites, location: 'fragments-slow-writes' } }));
  afterAll(() => caches.closeAll());

  it('takes the HTML of the render that made it rather than rendering it again', async () => {
    let bodies = 0;
    const env = installCacheTag(new nunjucks.Environment());
    env.addGlobal('count', () => ++bodies);
    const source = '{% cache 60 written %}body {{ count() }}{% endcache %}';
    const first = renderString(env, source);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(bodies).toBe(1);
    expect(await renderString(env, source)).toBe('body 1');
    expect(await first).toBe('body 1');
    expect(bodies).toBe(1);
  });
});

describe('a render that waits for another render of a fragment that varies on contexts met inside it', () => {
  beforeAll(() => configureCaches({ default: { backend: SlowWrites, location: 'fragments-slow-variants' } }));
  afterAll(() => caches.closeAll());

  it("renders its own variant rather than take another theme's HTML", async () => {
    let bodies = 0;
    const env = installCacheTag(new nunjucks.Environment());
    env.addGlobal('count', () => ++bodies);
    const source = '{% cache 60 "around" %}<o>{{ count() }}{% cache 60 "themed" contexts="cookie:theme" %}<i>{{ theme }}</i>{% endcache %}</o>{% endcache %}';
    const app = express();
    app.use(cacheScope());
    app.get('/', async (req, res) => void res.send(await renderString(env, source, { theme: /theme=(\w+)/.exec(req.headers.cookie ?? '')?.[1] ?? '' })));
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const dark = request(server).get('/').set('Cookie', 'theme=dark');
      // The dark render's fragments are still being written (SlowWrites): the light render finds its flight.
      await new Promise((resolve) => setTimeout(resolve, 30));
      const light = request(server).get('/').set('Cookie', 'theme=light');
      const [darkPage, lightPage] = await Promise.all([dark, light]);
      // Whichever render led, each page holds its own theme, and the outer body ran once for each.
      expect(darkPage.text).toMatch(/^<o>[12]<i>dark<\/i><\/o>$/);
      expect(lightPage.text).toMatch(/^<o>[12]<i>light<\/i><\/o>$/);
      expect(darkPage.text.slice(0, 4)).not.toBe(lightPage.text.slice(0, 4));
      expect(bodies).toBe(2);
    } finally {
      server.close();
    }
  });
});
