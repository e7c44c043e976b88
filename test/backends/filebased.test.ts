import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { FileBasedCache, KeyNotFoundError } from '../../src/index.js';
import { md5 } from '../../src/keys/hash.js';
import { describeBackend } from '../kit/backend.js';
import { stopProcess } from '../setup/process.js';
import { sleep } from '../setup/sleep.js';

const root = mkdtempSync(join(tmpdir(), 'cachegrain-filebased-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describeBackend('filebased', {
  make: (overrides) => new FileBasedCache({ location: join(root, 'conformance'), ...overrides }),
  traits: { culling: { 3: 29, 0: 19 } },
});

/** A process of its own running `body` (a module with FileBasedCache at hand), spoken to a line at a time. */
interface Script {
  /** Every line it has printed so far. */
  lines: string[];
  /** The first line printed (already or later) that `matches`; rejects if the process ends without one. */
  line(matches: (line: string) => boolean): Promise<string>;
  send(line: string): void;
  stderr(): string;
}

const scripts: ChildProcess[] = [];
afterAll(() => Promise.all(scripts.map((child) => stopProcess(child))));

/**
 * Starts `body` in a new `node --import tsx` process (which can take seconds on a busy machine). It
 * prints `ready` once up, and has `nextLine(text)` (resolves when that line arrives on stdin) and
 * `done()` (lets the process end).
 */
