/**
 * The manual's examples as files: a fenced block, in README.md or a guide of docs/, whose line before
 * it names a file in backticks (`` `app.mjs`: a page cached… ``) is that file's text, written as it
 * is into an application folder outside the repository whose `node_modules` holds cachegrain (the
 * built package) and what the repository has installed, so an example runs as a user who installed
 * it would run it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fencedBlocks, manualFiles, manualText, root } from './manual.js';
import { freePort } from './process.js';

/** A named block of the manual: its text, the file it is in and the line of its opening fence. */
interface ManualExample {
  text: string;
  file: string;
  line: number;
}

/** Every named block of the manual, by name; a name shown in two places is refused, naming both. */
function manualExamples(): Map<string, ManualExample> {
  const examples = new Map<string, ManualExample>();
  for (const file of manualFiles()) {
    const lines = manualText(file).split('\n');
    for (const { indent, open, close } of fencedBlocks(lines)) {
      let before = open - 1;
      while (before >= 0 && lines[before]!.trim() === '') before--;
      const named = before >= 0 ? /^ *`([\w./-]+\.\w+)`:/.exec(lines[before]!) : null;
      if (named === null) continue;
      const name = named[1]!;
      const earlier = examples.get(name);
      if (earlier !== undefined) throw new Error(`the manual shows \`${name}\` twice: ${earlier.file}, line ${earlier.line}, and ${file}, line ${open + 1}`);
      // A block inside a list item is read without that indent.
      const text = lines.slice(open + 1, close).map((line) => (line.startsWith(indent) ? line.slice(indent.length) : line));
      examples.set(name, { text: text.join('\n') + '\n', file, line: open + 1 });
    }
  }
  return examples;
}

/** Every named file of the manual, by name: its text. */
export function readmeFiles(): Map<string, string> {
  return new Map([...manualExamples()].map(([name, example]) => [name, example.text]));
}

/** Where the manual shows the file `name`: `docs/pages.md, the block at line 40`. */
export function whereShown(name: string): string {
  const example = manualExamples().get(name);
  if (example === undefined) throw new Error(`the manual (${manualFiles().join(', ')}) has no block named \`${name}\``);
  return `${example.file}, the block at line ${example.line}`;
}

/** An application folder holding `names` from the manual, with cachegrain and the repository's packages installed. */
export function readmeApp(names: readonly string[]): { dir: string; remove(): void } {
  const files = readmeFiles();
  const dir = mkdtempSync(join(tmpdir(), 'cachegrain-readme-'));
  const modules = join(dir, 'node_modules');
  mkdirSync(modules);
  for (const entry of readdirSync(join(root, 'node_modules'))) {
    if (entry.startsWith('.')) continue;
    symlinkSync(join(root, 'node_modules', entry), join(modules, entry));
  }
  symlinkSync(root, join(modules, 'cachegrain'));
  for (const name of names) {
    const text = files.get(name);
    if (text === undefined) throw new Error(`the manual (${manualFiles().join(', ')}) has no block named \`${name}\` (found: ${[...files.keys()].join(', ')})`);
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A manual's app started as `node <script>` from its own folder on a free PORT; resolves once it answers. */
export async function startReadmeApp(
  dir: string,
  script: string,
  env: Record<string, string> = {},
): Promise<{ url: string; child: ChildProcess; stop(): Promise<void> }> {
  const port = await freePort();
  const child = spawn(process.execPath, [script], { cwd: dir, env: { ...process.env, ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${script} (${whereShown(script)}) exited with ${child.exitCode}:\n${output}`);
    try {
      // A path no example serves: the probe must not render or store one of the example's pages.
      await fetch(`${url}/.well-known/readme-probe`);
      break;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return {
    url,
    child,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * Runs `node <args>` in a manual's app folder, as the user would from a shell, and answers its exit
 * code and output. A process still running `budgetMs` after it started is killed, and its code is
 * null: the examples must end by themselves. The runner's own variables are left out, so that a test
 * runner started there is a fresh one, and its output is plain text.
 */
export async function runInReadmeApp(dir: string, args: string[], budgetMs: number): Promise<{ code: number | null; output: string }> {
  const own = Object.entries(process.env).filter(([name]) => !name.startsWith('VITEST') && !['NODE_OPTIONS', 'FORCE_COLOR'].includes(name));
  const env = { ...Object.fromEntries(own), NO_COLOR: '1' };
  const child = spawn(process.execPath, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const overdue = setTimeout(() => child.kill('SIGKILL'), budgetMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
  clearTimeout(overdue);
  return { code, output };
}
