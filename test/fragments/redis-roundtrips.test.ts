/**
 * With fragments on Redis, a warm page of 20 looped fragments (plus a nested pair) costs one read
 * command in every engine, counted by the server itself (INFO commandstats).
 */
import { createRequire } from 'node:module';
import type { Redis as RedisClient } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caches, configureCaches } from '../../src/index.js';
import { ENGINES } from './engines.js';

const url = process.env.CACHEGRAIN_TEST_REDIS_URL;
if (url === undefined)
  throw new Error('CACHEGRAIN_TEST_REDIS_URL is not set: run with CACHEGRAIN_TEST_SERVERS=redis (needs `apt-get install -y redis-server`)');
const { Redis } = createRequire(import.meta.url)('ioredis') as typeof import('ioredis');

/** Calls per command since the last reset, leaving out the commands used to count. */
async function commandCalls(client: RedisClient): Promise<Record<string, number>> {
  const calls: Record<string, number> = {};
  for (const match of (await client.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (!/^(info|config)/.test(match[1]!)) calls[match[1]!] = Number(match[2]);
  }
  return calls;
}

describe('fragments on Redis', () => {
  let client: RedisClient;
  beforeAll(() => {
    client = new Redis(url);
  });
  afterAll(async () => {
    client.disconnect();
    await caches.closeAll();
  });

  for (const engine of ENGINES.map((engine) => engine())) {
    it(`reads a warm page of 20 fragments in one command (${engine.name})`, async () => {
      await configureCaches({
        default: { backend: 'locmem', location: `redis-roundtrips-${engine.name}` },
        template_fragments: { backend: 'redis', location: url, keyPrefix: `roundtrips-${engine.name}` },
      });
      const items = Array.from({ length: 20 }, (_, i) => ({ id: i, title: `Item ${i}` }));
      const context = { user: 'ann', items, count: () => 0 };
      const cold = await engine.renderPage(context);
      expect(cold).toContain('<li>020. Item 19</li>');
      await client.config('RESETSTAT');
      expect(await engine.renderPage(context)).toBe(cold);
      expect(await commandCalls(client)).toEqual({ mget: 1 });
    });
  }
});
