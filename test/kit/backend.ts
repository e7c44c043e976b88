/**
 * The conformance kit: the low-level API's contract, run the same way against every backend.
 * Modelled on Django's tests/cache/tests.py. A backend file calls `describeBackend` with a `make`
 * that builds caches over one shared store, and `traits` for the few ways backends may differ (culling, storing nothing, refusing keys).
 * Each behaviour has a file of its own under backend/.
 */
import { afterEach, beforeEach, describe } from 'vitest';
import type { BaseCache, CacheParams } from '../../src/index.js';
import { sleep } from '../setup/sleep.js';
import { describeBasics } from './backend/basics.js';
import { describeCounters } from './backend/counters.js';
import { describeCulling } from './backend/culling.js';
import { describeExpiry } from './backend/expiry.js';
import { describeClosed, describeServerDown } from './backend/failures.js';
import { describeKeyValidation } from './backend/keys.js';
import type { BackendUnderTest, Kit } from './backend/kit.js';
import { describeLocks } from './backend/locks.js';
import { describeObservation } from './backend/observation.js';
import { describeStale } from './backend/stale.js';
import { describeStoreExpiry } from './backend/store-expiry.js';
import { describeStoresNothing } from './backend/stores-nothing.js';
import { describeTags } from './backend/tags.js';
import { describeUndecodable } from './backend/undecodable.js';
import { describeValues } from './backend/values.js';

export type { BackendTraits, BackendUnderTest } from './backend/kit.js';

export function describeBackend(name: string, backend: BackendUnderTest): void {
  const traits = backend.traits ?? {};
  describe(`${name} backend (conformance)`, () => {
    const opened: BaseCache[] = [];
    let cache: BaseCache;
    let clock = 0;

    /** A cache over the shared store on the test's clock, cleared now and closed after the test. */
    async function make(overrides: Partial<CacheParams<any>> = {}): Promise<BaseCache> {
      const made = await backend.make(overrides);
      made.now = () => clock;
      opened.push(made);
      await made.clear();
      return made;
    }

    /** Moves the test's clock on: every entry the caches judge by their own clock expires by it. */
    async function advance(seconds: number): Promise<void> {
      clock += seconds;
    }

    /** Moves the test's clock on, and waits for a server's clock to pass as much (past its granularity). */
    async function elapse(seconds: number): Promise<void> {
      await advance(seconds);
      if (traits.serverClock !== undefined) await sleep((seconds + traits.serverClock) * 1000 + 100);
    }

    const kit: Kit = {
      backend,
      traits,
      get cache() {
        return cache;
      },
      make,
      advance,
      elapse,
    };

    beforeEach(async () => {
      // A server's expiries are told relative to the cache's clock, but those past 30 days as absolute
      // times (memcached): it starts where the server's is.
      clock = traits.serverClock === undefined ? 1_800_000_000 : Date.now() / 1000;
      cache = await make();
    });

    afterEach(async () => {
      for (const made of opened.splice(0)) {
        await made.clear();
        await made.close();
      }
    });

    if (traits.storesNothing) {
      describeStoresNothing(() => cache);
      describeKeyValidation(() => cache, traits);
      return;
    }

    describeBasics(kit);
    describeValues(kit);
    describeExpiry(kit);
    describeStoreExpiry(kit);
    describeCounters(kit);
    describeTags(kit);
    describeStale(kit);
    describeLocks(kit);
    describeObservation(kit);
    describeUndecodable(kit);
    describeKeyValidation(() => cache, traits);
    if (backend.makeDown !== undefined) describeServerDown(backend.makeDown);
    if (traits.closes ?? backend.makeDown !== undefined) describeClosed(backend.make);
    if (traits.culling) describeCulling(kit, traits.culling);
  });
}

export { sleep };
