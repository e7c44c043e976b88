/**
 * The test servers' starters, against the race a second test run beside this one brings: a port
 * chosen free is taken by another process before the server binds it.
 */
import { createServer, type Server } from 'node:net';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { MemcachedCache } from '../src/index.js';
import { startMemcached } from './setup/memcached.js';
import { startPostgres } from './setup/postgres.js';
import { freePort, type PortChooser, PortTakenError } from './setup/process.js';
import { startNginx, startVarnish } from './setup/proxies.js';
import { cli, startRedisServer } from './setup/redis.js';

/** Another process's server on a loopback port: it takes every connection and hangs up at once. */
async function takenPort(): Promise<{ port: number; server: Server }> {
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as { port: number }).port, server };
}

/** A port chooser that answers `first`, then free ports; `chosen` lists what it answered. */
function chooserStartingWith(first: number): { choosePort: () => Promise<number>; chosen: number[] } {
  const chosen: number[] = [];
  return {
    chosen,
    choosePort: async () => {
      const port = chosen.length === 0 ? first : await freePort();
      chosen.push(port);
      return port;
    },
  };
}

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  // Last made, first undone: a client ends before the server it talks to stops.
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

async function occupied(): Promise<number> {
  const { port, server } = await takenPort();
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  return port;
}

describe('test servers when the port chosen is taken before the server binds it', () => {
  it('redis-server starts again on another port', async () => {
    const port = await occupied();
    const { choosePort, chosen } = chooserStartingWith(port);
    const redis = await startRedisServer({ choosePort });
    cleanups.push(() => redis.stop());
    expect(chosen).toHaveLength(2);
    expect(redis.port).toBe(chosen[1]);
    expect(await cli(redis.port, 'PING')).toBe('PONG');
  });

  it('memcached starts again on another port', async () => {
    const port = await occupied();
    const { choosePort, chosen } = chooserStartingWith(port);
    const memcached = await startMemcached({ choosePort });
    cleanups.push(() => memcached.stop());
    expect(chosen).toHaveLength(2);
    expect(memcached.location).toBe(`127.0.0.1:${chosen[1]}`);
    const cache = new MemcachedCache({ location: memcached.location });
    cleanups.push(() => cache.close());
    await cache.set('k', 'v');
    expect(await cache.get('k')).toBe('v');
  });

  it('postgres starts again on another port, on the same cluster', async () => {
    const port = await occupied();
    const { choosePort, chosen } = chooserStartingWith(port);
    const postgres = await startPostgres({ choosePort });
    cleanups.push(() => postgres.destroy());
    expect(chosen).toHaveLength(2);
    expect(postgres.port).toBe(chosen[1]);
    const client = new pg.Client({ connectionString: postgres.url });
    await client.connect();
    cleanups.push(() => client.end());
    expect((await client.query('SELECT current_database() AS name')).rows).toEqual([{ name: 'cachegrain' }]);
  }, 120_000);

  it.each([
    ['varnishd', (choosePort: PortChooser) => startVarnish({ backendPort: 9, vcl: '', choosePort })],
    ['nginx', (choosePort: PortChooser) => startNginx({ server: '', choosePort })],
  ])('%s in front of a test starts again on another port', async (_, start) => {
    const port = await occupied();
    const { choosePort, chosen } = chooserStartingWith(port);
    const proxy = await start(choosePort);
    cleanups.push(() => proxy.stop());
    expect(chosen).toHaveLength(2);
    expect(proxy.url).toBe(`http://127.0.0.1:${chosen[1]}`);
  });

  it.each([
    ['redis-server', (port: number) => startRedisServer({ port }), (port: number) => `redis-server on port ${port} exited`],
    ['memcached', (port: number) => startMemcached({ port }), (port: number) => `memcached (127.0.0.1:${port}) exited`],
  ])('%s on a port given, and taken, rejects with PortTakenError instead of answering with the other server', async (_, start, message) => {
    const port = await occupied();
    const started = start(port);
    cleanups.push(() => started.then((server) => server.stop()));
    await expect(started).rejects.toThrow(PortTakenError);
    await expect(started).rejects.toThrow(message(port));
  });
});
