/**
 * Starts PostgreSQL servers for the tests: a fresh cluster (initdb) in a temp directory, listening on
 * a free loopback port with its socket in that directory, trust auth, fsync off. As root the server
 * runs as the `postgres` user (PostgreSQL refuses root). Stopped by PID with a fast shutdown (SIGINT).
 */
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { type PortChooser, type ServerProcess, startOnFreePort, startServerProcess, stopProcess, type TestServer } from './process.js';

const TEST_DATABASE = 'cachegrain';

/** One PostgreSQL server that can be stopped and started again on the same port and data. */
export interface PostgresInstance {
  /** `postgres://postgres@127.0.0.1:<port>/cachegrain` */
  url: string;
  port: number;
  /** Starts the server again after `stop()`. */
  start(): Promise<void>;
  /** Fast shutdown: connected clients are cut off. */
  stop(): Promise<void>;
  /** Stops the server and removes its files. */
  destroy(): Promise<void>;
}

/** The global setup's server: publishes CACHEGRAIN_TEST_POSTGRES_URL. */
export async function start(): Promise<TestServer> {
  const instance = await startPostgres();
  return { env: { CACHEGRAIN_TEST_POSTGRES_URL: instance.url }, stop: () => instance.destroy() };
}

/**
 * A fresh cluster, started on a port it chooses (`choosePort`, `freePort` by default) and again on
 * another when that one was taken before the server bound it. Ready once the server answering on
 * the port reports this cluster's data directory.
 */
export async function startPostgres(options: { choosePort?: PortChooser } = {}): Promise<PostgresInstance> {
  const bin = postgresBinaries();
  const root = mkdtempSync(join(tmpdir(), 'cachegrain-postgres-'));
  const data = join(root, 'data');
  const user = process.getuid?.() === 0 ? postgresUser() : undefined;
  if (user) chownSync(root, user.uid, user.gid);
  const asUser = { cwd: root, ...(user ?? {}) };
  let server: ServerProcess | undefined;
  const startOn = async (port: number) => {
    const args = [
      '-D',
      data,
      '-p',
      String(port),
      '-h',
      '127.0.0.1',
      '-k',
      root,
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
    ];
    server = await startServerProcess(`postgres on port ${port}`, join(bin, 'postgres'), args, () => servesDataDirectory(port, data), asUser);
  };
  const stop = async () => {
    // SIGINT is PostgreSQL's fast shutdown: connected clients are cut off.
    if (server !== undefined) await stopProcess(server.child, 10_000, 'SIGINT');
  };
  const destroy = async () => {
    await stop();
    rmSync(root, { recursive: true, force: true });
  };
  try {
    await promisify(execFile)(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync'], asUser);
    const port = await startOnFreePort(async (port) => (await startOn(port), port), options.choosePort);
    const url = `postgres://postgres@127.0.0.1:${port}/${TEST_DATABASE}`;
    const admin = new pg.Client({ connectionString: url.replace(`/${TEST_DATABASE}`, '/postgres') });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${TEST_DATABASE}`);
    await admin.end();
    return { url, port, start: () => startOn(port), stop, destroy };
  } catch (error) {
    await destroy();
    throw error;
  }
}

/** Whether the server answering on `port` is the one whose data directory is `data`. */
async function servesDataDirectory(port: number, data: string): Promise<boolean> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const { rows } = await client.query<{ data_directory: string }>('SHOW data_directory');
    return rows[0]?.data_directory === data;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The newest /usr/lib/postgresql/<version>/bin, or the directory of an initdb on PATH. */
function postgresBinaries(): string {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).filter((name) => existsSync(join(base, name, 'bin', 'initdb'))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  if (versions.length > 0) return join(base, versions[0]!, 'bin');
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir !== '' && existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'postgres'))) return dir;
  }
  throw new Error('PostgreSQL (initdb, postgres) was not found: install it with `apt-get install -y postgresql`');
}

function postgresUser(): { uid: number; gid: number } {
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    throw new Error('running as root needs a `postgres` user to run PostgreSQL as: install it with `apt-get install -y postgresql`');
  }
}
