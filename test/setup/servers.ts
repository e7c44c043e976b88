/**
 * Vitest global setup: starts, on loopback and free ports, every server the backend tests talk to,
 * one set for each worker that runs test files side by side, so that no two files running at once
 * share a store (their clears and tables would meet). Each set's addresses are CACHEGRAIN_TEST_*
 * environment variables: the first set's are published as they are (inherited by the test workers),
 * and every set's in CACHEGRAIN_TEST_SERVER_SETS, from which each worker takes its own
 * (`worker-servers.ts`). All are stopped by PID afterwards. `CACHEGRAIN_TEST_SERVERS=redis,memcached`
 * starts only those (for a quick run of one backend's tests); `all`, the default, and CI start them all.
 */
import type { TestProject } from 'vitest/node';
import type { TestServer } from './process.js';

const STARTERS: Record<string, () => Promise<TestServer>> = {
  redis: async () => (await import('./redis.js')).start(),
  memcached: async () => (await import('./memcached.js')).start(),
  postgres: async () => (await import('./postgres.js')).start(),
};

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const wanted = (process.env.CACHEGRAIN_TEST_SERVERS ?? Object.keys(STARTERS).join(','))
    .split(',')
    .map((name) => name.trim())
    .flatMap((name) => (name === 'all' ? Object.keys(STARTERS) : [name]))
    .filter((name) => name !== '' && name !== 'none');
  for (const name of wanted) {
    if (!Object.hasOwn(STARTERS, name))
      throw new Error(`CACHEGRAIN_TEST_SERVERS names an unknown server '${name}' (known: ${Object.keys(STARTERS).join(', ')})`);
  }
  const sets = Array.from({ length: project.config.maxWorkers }, () => wanted);
  const started = await Promise.allSettled(sets.map((names) => Promise.allSettled(names.map((name) => STARTERS[name]!()))));
  const results = started.flatMap((set) => (set.status === 'fulfilled' ? [set.value] : []));
  const running = results.flat().flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const stopAll = async () => {
    await Promise.allSettled(running.map((server) => server.stop()));
  };
  const failed = results.flat().flatMap((result) => (result.status === 'rejected' ? [result.reason as Error] : []));
  if (failed.length > 0) {
    await stopAll();
    throw new Error(`could not start the test servers:\n${[...new Set(failed.map((error) => `- ${error.message}`))].join('\n')}`);
  }
  const envs = results.map(
    (set) => Object.assign({}, ...set.map((result) => (result as PromiseFulfilledResult<TestServer>).value.env)) as Record<string, string>,
  );
  Object.assign(process.env, envs[0], { CACHEGRAIN_TEST_SERVER_SETS: JSON.stringify(envs) });
  return stopAll;
}
