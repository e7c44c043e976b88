/**
 * The demo as two real processes sharing one real Redis (pages, fragments and queries each in a
 * database of their own) and one file of edits: an edit saved through one process is one
 * `invalidateTags(['item:<id>'])`, and the other process then renders exactly the item's fragments
 * and the pages showing it again, while every other page it had cached is still a hit.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { caches, configureCaches } from 'cachegrain';
import { demoFragmentKeys } from './demo-keys.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoCaches } from '../examples/demo/caches.js';
import { recommendersOf, sectionItemIds, sectionPageOf, sectionPath } from '../examples/demo/catalogue.js';
import { send } from './http/client.js';
import { eventually } from './setup/eventually.js';
import { PortTakenError, startOnFreePort, stopProcess } from './setup/process.js';
import { type RedisServer, startRedisServer } from './setup/redis.js';

const builtServer = fileURLToPath(new URL('../dist/examples/demo/server.js', import.meta.url));
const dataDir = mkdtempSync(join(tmpdir(), 'cachegrain-demo-processes-'));
let redis: RedisServer;
const children: ChildProcess[] = [];
let env: NodeJS.ProcessEnv;

/** Starts the built demo on a free port (another, if that one was taken before the demo bound it); answers its base URL once it listens. */
function startDemo(): Promise<string> {
  return startOnFreePort(async (port) => {
    const child = spawn(process.execPath, [builtServer], { env: { ...process.env, ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let output = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk;
        if (output.includes('cachegrain demo on')) resolve();
      });
      child.stderr!.on('data', (chunk: Buffer) => (output += chunk));
      child.once('exit', (code) => {
        const message = `the demo exited with ${code}: ${output}`;
        reject(output.includes('is already in use') ? new PortTakenError(message) : new Error(message));
      });
    });
    return `http://127.0.0.1:${port}`;
  });
}

beforeAll(async () => {
  redis = await startRedisServer();
  env = {
    CACHE_URL: `${redis.url}/1`,
    FRAGMENT_CACHE_URL: `${redis.url}/2`,
    QUERY_CACHE_URL: `${redis.url}/3`,
    DEMO_EDITS_FILE: join(dataDir, 'edits.json'),
    DEMO_QUERY_DELAY_MS: '5',
  };
  await configureCaches(demoCaches(env));
}, 30_000);

afterAll(async () => {
  await caches.closeAll();
  for (const child of children) await stopProcess(child);
  await redis?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** Whether fragment `name` of item `id` is stored, by whichever demo template holds it (their keys carry its digest). */
async function has(name: string, id: number): Promise<boolean> {
  for (const key of demoFragmentKeys(name, [id])) if (await caches.get('template_fragments').hasKey(key)) return true;
  return false;
}

describe('an edit in one demo process', () => {
  it('makes the other process render exactly the fragments and pages that show the item again', async () => {
    const [editor, reader] = [await startDemo(), await startDemo()];
    const edited = 3;
    const recommender = recommendersOf(edited)[0]!;
    const showsEdited = (id: number) => id === edited || recommendersOf(edited).includes(id);
    // A book that shows neither the item nor its recommenders (every books listing holds a recommender of it).
    const bystander = sectionItemIds('books', 2).find((id) => !showsEdited(id) && !recommendersOf(id).some(showsEdited))!;
    const listing = sectionPath('books', sectionPageOf(edited));
    const elsewhere = [`/items/${bystander}`, '/items/2', '/films', '/music'];
    const showing = [`/items/${edited}`, `/items/${recommender}`, listing];
    for (const path of [...showing, ...elsewhere]) {
      expect((await send(reader, path)).status, path).toBe(200);
      // Pages are stored behind their response: wait until the reader serves each from its cache.
      await eventually(async () => expect((await send(reader, path)).headers['x-cache'], `${path} is never served from the cache`).toBe('HIT'));
    }
    const before = { recommendationsOfEdited: await has('recommendations', edited), bystanderDetail: await has('detail', bystander) };
    expect(before).toEqual({ recommendationsOfEdited: true, bystanderDetail: true });

    const saved = await send(editor, `/items/${edited}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'title=Renamed+Across+Processes&price=9.50&description=Rewritten',
    });
    expect(saved.status).toBe(303);

    for (const [name, id] of [
      ['card', edited],
      ['detail', edited],
      ['recommendations', recommender],
      ['card', recommender],
      ['detail', recommender],
    ] as const) {
      expect(await has(name, id), `${name} ${id} after the edit`).toBe(false);
    }
    for (const [name, id] of [
      ['recommendations', edited],
      ['detail', bystander],
      ['recommendations', bystander],
    ] as const) {
      expect(await has(name, id), `${name} ${id} after the edit`).toBe(true);
    }
    for (const path of showing) {
      const page = await send(reader, path);
      expect(page.headers['x-cache'], path).toBe('MISS');
      expect(page.text, path).toContain('Renamed Across Processes');
    }
    for (const path of elsewhere) expect((await send(reader, path)).headers['x-cache'], path).toBe('HIT');
  }, 60_000);
});
