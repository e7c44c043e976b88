/**
 * Loads an optional peer dependency (a server client) when a backend first needs it.
 * The surprise: it resolves from the application's directory first, so that the application and
 * cachegrain share one copy even when cachegrain is installed from a folder with its own node_modules.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';

const fromApplication = createRequire(join(process.cwd(), 'package.json'));
const fromLibrary = createRequire(import.meta.url);

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
