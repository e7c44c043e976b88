/**
 * The flight engine at its edges: a getOrSet whose lookup was answered before another caller's
 * computation stored the value, but arrives after that computation ended, takes that value rather
 * than computing it again (as on a server, where reads travel through a pool and can come back late).
 */
import { describe, expect, it } from 'vitest';
import { type CacheParams, LocMemCache } from '../src/index.js';
import { RemoteLikeStore } from './fragments/remote-like-store.js';
import { Gate } from './setup/overtaking.js';

/** A store whose second read of a key is answered at once but handed over only when `release` is called. */
class LateSecondRead extends RemoteLikeStore {
  private oneKeyReads = 0;
  private opened!: () => void;
  private readonly gate = new Promise<void>((resolve) => (this.opened = resolve));

  constructor(params: CacheParams) {
    super(params);
  }

  release(): void {
    this.opened();
  }

  protected override readOne(key: string) {
    const answer = super.readOne(key);
    return ++this.oneKeyReads === 2 ? this.gate.then(() => answer) : answer;
  }
}

describe('getOrSet and the flights of one cache', () => {
  it('a caller whose lookup missed before another stored the value takes that value, computing nothing', async () => {
    const cache = new LateSecondRead({ location: 'late-read' });
    let calls = 0;
    const factory = async () => ({ computed: ++calls });
    const first = cache.getOrSet('once', factory);
    const second = cache.getOrSet('once', factory);
    expect(await first).toEqual({ computed: 1 });
    cache.release();
    expect(await second).toEqual({ computed: 1 });
    expect(calls).toBe(1);
    // A caller that looks after the value was stored finds it stored.
    expect(await cache.getOrSet('once', factory)).toEqual({ computed: 1 });
    expect(calls).toBe(1);
  });

  it('a caller that looks after a flight landed and finds the key gone computes afresh', async () => {
    const cache = new LocMemCache({ location: 'after-landing' });
    let calls = 0;
    const factory = async () => ++calls;
    expect(await cache.getOrSet('key', factory)).toBe(1);
    await cache.delete('key');
    expect(await cache.getOrSet('key', factory)).toBe(2);
  });

  it('a caller that begins after clear() resolved computes afresh rather than wait for a computation that began before it', async () => {
    const cache = new LocMemCache({ location: 'cleared-while-computing' });
    const gate = new Gate();
    let data = 'before the clear';
    const first = cache.getOrSet('key', async () => {
      const read = data;
      await gate.pass();
      return read;
    });
    await gate.entered;
    data = 'after the clear';
    await cache.clear();
    const second = cache.getOrSet('key', async () => data);
    // The second caller computed its own: it is answered while the first one still waits at its gate.
    expect(await second).toBe('after the clear');
    gate.release();
    expect(['before the clear', 'after the clear']).toContain(await first);
  });
});
