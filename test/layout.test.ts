/**
 * The structural limits the source is held to, so that they stay met: no file in src/ over 500
 * lines, no class over 400, and no circle among their modules' imports, type-only ones
 * included.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const MAX_FILE_LINES = 500;
const MAX_CLASS_LINES = 400;

/** Every TypeScript module of src/, by its path from the project root. */
function sourceFiles(): string[] {
  return ['src'].flatMap((folder) =>
    readdirSync(join(root, folder), { recursive: true, encoding: 'utf8' })
      .filter((path) => path.endsWith('.ts') && !path.endsWith('.d.ts'))
      .map((path) => join(folder, path).split('\\').join('/'))
      .sort(),
  );
}

const files = sourceFiles();
const parsed = new Map(files.map((file) => [file, ts.createSourceFile(file, readFileSync(join(root, file), 'utf8'), ts.ScriptTarget.Latest, true)]));

function lineCount(text: string): number {
  return text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
}

/** Each class, named or not, with the lines it spans (its doc comment aside). */
function classes(source: ts.SourceFile): Array<{ name: string; lines: number; from: number }> {
  const found: Array<{ name: string; lines: number; from: number }> = [];
  const visit = (node: ts.Node): void => {
    if (ts.isClassDeclaration(node) || ts.isClassExpression(node)) {
      const from = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
      const to = source.getLineAndCharacterOfPosition(node.getEnd()).line + 1;
      found.push({ name: node.name?.text ?? '(anonymous class)', lines: to - from + 1, from });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/**
 * The modules of src/ that `file` imports or re-exports, in source order. Type-only
 * imports count too: a circle of types still means neither module can be read without the other.
 */
function imports(file: string): string[] {
  const source = parsed.get(file)!;
  const imported: string[] = [];
  for (const statement of source.statements) {
    const specifier = ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement) ? statement.moduleSpecifier : undefined;
    if (specifier === undefined || !ts.isStringLiteral(specifier) || !specifier.text.startsWith('.')) continue;
    const target = relative(root, resolve(root, dirname(file), specifier.text.replace(/\.js$/, '.ts')))
      .split('\\')
      .join('/');
    if (parsed.has(target)) imported.push(target);
  }
  return imported;
}

/** Every circle of imports, each as its files in import order, back to the first. */
function importCircles(): string[][] {
  const graph = new Map(files.map((file) => [file, imports(file)]));
  const circles: string[][] = [];
  const done = new Set<string>();
  const path: string[] = [];
  const onPath = new Set<string>();
  const walk = (file: string): void => {
    path.push(file);
    onPath.add(file);
    for (const next of graph.get(file)!) {
      if (onPath.has(next)) circles.push([...path.slice(path.indexOf(next)), next]);
      else if (!done.has(next)) walk(next);
    }
    path.pop();
    onPath.delete(file);
    done.add(file);
  };
  for (const file of files) if (!done.has(file)) walk(file);
  return circles;
}

describe('the layout of src/', () => {
  it('finds the modules it checks', () => {
    expect(files).toContain('src/index.ts');
    expect(files).toContain('src/frameworks/express.ts');
  });

  it(`keeps every source file at ${MAX_FILE_LINES} lines or fewer`, () => {
    const tooLong = files
      .map((file) => ({ file, lines: lineCount(parsed.get(file)!.text) }))
      .filter(({ lines }) => lines > MAX_FILE_LINES)
      .map(({ file, lines }) => `${file}: ${lines} lines`);
    expect(tooLong).toEqual([]);
  });

  it(`keeps every class at ${MAX_CLASS_LINES} lines or fewer`, () => {
    const tooLong = files.flatMap((file) =>
      classes(parsed.get(file)!)
        .filter(({ lines }) => lines > MAX_CLASS_LINES)
        .map(({ name, lines, from }) => `${file}:${from} class ${name}: ${lines} lines`),
    );
    expect(tooLong).toEqual([]);
  });

  it('has no circle of imports', () => {
    expect(importCircles().map((circle) => circle.join(' → '))).toEqual([]);
  });
});
