/**
 * What the package's index offers an application is what the manual (README.md and the guides of
 * docs/) documents: every value it exports is named there, save the built-in backends' classes (the
 * manual names each by its `backend` string) and the errors a call may throw. The parts integrations
 * use stay inside the package.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import * as api from '../src/index.js';
import { BUILTIN_BACKENDS } from '../src/backends/index.js';
import { integrationOf } from '../src/cache/integration.js';
import { manualFiles, manualText } from './setup/manual.js';

const manual = manualFiles().map(manualText).join('\n');
const builtIn = new Set<unknown>(Object.values(BUILTIN_BACKENDS));

describe("the package's index", () => {
  it('exports no value the manual does not name, but the built-in backends and the errors', () => {
    const undocumented = Object.entries(api)
      .filter(([, value]) => !builtIn.has(value) && !(typeof value === 'function' && value.prototype instanceof Error))
      .map(([name]) => name)
      .filter((name) => !new RegExp(`\\b${name}\\b`).test(manual));
    expect(undocumented).toEqual([]);
  });

  it('offers no integration read on a cache: the page cache and the fragments reach them through integrationOf', async () => {
    const cache = new api.LocMemCache({ location: 'public-surface' });
    await cache.set('page', 'body');
    // What `cache.` offers, as the type checker holds it (npm run typecheck checks these lines).
    expectTypeOf(cache).not.toHaveProperty('readShared');
    expectTypeOf(cache).not.toHaveProperty('readSharedEntry');
    expectTypeOf(cache).not.toHaveProperty('storedKey');
    expectTypeOf(cache).not.toHaveProperty('flights');
    expectTypeOf(cache).not.toHaveProperty('refreshes');
    expectTypeOf(cache).not.toHaveProperty('peekFreshToKeep');
    expectTypeOf(cache).not.toHaveProperty('storedEntry');
    expectTypeOf(cache).not.toHaveProperty('countEntries');
    expectTypeOf(cache).not.toHaveProperty('purgedEdges');
    expectTypeOf(cache).not.toHaveProperty('edgeTagHeaders');
    expectTypeOf(cache).not.toHaveProperty('answersAtOnce');
    expectTypeOf(cache).not.toHaveProperty('failsOpen');
    expectTypeOf(cache).not.toHaveProperty('behind');
    expect(await integrationOf(cache).readShared('page')).toBe('body');
    expect(integrationOf(cache).storedKey('page')).toBe(cache.makeKey('page'));
    expect(await integrationOf(cache).countEntries()).toBe(1);
    expect((await integrationOf(cache).storedEntry('page'))?.bytes).toBeGreaterThan(0);
    expect(integrationOf(cache).answersAtOnce).toBe(true);
    expect(integrationOf(cache).failsOpen).toBe(false);
  });
});
