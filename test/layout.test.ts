/**
 * The structural limits the source is held to, so that they stay met: no file in src/ or adapters/
 * over 500 lines, no class over 400, no circle among their modules' imports, type-only ones
 * included, and no function, method or constructor taking more than four positional parameters.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const MAX_FILE_LINES = 500;
const MAX_CLASS_LINES = 400;
const MAX_PARAMETERS = 4;

const HIT_CALL =
  "a compiled template's hit call, for each hit: the tag's evaluated timeout, name and vary-on values one by one, then its keywords and digest key; grouped, they would be an object built on every hit";

/**
 * The signatures allowed more parameters than `MAX_PARAMETERS`, each with why: their shape is fixed
 * by something outside the project.
 */
const LONG_SIGNATURES_ALLOWED: Record<string, string> = {
  'src/fragments/render.ts FragmentRender.hit1': HIT_CALL,
  'src/fragments/render.ts FragmentRender.hit2': HIT_CALL,
  'src/fragments/render.ts FragmentRender.hit3': HIT_CALL,
  'src/fragments/render.ts FragmentRender.hitMany': HIT_CALL,
  'adapters/pug.ts PugRender.kept':
    "the arguments of a template's `+cache(timeout, name, …)` as it passes them, counted, not collected: a rest array would be built on every hit",
  'adapters/ejs.ts EjsRender.cacheDigested':
    'the arguments of a rewritten `cache(…)` call as the template passes them, after its digest key: the same as `cache`, which takes no digest',
  'src/http/page-cache.ts PageCache.fetchOrContinue':
    "a framework's middleware arguments (request, response, next), and what the phase does on a miss and on a hit: as one object, it would be built for every request",
};

/** Every TypeScript module of src/ and adapters/, by its path from the project root. */
function sourceFiles(): string[] {
  return ['src', 'adapters'].flatMap((folder) =>
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
 * A callback whose parameters its caller fixes: `String.prototype.replace` hands a replacer the match,
 * each group, the offset and the string, however many the pattern has.
 */
function isReplacer(node: ts.Node): boolean {
  const call = node.parent;
  return (
    call !== undefined &&
    ts.isCallExpression(call) &&
    call.arguments.includes(node as ts.Expression) &&
    ts.isPropertyAccessExpression(call.expression) &&
    ['replace', 'replaceAll'].includes(call.expression.name.text)
  );
}

/** The name a signature is known by: `Class.method`, `function`, or the variable or property it is assigned to. */
function signatureName(node: ts.SignatureDeclaration, source: ts.SourceFile): string {
  let owner: ts.Node | undefined = node.parent;
  while (owner !== undefined && !ts.isClassLike(owner) && !ts.isInterfaceDeclaration(owner)) owner = owner.parent;
  const ownerName = owner !== undefined && (ts.isClassLike(owner) || ts.isInterfaceDeclaration(owner)) ? owner.name?.text : undefined;
  const parent = node.parent;
  const own = ts.isConstructorDeclaration(node)
    ? 'constructor'
    : (node.name?.getText(source) ??
      (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent) ? parent.name.getText(source) : '(anonymous)'));
  return ownerName === undefined || !(ts.isClassElement(node) || ts.isTypeElement(node)) ? own : `${ownerName}.${own}`;
}

/**
 * Each function, method and constructor (and each method of an interface) taking more than
 * `MAX_PARAMETERS` positional parameters, a constructor's parameter properties included; a
 * `this` parameter is no parameter, and a rest parameter counts as one.
 */
function longSignatures(source: ts.SourceFile): Array<{ name: string; count: number; from: number }> {
  const found: Array<{ name: string; count: number; from: number }> = [];
  const visit = (node: ts.Node): void => {
    if (
      (ts.isFunctionDeclaration(node) ||
        ts.isFunctionExpression(node) ||
        ts.isArrowFunction(node) ||
        ts.isMethodDeclaration(node) ||
        ts.isMethodSignature(node) ||
        ts.isConstructorDeclaration(node)) &&
      !isReplacer(node)
    ) {
      const count = node.parameters.filter((parameter) => !(ts.isIdentifier(parameter.name) && parameter.name.text === 'this')).length;
      if (count > MAX_PARAMETERS) {
        found.push({ name: signatureName(node, source), count, from: source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1 });
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/**
 * The modules of src/ and adapters/ that `file` imports or re-exports, in source order. Type-only
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

describe('the layout of src/ and adapters/', () => {
  it('finds the modules it checks', () => {
    expect(files).toContain('src/index.ts');
    expect(files).toContain('adapters/express.ts');
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

  it(`takes at most ${MAX_PARAMETERS} positional parameters in every function, method and constructor`, () => {
    const tooMany = files.flatMap((file) =>
      longSignatures(parsed.get(file)!)
        .filter(({ name }) => !(`${file} ${name}` in LONG_SIGNATURES_ALLOWED))
        .map(({ name, count, from }) => `${file}:${from} ${name}: ${count} parameters`),
    );
    expect(tooMany).toEqual([]);
  });

  it('has no circle of imports', () => {
    expect(importCircles().map((circle) => circle.join(' → '))).toEqual([]);
  });
});
