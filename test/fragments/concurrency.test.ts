import { once } from 'node:events';
import express from 'express';
import nunjucks from 'nunjucks';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheScope } from '../../src/frameworks/express.js';
import { renderString, installCacheTag } from '../../src/engines/nunjucks.js';
import { caches, configureCaches } from '../../src/index.js';
import { RemoteLikeStore } from './remote-like-store.js';

/** Held writes: `entered` resolves when the first write begins, and every write waits until `release()`. */
class WriteGate {
  entered: Promise<void>;
  release!: () => void;
  private enter!: () => void;
  private readonly released: Promise<void>;
  constructor() {
    this.entered = new Promise((resolve) => (this.enter = resolve));
    this.released = new Promise((resolve) => (this.release = resolve));
  }
  async pass(): Promise<void> {
    this.enter();
    await this.released;
  }
}

/** The gate the writes of a HeldWrites store pass; a test sets a new one before it renders. */
let writeGate = new WriteGate();

/** A store whose writes are held until the test lets them go: a server's write, as slow as the test needs. */
class HeldWrites extends RemoteLikeStore {
  protected override async write(...args: Parameters<RemoteLikeStore['write']>) {
    await writeGate.pass();
    return super.write(...args);
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
    // Two renders that waited on each other would never settle: the test would run out its time.
    expect(await Promise.all([renderString(env, xThenY), renderString(env, yThenX)])).toEqual(['x[y]', 'y[x]']);
  });
});

describe('a render that comes while a fragment is being written', () => {
  beforeAll(() => configureCaches({ default: { backend: HeldWrites, location: 'fragments-slow-writes' } }));
  afterAll(() => caches.closeAll());

  it('takes the HTML of the render that made it rather than rendering it again', async () => {
    let bodies = 0;
    const env = installCacheTag(new nunjucks.Environment());
    env.addGlobal('count', () => ++bodies);
    const source = '{% cache 60 written %}body {{ count() }}{% endcache %}';
    writeGate = new WriteGate();
    const first = renderString(env, source);
    await writeGate.entered;
    expect(bodies).toBe(1);
    // Comes while the fragment's write is held.
    const second = renderString(env, source);
    writeGate.release();
    expect(await second).toBe('body 1');
    expect(await first).toBe('body 1');
    expect(bodies).toBe(1);
  });
});

describe('a render that waits for another render of a fragment that varies on contexts met inside it', () => {
  beforeAll(() => configureCaches({ default: { backend: HeldWrites, location: 'fragments-slow-variants' } }));
  afterAll(() => caches.closeAll());

  it("renders its own variant rather than take another theme's HTML", async () => {
    let bodies = 0;
    const env = installCacheTag(new nunjucks.Environment());
    env.addGlobal('count', () => ++bodies);
    const source = '{% cache 60 "around" %}<o>{{ count() }}{% cache 60 "themed" contexts="cookie:theme" %}<i>{{ theme }}</i>{% endcache %}</o>{% endcache %}';
    const app = express();
    app.use(cacheScope());
    let lightArrived!: () => void;
    const lightRendering = new Promise<void>((resolve) => (lightArrived = resolve));
    app.get('/', async (req, res) => {
      const theme = /theme=(\w+)/.exec(req.headers.cookie ?? '')?.[1] ?? '';
      const page = renderString(env, source, { theme });
      if (theme === 'light') lightArrived();
      res.send(await page);
    });
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      writeGate = new WriteGate();
      // Sent now (a supertest request goes out when it is awaited or `then`ed).
      const dark = request(server)
        .get('/')
        .set('Cookie', 'theme=dark')
        .then((reply) => reply);
      // The dark render's fragments are being written (held): the light render finds its flight.
      await writeGate.entered;
      const light = request(server)
        .get('/')
        .set('Cookie', 'theme=light')
        .then((reply) => reply);
      await lightRendering;
      writeGate.release();
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
