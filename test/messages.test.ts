/**
 * Messages that point at the fault: the server and the cause, not the client's retry setting; the
 * value as it was written; the tag left open; the step that installs a missing tag.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Eta } from 'eta';
import Handlebars from 'handlebars';
import nunjucks from 'nunjucks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as etaTag from '../src/engines/eta.js';
import { cachePage } from '../src/frameworks/express.js';
import * as handlebarsTag from '../src/engines/handlebars.js';
import * as nunjucksTag from '../src/engines/nunjucks.js';
import { CacheServerError, caches, configureCaches, InvalidCacheKeyError, KeyNotFoundError, RedisCache } from '../src/index.js';
import { closedPort } from './setup/closed-port.js';
import { errorOf } from './setup/error-of.js';

beforeAll(async () => {
  await configureCaches({ default: { backend: 'locmem', location: 'messages' } });
});

afterAll(async () => {
  await configureCaches({ default: { backend: 'locmem' } });
});

describe('a redis server that is down', () => {
  it('is named with the cause, the client error kept as cause', async () => {
    const port = await closedPort();
    const cache = new RedisCache({ location: `redis://127.0.0.1:${port}`, logger: { warn: () => undefined } });
    try {
      const error = await errorOf(() => cache.get('k'));
      expect(error).toBeInstanceOf(CacheServerError);
      expect(error.message).toBe(`cache 'default': server redis://127.0.0.1:${port} unreachable: connect ECONNREFUSED 127.0.0.1:${port}`);
      expect((error.cause as Error).message).toBe(`connect ECONNREFUSED 127.0.0.1:${port}`);
    } finally {
      await cache.close();
    }
  });
});

describe('values in messages', () => {
  it('are quoted when they are strings', async () => {
    expect((await errorOf(() => cachePage('300' as never))).message).toBe("cachePage: timeout must be a finite number of seconds (got '300')");
  });
});

const nunjucksEnv = () => nunjucksTag.installCacheTag(new nunjucks.Environment());

describe('a timeout written with a unit', () => {
  it('names what was written and asks for seconds', async () => {
    const error = await errorOf(() => nunjucksTag.renderString(nunjucksEnv(), '{% cache 5m "side" %}x{% endcache %}', {}));
    expect(error.message).toBe(`(unknown path) [Line 1, Column 10]\n  "cache" tag got a non-integer timeout value: '5m' (a number of seconds)`);
  });
});

describe('a cache tag left open', () => {
  const cases: Array<[string, string, string]> = [
    ['block', '{% block main %}\n<p>\n{% cache 60 "side" %}x\n{% endblock %}', 'endblock'],
    ['for', '{% for i in [1] %}\n<p>\n{% cache 60 "side" %}x\n{% endfor %}', 'endfor'],
    ['if', '{% if true %}\n<p>\n{% cache 60 "side" %}x\n{% endif %}', 'endif'],
  ];
  it.each(cases)('inside a %s is named, with its template and line', async (_what, source, enclosingEnd) => {
    const error = await errorOf(() => nunjucksTag.renderString(nunjucksEnv(), source, {}));
    expect(error.message).toBe(`(unknown path) [Line 3, Column 4]\n  'cache' tag is never closed: {% endcache %} is missing before {% ${enclosingEnd} %}`);
  });

  it('in a template file is named with the file', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'cachegrain-messages-'));
    writeFileSync(join(directory, 'page.njk'), '{% if true %}\n{% cache 60 "side" %}x\n{% endif %}');
    const env = nunjucksTag.installCacheTag(new nunjucks.Environment(new nunjucks.FileSystemLoader(directory)));
    const error = await errorOf(() => nunjucksTag.render(env, 'page.njk', {}));
    expect(error.message).toBe(
      `(${join(directory, 'page.njk')}) [Line 2, Column 4]\n  'cache' tag is never closed: {% endcache %} is missing before {% endif %}`,
    );
  });
});

describe('a cache tag in an engine it was not installed in', () => {
  it('nunjucks: says to call installCacheTag', async () => {
    const error = await errorOf(() => nunjucksTag.renderString(new nunjucks.Environment(), '<p>\n{% cache 60 "side" %}x{% endcache %}', {}));
    expect(error.message).toBe(
      "(unknown path) [Line 2, Column 4]\n  unknown block tag: cache; the 'cache' tag is added to a nunjucks Environment by installCacheTag(env) from cachegrain/nunjucks: call it before rendering",
    );
  });

  it('handlebars: says to call installCacheHelper', async () => {
    const handlebars = Handlebars.create();
    const template = handlebars.compile('<p>\n{{#cache 60 "side"}}x{{/cache}}');
    const error = await errorOf(() => handlebarsTag.render(template, {}));
    expect(error.message).toBe(
      'Missing helper: "cache"; the \'cache\' helper is added to a Handlebars instance by installCacheHelper(handlebars) from cachegrain/handlebars: call it before compiling',
    );
  });

  it('eta: says to add cachePlugin, through its Express engine', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'cachegrain-messages-'));
    writeFileSync(join(directory, 'page.eta'), '<p>\n<% cache 60 "side" %>x<% endcache %>');
    const view = etaTag.expressEngine(new Eta({ views: directory }));
    const error = await new Promise<Error>((resolve) => view(join(directory, 'page.eta'), {}, (failure) => resolve(failure as Error)));
    expect(error.message.split('\n')[0]).toBe(
      "the 'cache' tag is added to Eta by cachePlugin() from cachegrain/eta: new Eta({ plugins: [cachePlugin()] }); Bad template syntax",
    );
  });
});

describe('an error about one cache names it, as a field and in the message', () => {
  it("KeyNotFoundError begins cache '<alias>': and carries the alias", async () => {
    await configureCaches({ default: { backend: 'locmem', location: 'messages' }, counters: { backend: 'locmem', location: 'c' } });
    const counters = caches.get('counters');
    for (const call of [() => counters.incr('hits'), () => counters.decr('hits'), () => counters.incrVersion('hits')]) {
      const error = await errorOf(call);
      expect(error).toBeInstanceOf(KeyNotFoundError);
      expect(error.message).toBe("cache 'counters': Key 'hits' not found");
      expect((error as KeyNotFoundError).alias).toBe('counters');
      expect((error as KeyNotFoundError).key).toBe('hits');
    }
  });

  it("InvalidCacheKeyError for a lone surrogate begins cache '<alias>': and carries the alias", async () => {
    await configureCaches({ default: { backend: 'locmem', location: 'messages' }, counters: { backend: 'locmem', location: 'c' } });
    const error = await errorOf(() => caches.get('counters').set('bad\ud800', 1));
    expect(error).toBeInstanceOf(InvalidCacheKeyError);
    expect(error.message).toBe("cache 'counters': Cache key is not well-formed Unicode (it holds a lone surrogate): 'bad\ud800'");
    expect((error as InvalidCacheKeyError).alias).toBe('counters');
    expect((error as InvalidCacheKeyError).key).toBe('bad\ud800');
  });
});
