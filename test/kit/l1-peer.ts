/**
 * Another process with an L1 cache, driven over IPC by a test: `fork` it with `--import tsx` and
 * the cache's JSON description as argv[2]. Each request `{ id, op, ... }` gets `{ id, result }`
 * (or `{ id, error }`). Its clock can be moved (`advance`) to test the L1 timeout without sleeping.
 */
import { MemcachedCache, RedisCache } from '../../src/index.js';

const { backend, params } = JSON.parse(process.argv[2]!) as { backend: 'redis' | 'memcached'; params: object };
const cache = backend === 'redis' ? new RedisCache(params) : new MemcachedCache(params);
cache.on('error', () => undefined);
let shift = 0;
const realNow = cache.now.bind(cache);
cache.now = () => realNow() + shift;
const tier = cache.l1!;

type Request = { id: number; op: string; key?: string; seconds?: number };

const ops: Record<string, (request: Request) => unknown> = {
  get: async ({ key }) => {
    const value = await cache.get(key!);
    return { value, held: tier.holds(cache.makeKey(key!)) };
  },
  holds: ({ key }) => tier.holds(cache.makeKey(key!)),
  busUp: () => tier.busUp,
  size: () => tier.size,
  advance: ({ seconds }) => {
    shift += seconds!;
    return shift;
  },
  /** Answers when the key is no longer held, with the wall-clock moment it went (ms since the epoch). */
  watch: ({ key }) =>
    new Promise((resolve) => {
      const made = cache.makeKey(key!);
      const poll = () => (tier.holds(made) ? setImmediate(poll) : resolve(performance.timeOrigin + performance.now()));
      poll();
    }),
  close: async () => {
    await cache.close();
    setImmediate(() => process.exit(0));
    return true;
  },
};

process.on('message', async (request: Request) => {
  try {
    process.send!({ id: request.id, result: await ops[request.op]!(request) });
  } catch (error) {
    process.send!({ id: request.id, error: String(error) });
  }
});
process.send!({ id: 0, result: 'ready' });