function startScript(body: string): Script {
  const source = `
    import { createInterface } from 'node:readline';
    import { FileBasedCache } from ${JSON.stringify(new URL('../../src/index.ts', import.meta.url).pathname)};
    const input = createInterface({ input: process.stdin });
    const nextLine = (text) => new Promise((resolve) => input.on('line', (line) => line === text && resolve()));
    const done = () => input.close();
    console.log('ready');
    ${body}
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', source], { stdio: ['pipe', 'pipe', 'pipe'] });
  scripts.push(child);
  const lines: string[] = [];
  let stderr = '';
  let closed = false;
  const wake: Array<() => void> = [];
  const wakeAll = () => wake.splice(0).forEach((resolve) => resolve());
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    wakeAll();
  });
  child.once('close', () => {
    closed = true;
    wakeAll();
  });
  return {
    lines,
    async line(matches) {
      for (;;) {
        const found = lines.find(matches);
        if (found !== undefined) return found;
        if (closed) throw new Error(`the script process ended (${child.exitCode ?? child.signalCode}) without the line awaited:\n${stderr}`);
        await new Promise<void>((resolve) => wake.push(resolve));
      }
    },
    send: (line) => child.stdin!.write(`${line}\n`),
    stderr: () => stderr,
  };
}

function fileOf(cache: FileBasedCache): string {
  const files = readdirSync(cache.directory).filter((name) => name.endsWith('.cache'));
  expect(files).toHaveLength(1);
  return join(cache.directory, files[0]!);
}

describe('filebased', () => {
  it('creates its directory, nested, with mode 0700', async () => {
    const cache = new FileBasedCache({ location: join(root, 'made', 'deep') });
    await cache.set('k', 'v');
    expect(statSync(join(root, 'made', 'deep')).mode & 0o777).toBe(0o700);
  });

  it('reads a truncated file as a miss and removes it', async () => {
    const cache = new FileBasedCache({ location: join(root, 'truncated') });
    await cache.set('k', { some: 'value', list: [1, 2, 3] });
    const path = fileOf(cache);
    const whole = await readFile(path);
    await writeFile(path, whole.subarray(0, whole.length - 3));
    expect(await cache.get('k')).toBeUndefined();
    expect(readdirSync(cache.directory)).toEqual([]);
  });

  it('reads a file of garbage or an empty file as a miss', async () => {
    const cache = new FileBasedCache({ location: join(root, 'garbage') });
    await cache.set('k', 'v');
    const path = fileOf(cache);
    await writeFile(path, 'not a cache file at all');
    expect(await cache.get('k', 'default')).toBe('default');
    await cache.set('k', 'v');
    await writeFile(path, '');
    expect(await cache.hasKey('k')).toBe(false);
    expect(await cache.add('k', 'fresh')).toBe(true);
    expect(await cache.get('k')).toBe('fresh');
  });

  it('clear leaves files that are not its own alone', async () => {
    const cache = new FileBasedCache({ location: join(root, 'foreign') });
    await cache.set('k', 'v');
    writeFileSync(join(cache.directory, 'notes.txt'), 'mine');
    await cache.clear();
    expect(readdirSync(cache.directory)).toEqual(['notes.txt']);
  });

  it('leaves no temp files behind', async () => {
    const cache = new FileBasedCache({ location: join(root, 'temp') });
    await Promise.all(Array.from({ length: 20 }, (_, i) => cache.set(`k${i % 5}`, i)));
    await Promise.all(Array.from({ length: 10 }, (_, i) => cache.add(`a${i % 2}`, i)));
    expect(readdirSync(cache.directory).filter((name) => !name.endsWith('.cache'))).toEqual([]);
  });

  it('never lets a reader in another process see a torn file', async () => {
    const directory = join(root, 'processes');
    const writer = `
      const cache = new FileBasedCache({ location: ${JSON.stringify(directory)} });
      await nextLine('go');
      for (let i = 0; i < 200; i++) await cache.set('shared', { i, pad: 'x'.repeat(20000 + (i % 7) * 5000) });
      console.log('written');
      done();
    `;
    const cache = new FileBasedCache({ location: directory });
    await cache.set('shared', { i: -1, pad: '' });
    const writing = startScript(writer);
    await writing.line((line) => line === 'ready');
    writing.send('go');
    let reads = 0;
    let written = false;
    void writing.line((line) => line === 'written').finally(() => (written = true));
    while (!written) {
      const value = await cache.get<{ i: number; pad: string }>('shared');
      expect(value).toBeDefined();
      expect(value!.pad.length === 0 || value!.pad.length >= 20000).toBe(true);
      reads++;
    }
    await writing.line((line) => line === 'written');
    expect(reads).toBeGreaterThan(0);
    expect((await cache.get<{ i: number }>('shared'))!.i).toBe(199);
  }, 120_000);

  it('reads a file damaged in place (same length) as a miss and removes it; nothing rejects', async () => {
    const cache = new FileBasedCache({ location: join(root, 'damaged') });
    const damage = async (offsetFromEnd: number) => {
      const path = fileOf(cache);
      const bytes = await readFile(path);
      for (let i = bytes.length - offsetFromEnd; i < bytes.length - offsetFromEnd + 8; i++) bytes[i]! ^= 0xff;
      await writeFile(path, bytes);
    };
    for (const offsetFromEnd of [8, 40, 200]) {
      await cache.set('k', { some: 'value', pad: 'x'.repeat(300), n: 7 });
      await damage(offsetFromEnd);
      expect(await cache.get('k', 'default')).toBe('default');
      expect(readdirSync(cache.directory).filter((name) => name.endsWith('.cache'))).toEqual([]);
    }
    const calls: Array<[string, () => Promise<unknown>, unknown]> = [
      ['getOrSet', () => cache.getOrSet('k', () => 'computed'), 'computed'],
      ['getMany', async () => (await cache.getMany(['k'])).size, 0],
      ['hasKey', () => cache.hasKey('k'), false],
      ['touch', () => cache.touch('k', 60), false],
      ['add', () => cache.add('k', 'added'), true],
    ];
    for (const [name, call, expected] of calls) {
      await cache.set('k', 'stored value');
      await damage(8);
      expect(await call(), name).toEqual(expected);
    }
    await cache.set('n', 41);
    const path = join(cache.directory, `${md5(cache.makeKey('n'))}.cache`);
    const bytes = await readFile(path);
    bytes[bytes.length - 1]! ^= 0x01;
    await writeFile(path, bytes);
    await expect(cache.incr('n')).rejects.toThrow(KeyNotFoundError);
  });

  it('lets exactly one of four processes add each key over an expired file', async () => {
    const directory = join(root, 'add-race');
    const seeder = new FileBasedCache({ location: directory });
    seeder.now = () => Date.now() / 1000 - 1000;
    const keys = Array.from({ length: 150 }, (_, i) => `key-${i}`);
    for (const key of keys) await seeder.set(key, 'expired', 10);
    const adder = (id: number) => `
      const cache = new FileBasedCache({ location: ${JSON.stringify(directory)} });
      const keys = ${JSON.stringify(keys)};
      await nextLine('go');
      const won = [];
      for (const key of keys) if (await cache.add(key, 'process ${id}', 60)) won.push(key);
      console.log(JSON.stringify(won));
      done();
    `;
    const adders = [1, 2, 3, 4].map((id) => startScript(adder(id)));
    // All four start adding together only once all four are up, however long a start takes.
    await Promise.all(adders.map((process) => process.line((line) => line === 'ready')));
    for (const process of adders) process.send('go');
    const outputs = await Promise.all(adders.map(async (process) => JSON.parse(await process.line((line) => line.startsWith('['))) as string[]));
    const winners = new Map<string, number[]>();
    outputs.forEach((won, index) => won.forEach((key) => winners.set(key, [...(winners.get(key) ?? []), index + 1])));
    const reader = new FileBasedCache({ location: directory });
    for (const key of keys) {
      expect(winners.get(key), key).toHaveLength(1);
      expect(await reader.get(key)).toBe(`process ${winners.get(key)![0]}`);
    }
  }, 120_000);

  it('four processes reading while files are damaged in place: no rejection, no wrong value', async () => {
    const directory = join(root, 'damage-race');
    const writer = new FileBasedCache({ location: directory });
    const keys = Array.from({ length: 30 }, (_, i) => `key-${i}`);
    const valueOf = (key: string) => ({ key, pad: `${key}:`.repeat(200) });
    for (const key of keys) await writer.set(key, valueOf(key));
    // Each reader reads every key three ways a round, and says its counts after each round, until told to stop.
    const reader = `
      const cache = new FileBasedCache({ location: ${JSON.stringify(directory)} });
      const keys = ${JSON.stringify(keys)};
      const expected = (key) => JSON.stringify({ key, pad: (key + ':').repeat(200) });
      const counts = { hits: 0, misses: 0, rejections: 0, wrong: 0 };
      const check = (key, value) => {
        if (value === undefined) counts.misses++;
        else if (JSON.stringify(value) === expected(key)) counts.hits++;
        else counts.wrong++;
      };
      let stopped = false;
      nextLine('stop').then(() => (stopped = true));
      await nextLine('go');
      while (!stopped) {
        for (const key of keys) {
          try {
            check(key, await cache.get(key));
            const many = await cache.getMany([key]);
            check(key, many.get(key));
            check(key, await cache.getOrSet(key, () => JSON.parse(expected(key)), 60));
          } catch (error) {
            counts.rejections++;
            console.error(String(error));
          }
        }
        console.log(JSON.stringify(counts));
      }
      console.log('stopped');
      done();
    `;
    const readsEach = 3 * keys.length * 3;
    const minimumDamage = 150;
    const deadline = Date.now() + 100_000;
    const readers = [1, 2, 3, 4].map(() => startScript(reader));
    await Promise.all(readers.map((process) => process.line((line) => line === 'ready')));
    for (const process of readers) process.send('go');
    const countsOf = (process: Script) => {
      const last = process.lines.findLast((line) => line.startsWith('{'));
      return last === undefined
        ? { hits: 0, misses: 0, rejections: 0, wrong: 0 }
        : (JSON.parse(last) as { hits: number; misses: number; rejections: number; wrong: number });
    };
    const readsOf = (process: Script) => Object.values(countsOf(process)).reduce((a, b) => a + b);
    let damaged = 0;
    // Damage goes on until every reader has read enough beside it, and there has been enough of it.
    while (damaged < minimumDamage || readers.some((process) => readsOf(process) < readsEach)) {
      if (Date.now() > deadline) throw new Error(`no end in 100 s: ${damaged} files damaged, reads ${readers.map(readsOf).join(', ')}`);
      const key = keys[damaged % keys.length]!;
      const path = join(directory, `${md5(writer.makeKey(key))}.cache`);
      try {
        const bytes = await readFile(path);
        if (damaged % 5 === 4) {
          await writeFile(path, bytes.subarray(0, Math.floor(bytes.length / 2)));
        } else {
          const at = Math.floor(Math.random() * bytes.length);
          bytes[at]! ^= 0x5a;
          await writeFile(path, bytes);
        }
        damaged++;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        await writer.set(key, valueOf(key));
      }
      await sleep(2);
    }
    for (const process of readers) process.send('stop');
    await Promise.all(readers.map((process) => process.line((line) => line === 'stopped')));
    const totals = { hits: 0, misses: 0, rejections: 0, wrong: 0 };
    for (const process of readers) {
      const counts = countsOf(process);
      for (const name of Object.keys(totals) as Array<keyof typeof totals>) totals[name] += counts[name];
    }
    expect(totals.rejections, readers.map((process) => process.stderr()).join('')).toBe(0);
    expect(totals.wrong).toBe(0);
    expect(totals.hits).toBeGreaterThan(0);
    expect(totals.misses).toBeGreaterThan(0);
  }, 120_000);

  it('needs a location', () => {
    expect(() => new FileBasedCache({ alias: 'files' })).toThrow("cache 'files': the filebased backend needs a location");
  });
});
