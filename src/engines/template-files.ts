/**
 * The templates of an engine that reads them from files by path (EJS, Pug, LiquidJS), as a digest
 * reads them. A template is named by its path from the working directory (`./views/card.pug`), else
 * from the first of the engine's folders that holds it (`partials/card.ejs`), else by its absolute
 * path: a deploy into a folder of its own names its templates as the last one did. Surprise: the
 * folders are learned from the options of each compile, which is where these engines take them.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { EngineLibrary, FoundDependencies } from '../digests/index.js';
import { UNNAMED } from '../digests/index.js';

/** How an engine finds the file a template names. */
export interface FileLookup {
  /** How a comment of this engine declares a dependency. */
  declarationExample: string;
  /** The extension a name without one is given (`.ejs`). */
  extension(): string;
  /**
   * Whether a name is looked up from the folder of the template that names it: `always` (after which
   * the folders are tried, for EJS's `views`), or only when it starts with `./` or `../` (LiquidJS).
   */
  relativeFrom: 'always' | 'dotted';
  /** Whether a name not found from the naming template's folder is looked for in the folders. */
  thenFolders: boolean;
  /** What a source depends on, read with the engine's own parser (or a subclass's `find`). */
  find?(source: string): FoundDependencies;
}

/** The path of `file` from `folder`, written with `/`, when the folder holds it. */
function pathInside(folder: string, file: string): string | undefined {
  const inside = relative(folder, file);
  return inside === '' || inside.startsWith('..') || isAbsolute(inside) ? undefined : inside.split(sep).join('/');
}

export class TemplateFiles implements EngineLibrary {
  readonly declarationExample: string;
  /** The engine's folders, in the order compiles gave them. */
  private readonly folders: string[] = [];

  constructor(private readonly lookup: FileLookup) {
    this.declarationExample = lookup.declarationExample;
  }

  /**
   * Learns the folders a compile was given (`root`, `views`, `basedir`), in its order: names are made
   * from them, and the folders of the latest compile come first.
   */
  useFolders(folders: ReadonlyArray<string | undefined>): void {
    const given = folders.filter((folder): folder is string => typeof folder === 'string' && folder !== '').map((folder) => resolve(folder));
    if (given.every((folder, index) => this.folders[index] === folder)) return;
    const rest = this.folders.filter((folder) => !given.includes(folder));
    this.folders.splice(0, this.folders.length, ...new Set(given), ...rest);
  }

  find(source: string): FoundDependencies {
    if (this.lookup.find === undefined) throw new Error('a template library without a finder');
    return this.lookup.find(source);
  }

  /**
   * The name of the file at `path`: from the working directory first, which every process of a
   * deploy knows from its start, where the folders are known once a template compiles.
   */
  nameOfFile(path: string): string {
    const file = resolve(path);
    const fromHere = pathInside(process.cwd(), file);
    if (fromHere !== undefined) return `./${fromHere}`;
    for (const folder of this.folders) {
      const inside = pathInside(folder, file);
      if (inside !== undefined) return inside;
    }
    return file;
  }

  /** The file a name stands for: in the first folder that holds it. */
  fileOf(name: string): string {
    if (isAbsolute(name)) return name;
    if (name.startsWith('./')) return resolve(name);
    const file = this.folders.map((folder) => join(folder, name)).find((path) => existsSync(path));
    return file ?? join(this.folders[0] ?? process.cwd(), name);
  }

  nameOf(site: string | undefined): string | undefined {
    return site === undefined || site === UNNAMED ? undefined : this.nameOfFile(site);
  }

  resolve(written: string, from: string | undefined): string | undefined {
    const path = extname(written) === '' ? written + this.lookup.extension() : written;
    const file = this.candidates(path, from).find((candidate) => existsSync(candidate)) ?? this.candidates(path, from)[0];
    return file === undefined ? undefined : this.nameOfFile(file);
  }

  /** The files `written` may stand for, from template `from`, in the order the engine tries them. */
  private candidates(written: string, from: string | undefined): string[] {
    const inFolders = () => this.folders.map((folder) => join(folder, written));
    if (written.startsWith('/')) return this.folders.length === 0 ? [] : inFolders();
    const relativeName = this.lookup.relativeFrom === 'always' || /^\.\.?\//.test(written);
    const fromFolder = relativeName && from !== undefined ? [join(dirname(this.fileOf(from)), written)] : [];
    return relativeName && !this.lookup.thenFolders ? fromFolder : [...fromFolder, ...inFolders()];
  }

  read(name: string): string | undefined {
    try {
      return readFileSync(this.fileOf(name), 'utf8');
    } catch {
      return undefined;
    }
  }

  list(folder: string, from: string | undefined): readonly string[] {
    const files = folder === '' ? this.folders.slice(0, 1) : this.candidates(folder, from);
    const path = files.find((candidate) => existsSync(candidate)) ?? files[0];
    if (path === undefined) return [];
    try {
      return readdirSync(path, { withFileTypes: true })
        .filter((entry) => entry.isFile() && !entry.name.startsWith('.'))
        .map((entry) => this.nameOfFile(join(path, entry.name)));
    } catch {
      return [];
    }
  }
}
