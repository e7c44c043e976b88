/**
 * State with an owner and a reset: the process's memos of pure derivations register themselves and
 * `caches.clearAll()` empties them all, and every other store a module of src/ keeps at its top
 * level is accounted for here with why it is not such a memo.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import nunjucks from 'nunjucks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caches, configureCaches } from '../src/index.js';
import { processMemoSizes } from '../src/memos/process-memos.js';
import { pageTemplates, templateTag } from '../src/digests/pages.js';
import { installCacheTag, renderString } from '../src/engines/nunjucks.js';
import { makeTemplateFragmentKey } from '../src/fragments/fragment-keys.js';
import { edgeTagHeaders } from '../src/pages/tag-header.js';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Module-level stores that are not memos of pure derivations, by file and name, each with why. */
const NOT_PROCESS_MEMOS: Record<string, string> = {
  'src/backends/database/database.ts shared': 'connections opened from URLs, counted by their users and closed with the last',
  'src/backends/ioredis.ts clients': "ioredis's module, loaded with the first connection",
  'src/backends/ioredis.ts coalescing': "owner-held: the clients whose writes coalesce; a client is ioredis's object and gets no field of ours",
  'src/backends/locmem.ts stores':
    'the data of each locmem location, shared by every alias naming it for the life of the process; clearAll empties it through its caches',
  'src/cacheability/contexts.ts defined': 'the contexts the application defined: configuration, not a memo',
  'src/cacheability/request-scope.ts openScopes': 'the requests in a scope right now',
  'src/cacheability/request-scope.ts switchingOff': 'the pending switch-off of the request storage, dropped when it runs',
  'src/cacheability/request-scope.ts scopes': "each response's request scope, held weakly: it goes with its response",
  'src/store/clock.ts reading': "the time read once per turn of the event loop, dropped at the turn's end",
  'src/store/clock.ts uses': "the reads of this turn's time, dropped with it",
  'src/memos/process-memos.ts registered': 'the registry of process memos itself',
  'src/digests/deploys.ts sites': "what this process compared of each cache's record of templates, and added to it; held weakly, it goes with its cache",
  'src/digests/deploys.ts watched': 'the same, told of each engine made later; each let go once its cache is',
  'src/digests/engine-digests.ts compiles': "a count that only grows, making each compile's digest key unique",
  'src/digests/pages.ts engines': 'the engines named in this process: pages name their templates by them',
  'src/digests/pages.ts made': "how many engines of each kind were named: a reset would give a second engine the first one's name",
  'src/digests/pages.ts epoch': 'a count that only grows, which remembered digests compare to',
  'src/engines/nunjucks-compiler.ts compiling': 'the templates being compiled, a stack empty between compiles (compiling is synchronous)',
  'src/engines/nunjucks-compiler.ts copies': "owner-held: keyed by a copy of nunjucks' Environment class, nunjucks' own module, which gets no field of ours",
  'src/engines/eta-compiler.ts checkedConfigs':
    "owner-held: the Eta configs whose version was found supported; a config is Eta's object and gets no field of ours",
  'src/headers/capture.ts ENDS_HELD': 'the responses whose end waits for their store right now, held weakly: each leaves it as its end goes out',
  'src/engines/pug-digests.ts parts': "pug's own modules, loaded on first use",
  'src/fragments/fragment-keys.ts memos':
    "owner-held: each cache's fragment memo; the fragments stand above the cache, which cannot name it, so it is held beside the cache weakly and goes with it",
  'src/fragments/placeholders.ts marksMade': 'a count that only grows: a render compares it with the count at its start',
  'src/fragments/stats.ts lastCountedName': "the fragment statistics' last lookup, reset with them",
  'src/fragments/stats.ts lastCounts': "the fragment statistics' last lookup, reset with them",
  'src/frameworks/hono.ts firstHandlerMarker': 'one marker object, made again only should the global Response be replaced',
  'src/holes/registry.ts defined': 'the holes the application defined: configuration, not a memo',
  'src/holes/plan.ts plans': "owner-held: each sealed body's hole plan, cut once and held weakly by the body: it goes with its page",
  'src/holes/markers.ts sealedForms':
    "owner-held: each view's body sealed once, for its page's store and the delivery of its holes, held weakly by the body: it goes with the response",
  'src/holes/stream-shape.ts shapes':
    "owner-held: where each stored page's holes stand for streaming, read once per hole plan and held weakly beside it: it goes with its page",
  'src/pages/gzip-join.ts deflatedPieces':
    'owner-held: each stored piece of a shell streamed in gzip, deflated once and held weakly by the piece: it goes with its page',
  'src/dashboard/dashboard.ts listening': 'whether the dashboard listens for invalidations already',
  'src/dashboard/dashboard.ts recent': 'the invalidations this process made, that every dashboard lists: a record, not a memo',
  'src/pages/page-stats.ts variantsByRoute': 'the page statistics, reset with them (resetPageStats)',
  'src/pages/page-stats.ts variantsTold': 'the page statistics, reset with them (resetPageStats)',
  'src/opentelemetry/index.ts enabled': 'the recording running now, which its disable ends',
};

