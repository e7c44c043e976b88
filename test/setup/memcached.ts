/**
 * Starts the memcached servers the tests need: two on free loopback ports and one on a unix socket,
 * published as CACHEGRAIN_TEST_MEMCACHED_SERVERS (comma-separated `host:port` / `unix:/path`).
 * `startMemcached` is also what tests use to run a server of their own (to kill and restart it).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecutable, freePort, startProcess, stopProcess, type TestServer, waitForPort } from './process.js';

export interface MemcachedProcess {
  /** The address as a cache location: `127.0.0.1:<port>` or `unix:<path>`. */
  location: string;
  port?: number;
  pid: number;
  /** Everything the server wrote so far (with `verbose`, one line per command it read). */
  output(): string;
  stop(): Promise<void>;
}

/** Starts one memcached on `port` (a free one when omitted) or on the unix socket `socketPath`. */
export async function startMemcached(options: { port?: number; socketPath?: string; verbose?: boolean } = {}): Promise<MemcachedProcess> {
  const binary = findExecutable(['memcached', '/usr/bin/memcached'], 'memcached');
  const args = ['-m', '64', '-U', '0', '-c', '1024'];
  if (process.getuid?.() === 0) args.push('-u', 'root');
  if (options.verbose) args.push('-vv');
  let location: string;
  let port: number | undefined;
  if (options.socketPath !== undefined) {
    args.push('-s', options.socketPath, '-a', '0700');
    location = `unix:${options.socketPath}`;
  } else {
    port = options.port ?? (await freePort());
    args.push('-l', '127.0.0.1', '-p', String(port));
    location = `127.0.0.1:${port}`;
  }
  const { child, output } = startProcess(binary, args);
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`memcached (${location}) exited with ${code} before it was ready: ${output()}`))),
  );
  exited.catch(() => undefined);
  const ready = options.socketPath !== undefined ? waitForSocket(options.socketPath) : waitForPort(port!);
  try {
    await Promise.race([ready, exited]);
  } catch (error) {
    await stopProcess(child);
    throw error;
  }
  return { location, port, pid: child.pid!, output, stop: () => stopProcess(child) };
}

export async function start(): Promise<TestServer> {
  const directory = mkdtempSync(join(tmpdir(), 'cachegrain-memcached-'));
  const started = await Promise.allSettled([startMemcached(), startMemcached(), startMemcached({ socketPath: join(directory, 'memcached.sock') })]);
  const servers = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const stop = async () => {
    await Promise.all(servers.map((server) => server.stop()));
    rmSync(directory, { recursive: true, force: true });
  };
  const failure = started.find((result) => result.status === 'rejected');
  if (failure !== undefined) {
    await stop();
    throw (failure as PromiseRejectedResult).reason;
  }
  return { env: { CACHEGRAIN_TEST_MEMCACHED_SERVERS: servers.map((server) => server.location).join(',') }, stop };
}

async function waitForSocket(path: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(path);
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listened on ${path} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
