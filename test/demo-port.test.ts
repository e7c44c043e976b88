/**
 * The demo started as `npm start` starts it (the built server in its own process): it honours PORT
 * and refuses a busy port with a clear error and exit code 1 instead of printing its URLs.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const builtServer = fileURLToPath(new URL('../dist/examples/demo/server.js', import.meta.url));
// Its own file cache, not the demo's default under the system temp dir, which another run shares.
const cacheDir = mkdtempSync(join(tmpdir(), 'cachegrain-demo-port-'));
afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));

function runDemo(port: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [builtServer], {
      env: { ...process.env, PORT: String(port), DEMO_CACHE_DIR: cacheDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      // Listening: the port was honoured; stop it the way a user would.
      if (stdout.includes('cachegrain demo on')) child.kill('SIGTERM');
    });
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

function occupyPort(): Promise<Server> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '::', () => resolve(server));
  });
}

describe('demo server port', () => {
  it('refuses a busy port with a clear error and exit code 1', async () => {
    const busy = await occupyPort();
    const port = (busy.address() as { port: number }).port;
    try {
      const { code, stdout, stderr } = await runDemo(port);
      expect(code).toBe(1);
      expect(stderr).toContain(`port ${port} is already in use`);
      expect(stdout).not.toContain('cachegrain demo on');
    } finally {
      busy.close();
    }
  }, 30_000);

  it('listens on PORT', async () => {
    const free = await occupyPort();
    const port = (free.address() as { port: number }).port;
    await new Promise((resolve) => free.close(resolve));
    const { stdout } = await runDemo(port);
    expect(stdout).toContain(`cachegrain demo on http://localhost:${port}`);
  }, 30_000);
});
