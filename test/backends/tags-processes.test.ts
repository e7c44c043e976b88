/**
 * Tags and stale windows across real processes, on every backend a second process can share: this process
 * and a child process (`fixtures/cache-peer.ts`) each open a cache on one store. A tag invalidated in
 * one is gone in the other as soon as the call resolves; writes after it are not affected; clocks
 * 30 s apart change nothing (tag versions are compared, never times); a soft invalidation is seen as
 * stale, and refreshed once between both processes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BaseCache, type CacheConfig, caches, configureCaches } from '../../src/index.js';
import type { TagSnapshot } from '../../src/store/cache-types.js';
import { CachePeer } from './fixtures/peer.js';
import { eventually } from '../setup/eventually.js';

function required(name: string, debianPackage: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: the vitest global setup starts it (Debian package ${debianPackage})`);
  return value;
}

const root = mkdtempSync(join(tmpdir(), 'cachegrain-xproc-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const keyPrefix = `xproc${process.pid}`;

const BACKENDS: Array<[string, CacheConfig]> = [
  ['filebased', { backend: 'filebased', location: join(root, 'files') }],
  ['database-sqlite', { backend: 'database', location: 'xproc_tags', options: { connection: `sqlite://${join(root, 'xproc.db')}` } }],
  ['database-postgres', { backend: 'database', location: 'xproc_tags', options: { connection: required('CACHEGRAIN_TEST_POSTGRES_URL', 'postgresql') } }],
  ['memcached', { backend: 'memcached', location: required('CACHEGRAIN_TEST_MEMCACHED_SERVERS', 'memcached') }],
  ['redis', { backend: 'redis', location: required('CACHEGRAIN_TEST_REDIS_URL', 'redis-server') }],
  ['redis (cluster)', { backend: 'redis', location: required('CACHEGRAIN_TEST_REDIS_CLUSTER_URLS', 'redis-server').split(','), options: { cluster: true } }],
];

beforeAll(async () => {
  await configureCaches({ default: { backend: 'dummy' }, ...Object.fromEntries(BACKENDS.map(([name, config]) => [name, { ...config, keyPrefix }])) });
});
afterAll(async () => {
  for (const [name] of BACKENDS) await caches.get(name).clear();
  await caches.closeAll();
});

describe.each(BACKENDS)('tags across two processes on %s', (name, config) => {
  let here: BaseCache;
  let peer: CachePeer;
  // Each test has keys and tags of its own, so that none sees another's entries or invalidations.
  let test = 0;
  let key: (name: string) => string;
  let tag: (name: string) => string;
  beforeAll(async () => {
    here = caches.get(name);
    peer = new CachePeer({ ...config, keyPrefix });
    await peer.ready;
  }, 30_000);
  afterAll(() => peer?.close());
  const fresh = () => {
    test++;
    key = (name) => `t${test}:${name}`;
    tag = (name) => `t${test}:${name}`;
  };
  const values = async (cache: BaseCache | CachePeer, names: string[]) => {
    const keys = names.map(key);
    const found = cache instanceof CachePeer ? new Map<string, unknown>(await cache.ask('getMany', { keys })) : await cache.getMany(keys);
    return Object.fromEntries(names.flatMap((name) => (found.has(key(name)) ? [[name, found.get(key(name))]] : [])));
  };

  it('an invalidation by the other process is seen here as soon as its promise resolves, and drops only the tagged entries', async () => {
    fresh();
    await here.set(key('a'), 'a', { timeout: 600, tags: [tag('item:1')] });
    await here.set(key('b'), 'b', { timeout: 600, tags: [tag('item:1'), tag('section:1')] });
    await here.set(key('c'), 'c', { timeout: 600, tags: [tag('item:2')] });
    await here.setMany({ [key('d')]: 'd', [key('e')]: 'e' }, { timeout: 600, tags: [tag('section:1')] });
    expect(await here.getOrSet(key('f'), 'f', { timeout: 600, tags: [tag('item:1')] })).toBe('f');
    await here.set(key('g'), 'g', 600);
    const all = { a: 'a', b: 'b', c: 'c', d: 'd', e: 'e', f: 'f', g: 'g' };
    expect(await values(peer, Object.keys(all))).toEqual(all);

    await peer.ask('invalidateTags', { tags: [tag('item:1')] });
    expect(await values(here, Object.keys(all))).toEqual({ c: 'c', d: 'd', e: 'e', g: 'g' });
    expect(await here.get(key('a'))).toBeUndefined();
    expect(await here.hasKey(key('b'))).toBe(false);
    expect([...(await here.getEntries([key('a'), key('b'), key('c')]))].map(([found]) => found)).toEqual([key('c')]);

    await peer.ask('invalidateTags', { tags: [tag('section:1'), tag('unused')] });
    expect(await values(here, Object.keys(all))).toEqual({ c: 'c', g: 'g' });
  });

  it('writes after an invalidation are not affected, whichever process makes them', async () => {
    fresh();
    const options = { timeout: 600, tags: [tag('item:1')] };
    await here.set(key('a'), 'a1', options);
    await peer.ask('set', { key: key('b'), value: 'b1', options });
    await peer.ask('invalidateTags', { tags: [tag('item:1')] });
    expect(await values(here, ['a', 'b'])).toEqual({});

    await here.set(key('a'), 'a2', options);
    expect(await here.add(key('b'), 'b2', options)).toBe(true);
    await peer.ask('set', { key: key('c'), value: 'c2', options });
    expect(await here.getOrSet(key('d'), 'd2', options)).toBe('d2');
    const after = { a: 'a2', b: 'b2', c: 'c2', d: 'd2' };
    expect(await values(here, ['a', 'b', 'c', 'd'])).toEqual(after);
    expect(await values(peer, ['a', 'b', 'c', 'd'])).toEqual(after);

    await here.invalidateTags([tag('item:1')]);
    expect(await values(peer, ['a', 'b', 'c', 'd'])).toEqual({});
  });

  // A clock-based design (entries stamped with when they were written, tags with when they were
  // invalidated) fails both ways: the process ahead kills what the other writes just after its
  // invalidation, and the process behind spares what the other wrote just before it.
  it.each([30, -30])('two processes whose clocks are %i s apart still agree', async (seconds) => {
    fresh();
    await peer.ask('shift', { seconds });
    try {
      const options = { timeout: 600, tags: [tag('item:1')] };
      await here.set(key('mine'), 'before', options);
      await peer.ask('set', { key: key('theirs'), value: 'before', options });
      await peer.ask('invalidateTags', { tags: [tag('item:1')] });
      expect(await values(here, ['mine', 'theirs'])).toEqual({});
      expect(await values(peer, ['mine', 'theirs'])).toEqual({});

      await here.set(key('mine'), 'after', options);
      await peer.ask('set', { key: key('theirs'), value: 'after', options });
      expect(await values(here, ['mine', 'theirs'])).toEqual({ mine: 'after', theirs: 'after' });
      expect(await values(peer, ['mine', 'theirs'])).toEqual({ mine: 'after', theirs: 'after' });

      await here.invalidateTags([tag('item:1')]);
      expect(await values(peer, ['mine', 'theirs'])).toEqual({});
      expect(await values(here, ['mine', 'theirs'])).toEqual({});
      await peer.ask('set', { key: key('theirs'), value: 'again', options });
      expect(await values(here, ['mine', 'theirs'])).toEqual({ theirs: 'again' });
    } finally {
      await peer.ask('shift', { seconds: 0 });
    }
  });

  // The snapshot is taken when a render begins, before its tags are all known (a page's
  // are added as it renders). Clocks 30 s apart, so nothing here could rest on time.
  it.each([false, true])('a write begun before the other process invalidated a tag it carries is left out, the tag added late (soft: %s)', async (soft) => {
    fresh();
    await peer.ask('shift', { seconds: 30 });
    try {
      const tagged = (tagsAsOf: TagSnapshot) => ({ timeout: 600, tags: [tag('item:1')], tagsAsOf });
      const pageBegan = await here.readTagSnapshot([tag('url:/page')]);
      const { versions: levelBegan } = await here.readEntriesAndTags([key('fragment')], []);
      await peer.ask('invalidateTags', { tags: [tag('item:1')], soft });
      await here.set(key('page'), 'before', tagged(pageBegan));
      const fragment = { key: key('fragment'), value: 'before', options: { timeout: 600, tags: [tag('item:1')] } };
      expect(await here.setEach([fragment], levelBegan)).toEqual([key('fragment')]);
      expect((await here.getEntries([key('page'), key('fragment')])).size).toBe(0);
      expect(await values(peer, ['page', 'fragment'])).toEqual({});

      // Begun after it completed: written.
      await here.set(key('page'), 'after', tagged(await here.readTagSnapshot([])));
      expect(await values(peer, ['page'])).toEqual({ page: 'after' });
    } finally {
      await peer.ask('shift', { seconds: 0 });
    }
  });

  it('a soft invalidation by the other process is seen here as stale, and the entry is refreshed once between both', async () => {
    fresh();
    const options = { timeout: 600, staleWhileRevalidate: 60, tags: [tag('item:7')] };
    await here.set(key('windowed'), 'w1', options);
    await here.set(key('plain'), 'p1', { timeout: 600, tags: [tag('item:7')] });
    await here.set(key('other'), 'o1', { ...options, tags: [tag('item:8')] });
    await peer.ask('invalidateTags', { tags: [tag('item:7')], soft: true });

    const states = (found: Array<[unknown, { value: unknown; state: string }]>) => found.map(([name, entry]) => [name, entry.value, entry.state]);
    const keys = [key('windowed'), key('plain'), key('other')];
    const expected = [
      [key('windowed'), 'w1', 'stale'],
      [key('other'), 'o1', 'fresh'],
    ];
    expect(states([...(await here.getEntries<string>(keys))])).toEqual(expected);
    expect(states(await peer.ask('entries', { keys }))).toEqual(expected);
    expect(await here.get(key('windowed'))).toBeUndefined();

    // Both processes are answered the stale value at once while one of them refreshes it: every
    // factory is held until all four answered (were any caller to wait for the refresh, none would end).
    let calls = 0;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const held = async () => {
      calls++;
      await released;
      return 'w2';
    };
    await peer.ask('holdFactories');
    const answers = await Promise.all([
      here.getOrSet(key('windowed'), held, options),
      peer.ask('getOrSet', { key: key('windowed'), value: 'w2', options }),
      here.getOrSet(key('windowed'), held, options),
      peer.ask('getOrSet', { key: key('windowed'), value: 'w2', options }),
    ]);
    expect(answers).toEqual(['w1', 'w1', 'w1', 'w1']);
    release();
    await peer.ask('releaseFactories');
    await eventually(async () => expect(await values(peer, ['windowed'])).toEqual({ windowed: 'w2' }));
    expect(await here.get(key('windowed'))).toBe('w2');
    expect(calls + (await peer.ask<number>('factoryCalls'))).toBe(1);

    await peer.ask('invalidateTags', { tags: [tag('item:7')] });
    expect((await here.getEntries([key('windowed')])).size).toBe(0);
  });

  it('a process that takes the refresh lock only after the other refreshed the entry and let go does not refresh it again', async () => {
    fresh();
    const options = { timeout: 600, staleWhileRevalidate: 60, tags: [tag('item:9')] };
    await here.set(key('late'), 'v1', options);
    await here.invalidateTags([tag('item:9')], { soft: true });
    const callsBefore = await peer.ask<number>('factoryCalls');
    const takenBefore = await peer.ask<number>('locksTaken');
    const locksDoneBefore = await peer.ask<number>('locksDone');
    await peer.ask('holdLocks');
    try {
      // This process's refresh takes the lock and waits until both processes were answered; the peer's waits to take it.
      let calls = 0;
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      const refresh = async () => {
        calls++;
        await released;
        return 'v2';
      };
      const answers = await Promise.all([here.getOrSet(key('late'), refresh, options), peer.ask('getOrSet', { key: key('late'), value: 'v2', options })]);
      expect(answers).toEqual(['v1', 'v1']);
      await eventually(async () => expect(await peer.ask('lockWaits')).toBe(1));
      // It refreshes the entry and lets go of the lock; only then does the peer take it.
      release();
      await here.settled();
      expect(await here.get(key('late'))).toBe('v2');
      await peer.ask('releaseLocks');
      await eventually(async () => expect(await peer.ask('locksTaken')).toBe(takenBefore + 1));
      // The peer is done with its lock once it let go of it: a refresh would have called its factory by then.
      await eventually(async () => expect(await peer.ask('locksDone')).toBe(locksDoneBefore + 1));
      expect(calls + (await peer.ask<number>('factoryCalls')) - callsBefore).toBe(1);
    } finally {
      await peer.ask('releaseLocks');
    }
  });
});
