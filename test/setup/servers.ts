/**
 * Vitest global setup: starts, on loopback and free ports, every server the backend tests talk to,
 * publishes their addresses as CACHEGRAIN_TEST_* environment variables (inherited by the test
 * workers), and stops them by PID afterwards. `CACHEGRAIN_TEST_SERVERS=redis,memcached` starts only
 * those (for a quick run of one backend's tests); `all`, the default, and CI start them all.
 */
import type { TestServer } from './process.js';

const STARTERS: Record<string, () => Promise<TestServer>> = {
  redis: async () => (await import('./redis.js')).start(),
  memcached: async () => (await import('./memcached.js')).start(),
  postgres: async () => (await import('./postgres.js')).start(),
};

export default async function setup(): Promise<() => Promise<void>> {
  const wanted = (process.env.CACHEGRAIN_TEST_SERVERS ?? Object.keys(STARTERS).join(','))
    .split(',')
    .map((name) => name.trim())
    .flatMap((name) => (name === 'all' ? Object.keys(STARTERS) : [name]))
    .filter((name) => name !== '' && name !== 'none');
  for (const name of wanted) {
    if (!Object.hasOwn(STARTERS, name))
      throw new Error(`CACHEGRAIN_TEST_SERVERS names an unknown server '${name}' (known: ${Object.keys(STARTERS).join(', ')})`);
  }
  const started = await Promise.allSettled(wanted.map((name) => STARTERS[name]!()));
  const running = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const stopAll = async () => {
    await Promise.allSettled(running.map((server) => server.stop()));
  };
  const failed = started.flatMap((result) => (result.status === 'rejected' ? [result.reason as Error] : []));
  if (failed.length > 0) {
    await stopAll();
    throw new Error(`could not start the test servers:\n${failed.map((error) => `- ${error.message}`).join('\n')}`);
  }
  for (const server of running) Object.assign(process.env, server.env);
  return stopAll;
}
