/**
 * The structural limits the source is held to, so that they stay met: no file in src/ over 500
 * lines, no class over 400, no circle among their modules' imports, type-only ones included,
 * folders that depend one way (each imports only from the layers below it), and no function, method
 * or constructor taking more than four positional parameters.
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
 * by something outside the project (a template's call, a framework's middleware), or they run on
 * every call of a hot path, where one object of arguments would be built each time.
 */
/** Why every cache operation's own arguments pass through its observation as they came. */
const OPERATION_CALL =
  "each public cache operation's own call (the cache, the operation, the method that answers it and its arguments): collected, an object would be built for every call, observed or not";

const LONG_SIGNATURES_ALLOWED: Record<string, string> = {
  'src/fragments/render.ts FragmentRender.keptHitVaryingOn1': HIT_CALL,
  'src/fragments/render.ts FragmentRender.keptHitVaryingOn2': HIT_CALL,
  'src/fragments/render.ts FragmentRender.keptHitVaryingOn3': HIT_CALL,
  'src/fragments/render.ts FragmentRender.keptHitVaryingOnMany': HIT_CALL,
  'src/engines/pug-render.ts PugRender.kept':
    "the arguments of a template's `+cache(timeout, name, …)` as it passes them, counted, not collected: a rest array would be built on every hit",
  'src/engines/ejs-render.ts EjsRender.cacheDigested':
    'the arguments of a rewritten `cache(…)` call as the template passes them, after its digest key: the same as `cache`, which takes no digest',
  'src/observation/observation.ts instrument': OPERATION_CALL,
  'src/observation/observation.ts observe': OPERATION_CALL,
  'src/pages/page-cache.ts PageCache.fetchOrContinue':
    "a framework's middleware arguments (request, response, next), and what the phase does on a miss and on a hit: as one object, it would be built for every request",
};

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
 * The modules of src/ that `file` imports or re-exports, in source order. Type-only
 * imports count too: a circle of types still means neither module can be read without the other.
 */
function imports(file: string): string[] {
  const source = parsed.get(file)!;
  const imported: string[] = [];
  for (const statement of source.statements) {
    const specifier = ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement) ? statement.moduleSpecifier : undefined;
    const target = specifier !== undefined && ts.isStringLiteral(specifier) ? moduleNamed(file, specifier.text) : undefined;
    if (target !== undefined) imported.push(target);
  }
  return imported;
}

/** The module of src/ that `specifier`, written in `file`, names; undefined for a package or a file elsewhere. */
function moduleNamed(file: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const target = relative(root, resolve(root, dirname(file), specifier.replace(/\.js$/, '.ts')))
    .split('\\')
    .join('/');
  return parsed.has(target) ? target : undefined;
}

/**
 * The folders of src/ by layer, bottom to top: a module imports only from its own folder or from a
 * folder of a lower layer, so each layer can be read, and tested, knowing only those below it.
 * Folders of one layer stand side by side and import nothing of each other. `.` is src/ itself.
 */
const LAYERS: ReadonlyArray<readonly string[]> = [
  ['errors', 'memos'], // the errors thrown and how a message shows what it refuses; bounded memos and the process memos' one reset
  ['options', 'keys'], // the rules options are checked by; cache keys, md5, a batch grouped by where each item goes
  ['store', 'headers'], // what a store holds and answers (entries, the backend primitives, the in-process contract, made keys, call options, the clock); Cache-Control, Vary, conditional GET and the view decorators
  ['observation'], // counts, diagnostics channels, the tracer's slot; how a cache reports what went wrong
  ['encoding', 'cacheability'], // values to payloads and back; the record, the named cache contexts, the request scope
  ['flight', 'tags'],
  ['cache'], // BaseCache and its parts, on the tags and flights it drives; what it tells its invalidation listeners
  ['l1', 'edge'], // the L1 a cache is composed with; the edges in front, purged by one of a cache's invalidation listeners
  ['backends'],
  ['config'], // the caches registry
  ['holes', 'digests'],
  ['fragments'],
  ['pages'], // the page cache
  ['dashboard'],
  ['http'], // cachegrain/http: the page cache, the header utilities and the dashboard in one entry
  ['engines', 'frameworks'],
  ['cli', 'opentelemetry', '.'],
];
const layerOf = new Map(LAYERS.flatMap((folders, layer) => folders.map((folder) => [folder, layer] as const)));

/** The folder of src/ that holds `file`: `.` for src/ itself. */
function folderOf(file: string): string {
  const parts = file.split('/');
  return parts.length > 2 ? parts[1]! : '.';
}

/**
 * Every module of src/ that `file` depends on: what its import and export declarations name, and
 * what it loads later (`import()`) or names only as a type (`typeof import()`), since a folder that
 * reaches up by any of them still cannot be read without the one above.
 */
function dependencies(file: string): string[] {
  const source = parsed.get(file)!;
  const named: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier))
      named.push(node.moduleSpecifier.text);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0]))
      named.push(node.arguments[0].text);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal))
      named.push(node.argument.literal.text);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return named.map((specifier) => moduleNamed(file, specifier)).filter((target) => target !== undefined);
}

/** Which folders each folder of src/ imports from, its own aside. */
function folderImports(): Map<string, string[]> {
  const graph = new Map<string, Set<string>>();
  for (const file of files) {
    const from = folderOf(file);
    const to = graph.get(from) ?? graph.set(from, new Set()).get(from)!;
    for (const target of dependencies(file)) if (folderOf(target) !== from) to.add(folderOf(target));
  }
  return new Map([...graph].map(([folder, targets]) => [folder, [...targets].sort()]));
}

/** Every circle in `graph`, each as its nodes in order, back to the first. */
function circlesIn(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const circles: string[][] = [];
  const done = new Set<string>();
  const path: string[] = [];
  const onPath = new Set<string>();
  const walk = (node: string): void => {
    path.push(node);
    onPath.add(node);
    for (const next of graph.get(node) ?? []) {
      if (onPath.has(next)) circles.push([...path.slice(path.indexOf(next)), next]);
      else if (!done.has(next)) walk(next);
    }
    path.pop();
    onPath.delete(node);
    done.add(node);
  };
  for (const node of graph.keys()) if (!done.has(node)) walk(node);
  return circles;
}

/** Every circle of imports, each as its files in import order, back to the first. */
function importCircles(): string[][] {
  return circlesIn(new Map(files.map((file) => [file, imports(file)])));
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

  it('gives every folder of src/ a layer', () => {
    expect([...new Set(files.map(folderOf))].filter((folder) => !layerOf.has(folder))).toEqual([]);
  });

  it('imports from the same folder or a lower layer only, type imports included', () => {
    const upward = files.flatMap((file) =>
      dependencies(file)
        .filter((target) => folderOf(target) !== folderOf(file) && !(layerOf.get(folderOf(target))! < layerOf.get(folderOf(file))!))
        .map(
          (target) =>
            `${file} → ${target} (${folderOf(file)}, layer ${layerOf.get(folderOf(file))}, imports ${folderOf(target)}, layer ${layerOf.get(folderOf(target))})`,
        ),
    );
    expect(upward).toEqual([]);
  });

  it('has no circle between folders', () => {
    expect(circlesIn(folderImports()).map((circle) => circle.join(' → '))).toEqual([]);
  });
});
