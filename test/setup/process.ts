/**
 * Helpers for starting test servers: free loopback ports, child processes stopped by PID, readiness
 * polls. The surprise: a port chosen free can be taken by another process (another test run) before
 * the server binds it, so a server is ready only once the one answering is known to be this child.
 */
import { type ChildProcess, spawn, type SpawnOptions } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

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

/** Whether `port` on 127.0.0.1 can be listened on right now. */
export async function portIsFree(port: number): Promise<boolean> {
  const server = createServer();
  const ok = await new Promise<boolean>((resolve) => server.once('error', () => resolve(false)).listen(port, '127.0.0.1', () => resolve(true)));
  if (ok) await new Promise((resolve) => server.close(resolve));
  return ok;
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

/** Stops a child by its PID: `signal` (SIGTERM by default), then SIGKILL if it is still there after `graceMs`. */
export async function stopProcess(child: ChildProcess, graceMs = 5000, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * SIGSTOPs a server by its PID and waits until every thread of it has stopped: a server that keeps
 * its connections open and answers nothing (SIGCONT resumes it).
 */
export async function freezeProcess(pid: number, timeoutMs = 20_000): Promise<void> {
  process.kill(pid, 'SIGSTOP');
  const threadStates = () => readdirSync(`/proc/${pid}/task`).map((task) => readFileSync(`/proc/${pid}/task/${task}/stat`, 'utf8').split(') ')[1]![0]);
  const deadline = Date.now() + timeoutMs;
  while (!threadStates().every((state) => state === 'T')) {
    if (Date.now() > deadline) throw new Error(`process ${pid} did not stop within ${timeoutMs} ms of SIGSTOP`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The port was taken by another process between choosing it and the server binding it. */
export class PortTakenError extends Error {}

/** How a starter finds a port: `freePort` unless a test of the race gives one that answers a taken port first. */
export type PortChooser = () => Promise<number>;

/**
 * Calls `startOn` with a port from `choosePort`, and again with another one when the port was taken
 * before the server bound it (a PortTakenError), up to `attempts` times.
 */
export async function startOnFreePort<T>(startOn: (port: number) => Promise<T>, choosePort: PortChooser = freePort, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOn(await choosePort());
    } catch (error) {
      if (attempt === attempts || !(error instanceof PortTakenError)) throw error;
    }
  }
}

/** A server child process: its output so far is kept for error messages. */
export interface ServerProcess {
  child: ChildProcess;
  output(): string;
}

/**
 * Starts a server process and resolves once `answersAsThisChild(pid)` says the server answering at
 * its address is this child, not another process's server on a port taken before this one bound it.
 * Rejects with a PortTakenError when the child exits saying its address is in use, and with an error
 * naming `what` when it exits otherwise or does not answer within `timeoutMs`; the child is then stopped.
 */
export async function startServerProcess(
  what: string,
  command: string,
  args: string[],
  answersAsThisChild: (pid: number) => Promise<boolean>,
  options: SpawnOptions & { timeoutMs?: number } = {},
): Promise<ServerProcess> {
  const { timeoutMs = 30_000, ...spawnOptions } = options;
  const server = startProcess(command, args, spawnOptions);
  const { child, output } = server;
  // 'close', not 'exit': the child's last words (why it exited) may still be on their way at 'exit'.
  const exited = new Promise<never>((_, reject) =>
    child.once('close', (code, signal) => {
      const message = `${what} exited (${code ?? signal}) before it was ready:\n${output()}`;
      reject(/address already in use/i.test(output()) ? new PortTakenError(message) : new Error(message));
    }),
  );
  exited.catch(() => undefined);
  const answered = (async () => {
    const deadline = Date.now() + timeoutMs;
    // Once the child has exited, `exited` tells why.
    while (child.exitCode === null && child.signalCode === null && !(await answersAsThisChild(child.pid!))) {
      if (Date.now() > deadline) throw new Error(`${what} (PID ${child.pid}) did not answer within ${timeoutMs} ms:\n${output()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    if (child.exitCode !== null || child.signalCode !== null) await exited;
  })();
  try {
    await Promise.race([answered, exited]);
  } catch (error) {
    await stopProcess(child);
    throw error;
  }
  return server;
}
