/**
 * What the tag snapshot of a render costs: the cache's invalidation count is read once per
 * render, with a read the render makes anyway (its first fragment level's, or the lookup of the page
 * it renders in), and never again by a level after it: nested levels and the fragments of a page
 * request read none.
 */
import express from 'express';
import nunjucks from 'nunjucks';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { cacheMiddleware } from '../../src/frameworks/express.js';
import { installCacheTag, renderString } from '../../src/engines/nunjucks.js';
import { caches, configureCaches } from '../../src/index.js';
import { listen, send } from '../http/client.js';
import { RemoteLikeStore } from './remote-like-store.js';

/** A store that holds nothing in process and notes every key it is asked for. */
class RecordingStore extends RemoteLikeStore {
  static keysRead: string[] = [];
  protected override read(keys: string[]) {
    RecordingStore.keysRead.push(...keys);
    return super.read(keys);
  }
  protected override readOne(key: string) {
    RecordingStore.keysRead.push(key);
    return super.readOne(key);
  }
}

const env = installCacheTag(new nunjucks.Environment(null, { autoescape: true }));
// Two levels: the inner fragment is read by a level of its own once the outer one misses.
const NESTED = `{% cache 60 'outer' n %}<section>{% cache 60 'inner' n tags='item:1' %}<b>{{ n }}</b>{% endcache %}</section>{% endcache %}`;
let location = 0;
const countReads = () => RecordingStore.keysRead.filter((key) => key.endsWith('cachegrain.tag-generation')).length;

beforeEach(async () => {
  await configureCaches({ default: { backend: RecordingStore, location: `generation-reads-${++location}` } });
  RecordingStore.keysRead = [];
});
afterAll(() => caches.closeAll());

describe('the invalidation count a render is written as of', () => {
  it('is read by the first level of a render alone, not by the nested level after it', async () => {
    expect(await renderString(env, NESTED, { n: 1 })).toBe('<section><b>1</b></section>');
    expect(RecordingStore.keysRead.some((key) => key.includes('inner'))).toBe(true);
    expect(countReads()).toBe(1);
  });

  it("is read by a page request's lookup alone, not by the fragment levels of the page's render", async () => {
    const app = express();
    app.use(cacheMiddleware({ seconds: 60 }));
    app.get('/', async (_req, res) => void res.send(await renderString(env, NESTED, { n: 2 })));
    const server = await listen(app as never);
    try {
      const miss = await send(server.url, '/');
      expect([miss.headers['x-cache'], miss.text]).toEqual(['MISS', '<section><b>2</b></section>']);
      expect(RecordingStore.keysRead.some((key) => key.includes('inner'))).toBe(true);
      expect(countReads()).toBe(1);
    } finally {
      await server.close();
    }
  });
});
