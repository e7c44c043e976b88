/**
 * The README names only what the repository holds: every path under src/, test/, bench/, edge/ or
 * examples/ it names exists, and every module "How it is built" names by its file name is one of src/.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');
/** A path from the project root, not the tail of a longer one (`cachegrain/opentelemetry`, `./src`). */
const PROJECT_PATH = /(?<![\w./-])(?:src|test|bench|edge|examples)\/[\w./-]*/g;
/** A module named by its file name alone; `<engine>` stands for any name. */
const MODULE_NAME = /(?<![\w./<>-])[\w<>-]+(?:\.[\w<>-]+)*\.ts\b/g;

function section(title: string): string {
  const start = readme.indexOf(`\n## ${title}\n`);
  if (start < 0) throw new Error(`README has no section "## ${title}"`);
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

const sourceFileNames = readdirSync(join(root, 'src'), { recursive: true, encoding: 'utf8' }).map((path) => path.split('/').at(-1)!);

function namesAModule(name: string): boolean {
  const pattern = new RegExp(`^${name.replace(/[.]/g, '\\.').replace(/<[\w-]+>/g, '[\\w-]+')}$`);
  return sourceFileNames.some((file) => pattern.test(file));
}

describe('README names what the repository holds', () => {
  it('every src/, test/, bench/, edge/ and examples/ path it names exists', () => {
    const named = [...new Set(readme.match(PROJECT_PATH) ?? [])].map((path) => path.replace(/[.]$/, ''));
    expect(named.length).toBeGreaterThan(20);
    expect(named.filter((path) => !existsSync(join(root, path)))).toEqual([]);
  });

  it('every module "How it is built" names by its file name is a file of src/', () => {
    const built = section('How it is built').replace(PROJECT_PATH, '');
    const named = [...new Set(built.match(MODULE_NAME) ?? [])];
    expect(named.length).toBeGreaterThan(20);
    expect(named.filter((name) => !namesAModule(name))).toEqual([]);
  });
});
