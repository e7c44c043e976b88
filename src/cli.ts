/**
 * The `cachegrain` command: createcachetable, clear, invalidate-tags and inspect over the
 * caches of the user's configuration module, whose default export is the object given to
 * `configureCaches` (`--config FILE`, else the first of cachegrain.config.{js,mjs,ts,mts} in the
 * working directory). The surprise: a locmem cache lives inside each application process, out of
 * this process's reach, so the commands skip it (or refuse it when it is named) instead of acting
 * on an empty copy of their own.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { inspect as inspectValue } from 'node:util';
import type { BaseCache, CachedEntry, StoredEntry } from './core/base.js';
import { DatabaseCache } from './backends/database.js';
import { describePostgresUrl, postgresTableSql } from './backends/database-postgres.js';
import { sqlitePath, sqliteTableSql } from './backends/database-sqlite.js';
import { caches, type CacheConfig, type CachesConfig, configureCaches } from './config.js';
import { closestName } from './options.js';

export const DEFAULT_CONFIG_FILES = ['cachegrain.config.js', 'cachegrain.config.mjs', 'cachegrain.config.ts', 'cachegrain.config.mts'];

const OPTIONS_HELP = `Options:
  --config FILE   the module whose default export is your configureCaches() object
                  (default: the first of cachegrain.config.js, .mjs, .ts or .mts
                  in the working directory)
  --dry-run       connect to nothing, change nothing: print what the command would do
  -h, --help      show this help (cachegrain COMMAND --help: that command's)
  -v, --version   print the version of cachegrain`;

interface Command {
  usage: string;
  summary: string;
  example: string;
  run(args: Parsed, io: IO): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  createcachetable: {
    usage: 'createcachetable',
    summary: 'Create the table (and index) of every database cache that has none yet.\nWith --dry-run, print the SQL instead.',
    example: 'cachegrain createcachetable --dry-run',
    run: (args, io) => createCacheTables(args, io),
  },
  clear: {
    usage: 'clear [ALIAS...]',
    summary: 'Remove every entry of the named caches; with no alias, of every configured cache.',
    example: 'cachegrain clear sessions pages',
    run: (args, io) => clear(args, io),
  },
  'invalidate-tags': {
    usage: 'invalidate-tags TAG... [--soft]',
    summary:
      'Make every entry written with one of the tags a miss, in every configured cache\n(pages and fragments included). --soft: stale instead, where the entry may be served stale.',
    example: 'cachegrain invalidate-tags article:7 author:3',
    run: (args, io) => invalidate(args, io),
  },
  inspect: {
    usage: 'inspect KEY [--alias ALIAS]',
    summary:
      "Show one entry of a cache ('default' unless --alias names another): a preview of its value,\nits expiry, tags, state (fresh or stale) and stored size.",
    example: 'cachegrain inspect article:7 --alias pages',
    run: (args, io) => inspectEntry(args, io),
  },
};

function help(): string {
  const commands = Object.values(COMMANDS)
    .map((command) => `  ${command.usage}\n${indent(command.summary, 6)}\n      Example: ${command.example}`)
    .join('\n\n');
  return `Usage: cachegrain COMMAND [ARGUMENTS] [--config FILE] [--dry-run]

Manages the caches your application configures with configureCaches().

Commands:
${commands}

${OPTIONS_HELP}

Exit codes: 0 done; 1 a cache, a server or the configuration failed; 2 the command line is wrong.
`;
}

function commandHelp(name: string): string {
  const command = COMMANDS[name]!;
  return `Usage: cachegrain ${command.usage} [--config FILE] [--dry-run]\n\n${command.summary}\n\nExample: ${command.example}\n\n${OPTIONS_HELP}\n`;
}

const indent = (text: string, spaces: number) =>
  text
    .split('\n')
    .map((line) => ' '.repeat(spaces) + line)
    .join('\n');

interface Output {
  write(text: string): unknown;
}

interface IO {
  out: Output;
  err: Output;
  /** The command's name, prefixed to every error line. */
  name: string;
}

interface Parsed {
  positional: string[];
  config?: string;
  dryRun: boolean;
  alias?: string;
  soft: boolean;
}

/** A mistake on the command line (exit code 2). */
class UsageError extends Error {}
/** A failure to report without a stack trace (exit code 1): a configuration, an alias, a server. */
class UserError extends Error {}

