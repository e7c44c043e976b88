/**
 * The `cachegrain` command: createcachetable, clear, invalidate-tags and inspect over the
 * caches of the user's configuration module, whose default export is the object given to
 * `configureCaches` (`--config FILE`, else the first of cachegrain.config.{js,mjs,ts,mts} in the
 * working directory), and digests over a folder of templates, which needs no configuration. The
 * surprise: a locmem cache lives inside each application process, out of this process's reach, so
 * the commands skip it (or refuse it when it is named) instead of acting on an empty copy of their
 * own. Parsing and help live here; each command group in cli/.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { printDigests } from './digests.js';
import { clear, invalidate } from './entries.js';
import { inspectEntry } from './inspect.js';
import { type IO, type Output, type Parsed, printable, UsageError } from './io.js';
import { createCacheTables } from './tables.js';
import { caches } from '../config/cache-registry.js';
import { closestName, didYouMean } from '../options/option-rules.js';

export { DEFAULT_CONFIG_FILES } from './load-config.js';
export { preview } from './inspect.js';

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
  /** Its options' help, when they are not those of the commands over the configured caches. */
  options?: string;
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
  digests: {
    usage: 'digests [DIR] [--explain]',
    summary:
      'Print the template digest of every Nunjucks, Handlebars, Eta, EJS, Pug and LiquidJS template under DIR\n' +
      '(default: the working directory), and every dependency that could not be resolved (exit code 1 when\n' +
      'there is one). EJS, Pug and LiquidJS name templates from the working directory: run it from the\n' +
      "folder the application starts in. --explain: each template's dependency tree too.",
    example: 'cachegrain digests views --explain',
    options: `Options:
  --explain       print the tree of what each template depends on
  -h, --help      show this help`,
    run: (args, io) => printDigests(args, io),
  },
};

function help(): string {
  const commands = Object.values(COMMANDS)
    .map((command) => `  ${command.usage}\n${indent(command.summary, 6)}\n      Example: ${command.example}`)
    .join('\n\n');
  return `Usage: cachegrain COMMAND [ARGUMENTS] [--config FILE] [--dry-run]

Manages the caches your application configures with configureCaches(), and digests its templates.

Commands:
${commands}

${OPTIONS_HELP}

Exit codes: 0 done; 1 a cache, a server or the configuration failed, or a template dependency
could not be resolved; 2 the command line is wrong.
`;
}

function commandHelp(name: string): string {
  const command = COMMANDS[name]!;
  const usage = command.options === undefined ? `${command.usage} [--config FILE] [--dry-run]` : command.usage;
  return `Usage: cachegrain ${usage}\n\n${command.summary}\n\nExample: ${command.example}\n\n${command.options ?? OPTIONS_HELP}\n`;
}

const indent = (text: string, spaces: number) =>
  text
    .split('\n')
    .map((line) => ' '.repeat(spaces) + line)
    .join('\n');

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
    const isOption = first.startsWith('-');
    const closest = closestName(first.split('=')[0]!, isOption ? TOP_LEVEL_OPTIONS : Object.keys(COMMANDS));
    err.write(
      `cachegrain: unknown ${isOption ? 'option' : 'command'} '${printable(first)}'${didYouMean(closest)}. Run 'cachegrain --help' to see the commands.\n`,
    );
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
  if (command === 'digests') return ['--explain', '--help'];
  return ['--config', '--dry-run', '--help', ...(command === 'inspect' ? ['--alias'] : []), ...(command === 'invalidate-tags' ? ['--soft'] : [])];
}

/** The options that stand in place of a command. */
const TOP_LEVEL_OPTIONS = ['--help', '--version'];

function unknownFlagMessage(command: string, arg: string): string {
  return `unknown option '${printable(arg)}'${didYouMean(closestName(arg.split('=')[0]!, flagsOf(command)))}`;
}

function parse(command: string, argv: string[]): Parsed {
  const parsed: Parsed = { positional: [], dryRun: false, soft: false, explain: false };
  const takes = flagsOf(command);
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
    if (arg.startsWith('--') && !takes.includes(arg.split('=')[0]!)) throw new UsageError(unknownFlagMessage(command, arg));
    if (arg === '--dry-run') parsed.dryRun = true;
    else if (arg === '--explain') parsed.explain = true;
    else if (arg === '--config') parsed.config = valueOf(i++, arg);
    else if (arg.startsWith('--config=')) parsed.config = arg.slice('--config='.length);
    else if (command === 'inspect' && arg === '--alias') parsed.alias = valueOf(i++, arg);
    else if (command === 'inspect' && arg.startsWith('--alias=')) parsed.alias = arg.slice('--alias='.length);
    else if (command === 'invalidate-tags' && arg === '--soft') parsed.soft = true;
    else if (arg.startsWith('-') && arg !== '-') throw new UsageError(unknownFlagMessage(command, arg));
    else parsed.positional.push(arg);
  }
  if (command === 'createcachetable' && parsed.positional.length > 0) throw new UsageError(`unexpected argument '${printable(parsed.positional[0]!)}'`);
  if (command === 'digests' && parsed.positional.length > 1) throw new UsageError('name one folder (quote a path that contains spaces)');
  if (command === 'invalidate-tags' && parsed.positional.length === 0) throw new UsageError('name at least one tag');
  if (command === 'inspect' && parsed.positional.length !== 1) {
    throw new UsageError(parsed.positional.length === 0 ? 'name the key to inspect' : 'name one key (quote a key that contains spaces)');
  }
  return parsed;
}

/** The version in cachegrain's package.json (beside src/ in a checkout, two levels up from dist/src/). */
function packageVersion(): string {
  for (const relative of ['../../package.json', '../../../package.json']) {
    const path = fileURLToPath(new URL(relative, import.meta.url));
    if (!existsSync(path)) continue;
    const manifest = JSON.parse(readFileSync(path, 'utf8')) as { name?: string; version?: string };
    if (manifest.name === 'cachegrain' && manifest.version !== undefined) return manifest.version;
  }
  return 'unknown';
}
