import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { now } from '../src/store/clock.js';

const tsx = createRequire(import.meta.url).resolve('tsx');
const afterIdle = fileURLToPath(new URL('./fixtures/clock-after-idle.ts', import.meta.url));

describe('the expiry clock', () => {
  it('reads the time afresh in a callback woken by I/O after an idle spell', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', tsx, afterIdle]);
    expect(Number(stdout)).toBeGreaterThanOrEqual(0.2);
  });

  it('serves one reading to the calls of one turn', () => {
    const first = now();
    const readings = Array.from({ length: 500 }, () => now());
    expect(new Set(readings)).toEqual(new Set([first]));
  });
});
