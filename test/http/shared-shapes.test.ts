/**
 * The records the page cache keeps per URL share their hidden classes, however many URLs it stores:
 * a record with a hidden class of its own costs its making, its memory, and a megamorphic read of
 * each of its fields on every hit that reads it (see src/store/copies.ts). Checked in a process of
 * its own, run with V8's natives syntax, after enough misses for V8 to optimize the code that makes
 * the records. So do the responses of misses whose end waits for their store: a response turned into
 * a dictionary makes every later read of it slower, Node's and the framework's.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { moduleArguments } from '../setup/module-process.js';

const fixture = fileURLToPath(new URL('./fixtures/shared-shapes.ts', import.meta.url));

it("gives the pages and header lists it stores for the long tail of a site's URLs one hidden class each, and keeps a waiting MISS's response fast", async () => {
  const child = spawn(process.execPath, ['--allow-natives-syntax', ...moduleArguments(fixture)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  expect(code, output).toBe(0);
  expect(JSON.parse(output.trim().split('\n').at(-1)!)).toEqual({ lists: true, pages: true, waitingResponses: true });
}, 60_000);
