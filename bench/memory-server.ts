/**
 * The server of the memory benchmark, in a process of its own (`node --expose-gc memory-server.js
 * <app>`): an Express site whose pages carry tags, with a subscriber on every cache operation's
 * channel as a metrics exporter has, behind `cacheMiddleware` on a locmem of 1,000 entries
 * (`ours`) or without a page cache (`anchor`). Asked over IPC, it collects its garbage and answers
 * what it holds.
 */
import { subscribe } from 'node:diagnostics_channel';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { addCacheTags, cacheMiddleware } from '../src/frameworks/express.js';
import { CACHE_OPERATIONS, channelName, LocMemCache } from '../src/index.js';

/** The most pages the page cache's store holds. */
export const MAX_ENTRIES = 1000;
const APPS = ['ours', 'anchor'] as const;
export type MemoryApp = (typeof APPS)[number];
/** What the server answers its parent's `heap` message with. */
export interface HeapReport {
  /** Bytes of the JavaScript heap in use, and of the memory its objects hold outside it, after a full collection. */
  bytes: number;
}

const name = process.argv[2] as MemoryApp;
if (!APPS.includes(name)) throw new Error(`memory-server: unknown app ${String(name)} (one of ${APPS.join(', ')})`);

// A metrics exporter: operations counted and timed by cache and operation.
const timings = new Map<string, { count: number; totalMs: number }>();
for (const operation of CACHE_OPERATIONS) {
  subscribe(channelName(operation), (message) => {
    const { alias, duration } = message as { alias: string; duration: number };
    const name = `${alias}:${operation}`;
    const timing = timings.get(name) ?? { count: 0, totalMs: 0 };
    timing.count++;
    timing.totalMs += duration;
    timings.set(name, timing);
  });
}

/** An item page's body, about 8 KB: what a culled page left in memory would cost. */
const PARAGRAPH = '<p>Some paragraph of an item page.</p>'.repeat(200);
const app = express();
if (name === 'ours') app.use(cacheMiddleware({ cache: new LocMemCache({ location: 'bench-memory', options: { maxEntries: MAX_ENTRIES } }) }));
app.get('/items/:id', (req, res) => {
  addCacheTags(res, 'items', `item:${req.params.id}`);
  res.type('html').send(`<!doctype html><title>Item ${req.params.id}</title>${PARAGRAPH}`);
});

const server = http.createServer(app);
server.listen(0, '127.0.0.1', () => process.send!({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }));
process.on('message', (message) => {
  if (message !== 'heap') return;
  // Twice: what the first collection frees can hold more that only the second finds unreachable.
  globalThis.gc!();
  globalThis.gc!();
  // External, not arrayBuffers alone: bytes Node hands over from C++ (v8.serialize's, a store's
  // serialized entries) are held outside the allocator arrayBuffers counts, yet held all the same.
  const { heapUsed, external } = process.memoryUsage();
  process.send!({ bytes: heapUsed + external } satisfies HeapReport);
});
// The parent going away (it kills this process when done, or it died) ends this one.
process.on('disconnect', () => process.exit(0));
