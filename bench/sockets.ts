/**
 * Measuring servers over sockets, for the sections that do (http, deployed): a server runs in a fresh
 * process of its own (a script that calls `serveMeasured`), autocannon loads it from another, and
 * the server answers the CPU time it spent per request it served: its own cost, which the load
 * generator sharing the machine's cores moves much less than the requests per second.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import http, { type RequestListener } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type { Measurement } from './harness.js';

const require = createRequire(import.meta.url);

/** What the parent asks a server, and what the server answers to `stop`. */
export type ServerRequest = { measure: 'start' | 'stop' };
export interface ServerUsage {
  cpuMicros: number;
  requests: number;
}

/** One request as the load asks it, and the status each of its answers must have. */
export interface LoadRequest {
  path: string;
  headers: Record<string, string>;
  status: number;
}

export interface Server {
  child: ChildProcess;
  origin: string;
}

/**
 * In a server's process: serves `listener` on a free loopback port, asks each of `warm` once over
 * the socket (the page cache keys by the host it is asked on, and stores the page then), tells the
 * parent its origin, and answers its CPU time between the parent's `start` and `stop`.
 */
export function serveMeasured(listener: RequestListener, warm: ReadonlyArray<Omit<LoadRequest, 'status'>>): void {
  const server = http.createServer(listener);
  let requests = 0;
  server.on('request', () => requests++);
  let started: { cpu: NodeJS.CpuUsage; requests: number } | undefined;
  process.on('message', ({ measure }: ServerRequest) => {
    if (measure === 'start') {
      started = { cpu: process.cpuUsage(), requests };
      return;
    }
    const cpu = process.cpuUsage(started!.cpu);
    process.send!({ cpuMicros: cpu.user + cpu.system, requests: requests - started!.requests } satisfies ServerUsage);
  });
  server.listen(0, '127.0.0.1', async () => {
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    for (const { path, headers } of warm) await (await fetch(origin + path, { headers })).arrayBuffer();
    process.send!({ origin });
  });
  // The parent going away (it kills this process when done, or it died) ends this one.
  process.on('disconnect', () => process.exit(0));
}

/** Starts `app` of the server script `script` in a fresh process; answers it once it is ready (its cache filled). */
export async function startServer(script: string, app: string): Promise<Server> {
  const child = fork(script, [app], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv: [] });
  const ready = once(child, 'message') as Promise<[{ origin: string }]>;
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`the ${app} server exited with ${String(code)} before it was ready`);
  });
  const [{ origin }] = await Promise.race([ready, exited]);
  return { child, origin };
}

export async function stopServer(child: ChildProcess): Promise<void> {
  const exited = child.exitCode === null ? once(child, 'exit') : Promise.resolve();
  child.kill();
  await exited;
}

/** Runs autocannon against the URL in a child process with `connections`, every answer of the request's status; answers requests per second. */
export async function autocannon(origin: string, request: LoadRequest, seconds: number, connections: number): Promise<number> {
  return (await runAutocannon(origin, request, ['-d', String(seconds)], connections)).average;
}

/**
 * How a server is loaded before it is measured: for `seconds`, and on until it has served
 * `requests`. V8 optimizes a function once it has run some thousands of times, so a slow path (a
 * MISS that renders) needs more than a few seconds to run as it runs in a server that has been up a while.
 */
export interface Warmup {
  seconds: number;
  requests: number;
}

/** Loads the server at `origin` with `request` as `warmup` says. */
export async function warmUp(origin: string, request: LoadRequest, warmup: Warmup, connections: number): Promise<void> {
  const { total } = await runAutocannon(origin, request, ['-d', String(warmup.seconds)], connections);
  if (total < warmup.requests) await runAutocannon(origin, request, ['-a', String(warmup.requests - total)], connections);
}

/** One run of autocannon, for a duration (`-d`) or a number of requests (`-a`): its requests per second and in all. */
async function runAutocannon(origin: string, request: LoadRequest, limit: string[], connections: number): Promise<{ average: number; total: number }> {
  const headers = Object.entries(request.headers).flatMap(([name, value]) => ['-H', `${name}:${value}`]);
  const args = [require.resolve('autocannon/autocannon.js'), '-c', String(connections), ...limit, '-j', ...headers, origin + request.path];
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let text = '';
    child.stdout.on('data', (chunk) => (text += chunk));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`autocannon exited with ${code}`))));
  });
  const result = JSON.parse(output) as { requests: { average: number; total: number }; statusCodeStats: Record<string, { count: number }>; errors: number };
  const answered = result.statusCodeStats[String(request.status)]?.count ?? 0;
  if (answered < result.requests.total || result.errors > 0)
    throw new Error(`${origin + request.path}: ${result.requests.total - answered} replies other than ${request.status}, ${result.errors} errors`);
  return result.requests;
}

/** Loads the server with `request` for `seconds`; answers its requests per second and the CPU time it spent per request it served. */
export async function load(server: Server, request: LoadRequest, seconds: number, connections: number): Promise<Measurement> {
  server.child.send({ measure: 'start' } satisfies ServerRequest);
  const opsPerSec = await autocannon(server.origin, request, seconds, connections);
  const usage = once(server.child, 'message') as Promise<[ServerUsage]>;
  server.child.send({ measure: 'stop' } satisfies ServerRequest);
  const [{ cpuMicros, requests }] = await usage;
  return { opsPerSec, meanMicros: 1e6 / opsPerSec, cpuMicros: cpuMicros / requests };
}
