import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/setup/servers.ts'],
    setupFiles: ['test/setup/worker-servers.ts'],
    testTimeout: 20_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Most of a test file's time is spent waiting on servers and processes: two files run side by
    // side even on two cores (vitest's own default there is one), each worker on servers of its own.
    maxWorkers: 2,
    // Key warnings are asserted through process 'warning' events; printing them too only adds noise.
    execArgv: ['--no-warnings'],
  },
});
