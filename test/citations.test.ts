/**
 * The project cites no document it does not contain: a comment, a test title or the manual says the
 * rule itself, never "see the specification, section n". An RFC's section is a public document's,
 * and cited as RFC 9110 §5.6.7.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const SEARCHED = ['src', 'test', 'bench', 'examples', 'edge', 'docs', 'README.md'];
/** Files that look for the word in what is shipped, rather than cite it: the package check, and this test. */
const LOOKING_FOR_IT = new Set(['test/package/check.sh', 'test/citations.test.ts']);
const UNSHIPPED_DOCUMENT = /\bSPEC\b/;
/** A section sign that does not follow an RFC's number. */
const BARE_SECTION = /(?<!RFC \d{3,4} )§/;

function filesUnder(path: string): string[] {
  const entries = readdirSync(join(root, path), { withFileTypes: true });
  return entries.flatMap((entry) => {
    const child = `${path}/${entry.name}`;
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : filesUnder(child);
    return entry.isFile() ? [child] : [];
  });
}

function searchedFiles(): string[] {
  return SEARCHED.flatMap((path) => (path.includes('.') ? [path] : filesUnder(path))).filter((file) => !LOOKING_FOR_IT.has(file));
}

describe('what the project cites', () => {
  it('searches the files it means to', () => {
    const files = searchedFiles();
    expect(files).toContain('README.md');
    expect(files.some((file) => file.startsWith('docs/'))).toBe(true);
    expect(files).toContain('src/index.ts');
    expect(files.some((file) => file.startsWith('test/http/'))).toBe(true);
    expect(files.some((file) => file.startsWith('edge/'))).toBe(true);
  });

  it('names no document the repository does not hold, and no section of one', () => {
    const citing: string[] = [];
    for (const file of searchedFiles()) {
      const text = readFileSync(join(root, file), 'utf8');
      if (text.includes('\0')) continue;
      text.split('\n').forEach((line, index) => {
        if (UNSHIPPED_DOCUMENT.test(line) || BARE_SECTION.test(line)) citing.push(`${relative(root, join(root, file))}:${index + 1}: ${line.trim()}`);
      });
    }
    expect(citing).toEqual([]);
  });

  it('tells a citation from an RFC section', () => {
    expect(BARE_SECTION.test('dates as RFC 9110 §5.6.7 defines them')).toBe(false);
    expect(BARE_SECTION.test('contexts (§13)')).toBe(true);
    expect(UNSHIPPED_DOCUMENT.test('as the SPEC says')).toBe(true);
  });
});
