/** Finds and loads the user's configuration module (TypeScript through tsx), and checks its shape. */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { CachesConfig } from '../config/cache-registry.js';
import { UserError } from './io.js';

export const DEFAULT_CONFIG_FILES = ['cachegrain.config.js', 'cachegrain.config.mjs', 'cachegrain.config.ts', 'cachegrain.config.mts'];

export async function loadConfig(configPath: string | undefined): Promise<CachesConfig> {
  let file: string;
  if (configPath !== undefined) {
    file = resolve(configPath);
    if (!existsSync(file)) throw new UserError(`the configuration file ${file} does not exist`);
  } else {
    const candidates = DEFAULT_CONFIG_FILES.map((name) => resolve(name));
    const found = candidates.find((path) => existsSync(path));
    if (found === undefined) {
      throw new UserError(`no configuration found: looked for ${candidates.join(', ')}; create one of them, or pass --config FILE`);
    }
    file = found;
  }
  if (/\.[mc]?ts$/.test(file)) await registerTypeScript(file);
  let loaded: { default?: unknown };
  try {
    loaded = (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (error) {
    throw new UserError(`could not load the configuration ${file}: ${(error as Error)?.message ?? String(error)}`);
  }
  let config = loaded.default as { __esModule?: unknown; default?: unknown } | null | undefined;
  // A TypeScript file compiled as CommonJS (its package.json does not say "type": "module") comes back as its exports object.
  if (config?.__esModule === true && 'default' in config) config = config.default as typeof config;
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new UserError(`${file} must export the configureCaches() object as its default export (export default { default: { backend: … } })`);
  }
  for (const [alias, entry] of Object.entries(config)) {
    if (entry === null || typeof entry !== 'object') throw new UserError(`${file}: the configuration of cache '${alias}' must be an object with a backend`);
  }
  return config as CachesConfig;
}

/**
 * TypeScript configurations load through tsx, found from the application first, then from beside
 * cachegrain; a Node that strips types itself needs nothing.
 */
async function registerTypeScript(file: string): Promise<void> {
  for (const base of [resolve('package.json'), fileURLToPath(import.meta.url)]) {
    const apis = tsxApis(base);
    if (apis === undefined) continue;
    // Both hooks: a .ts file outside a "type": "module" package is loaded as CommonJS.
    for (const api of apis) ((await import(pathToFileURL(api).href)) as { register: () => unknown }).register();
    return;
  }
  if ((process.features as { typescript?: unknown }).typescript) return;
  throw new UserError(
    `loading the TypeScript configuration ${file} needs tsx, which is not installed: run \`npm install --save-dev tsx\`, ` +
      `or write the configuration as JavaScript (cachegrain.config.mjs)`,
  );
}

/** The ES modules of tsx's `tsx/esm/api` and `tsx/cjs/api` as seen from `base`, or undefined when tsx is not installed there. */
function tsxApis(base: string): string[] | undefined {
  let manifestPath: string;
  try {
    manifestPath = createRequire(base).resolve('tsx/package.json');
  } catch {
    return undefined;
  }
  // Not require(): its CommonJS build's hooks do not load when required from another package.
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { exports?: Record<string, { import?: string | { default?: string } }> };
  const paths: string[] = [];
  for (const entry of ['./esm/api', './cjs/api']) {
    const target = manifest.exports?.[entry]?.import;
    const relative = typeof target === 'string' ? target : target?.default;
    if (relative === undefined) return undefined;
    paths.push(join(dirname(manifestPath), relative));
  }
  return paths;
}
