/**
 * Tag versions across releases: a version written before versions carried the generation of
 * their invalidation (a bare random string) reads as generation 0, so what is written as of a
 * snapshot is still judged by it, and a soft invalidation of it keeps its hard part. And invalidations
 * at the same moment in one process each take a generation of their own, on a store that cannot add.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, expect, it } from 'vitest';
import { type BaseCache, caches, configureCaches } from '../../src/index.js';

let cache: BaseCache;
let location = 0;
beforeEach(async () => {
  await configureCaches({ default: { backend: 'locmem', location: `tag-generations-${++location}` } });
  cache = caches.get('default');
});

/** Stores `version` as the tag's version, as a release whose versions carry no generation wrote it. */
async function writtenByAnOlderRelease(tag: string, version: string): Promise<void> {
  await cache.set(`cachegrain.tag.${tag}`, version, { timeout: null, version: 0 });
  expect((await cache.readTagSnapshot([tag])).get(tag)).toBe(version);
}

it('a version without a generation is of generation 0: a write as of any snapshot carries it', async () => {
  await cache.invalidateTags(['other']);
  await writtenByAnOlderRelease('item:1', '0123456789abcdef');
  const began = await cache.readTagSnapshot([]);
  await cache.set('page', 'kept', { timeout: 60, tags: ['item:1'], tagsAsOf: began });
  expect(await cache.get('page')).toBe('kept');
  await cache.invalidateTags(['item:1']);
  expect(await cache.get('page')).toBeUndefined();
});

it('a soft invalidation of a version without a generation keeps its hard part: the entry is stale, not gone', async () => {
  await writtenByAnOlderRelease('item:2', 'fedcba9876543210');
  await cache.set('windowed', 'w1', { timeout: 60, staleWhileRevalidate: 60, tags: ['item:2'] });
  const began = await cache.readTagSnapshot([]);
  await cache.invalidateTags(['item:2'], { soft: true });
  expect([...(await cache.getEntries<string>(['windowed']))].map(([, entry]) => [entry.value, entry.state])).toEqual([['w1', 'stale']]);
  // A refresh that began before the soft invalidation is not written as fresh; one begun after is.
  await cache.set('windowed', 'w2', { timeout: 60, staleWhileRevalidate: 60, tags: ['item:2'], tagsAsOf: began });
  expect(await cache.get('windowed')).toBeUndefined();
  await cache.set('windowed', 'w3', { timeout: 60, staleWhileRevalidate: 60, tags: ['item:2'], tagsAsOf: await cache.readTagSnapshot([]) });
  expect(await cache.get('windowed')).toBe('w3');
});

const root = mkdtempSync(join(tmpdir(), 'cachegrain-generations-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

it.each(['locmem', 'filebased'] as const)('invalidations at the same moment on %s each take a generation of their own', async (backend) => {
  await configureCaches({ default: { backend, location: backend === 'filebased' ? join(root, 'files') : 'tag-generations-together' } });
  const together = caches.get('default');
  const tags = ['a', 'b', 'c', 'd', 'e'];
  await Promise.all(tags.map((tag) => together.invalidateTags([tag])));
  const snapshot = await together.readTagSnapshot(tags);
  const generations = tags.map((tag) => Number(snapshot.get(tag)!.split('.')[0]));
  expect(generations.toSorted()).toEqual([1, 2, 3, 4, 5]);
  expect(snapshot.generation).toBe(5);
});
