/**
 * Starts the Redis servers the tests need, on loopback and free ports: a plain server, a leader
 * with one replica, and a 3-master Cluster. Each has its own temp dir and no persistence. The
 * surprise: a cluster node also listens on port + 10000 (the cluster bus), so both must be free.
 */
import { type ChildProcess, execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { eventually } from './eventually.js';
import { findExecutable, freePort, type PortChooser, portIsFree, startOnFreePort, startServerProcess, stopProcess, type TestServer } from './process.js';

const run = promisify(execFile);

/** One running redis-server: where it listens, and how to stop it (by PID) and remove its files. */
export interface RedisServer {
  port: number;
  url: string;
  /** The server's PID, to stop it answering (SIGSTOP) while its connections stay open. */
  pid?: number;
  stop(): Promise<void>;
  /** SIGKILLs the server by its PID (a crash, no goodbye to clients), then removes its files. */
  kill?(): Promise<void>;
}

/**
 * Starts one redis-server and waits until it answers as itself (INFO process_id). On a port it
 * chooses (`choosePort`, `freePort` by default), it starts again on another when the port was taken
 * before the server bound it; a port given in `port` is kept (a server restarted where it was).
 */
export async function startRedisServer(options: { port?: number; choosePort?: PortChooser; args?: string[] } = {}): Promise<RedisServer> {
  const startOn = (port: number) => startRedisServerOn(port, options.args ?? []);
  return options.port !== undefined ? startOn(options.port) : startOnFreePort(startOn, options.choosePort);
}

async function startRedisServerOn(port: number, extraArgs: string[]): Promise<RedisServer> {
  const binary = findExecutable(['redis-server'], 'redis-server');
  const dir = mkdtempSync(join(tmpdir(), 'cachegrain-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extraArgs];
  let child: ChildProcess;
  try {
    ({ child } = await startServerProcess(
      `redis-server on port ${port}`,
      binary,
      args,
      async (pid) => (await info(port, 'server')).get('process_id') === String(pid),
    ));
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const stop = async () => {
    // A frozen server takes no SIGTERM until it runs again.
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGCONT');
    await stopProcess(child);
    rmSync(dir, { recursive: true, force: true });
  };
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      process.kill(child.pid!, 'SIGKILL');
      await exited;
    }
    await stop();
  };
  return { port, url: `redis://127.0.0.1:${port}`, pid: child.pid!, stop, kill };
}

/** Runs one redis-cli command against a local port and answers its output, trimmed. */
/**
 * Waits until the leader on `port` has a replica that acknowledged every write so far (Redis's WAIT,
 * asked again until it says so: on a busy machine one WAIT's own deadline can pass first).
 */
export async function waitForReplica(port: number, deadlineMs = 20_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (Number(await cli(port, 'WAIT', '1', '1000')) < 1) {
    if (Date.now() > deadline) throw new Error(`no replica of the Redis on port ${port} acknowledged its writes within ${deadlineMs} ms`);
  }
}

export async function cli(port: number, ...command: string[]): Promise<string> {
  const binary = findExecutable(['redis-cli'], 'redis-server');
  try {
    return (await run(binary, ['-h', '127.0.0.1', '-p', String(port), ...command])).stdout.trim();
  } catch {
    return '';
  }
}

/** `INFO <section>` as a map of its fields. */
export async function info(port: number, section: string): Promise<Map<string, string>> {
  const text = await cli(port, 'INFO', section);
  return new Map(text.split(/\r?\n/).flatMap((line) => (line.includes(':') ? [line.split(':', 2) as [string, string]] : [])));
}

/** How many times a command has run on a server since its stats were last reset. */
export async function commandCalls(port: number, command: string): Promise<number> {
  const stats = (await info(port, 'commandstats')).get(`cmdstat_${command.toLowerCase()}`);
  return stats === undefined ? 0 : Number(/calls=(\d+)/.exec(stats)![1]);
}

/** A leader and one replica linked to it, each its own redis-server. */
export async function startReplication(): Promise<{ leader: RedisServer; replica: RedisServer }> {
  const leader = await startRedisServer();
  try {
    const replica = await startRedisServer({ args: ['--replicaof', '127.0.0.1', String(leader.port)] });
    await until(async () => (await info(replica.port, 'replication')).get('master_link_status') === 'up', `the replica on port ${replica.port} to link up`);
    return { leader, replica };
  } catch (error) {
    await leader.stop();
    throw error;
  }
}

/** A free port whose cluster bus port (port + 10000) is free too. */
async function freeClusterPort(): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port + 10000 <= 65535 && (await portIsFree(port + 10000))) return port;
  }
}

async function startCluster(): Promise<RedisServer[]> {
  const nodes: RedisServer[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      nodes.push(
        await startRedisServer({
          choosePort: freeClusterPort,
          args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '5000'],
        }),
      );
    }
    const binary = findExecutable(['redis-cli'], 'redis-server');
    await run(binary, ['--cluster', 'create', ...nodes.map((node) => `127.0.0.1:${node.port}`), '--cluster-replicas', '0', '--cluster-yes']);
    for (const node of nodes) {
      await until(async () => (await cli(node.port, 'CLUSTER', 'INFO')).includes('cluster_state:ok'), `cluster node ${node.port} to report cluster_state:ok`);
    }
    return nodes;
  } catch (error) {
    await Promise.allSettled(nodes.map((node) => node.stop()));
    throw error;
  }
}

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  await eventually(async () => {
    if (!(await check())) throw new Error(`timed out waiting for ${what}`);
  });
}

export async function start(): Promise<TestServer> {
  const started = await Promise.allSettled([startRedisServer(), startReplication(), startCluster()]);
  const servers = started.flatMap((result) => {
    if (result.status === 'rejected') return [];
    const value = result.value;
    return Array.isArray(value) ? value : 'leader' in value ? [value.leader, value.replica] : [value];
  });
  const stop = async () => {
    await Promise.allSettled(servers.map((server) => server.stop()));
  };
  const failure = started.find((result) => result.status === 'rejected');
  if (failure !== undefined) {
    await stop();
    throw (failure as PromiseRejectedResult).reason;
  }
  const [plain, replication, cluster] = started.map((result) => (result as PromiseFulfilledResult<unknown>).value) as [
    RedisServer,
    { leader: RedisServer; replica: RedisServer },
    RedisServer[],
  ];
  return {
    env: {
      CACHEGRAIN_TEST_REDIS_URL: plain.url,
      CACHEGRAIN_TEST_REDIS_REPLICATION_URLS: `${replication.leader.url},${replication.replica.url}`,
      CACHEGRAIN_TEST_REDIS_CLUSTER_URLS: cluster.map((node) => node.url).join(','),
    },
    stop,
  };
}
