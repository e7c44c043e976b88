import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { FileBasedCache } from '../../src/index.js';
import { describeBackend } from '../kit/backend.js';

const root = mkdtempSync(join(tmpdir(), 'cachegrain-filebased-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describeBackend('filebased', {
  make: (overrides) => new FileBasedCache({ location: join(root, 'conformance'), ...overrides }),
  traits: { culling: { 3: 29, 0: 19 } },
});

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
      import { FileBasedCache } from ${JSON.stringify(new URL('../../src/index.ts', import.meta.url).pathname)};
      const cache = new FileBasedCache({ location: ${JSON.stringify(directory)} });
      for (let i = 0; i < 200; i++) await cache.set('shared', { i, pad: 'x'.repeat(20000 + (i % 7) * 5000) });
    `;
    const cache = new FileBasedCache({ location: directory });
    await cache.set('shared', { i: -1, pad: '' });
    const run = promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', writer]);
    let reads = 0;
    let done = false;
    void run.finally(() => (done = true));
    while (!done) {
      const value = await cache.get<{ i: number; pad: string }>('shared');
      expect(value).toBeDefined();
      expect(value!.pad.length === 0 || value!.pad.length >= 20000).toBe(true);
      reads++;
    }
    await run;
    expect(reads).toBeGreaterThan(0);
    expect((await cache.get<{ i: number }>('shared'))!.i).toBe(199);
  });

  it('needs a location', () => {
    expect(() => new FileBasedCache({ alias: 'files' })).toThrow("cache 'files': the filebased backend needs a location");
  });
});