/** Runs the command line `argv` (without node and the script); answers the exit code. */
export async function main(argv: string[], out: Output = process.stdout, err: Output = process.stderr): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    err.write(`cachegrain: no command given.\n\n${help()}`);
    return 2;
  }
  if (first === '--help' || first === '-h' || first === 'help') {
    const topic = rest[0];
    out.write(topic !== undefined && Object.hasOwn(COMMANDS, topic) ? commandHelp(topic) : help());
    return 0;
  }
  if (first === '--version' || first === '-v' || first === '-V') {
    out.write(`${packageVersion()}\n`);
    return 0;
  }
  if (!Object.hasOwn(COMMANDS, first)) {
    err.write(`cachegrain: unknown ${first.startsWith('-') ? 'option' : 'command'} '${printable(first)}'. Run 'cachegrain --help' to see the commands.\n`);
    return 2;
  }
  const io: IO = { out, err, name: `cachegrain ${first}` };
  if (rest.includes('--help') || rest.includes('-h')) {
    out.write(commandHelp(first));
    return 0;
  }
  try {
    const args = parse(first, rest);
    return await COMMANDS[first]!.run(args, io);
  } catch (error) {
    if (error instanceof UsageError) {
      err.write(`${io.name}: ${error.message}\nRun 'cachegrain ${first} --help' for its usage.\n`);
      return 2;
    }
    err.write(`${io.name}: ${(error as Error)?.message ?? String(error)}\n`);
    return 1;
  } finally {
    await caches.closeAll();
  }
}

/** The options each command takes, as `parse` reads them. */
function flagsOf(command: string): string[] {
  return ['--config', '--dry-run', '--help', ...(command === 'inspect' ? ['--alias'] : []), ...(command === 'invalidate-tags' ? ['--soft'] : [])];
}

function unknownFlagMessage(command: string, arg: string): string {
  const closest = closestName(arg.split('=')[0]!, flagsOf(command));
  return `unknown option '${printable(arg)}'${closest === undefined ? '' : ` (did you mean '${closest}'?)`}`;
}

function parse(command: string, argv: string[]): Parsed {
  const parsed: Parsed = { positional: [], dryRun: false, soft: false };
  const valueOf = (i: number, flag: string) => {
    const value = argv[i + 1];
    if (value === undefined) throw new UsageError(`${flag} needs a value`);
    return value;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      parsed.positional.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '--dry-run') parsed.dryRun = true;
    else if (arg === '--config') parsed.config = valueOf(i++, arg);
    else if (arg.startsWith('--config=')) parsed.config = arg.slice('--config='.length);
    else if (command === 'inspect' && arg === '--alias') parsed.alias = valueOf(i++, arg);
    else if (command === 'inspect' && arg.startsWith('--alias=')) parsed.alias = arg.slice('--alias='.length);
    else if (command === 'invalidate-tags' && arg === '--soft') parsed.soft = true;
    else if (arg.startsWith('-') && arg !== '-') throw new UsageError(unknownFlagMessage(command, arg));
    else parsed.positional.push(arg);
  }
  if (command === 'createcachetable' && parsed.positional.length > 0) throw new UsageError(`unexpected argument '${printable(parsed.positional[0]!)}'`);
  if (command === 'invalidate-tags' && parsed.positional.length === 0) throw new UsageError('name at least one tag');
  if (command === 'inspect' && parsed.positional.length !== 1) {
    throw new UsageError(parsed.positional.length === 0 ? 'name the key to inspect' : 'name one key (quote a key that contains spaces)');
  }
  return parsed;
}

// ---- The commands ----------------------------------------------------------------------------

