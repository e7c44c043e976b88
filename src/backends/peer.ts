/**
 * Loads an optional peer dependency that the user did not hand in (a server client) when a backend
 * first needs it. The surprise: it resolves from the application's directory, that of its main
 * module, before cachegrain's own, so that the application and cachegrain share one copy even when
 * cachegrain is installed from a folder with its own node_modules; never from the working directory,
 * which may be any folder, with other copies in it.
 */
import { realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const fromLibrary = createRequire(import.meta.url);
const fromApplication = createRequire(applicationEntry());

/**
 * The file the application was started with (a CommonJS main module, else the script Node was
 * given, as Node resolves it); the working directory only when there is none (a REPL, `node -e`).
 */
function applicationEntry(): string {
  const main = fromLibrary.main?.filename ?? process.argv[1];
  if (main !== undefined) {
    try {
      return realpathSync(main);
    } catch {
      // not a file (`node -e` passes its arguments here): no main module
    }
  }
  return join(process.cwd(), 'package.json');
}

/** Where `name` is installed, or an error naming the `npm install` to run when it is missing. */
export function resolvePeer(name: string, neededBy: string): string {
  for (const resolver of [fromApplication, fromLibrary]) {
    try {
      return resolver.resolve(name);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw error;
    }
  }
  throw new Error(`${neededBy} needs the package '${name}', which is not installed: run \`npm install ${name}\``);
}

/** `require(name)` from where `resolvePeer` found it. */
export function requirePeer<T>(name: string, neededBy: string): T {
  return fromLibrary(resolvePeer(name, neededBy)) as T;
}
