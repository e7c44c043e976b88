/**
 * How a test runs one of the repository's TypeScript modules (a fixture site) in a process of its
 * own: its build in dist/ under plain node when that build is newer than every source it was built
 * from (`npm test` builds before it tests), as a process starts in about half the time it takes under
 * tsx; else the source itself, under tsx. Either way the process runs the code as it is now.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const tsx = createRequire(import.meta.url).resolve('tsx');
/** The folders of tsconfig.build.json whose modules the fixtures may import. */
const BUILT_FROM = ['src', 'test/setup', 'test/http/fixtures'];

let newestSource: number | undefined;

/** When a source a built fixture may import last changed (read once per test file). */
function newestSourceMs(): number {
  if (newestSource !== undefined) return newestSource;
  let newest = 0;
  for (const folder of BUILT_FROM) {
    for (const path of readdirSync(join(root, folder), { recursive: true, encoding: 'utf8' })) {
      if (path.endsWith('.ts')) newest = Math.max(newest, statSync(join(root, folder, path)).mtimeMs);
    }
  }
  return (newestSource = newest);
}

/** The arguments to node that run the TypeScript module at `path`. */
export function moduleArguments(path: string): string[] {
  const built = join(root, 'dist', relative(root, path).replace(/\.ts$/, '.js'));
  if (existsSync(built) && statSync(built).mtimeMs >= newestSourceMs()) return [built];
  return ['--import', tsx, path];
}
