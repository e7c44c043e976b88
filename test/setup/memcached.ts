/**
 * Starts the memcached servers the tests need: two on free loopback ports and one on a unix socket,
 * published as CACHEGRAIN_TEST_MEMCACHED_SERVERS (comma-separated `host:port` / `unix:/path`).
 * `startMemcached` is also what tests use to run a server of their own (to kill and restart it).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecutable, type PortChooser, startOnFreePort, startServerProcess, stopProcess, type TestServer } from './process.js';

export interface MemcachedProcess {
  /** The address as a cache location: `127.0.0.1:<port>` or `unix:<path>`. */
  location: string;
  port?: number;
  pid: number;
  /** Everything the server wrote so far (with `verbose`, one line per command it read). */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts one memcached on the unix socket `socketPath`, or on loopback: on `port` when given (a server
 * restarted where it was), else on a port it chooses (`choosePort`, `freePort` by default) and again
 * on another when that one was taken before the server bound it. Ready once it answers as itself
 * (`stats` pid).
 */
export async function startMemcached(
  options: { port?: number; choosePort?: PortChooser; socketPath?: string; verbose?: boolean } = {},
): Promise<MemcachedProcess> {
  if (options.socketPath !== undefined) return startMemcachedAt(`unix:${options.socketPath}`, ['-s', options.socketPath, '-a', '0700'], options);
  const startOn = (port: number) => startMemcachedAt(`127.0.0.1:${port}`, ['-l', '127.0.0.1', '-p', String(port)], options, port);
  return options.port !== undefined ? startOn(options.port) : startOnFreePort(startOn, options.choosePort);
}

async function startMemcachedAt(location: string, listenArgs: string[], options: { verbose?: boolean }, port?: number): Promise<MemcachedProcess> {
  const binary = findExecutable(['memcached', '/usr/bin/memcached'], 'memcached');
  const args = ['-m', '64', '-U', '0', '-c', '1024', ...listenArgs];
  if (process.getuid?.() === 0) args.push('-u', 'root');
  if (options.verbose) args.push('-vv');
  const { child, output } = await startServerProcess(`memcached (${location})`, binary, args, async (pid) => (await statsPid(location)) === pid);
  return { location, port, pid: child.pid!, output, stop: () => stopProcess(child) };
}

/** The `pid` that the memcached at `location` reports in `stats`, or undefined if it does not answer. */
async function statsPid(location: string, timeoutMs = 2000): Promise<number | undefined> {
  return new Promise((resolve) => {
    const socket = location.startsWith('unix:')
      ? connect(location.slice('unix:'.length))
      : connect(Number(location.slice(location.lastIndexOf(':') + 1)), '127.0.0.1');
    let reply = '';
    const settle = (pid: number | undefined) => {
      socket.destroy();
      resolve(pid);
    };
    socket.setTimeout(timeoutMs, () => settle(undefined));
    socket.once('error', () => settle(undefined));
    socket.once('close', () => settle(undefined));
    socket.once('connect', () => socket.write('stats\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk;
      if (!reply.endsWith('END\r\n')) return;
      const pid = /^STAT pid (\d+)\r$/m.exec(reply)?.[1];
      settle(pid === undefined ? undefined : Number(pid));
    });
  });
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
