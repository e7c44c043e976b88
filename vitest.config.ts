import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/setup/servers.ts'],
    testTimeout: 20_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Key warnings are asserted through process 'warning' events; printing them too only adds noise.
    execArgv: ['--no-warnings'],
  },
});
