import { describe, expect, it } from 'vitest';
import { MemcachedCache } from '../../src/index.js';
import { describeBackend } from '../kit/backend.js';

function testServers(): string[] {
  const servers = process.env.CACHEGRAIN_TEST_MEMCACHED_SERVERS;
  if (!servers) throw new Error('CACHEGRAIN_TEST_MEMCACHED_SERVERS is not set: run with CACHEGRAIN_TEST_SERVERS=memcached (needs the Debian package memcached)');
  return servers.split(',');
}

describeBackend('memcached', {
  make: (overrides) => new MemcachedCache({ location: testServers(), ...overrides }),
  traits: { strictKeys: true, serverClock: 1 },
});
