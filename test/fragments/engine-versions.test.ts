/**
 * Each adapter reaches into its engine's compiler or renderer as the versions it was written for
 * have them, and refuses any other, naming the engine, the version it found and those it supports.
 * The version is the instance's own (Handlebars' `VERSION`) or that of the package the instance was
 * loaded from: here, real copies of each engine whose package.json says another version.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Handlebars from 'handlebars';
import type { Eta } from 'eta';
import type { Liquid } from 'liquidjs';
import type { Environment } from 'nunjucks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ejsTag from '../../src/engines/ejs.js';
import { EJS_VERSIONS } from '../../src/engines/ejs-compiler.js';
import { peerRange } from '../../src/engines/engine-versions.js';
import { cachePlugin } from '../../src/engines/eta.js';
import { ETA_VERSIONS } from '../../src/engines/eta-compiler.js';
import { installCacheHelper, render as renderHandlebars } from '../../src/engines/handlebars.js';
import { HANDLEBARS_VERSIONS } from '../../src/engines/handlebars-compiler.js';
import * as liquidTag from '../../src/engines/liquid.js';
import { LIQUID_VERSIONS } from '../../src/engines/liquid-renderer.js';
import * as nunjucksTag from '../../src/engines/nunjucks.js';
import { NUNJUCKS_VERSIONS } from '../../src/engines/nunjucks-compiler.js';
import * as pugTag from '../../src/engines/pug.js';
import { PUG_VERSIONS } from '../../src/engines/pug-compiler.js';
import { caches, configureCaches } from '../../src/index.js';

const fromHere = createRequire(import.meta.url);
const manifest = JSON.parse(readFileSync(fromHere.resolve('../../package.json'), 'utf8')) as { peerDependencies: Record<string, string> };
const copiesFolder = mkdtempSync(join(tmpdir(), 'cachegrain-engine-versions-'));

/**
 * A copy of the installed package `name` whose package.json says `version`, in a node_modules of its
 * own (its dependencies linked to the installed ones): the folder it is in.
 */
function copyAt(name: string, version: string): string {
  const installed = packageFolder(fromHere, name);
  const modules = join(copiesFolder, `${name}-${version}`, 'node_modules');
  const folder = join(modules, name);
  mkdirSync(modules, { recursive: true });
  cpSync(installed, folder, { recursive: true, dereference: true });
  const packageJson = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8')) as { version: string; dependencies?: Record<string, string> };
  writeFileSync(join(folder, 'package.json'), JSON.stringify({ ...packageJson, version }));
  const fromInstalled = createRequire(join(installed, 'package.json'));
  for (const dependency of Object.keys(packageJson.dependencies ?? {})) {
    symlinkSync(packageFolder(fromInstalled, dependency), join(modules, dependency));
  }
  return folder;
}

