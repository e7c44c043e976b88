/**
 * The Fastify plugin closes the caches with the app, so that a process that closes its app ends by
 * itself (a test file, a worker being replaced), and leaves them open when told they are shared.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { cachegrain } from '../../src/frameworks/fastify.js';
import { moduleArguments } from '../setup/module-process.js';

const fixture = fileURLToPath(new URL('./fixtures/fastify-close.ts', import.meta.url));
/** How long a process that closed everything is given to end: only reached when it does not. */
const EXIT_BUDGET_MS = 10_000;

/** Runs the fixture: its exit code (null when it was still running `EXIT_BUDGET_MS` after it printed `closed`, and was killed) and its output. */
async function runFixture(env: Record<string, string> = {}): Promise<{ code: number | null; output: string }> {
  const redisUrl = process.env.CACHEGRAIN_TEST_REDIS_URL;
  if (redisUrl === undefined) throw new Error('CACHEGRAIN_TEST_REDIS_URL is not set: the test setup starts redis-server (Debian package redis-server)');
  const child = spawn(process.execPath, moduleArguments(fixture), { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let overdue: NodeJS.Timeout | undefined;
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk;
    if (overdue === undefined && output.includes('closed\n')) overdue = setTimeout(() => child.kill('SIGKILL'), EXIT_BUDGET_MS);
  });
  child.stderr.on('data', (chunk: Buffer) => (output += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
  clearTimeout(overdue);
  return { code, output };
}

describe('cachegrain (the Fastify plugin) and app.close()', () => {
  it('closes the caches with the app: the process ends by itself, with code 0', async () => {
    const { code, output } = await runFixture();
    expect(output).toContain('MISS HIT\nclosed\n');
    expect(code, `the process was still running ${EXIT_BUDGET_MS} ms after app.close():\n${output}`).toBe(0);
  }, 30_000);

  it('leaves the caches open with closeCaches: false, for whoever shares them', async () => {
    const { code, output } = await runFixture({ CLOSE_CACHES: 'false' });
    expect(output).toContain('MISS HIT\nclosed\nstill open: kept\n');
    expect(code, output).toBe(0);
  }, 30_000);

  it('refuses a misspelt closeCaches, naming the option it is closest to', async () => {
    const app = Fastify();
    await expect(app.register(cachegrain, { closeCache: false } as never).ready()).rejects.toThrow(
      "cachegrain: unknown option 'options.closeCache' (did you mean 'options.closeCaches'?)",
    );
  });

  it('refuses a closeCaches that is not a boolean, naming it', async () => {
    const app = Fastify();
    await expect(app.register(cachegrain, { closeCaches: 'no' as unknown as boolean }).ready()).rejects.toThrow(
      "cachegrain: options.closeCaches must be a boolean (got 'no')",
    );
  });
});