const STORE = /^(?:export )?(?:const|let) (\w+)(?::[^=]+)? = (?:new (?:Map|WeakMap|Set|WeakSet|BoundedMemo)\b|\[\];|processMemo\()/;
const VARIABLE = /^(?:export )?let (\w+)/;

function sources(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    return entry.isDirectory() ? sources(path) : entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Every module-level store in src/, as `file name`, with whether it registers as a process memo; constant tables (an UPPER_CASE name never written to) left out. */
function moduleStores(): Map<string, boolean> {
  const stores = new Map<string, boolean>();
  for (const path of sources(join(root, 'src'))) {
    const text = readFileSync(path, 'utf8');
    for (const line of text.split('\n')) {
      const name = (STORE.exec(line) ?? VARIABLE.exec(line))?.[1];
      if (name === undefined) continue;
      const written = new RegExp(`\\b${name}\\.(set|add|push|delete|clear)\\(`).test(text) || line.startsWith('let ');
      if (/^[A-Z][A-Z0-9_]*$/.test(name) && !written && !line.includes('processMemo(')) continue;
      stores.set(`${relative(root, path)} ${name}`, line.includes('processMemo('));
    }
  }
  return stores;
}

describe('process memos', () => {
  beforeAll(() => configureCaches({ default: { backend: 'locmem', location: 'process-memos' } }));
  afterAll(() => caches.closeAll());

  it('are each emptied by caches.clearAll(), after being filled', async () => {
    makeTemplateFragmentKey('sidebar', [{ id: 7 }]);
    pageTemplates(new Set(['["nunjucks","page.njk"]']));
    templateTag('["nunjucks","page.njk"]');
    edgeTagHeaders(['Cache-Tag']);
    const env = installCacheTag(new nunjucks.Environment());
    expect(await renderString(env, '{% cache 60, "box" %}in the box{% endcache %}')).toBe('in the box');

    const filled = processMemoSizes();
    expect([...filled.keys()].sort()).toEqual([
      'digests/pages: digests by template list',
      'digests/pages: tags by template',
      'fragment-keys: made keys by md5 input',
      'nunjucks: compiled tag bodies by code',
      'tag-header: edge formats by header name',
    ]);
    for (const [name, size] of filled) expect(size, name).toBeGreaterThan(0);

    await caches.clearAll();
    for (const [name, size] of processMemoSizes()) expect(size, name).toBe(0);
    // Emptied, they answer as before.
    expect(await renderString(env, '{% cache 60, "box" %}in the box{% endcache %}')).toBe('in the box');
  });

  it('include every module-level store in src/ that is not accounted for otherwise', () => {
    const stores = moduleStores();
    const unaccounted = [...stores].filter(([store, registered]) => !registered && NOT_PROCESS_MEMOS[store] === undefined).map(([store]) => store);
    expect(unaccounted, 'register each as a process memo, hold it on its owner, or say here why it is neither').toEqual([]);
    const stale = Object.keys(NOT_PROCESS_MEMOS).filter((store) => !stores.has(store) || stores.get(store) === true);
    expect(stale, 'entries naming no unregistered store any more').toEqual([]);
  });
});
