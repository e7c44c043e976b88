/**
 * Invalidations made while an edge is still taking an earlier purge wait for it, and then go as one
 * purge: every tag once, and `everything` in place of the rest. A busy or slow edge gets a few
 * requests, never one per invalidation queued behind it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type BaseCache, caches, configureCaches } from '../../src/index.js';
import { recordingEdge, type RecordingEdge } from './recording-edge.js';

let edge: RecordingEdge;
let cache: BaseCache;
beforeAll(async () => {
  edge = await recordingEdge();
  await configureCaches({ default: { backend: 'locmem', location: 'purge-coalescing', purge: [{ edge: 'http', url: edge.url }] } });
  cache = caches.get('default');
});
afterEach(() => {
  edge.received.length = 0;
  edge.answers.length = 0;
});
afterAll(async () => {
  await caches.closeAll();
  await edge.close();
});

/** Holds the edge's answer to its next request until `release` is called. */
function holdNextAnswer(): () => void {
  let release!: () => void;
  edge.answers.push(new Promise<number>((resolve) => (release = () => resolve(200))));
  return release;
}

const bodies = () => edge.received.map((request) => JSON.parse(request.body) as { tags?: string[]; soft?: boolean; everything?: boolean });

describe('purges queued behind one in flight', () => {
  it('go as one request naming each tag once, soft ones apart', async () => {
    const release = holdNextAnswer();
    await cache.invalidateTags(['first']);
    await edge.receivedCount(1);
    for (let i = 0; i < 50; i++) await cache.invalidateTags([`item:${i}`, 'list']);
    await cache.invalidateTags(['draft:1'], { soft: true });
    await cache.invalidateTags(['list'], { soft: true });
    release();
    await cache.purgesSettled();
    const [first, hard, soft, ...more] = bodies();
    expect(more).toEqual([]);
    expect(first!.tags).toContain('first');
    expect(hard!.tags).toEqual(expect.arrayContaining([...Array.from({ length: 50 }, (_, i) => `item:${i}`), 'list']));
    expect(hard!.soft).toBeUndefined();
    // A tag purged hard is not purged softly after it: the hard purge covers it.
    expect(soft!.soft).toBe(true);
    expect(soft!.tags).toContain('draft:1');
    expect(soft!.tags).not.toContain('list');
  });

  it('go as one purge of everything when a clear is among them', async () => {
    const release = holdNextAnswer();
    await cache.invalidateTags(['first']);
    await edge.receivedCount(1);
    await cache.invalidateTags(['item:1']);
    await cache.clear();
    await cache.invalidateTags(['item:2']);
    release();
    await cache.purgesSettled();
    expect(bodies().slice(1)).toEqual([{ everything: true }]);
  });
});
