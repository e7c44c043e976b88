/** `cachegrain createcachetable`: the table of every database cache, created or (with --dry-run) printed as SQL. */
import { DatabaseCache } from '../backends/database/database.js';
import { postgresTableSql } from '../backends/database/postgres.js';
import { sqliteTableSql } from '../backends/database/sqlite.js';
import type { CachesConfig } from '../config/cache-registry.js';
import { attempt, build, configure, dialectOf, mayBeDatabase, where } from './caches.js';
import type { IO, Parsed } from './io.js';
import { loadConfig } from './load-config.js';

/** Creates (or, with --dry-run, prints the SQL for) every missing table of a database cache. */
export async function createCacheTables(args: Parsed, io: IO): Promise<number> {
  const config = await loadConfig(args.config);
  if (args.dryRun) return printCreateTableSql(config, io);
  await configure(config);
  const seen = new Set<string>();
  let status = 0;
  let databaseCaches = 0;
  for (const [alias, entry] of Object.entries(config)) {
    if (!mayBeDatabase(entry)) continue;
    const cache = build(alias);
    if (!(cache instanceof DatabaseCache)) continue;
    databaseCaches++;
    // Two aliases over one table (say, different key prefixes) need it created once.
    const where = `${cache.server} ${cache.table}`;
    if (seen.has(where)) continue;
    seen.add(where);
    const outcome = await attempt(alias, entry, cache, () => cache.createTable());
    if (outcome.failed !== undefined) {
      io.err.write(`${io.name}: cache table '${cache.table}' could not be created: ${outcome.failed}\n`);
      status = 1;
    } else {
      io.out.write(outcome.value === 'created' ? `Cache table '${cache.table}' created.\n` : `Cache table '${cache.table}' already exists.\n`);
    }
  }
  if (databaseCaches === 0) io.out.write('No database caches are configured.\n');
  return status;
}

/** The SQL of every database cache's table, worked out from the configuration alone: nothing is opened. */
function printCreateTableSql(config: CachesConfig, io: IO): number {
  const seen = new Set<string>();
  let databaseCaches = 0;
  for (const [alias, entry] of Object.entries(config)) {
    if (entry.backend !== 'database') {
      if (mayBeDatabase(entry)) io.out.write(`-- cache '${alias}' (${where(entry)}): a custom backend, not built in a dry run\n`);
      continue;
    }
    databaseCaches++;
    const table = Array.isArray(entry.location) ? entry.location[0] : entry.location;
    const connection = entry.options?.connection;
    const dialect = dialectOf(connection);
    if (typeof table !== 'string' || dialect === undefined) {
      io.out.write(`-- cache '${alias}' (${where(entry)}): the dialect or table cannot be told without opening the connection\n`);
      continue;
    }
    const key = `${typeof connection === 'string' ? connection : alias} ${table}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const sql = dialect === 'sqlite' ? sqliteTableSql(table) : postgresTableSql(table);
    io.out.write(`-- cache '${alias}' (${where(entry)}), if the table does not exist yet:\n${sql.map((statement) => `${statement};\n`).join('')}`);
  }
  if (databaseCaches === 0) io.out.write('No database caches are configured.\n');
  return 0;
}