/** The folder of the package `name` as `require` resolves it: the one above its main module that holds its package.json. */
function packageFolder(require: NodeJS.Require, name: string): string {
  for (let folder = dirname(require.resolve(name)); folder !== dirname(folder); folder = dirname(folder)) {
    try {
      if ((JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8')) as { name?: string }).name === name) return folder;
    } catch {
      // No package.json here: its folder is higher up.
    }
  }
  throw new Error(`no folder above ${require.resolve(name)} holds the package.json of ${name}`);
}

/** The CommonJS main module of a copy. */
function requireCopy<T>(name: string, version: string): T {
  return createRequire(join(copyAt(name, version), 'package.json'))(name) as T;
}

/** A module of a copy loaded as an ES module, as `import` loads it. */
async function importCopy<T>(name: string, version: string, path: string): Promise<T> {
  return (await import(pathToFileURL(join(copyAt(name, version), path)).href)) as T;
}

beforeAll(() => configureCaches({ default: { backend: 'locmem', location: 'engine-versions' } }));
afterAll(async () => {
  await caches.closeAll();
  rmSync(copiesFolder, { recursive: true, force: true });
});

describe('the versions each adapter supports', () => {
  it("are the ranges package.json's peerDependencies give", () => {
    for (const versions of [NUNJUCKS_VERSIONS, HANDLEBARS_VERSIONS, ETA_VERSIONS, EJS_VERSIONS, PUG_VERSIONS, LIQUID_VERSIONS]) {
      expect(`${versions.packageName}: ${peerRange(versions)}`).toBe(`${versions.packageName}: ${manifest.peerDependencies[versions.packageName]}`);
    }
  });
});

describe('cachegrain/eta with an Eta of another version', () => {
  it('refuses one past the range as it compiles a template, and renders with one inside it', async () => {
    const { Eta: Eta5 } = await importCopy<{ Eta: typeof Eta }>('eta', '5.0.0', 'dist/index.mjs');
    const eta5 = new Eta5({ plugins: [cachePlugin()] });
    expect(() => eta5.renderString('<p>x</p>', {})).toThrow(
      "cachegrain/eta: Eta 5.0.0 is not supported: the cache tag patches Eta's compiler as of versions 4.6 to 4.x; install eta@^4.6",
    );
    const { Eta: Eta45 } = await importCopy<{ Eta: typeof Eta }>('eta', '4.5.9', 'dist/index.mjs');
    expect(() => new Eta45({ plugins: [cachePlugin()] }).renderString('<p>x</p>', {})).toThrow('cachegrain/eta: Eta 4.5.9 is not supported');
    const { Eta: Eta49 } = await importCopy<{ Eta: typeof Eta }>('eta', '4.99.0', 'dist/index.mjs');
    const source = '<% cache 60 "eta-in-range" %>[<%= it.n %>]<% endcache %>';
    expect(await new Eta49({ plugins: [cachePlugin()] }).renderStringAsync(source, { n: 1 })).toBe('[1]');
  });
});

describe('cachegrain/ejs with an EJS of another version', () => {
  it('refuses one past the range at install, and installs on one inside it', async () => {
    const { default: ejs8 } = await importCopy<{ default: ejsTag.EjsLike }>('ejs', '8.0.0', 'lib/esm/ejs.js');
    expect(() => ejsTag.installCacheTag(ejs8)).toThrow(
      "cachegrain/ejs: EJS 8.0.0 is not supported: the cache function patches EJS's compiler as of versions 3.1 to 7.x; install ejs@^7",
    );
    // Refused, it is left as it was: a later install is not told it has the tag already.
    expect(() => ejsTag.installCacheTag(ejs8)).toThrow('cachegrain/ejs: EJS 8.0.0 is not supported');
    const ejs3 = requireCopy<ejsTag.EjsLike>('ejs', '3.0.2');
    expect(() => ejsTag.installCacheTag(ejs3)).toThrow('cachegrain/ejs: EJS 3.0.2 is not supported');
    const { default: ejs7 } = await importCopy<{ default: ejsTag.EjsLike }>('ejs', '7.9.0', 'lib/esm/ejs.js');
    ejsTag.installCacheTag(ejs7);
    const source = "<% cache(60, 'ejs-in-range', [], async () => { %>[<%= n %>]<% }) %>";
    expect(await ejs7.render(source, { n: 1 }, { async: true })).toBe('[1]');
  });
});

describe('cachegrain/nunjucks with a copy of nunjucks of another version', () => {
  it('refuses one past the range, and installs on one inside it', async () => {
    const nunjucks4 = requireCopy<{ Environment: new () => Environment }>('nunjucks', '4.0.0');
    expect(() => nunjucksTag.installCacheTag(new nunjucks4.Environment())).toThrow(
      "cachegrain/nunjucks: Nunjucks 4.0.0 is not supported: the cache tag patches Nunjucks' compiler as of versions 3.2.4 to 3.x; install nunjucks@^3.2.4",
    );
    const nunjucks323 = requireCopy<{ Environment: new () => Environment }>('nunjucks', '3.2.3');
    expect(() => nunjucksTag.installCacheTag(new nunjucks323.Environment())).toThrow('cachegrain/nunjucks: Nunjucks 3.2.3 is not supported');
    const nunjucks39 = requireCopy<{ Environment: new () => Environment }>('nunjucks', '3.9.0');
    const env = nunjucksTag.installCacheTag(new nunjucks39.Environment());
    expect(await nunjucksTag.renderString(env, '{% cache 60 "nunjucks-in-range" %}[{{ n }}]{% endcache %}', { n: 1 })).toBe('[1]');
  });
});

describe('cachegrain/handlebars with a Handlebars of another version', () => {
  it('refuses an instance whose VERSION is outside the range, and installs on one inside it', async () => {
    const handlebars5 = Object.assign(Handlebars.create(), { VERSION: '5.0.0' });
    expect(() => installCacheHelper(handlebars5)).toThrow(
      "cachegrain/handlebars: Handlebars 5.0.0 is not supported: the cache helper patches Handlebars' compiler as of versions 4.7.10 to 4.x; install handlebars@^4.7.10",
    );
    expect(() => installCacheHelper(Object.assign(Handlebars.create(), { VERSION: '4.7.9' }))).toThrow(
      'cachegrain/handlebars: Handlebars 4.7.9 is not supported',
    );
    const handlebars49 = installCacheHelper(Object.assign(Handlebars.create(), { VERSION: '4.9.0' }));
    expect(await renderHandlebars(handlebars49.compile('{{#cache 60 "handlebars-in-range"}}[{{n}}]{{/cache}}'), { n: 1 })).toBe('[1]');
  });
});

describe('cachegrain/pug with a Pug of another version', () => {
  it('refuses one past the range at install, and installs on one inside it', async () => {
    const pug4 = requireCopy<pugTag.PugLike>('pug', '4.0.0');
    expect(() => pugTag.installCacheTag(pug4)).toThrow(
      "cachegrain/pug: Pug 4.0.0 is not supported: the cache mixin patches Pug's compiler as of versions 3.0 to 3.x; install pug@^3.0",
    );
    const pug2 = requireCopy<pugTag.PugLike>('pug', '2.0.4');
    expect(() => pugTag.installCacheTag(pug2)).toThrow('cachegrain/pug: Pug 2.0.4 is not supported');
    const pug39 = pugTag.installCacheTag(requireCopy<pugTag.PugLike>('pug', '3.9.0'));
    expect(await pug39.compile("+cache(60, 'pug-in-range')\n  | [#{n}]")({ n: 1 })).toBe('[1]');
  });
});

describe('cachegrain/liquid with a LiquidJS of another version', () => {
  it('refuses one past the range at install, and installs on one inside it', async () => {
    const liquid11 = requireCopy<{ Liquid: new () => Liquid }>('liquidjs', '11.0.0');
    expect(() => liquidTag.installCacheTag(new liquid11.Liquid())).toThrow(
      "cachegrain/liquid: LiquidJS 11.0.0 is not supported: the cache tag patches LiquidJS's renderer as of versions 10.0 to 10.x; install liquidjs@^10.0",
    );
    const liquid9 = requireCopy<{ Liquid: new () => Liquid }>('liquidjs', '9.43.0');
    expect(() => liquidTag.installCacheTag(new liquid9.Liquid())).toThrow('cachegrain/liquid: LiquidJS 9.43.0 is not supported');
    const liquid109 = requireCopy<{ Liquid: new () => Liquid }>('liquidjs', '10.99.0');
    const liquid = liquidTag.installCacheTag(new liquid109.Liquid());
    expect(await liquid.parseAndRender("{% cache 60 'liquid-in-range' %}[{{ n }}]{% endcache %}", { n: 1 })).toBe('[1]');
  });
});
