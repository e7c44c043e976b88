/**
 * The `cachegrain` command: `cachegrain createcachetable [--config FILE] [--dry-run]` creates the
 * missing table (and index) of every configured database cache, like Django's createcachetable.
 * The configuration is a module whose default export is the object given to `configureCaches`;
 * without --config, the first of cachegrain.config.{js,mjs,ts,mts} in the working directory.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DatabaseCache } from './backends/database.js';
import { caches, type CacheConfig, type CachesConfig, configureCaches } from './config.js';

export const DEFAULT_CONFIG_FILES = ['cachegrain.config.js', 'cachegrain.config.mjs', 'cachegrain.config.ts', 'cachegrain.config.mts'];

const USAGE = `Usage: cachegrain createcachetable [--config FILE] [--dry-run]

  Creates the table of every configured database cache that does not have one yet.

  --config FILE  a module whose default export is the configureCaches() object
                 (default: the first of ${DEFAULT_CONFIG_FILES.join(', ')} in the working directory)
  --dry-run      print the SQL that would run instead of running it`;

interface Output {
  write(text: string): unknown;
}

/** Runs the command line `argv` (without node and the script); answers the exit code. */
export async function main(argv: string[], out: Output = process.stdout, err: Output = process.stderr): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    out.write(`${USAGE}\n`);
    return command === undefined ? 2 : 0;
  }
  if (command !== 'createcachetable') {
    err.write(`cachegrain: unknown command '${command}'\n\n${USAGE}\n`);
    return 2;
  }
  let configPath: string | undefined;
  let dryRun = false;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (arg === '--dry-run') dryRun = true;
    else if (arg === '--config' && i + 1 < rest.length) configPath = rest[++i];
    else if (arg.startsWith('--config=')) configPath = arg.slice('--config='.length);
    else {
      err.write(`cachegrain createcachetable: unexpected argument '${arg}'\n\n${USAGE}\n`);
      return 2;
    }
  }
  try {
    const config = await loadConfig(configPath);
    return await createCacheTables(config, dryRun, out, err);
  } catch (error) {
    err.write(`cachegrain createcachetable: ${(error as Error).message}\n`);
    return 1;
  } finally {
    await caches.closeAll();
  }
}

/** Creates (or, with dryRun, prints the SQL for) every missing table; answers the exit code. */
export async function createCacheTables(config: CachesConfig, dryRun: boolean, out: Output, err: Output): Promise<number> {
  await configureCaches(config);
  const seen = new Set<string>();
  let status = 0;
  let databaseCaches = 0;
  for (const [alias, entry] of Object.entries(config)) {
    if (!mayBeDatabase(entry)) continue;
    const cache = caches.get(alias);
    if (!(cache instanceof DatabaseCache)) continue;
    databaseCaches++;
    // Two aliases over one table (say, different key prefixes) need it created once.
    const where = `${cache.server} ${cache.table}`;
    if (seen.has(where)) continue;
    seen.add(where);
    try {
      if (dryRun) {
        if (await cache.tableExists()) out.write(`Cache table '${cache.table}' already exists.\n`);
        else
          out.write(
            cache
              .createTableSql()
              .map((sql) => `${sql};\n`)
              .join(''),
          );
      } else {
        const outcome = await cache.createTable();
        out.write(outcome === 'created' ? `Cache table '${cache.table}' created.\n` : `Cache table '${cache.table}' already exists.\n`);
      }
    } catch (error) {
      err.write(`Cache table '${cache.table}' could not be created (cache '${alias}', ${cache.server}): ${(error as Error).message}\n`);
      status = 1;
    }
  }
  if (databaseCaches === 0) out.write('No database caches are configured.\n');
  return status;
}

/** Built-in non-database backends are skipped without being built (building one may connect). */
function mayBeDatabase(entry: CacheConfig): boolean {
  const backend = entry?.backend;
  return backend === 'database' || typeof backend === 'function' || (typeof backend === 'string' && backend.includes('#'));
}

async function loadConfig(configPath: string | undefined): Promise<CachesConfig> {
  let file: string;
  if (configPath !== undefined) {
    file = resolve(configPath);
    if (!existsSync(file)) throw new Error(`the configuration file ${file} does not exist`);
  } else {
    const found = DEFAULT_CONFIG_FILES.map((name) => resolve(name)).find((path) => existsSync(path));
    if (found === undefined) {
      throw new Error(`no configuration: pass --config FILE, or create one of ${DEFAULT_CONFIG_FILES.join(', ')} in ${process.cwd()}`);
    }
    file = found;
  }
  if (/\.[mc]?ts$/.test(file)) await registerTypeScript(file);
  const loaded = (await import(pathToFileURL(file).href)) as { default?: unknown };
  const config = loaded.default;
  if (config === null || typeof config !== 'object') {
    throw new Error(`${file} must export the configureCaches() object as its default export`);
  }
  return config as CachesConfig;
}

async function registerTypeScript(file: string): Promise<void> {
  try {
    const { register } = (await import('tsx/esm/api')) as { register: () => unknown };
    register();
  } catch (error) {
    throw new Error(`loading the TypeScript configuration ${file} needs tsx (npm install --save-dev tsx), or write it as .js`, { cause: error });
  }
}
