/** Helpers for starting test servers: free loopback ports, child processes stopped by PID, readiness polls. */
import { type ChildProcess, spawn, type SpawnOptions } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createServer, Socket } from 'node:net';

/** A server the global setup started: the environment variables that locate it, and how to stop it. */
export interface TestServer {
  env: Record<string, string>;
  stop(): Promise<void>;
}

/** A port on 127.0.0.1 that nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The first of `candidates` that exists and is executable, else an error naming the Debian package. */
export function findExecutable(candidates: string[], debianPackage: string): string {
  const path = (process.env.PATH ?? '').split(':');
  for (const candidate of candidates) {
    const full = candidate.includes('/') ? [candidate] : path.map((dir) => `${dir}/${candidate}`);
    for (const file of full) {
      try {
        accessSync(file, constants.X_OK);
        return file;
      } catch {
        // not here; try the next
      }
    }
  }
  throw new Error(`${candidates[0]} was not found: install it with \`apt-get install -y ${debianPackage}\``);
}

/** Starts a long-running child; its output is kept for error messages. */
export function startProcess(command: string, args: string[], options: SpawnOptions = {}): { child: ChildProcess; output: () => string } {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  let output = '';
  child.stdout?.on('data', (chunk) => (output += chunk));
  child.stderr?.on('data', (chunk) => (output += chunk));
  return { child, output: () => output };
}

/** Stops a child by its PID: SIGTERM, then SIGKILL if it is still there after `graceMs`. */
export async function stopProcess(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Resolves once a TCP connection to host:port succeeds; rejects after `timeoutMs`. */
export async function waitForPort(port: number, host = '127.0.0.1', timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = new Socket();
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
      socket.connect(port, host);
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listened on ${host}:${port} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
