/**
 * ioredis, loaded when the first Redis connection is made (a Redis cache, or an L1 invalidation
 * bus), so that importing cachegrain stays light.
 */
import { createRequire } from 'node:module';
import { resolvePeer } from '../peer.js';

export interface RedisClients {
  ioredis: typeof import('ioredis');
  /** The cluster slot of a key, by the same module ioredis routes with. */
  keySlot: (key: string) => number;
}

let clients: RedisClients | undefined;

export function loadRedisClients(): RedisClients {
  if (clients === undefined) {
    const ioredisPath = resolvePeer('ioredis', 'The redis backend');
    // cluster-key-slot is what ioredis itself routes by; resolved from ioredis so both always agree.
    const fromIORedis = createRequire(ioredisPath);
    clients = { ioredis: fromIORedis(ioredisPath), keySlot: fromIORedis('cluster-key-slot') };
  }
  return clients;
}
