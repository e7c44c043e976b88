/**
 * `cachegrain digests [DIR] [--explain]`: the digest of every template file under a views folder
 *, as each engine's adapter computes it, with `--explain` the tree of what each depends
 * on, and every dependency that could not be resolved; exit code 1 when there is one, for CI. The
 * engines are loaded from the folder's project first (the copy the application renders with), then
 * from beside cachegrain. Handlebars partials are named by their path under DIR/partials (as
 * express-handlebars names them by default), and by their path under DIR. EJS, Pug and LiquidJS name
 * a template by its path from the working directory (`./views/page.pug`), else from DIR (their
 * `views`, `basedir`, `root`): the command, run from the folder the application starts in, names
 * each as the application does, and a digest holds the names of what it reaches.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname, join, relative, resolve, sep } from 'node:path';
import { resolvePeer } from '../backends/peer.js';
import type { TemplateFiles } from '../engines/template-files.js';
import { type DependencyNode, describeProblem, type TemplateDigestReport, type TemplateDigests } from '../digests/index.js';
import { type IO, type Parsed, printable, UserError } from './io.js';

/** How one engine digests the templates of a folder: its file extensions, and a digester made for the folder. */
interface FolderEngine {
  name: string;
  extensions: readonly string[];
  /** Digests a template of `dir`, named by its path there. */
  digester(dir: string, files: readonly string[]): Promise<(file: string) => TemplateDigestReport>;
}

const ENGINES: readonly FolderEngine[] = [
  {
    name: 'nunjucks',
    extensions: ['.njk', '.nunjucks'],
    async digester(dir) {
      const nunjucks = enginePackage<typeof import('nunjucks')>('nunjucks', dir);
      const { installCacheTag, templateDigest } = await import('../engines/nunjucks.js');
      const env = installCacheTag(new nunjucks.Environment(new nunjucks.FileSystemLoader(dir)), { digests: true });
      return (file) => templateDigest(env, file);
    },
  },
  {
    name: 'handlebars',
    extensions: ['.hbs', '.handlebars'],
    async digester(dir, files) {
      const handlebars = enginePackage<typeof import('handlebars')>('handlebars', dir).create();
      const { installCacheHelper, templateDigest } = await import('../engines/handlebars.js');
      installCacheHelper(handlebars, { digests: true });
      const withoutExtension = (file: string) => file.slice(0, -extname(file).length);
      for (const file of files) {
        const source = readFileSync(join(dir, file), 'utf8');
        handlebars.registerPartial(withoutExtension(file), source);
        if (file.startsWith('partials/')) handlebars.registerPartial(withoutExtension(file.slice('partials/'.length)), source);
      }
      return (file) => templateDigest(handlebars, handlebars.compile(readFileSync(join(dir, file), 'utf8'), { srcName: file } as CompileOptions));
    },
  },
  {
    name: 'eta',
    extensions: ['.eta'],
    async digester(dir) {
      const { Eta } = enginePackage<typeof import('eta')>('eta', dir);
      const { templateDigest } = await import('../engines/eta.js');
      const eta = new Eta({ views: dir });
      return (file) => templateDigest(eta, file);
    },
  },
  moduleEngine('ejs', '.ejs', async (ejs) => {
    const { installCacheTag } = await import('../engines/ejs.js');
    const { ejsDigests } = await import('../engines/ejs-digests.js');
    installCacheTag(ejs as Parameters<typeof installCacheTag>[0], { digests: true });
    return ejsDigests(ejs)!;
  }),
  moduleEngine('pug', '.pug', async (pug) => {
    const { installCacheTag } = await import('../engines/pug.js');
    const { pugDigests } = await import('../engines/pug-digests.js');
    installCacheTag(pug as Parameters<typeof installCacheTag>[0], { digests: true });
    return pugDigests(pug)!;
  }),
  {
    name: 'liquid',
    extensions: ['.liquid'],
    async digester(dir) {
      const { Liquid } = enginePackage<typeof import('liquidjs')>('liquidjs', dir);
      const { installCacheTag } = await import('../engines/liquid.js');
      const { liquidDigests } = await import('../engines/liquid-digests.js');
      return byPath(liquidDigests(installCacheTag(new Liquid({ root: dir, extname: '.liquid' }), { digests: true }))!, dir);
    },
  },
];

