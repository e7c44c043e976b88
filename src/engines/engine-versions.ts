/**
 * The versions of an engine an adapter is written for, and the check that refuses any other: an
 * adapter that reaches into its engine's compiler or renderer knows those internals only as these
 * versions have them. The version is read from the instance the application gives where the engine
 * says it there, else from the package.json of the package that instance's code was loaded from;
 * never from a copy found by name. Surprise: an engine whose package cannot be found (bundled into
 * the application's own code) is not refused, as nothing says which version it is.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The versions an adapter works with: from `from` through every release of major version `throughMajor`. */
export interface EngineVersions {
  /** The adapter, as its errors name it: `cachegrain/eta`. */
  readonly adapter: string;
  /** The engine, as its users know it: `Eta`. */
  readonly engine: string;
  /** Its package: `eta`. */
  readonly packageName: string;
  /** What ties the adapter to these versions: `the cache tag patches Eta's compiler`. */
  readonly reliesOn: string;
  /** The first version supported: `4.6.0`. */
  readonly from: string;
  /** The last major version supported, all of its releases included. */
  readonly throughMajor: number;
}

/** Refuses `found`, the engine's version, when it is outside `versions`: an error naming the engine, the version and those supported. */
export function checkEngineVersion(versions: EngineVersions, found: string | undefined): void {
  if (found === undefined || isSupported(versions, found)) return;
  const { adapter, engine, packageName, reliesOn, from, throughMajor } = versions;
  throw new TypeError(
    `${adapter}: ${engine} ${found} is not supported: ${reliesOn} as of versions ${shortVersion(from)} to ${throughMajor}.x; ` +
      `install ${packageName}@${installRange(versions)}`,
  );
}

/** The range `versions` spans, as package.json's peerDependencies write it: `^4.6.0`, `^3.1.0 || ^4.0.0`. */
export function peerRange({ from, throughMajor }: EngineVersions): string {
  const ranges = [`^${from}`];
  for (let major = numbers(from)[0]! + 1; major <= throughMajor; major++) ranges.push(`^${major}.0.0`);
  return ranges.join(' || ');
}

function isSupported({ from, throughMajor }: EngineVersions, version: string): boolean {
  const found = numbers(version);
  const first = numbers(from);
  if (found.length < 3 || found[0]! > throughMajor) return false;
  for (let i = 0; i < 3; i++) if (found[i] !== first[i]) return found[i]! > first[i]!;
  return true;
}

/** A version's major, minor and patch numbers (a prerelease's label aside). */
function numbers(version: string): number[] {
  const parts = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version.trim());
  return parts === null ? [] : parts.slice(1).map(Number);
}

/** `4.6.0` as `4.6`; `4.7.10` as it is. */
function shortVersion(version: string): string {
  return version.replace(/^(\d+\.\d+)\.0$/, '$1');
}

/** What to install: the first version supported when its major is the only one, else the last major. */
function installRange(versions: EngineVersions): string {
  return numbers(versions.from)[0] === versions.throughMajor ? `^${shortVersion(versions.from)}` : `^${versions.throughMajor}`;
}

/**
 * The version of the package named `packageName` that holds `file` (a path or a file: URL): the
 * nearest package.json of that name above it, within the folder the package was installed in.
 */
export function packageVersionAt(file: string | undefined, packageName: string): string | undefined {
  if (file === undefined) return undefined;
  let folder = dirname(file.startsWith('file:') ? fileURLToPath(file) : file);
  for (;;) {
    const manifest = readManifest(join(folder, 'package.json'));
    if (manifest?.name === packageName) return typeof manifest.version === 'string' ? manifest.version : undefined;
    const parent = dirname(folder);
    if (parent === folder || basename(parent) === 'node_modules') return undefined;
    folder = parent;
  }
}

function readManifest(path: string): { name?: unknown; version?: unknown } | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as { name?: unknown; version?: unknown };
  } catch {
    return undefined;
  }
}

/** The file of the code that called `callee`, read from the stack while it runs: where an engine's own code calls the adapter. */
export function callerFile(callee: (...args: never[]) => unknown): string | undefined {
  const holder: { stack?: unknown } = {};
  const { prepareStackTrace, stackTraceLimit } = Error;
  try {
    Error.stackTraceLimit = 1;
    Error.prepareStackTrace = (_error, frames) => frames;
    Error.captureStackTrace(holder, callee);
    const frames = holder.stack as Array<{ getFileName(): string | null | undefined }> | undefined;
    return frames?.[0]?.getFileName() ?? undefined;
  } finally {
    Error.prepareStackTrace = prepareStackTrace;
    Error.stackTraceLimit = stackTraceLimit;
  }
}

/** The file of a CommonJS module Node has loaded whose exports `matches` accepts: where an instance given came from. */
export function loadedModuleFile(matches: (exports: unknown) => boolean): string | undefined {
  const loaded = createRequire(import.meta.url).cache;
  for (const module of Object.values(loaded)) if (module !== undefined && matches(module.exports)) return module.filename;
  return undefined;
}
