/**
 * Vitest setup file, run in each worker before a test file: the worker's own set of test servers
 * (see servers.ts), by the worker's number, in the CACHEGRAIN_TEST_* variables its tests and the
 * processes they start read.
 */
const sets = JSON.parse(process.env.CACHEGRAIN_TEST_SERVER_SETS ?? '[]') as Array<Record<string, string>>;
const own = sets[Number(process.env.VITEST_POOL_ID ?? 1) - 1];
if (own !== undefined) Object.assign(process.env, own);
