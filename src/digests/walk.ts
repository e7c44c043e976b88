/**
 * A template's digest: the md5 of its own source and of every template it reaches, named
 * or declared, transitively, each by its name and the md5 of its source (or as missing). Each template
 * is followed once, so a cycle ends where it closes; the reached templates are hashed in the order of
 * their names, so the digest depends on sources and names alone, never on the order they were found
 * in, on the process or on the machine.
 */
import { extname } from 'node:path';
import { md5 } from '../keys/hash.js';
import { type FoundDependencies, type NamedDependency, noDependencies, type TemplateInputs, wildcardFolder } from './dependencies.js';

/** The templates of one engine instance (or of a folder, for the command line), as a digest reads them. */
export interface TemplateLibrary {
  /** How a comment of this engine declares a dependency, for the message about an undeclared one. */
  readonly declarationExample: string;
  /**
   * The name that template `from` (undefined: a template given as a string) means by `written`,
   * relative names and default extensions resolved; undefined when it can name no template.
   */
  resolve(written: string, from: string | undefined): string | undefined;
  /** A template's source, or what its compiled form recorded of it; undefined when there is none by that name. */
  read(name: string): string | TemplateInputs | undefined;
  /** The names of the templates directly in `folder` (as `from` names it); undefined when this library cannot list one. */
  list(folder: string, from: string | undefined): readonly string[] | undefined;
  /** What a source depends on, read with the engine's own parser. */
  find(source: string): FoundDependencies;
}

/** A dependency a digest could not follow, at the template and line that names it. */
export interface DigestProblem {
  template: string;
  line: number;
  message: string;
}

/** One template a digest reached, where its parent names it. */
export interface DependencyNode {
  name: string;
  line: number;
  /** Named in a comment rather than by the template's code. */
  declared: boolean;
  /** `seen`: reached before, by a cycle or another path, and not followed again here. */
  state: 'found' | 'missing' | 'seen';
  dependencies: DependencyNode[];
}

/** A template's digest, the tree of what it depends on, and what could not be resolved. */
export interface TemplateDigestReport {
  /** The template's name, or `a template string`. */
  template: string;
  digest: string;
  dependencies: DependencyNode[];
  unresolved: DigestProblem[];
}

export const UNNAMED = 'a template string';

/** Whether a digest's tree of dependencies reaches a template that was not found. */
export function reachesMissing(dependencies: readonly DependencyNode[]): boolean {
  return dependencies.some((node) => node.state === 'missing' || reachesMissing(node.dependencies));
}

/** `page.njk, line 3: message`, as every other error of a template names its place. */
export function describeProblem(problem: DigestProblem): string {
  return `${problem.template}, line ${problem.line}: ${problem.message}`;
}

/**
 * Digests a template from its own inputs, reading what it reaches from `library`; `find` is the
 * library's finder, remembered by the caller.
 */
export function digestTemplate(
  library: TemplateLibrary,
  find: (source: string) => FoundDependencies,
  name: string | undefined,
  inputs: TemplateInputs,
): TemplateDigestReport {
  const walk = new DigestWalk(library, find, name);
  const dependencies = walk.dependenciesOf(name, inputs.found);
  return { template: name ?? UNNAMED, digest: walk.digest(inputs.hash), dependencies, unresolved: walk.problems };
}

class DigestWalk {
  /** Every template reached, by name: the md5 of its source, or null when it is missing. */
  private readonly reached = new Map<string, string | null>();
  /** What the library answered for each name read: a declared name is read to find its extension, then followed. */
  private readonly reads = new Map<string, string | TemplateInputs | undefined>();
  readonly problems: DigestProblem[] = [];

  constructor(
    private readonly library: TemplateLibrary,
    private readonly find: (source: string) => FoundDependencies,
    private readonly root: string | undefined,
  ) {
    // A cycle back to the root ends there: the root's source is hashed first, once.
    if (root !== undefined) this.reached.set(root, null);
  }

  digest(rootHash: string): string {
    let text = rootHash;
    for (const name of [...this.reached.keys()].sort()) {
      if (name === this.root) continue;
      const hash = this.reached.get(name);
      text += `|${Buffer.byteLength(name)}:${name}${hash === null ? '-' : `=${hash}`}`;
    }
    return md5(text);
  }

  dependenciesOf(template: string | undefined, found: FoundDependencies): DependencyNode[] {
    const nodes: DependencyNode[] = [];
    const at = template ?? UNNAMED;
    for (const dependency of found.named) nodes.push(this.follow(this.library.resolve(dependency.name, template), dependency, at, 'named'));
    for (const dependency of found.declared) {
      const folder = wildcardFolder(dependency.name);
      if (folder === undefined) {
        nodes.push(this.follow(this.resolveDeclared(dependency.name, template), dependency, at, 'declared'));
        continue;
      }
      const names = this.library.list(folder, template);
      if (names === undefined || names.length === 0) {
        const why = names === undefined ? "this engine's loader cannot list a folder" : 'it matches no template';
        this.problems.push({ template: at, line: dependency.line, message: `'${dependency.name}' is declared, and ${why}` });
        continue;
      }
      for (const name of [...names].sort()) nodes.push(this.follow(name, { name, line: dependency.line }, at, 'matched'));
    }
    if (found.declared.length === 0) {
      for (const line of found.dynamic) {
        this.problems.push({
          template: at,
          line,
          message: `a template named by an expression is left out of the digest: declare the templates it can be in a comment (${this.library.declarationExample})`,
        });
      }
    }
    return nodes;
  }

  /** A declared name, as written, else with the extension of the template that declares it (`partials/price` for `partials/price.njk`). */
  private resolveDeclared(written: string, from: string | undefined): string | undefined {
    const resolved = this.library.resolve(written, from);
    const extension = from === undefined ? '' : extname(from);
    if (extension === '' || extname(written) !== '' || (resolved !== undefined && this.read(resolved) !== undefined)) return resolved;
    return this.library.resolve(written + extension, from) ?? resolved;
  }

  /** Follows a dependency `at` names: `named` by its code, `declared` in a comment, or `matched` by a declared folder. */
  private follow(name: string | undefined, dependency: NamedDependency, at: string, how: 'named' | 'declared' | 'matched'): DependencyNode {
    const shown = name ?? dependency.name;
    const node: DependencyNode = { name: shown, line: dependency.line, declared: how !== 'named', state: 'found', dependencies: [] };
    if (name !== undefined && this.reached.has(name)) {
      node.state = 'seen';
      return node;
    }
    const read = name === undefined ? undefined : this.read(name);
    if (read === undefined) {
      if (name !== undefined) this.reached.set(name, null);
      node.state = 'missing';
      if (dependency.optional !== true && how !== 'matched') {
        this.problems.push({
          template: at,
          line: dependency.line,
          message: `'${dependency.name}' is ${how} and cannot be found: the digest counts it as missing, and changes once it exists`,
        });
      }
      return node;
    }
    const inputs = typeof read === 'string' ? this.inputsOf(read, shown) : read;
    this.reached.set(name!, inputs.hash);
    node.dependencies = this.dependenciesOf(name, inputs.found);
    return node;
  }

  private read(name: string): string | TemplateInputs | undefined {
    if (!this.reads.has(name)) this.reads.set(name, this.library.read(name));
    return this.reads.get(name);
  }

  private inputsOf(source: string, name: string): TemplateInputs {
    const hash = md5(source);
    try {
      return { hash, found: this.find(source) };
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      this.problems.push({ template: name, line: 1, message: `cannot be parsed, so what it depends on is left out of the digest: ${why}` });
      return { hash, found: noDependencies() };
    }
  }
}