/** An engine that is a module (EJS, Pug) whose templates are named by path: `digestsOf` installs the tag with digests on it. */
function moduleEngine(name: string, extension: string, digestsOf: (engine: object) => Promise<TemplateDigests<TemplateFiles>>): FolderEngine {
  return { name, extensions: [extension], digester: async (dir) => byPath(await digestsOf(enginePackage<object>(name, dir)), dir) };
}

/**
 * Digests the templates of `dir` for an engine that names each by its path (from the working
 * directory, else from its folders), with `dir` as its folder: a name written `/partials/card` or
 * not found beside its template is looked for there.
 */
function byPath(digests: TemplateDigests<TemplateFiles>, dir: string): (file: string) => TemplateDigestReport {
  digests.library.useFolders([dir]);
  return (file) => digests.report(digests.library.nameOfFile(join(dir, file)));
}

export async function printDigests(args: Parsed, io: IO): Promise<number> {
  const dir = resolve(args.positional[0] ?? '.');
  if (!isFolder(dir)) throw new UserError(`${printable(dir)} is not a folder: name the folder your templates are in`);
  const files = templateFiles(dir);
  const engines = ENGINES.map((engine) => ({ engine, files: files.filter((file) => engine.extensions.includes(extname(file))) })).filter(
    ({ files: found }) => found.length > 0,
  );
  if (engines.length === 0) {
    const extensions = ENGINES.flatMap((engine) => engine.extensions).join(', ');
    throw new UserError(`no templates in ${printable(dir)} (files ending in ${extensions})`);
  }
  const unresolved = new Set<string>();
  for (const { engine, files: found } of engines) {
    const digest = await engine.digester(dir, found);
    for (const file of found) {
      let report: TemplateDigestReport;
      try {
        report = digest(file);
      } catch (error) {
        unresolved.add(`${file}: cannot be read: ${(error as Error)?.message ?? String(error)}`);
        continue;
      }
      io.out.write(`${report.digest}  ${printable(file)}\n`);
      if (args.explain) io.out.write(tree(report.dependencies, '    '));
      for (const problem of report.unresolved) unresolved.add(describeProblem(problem));
    }
  }
  for (const problem of unresolved) io.err.write(`${io.name}: ${printable(problem)}\n`);
  if (unresolved.size === 0) return 0;
  io.err.write(`${io.name}: ${unresolved.size} ${unresolved.size === 1 ? 'dependency' : 'dependencies'} could not be resolved\n`);
  return 1;
}

/** A dependency tree, one template a line, each indented under the one that names it. */
function tree(nodes: readonly DependencyNode[], indent: string): string {
  let text = '';
  for (const node of nodes) {
    const notes = [
      `line ${node.line}`,
      ...(node.declared ? ['declared'] : []),
      ...(node.state === 'found' ? [] : [node.state === 'seen' ? 'already above' : 'missing']),
    ];
    text += `${indent}${printable(node.name)} (${notes.join(', ')})\n${tree(node.dependencies, `${indent}  `)}`;
  }
  return text;
}

/** Every file under `dir` by its path there (with '/'), but in node_modules and hidden folders. */
function templateFiles(dir: string): string[] {
  const files: string[] = [];
  const visit = (folder: string) => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
      const path = join(folder, entry.name);
      if (entry.isDirectory()) visit(path);
      else if (entry.isFile()) files.push(relative(dir, path).split(sep).join('/'));
    }
  };
  visit(dir);
  return files.sort();
}

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** An engine package as the project of `dir` installs it, else as cachegrain finds it. */
function enginePackage<T>(name: string, dir: string): T {
  const fromProject = createRequire(join(dir, 'package.json'));
  let path: string;
  try {
    path = fromProject.resolve(name);
  } catch {
    try {
      path = resolvePeer(name, `reading the ${name} templates of ${dir}`);
    } catch (error) {
      throw new UserError((error as Error).message);
    }
  }
  return fromProject(path) as T;
}