/** Creates (or, with --dry-run, prints the SQL for) every missing table of a database cache. */
async function createCacheTables(args: Parsed, io: IO): Promise<number> {
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

async function clear(args: Parsed, io: IO): Promise<number> {
  const config = await loadConfig(args.config);
  const named = args.positional.length > 0;
  const aliases = named ? [...new Set(args.positional)] : Object.keys(config);
  for (const alias of aliases) checkAlias(config, alias);
  if (!args.dryRun) await configure(config);
  let status = 0;
  for (const alias of aliases) {
    const entry = config[alias]!;
    if (entry.backend === 'locmem') {
      if (named) {
        io.err.write(`${io.name}: ${outOfReach(alias, 'cleared')}\n`);
        status = 1;
      } else io.out.write(`Skipped cache '${alias}' (locmem): it lives inside each application process, out of this command's reach.\n`);
      continue;
    }
    if (args.dryRun) {
      io.out.write(`Would clear cache '${alias}' (${where(entry)}).\n`);
      continue;
    }
    const cache = build(alias);
    const outcome = await attempt(alias, entry, cache, () => cache.clear());
    if (outcome.failed !== undefined) {
      io.err.write(`${io.name}: ${outcome.failed}\n`);
      status = 1;
    } else io.out.write(`Cleared cache '${alias}' (${where(entry, cache)}).\n`);
  }
  return status;
}

async function invalidate(args: Parsed, io: IO): Promise<number> {
  const config = await loadConfig(args.config);
  const tags = [...new Set(args.positional)];
  const list = tags.map((tag) => `'${printable(tag)}'`).join(', ');
  const how = args.soft ? 'Softly invalidated' : 'Invalidated';
  if (!args.dryRun) await configure(config);
  let status = 0;
  // One cache after another rather than config's invalidateTags: a failure is then told apart
  // (alias and server), and the other caches are still invalidated.
  for (const [alias, entry] of Object.entries(config)) {
    if (entry.backend === 'locmem') {
      io.out.write(`Skipped cache '${alias}' (locmem): it lives inside each application process, out of this command's reach.\n`);
      continue;
    }
    if (args.dryRun) {
      io.out.write(`Would ${args.soft ? 'softly ' : ''}invalidate ${list} in cache '${alias}' (${where(entry)}).\n`);
      continue;
    }
    const cache = build(alias);
    const outcome = await attempt(alias, entry, cache, () => cache.invalidateTags(tags, { soft: args.soft }));
    if (outcome.failed !== undefined) {
      io.err.write(`${io.name}: ${outcome.failed}\n`);
      status = 1;
    } else io.out.write(`${how} ${list} in cache '${alias}' (${where(entry, cache)}).\n`);
  }
  return status;
}

async function inspectEntry(args: Parsed, io: IO): Promise<number> {
  const config = await loadConfig(args.config);
  const alias = args.alias ?? 'default';
  const key = args.positional[0]!;
  checkAlias(config, alias);
  const entry = config[alias]!;
  if (entry.backend === 'locmem') throw new UserError(outOfReach(alias, 'inspected'));
  if (args.dryRun) {
    io.out.write(`Would read key '${printable(key)}' from cache '${alias}' (${where(entry)}).\n`);
    return 0;
  }
  await configure(config);
  const cache = build(alias);
  const outcome = await attempt(alias, entry, cache, async () => {
    const found = (await cache.getEntries([key])).get(key);
    return { found, stored: found === undefined ? undefined : await cache.storedEntry(key) };
  });
  if (outcome.failed !== undefined) throw new UserError(outcome.failed);
  const { found, stored } = outcome.value!;
  const made = printable(cache.makeKey(key));
  if (found === undefined) {
    io.err.write(`${io.name}: no entry under key '${printable(key)}' (stored key '${made}') in cache '${alias}' (${where(entry, cache)}).\n`);
    return 1;
  }
  io.out.write(describeEntry(cache, alias, made, found, stored));
  return 0;
}

function describeEntry(cache: BaseCache, alias: string, made: string, found: CachedEntry<unknown>, stored: StoredEntry | undefined): string {
  const now = cache.now();
  const state =
    found.state === 'fresh' ? 'fresh' : found.state === 'stale' ? 'stale (served while one refresh runs)' : 'stale (served only if recomputing it fails)';
  const unknown = 'unknown (the backend does not say)';
  const lines: Array<[string, string]> = [
    ['cache', alias],
    ['key', made],
    ['state', state],
  ];
  if (stored?.freshUntil !== undefined) lines.push(['fresh until', when(stored.freshUntil, now)]);
  lines.push(['expires', stored === undefined || stored.expiresAt === undefined ? unknown : when(stored.expiresAt, now)]);
  lines.push(['tags', found.tags.length === 0 ? '(none)' : found.tags.map(printable).join(', ')]);
  lines.push(['size', stored?.bytes === undefined ? unknown : `${stored.bytes} bytes stored`]);
  lines.push(['value', preview(found.value)]);
  return lines.map(([label, value]) => `${`${label}:`.padEnd(13)}${value}\n`).join('');
}

/** An absolute time with how far it is from now. */
function when(epochSeconds: number | null, now: number): string {
  if (epochSeconds === null) return 'never';
  const date = new Date(epochSeconds * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
  const left = epochSeconds - now;
  return left >= 0 ? `${date} (in ${duration(left)})` : `${date} (${duration(-left)} ago)`;
}

function duration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/** At most PREVIEW_CHARACTERS of a value, control characters escaped: binary never reaches the terminal raw. */
const PREVIEW_CHARACTERS = 300;
export function preview(value: unknown): string {
  let text = inspectValue(value, { depth: 2, maxArrayLength: 20, maxStringLength: PREVIEW_CHARACTERS, breakLength: Infinity, colors: false });
  const type =
    value === null
      ? 'null'
      : Buffer.isBuffer(value)
        ? `Buffer, ${value.length} bytes`
        : typeof value === 'string'
          ? `string, ${value.length} characters`
          : undefined;
  text = printable(text);
  if ([...text].length > PREVIEW_CHARACTERS) text = `${[...text].slice(0, PREVIEW_CHARACTERS).join('')}… (truncated)`;
  return type === undefined ? text : `${text}  [${type}]`;
}

/** Text with every control character (and lone surrogates) escaped, safe to print. */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, (char) => {
    const code = char.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

// ---- Caches, errors, configuration ------------------------------------------------------------

async function configure(config: CachesConfig): Promise<void> {
  try {
    await configureCaches(config);
  } catch (error) {
    throw new UserError((error as Error).message);
  }
}

/** Builds the alias's cache; a backend that cannot be built (a bad option, a missing client) is a user error. */
function build(alias: string): BaseCache {
  try {
    return caches.get(alias);
  } catch (error) {
    throw new UserError((error as Error).message);
  }
}

function checkAlias(config: CachesConfig, alias: string): void {
  if (!Object.hasOwn(config, alias)) {
    throw new UserError(`the cache alias '${printable(alias)}' is not configured (configured: ${Object.keys(config).join(', ')})`);
  }
}

function outOfReach(alias: string, what: string): string {
  return `cache '${alias}' is a locmem cache: it lives inside each application process and cannot be ${what} from this command`;
}

/**
 * Runs `action` on one cache. A failure, thrown or reported as an `error` event (a `failOpen`
 * cache turns a dead server into a quiet no-op), comes back as one line naming alias and server.
 */
async function attempt<T>(alias: string, entry: CacheConfig, cache: BaseCache, action: () => Promise<T>): Promise<{ value?: T; failed?: string }> {
  const heard: Error[] = [];
  const listener = (error: Error) => heard.push(error);
  cache.on('error', listener);
  try {
    const value = await action();
    if (heard.length === 0) return { value };
  } catch (error) {
    heard.unshift(error as Error);
  } finally {
    cache.off('error', listener);
  }
  const message = String(heard[0]?.message ?? heard[0]).replace(new RegExp(`^cache '${escapeRegExp(alias)}': `), '');
  return { failed: `cache '${alias}' (${where(entry, cache)}): ${message}` };
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Names an alias's backend and where it keeps its entries, without a password. */
function where(entry: CacheConfig, cache?: BaseCache): string {
  const backend = entry.backend;
  if (typeof backend !== 'string') return `backend ${backend?.name || 'class'}${locationOf(entry)}`;
  if (backend === 'database') {
    const connection = entry.options?.connection;
    const server =
      cache instanceof DatabaseCache ? cache.server : typeof connection === 'string' ? describeConnection(connection) : 'a client from the configuration';
    return `database, table '${Array.isArray(entry.location) ? entry.location[0] : entry.location}' on ${server}`;
  }
  if (backend === 'filebased') return `filebased, ${resolve(String(Array.isArray(entry.location) ? entry.location[0] : entry.location))}`;
  return `${backend}${locationOf(entry)}`;
}

function locationOf(entry: CacheConfig): string {
  const location = entry.location;
  if (location === undefined || location === '' || (Array.isArray(location) && location.length === 0)) return '';
  const list = Array.isArray(location) ? location : location.split(/[;,]/);
  return ` at ${list.map((item) => item.trim().replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@')).join(', ')}`;
}

function describeConnection(url: string): string {
  if (url.startsWith('sqlite:')) {
    try {
      return `sqlite:${sqlitePath(url)}`;
    } catch {
      return url;
    }
  }
  return /^postgres(ql)?:\/\//.test(url) ? describePostgresUrl(url) : url;
}

function dialectOf(connection: unknown): 'sqlite' | 'postgres' | undefined {
  if (typeof connection !== 'string') return undefined;
  if (connection.startsWith('sqlite:')) return 'sqlite';
  return /^postgres(ql)?:\/\//.test(connection) ? 'postgres' : undefined;
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

/** The version in cachegrain's package.json (beside src/ in a checkout, two levels up from dist/src/). */
function packageVersion(): string {
  for (const relative of ['../package.json', '../../package.json']) {
    const path = fileURLToPath(new URL(relative, import.meta.url));
    if (!existsSync(path)) continue;
    const manifest = JSON.parse(readFileSync(path, 'utf8')) as { name?: string; version?: string };
    if (manifest.name === 'cachegrain' && manifest.version !== undefined) return manifest.version;
  }
  return 'unknown';
}
