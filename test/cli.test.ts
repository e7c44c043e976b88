/**
 * The `cachegrain` command as a user runs it: the package installed into a project of its own
 * (the built files, as npm would lay them out), `npx cachegrain …` in that project's directory,
 * its configuration file beside it, and real Redis, memcached and PostgreSQL servers. Each test
 * checks what the command did to the caches, its output and its exit code.
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import ejs from 'ejs';
import { Eta } from 'eta';
import Handlebars from 'handlebars';
import { Liquid } from 'liquidjs';
import nunjucks from 'nunjucks';
import pug from 'pug';
import { installCacheTag as installEjsCacheTag } from '../src/engines/ejs.js';
import { cachePlugin } from '../src/engines/eta.js';
import { expressEngine as handlebarsEngine, installCacheHelper } from '../src/engines/handlebars.js';
import { installCacheTag as installLiquidCacheTag } from '../src/engines/liquid.js';
import { installCacheTag, render as renderNunjucks } from '../src/engines/nunjucks.js';
import { installCacheTag as installPugCacheTag } from '../src/engines/pug.js';
import { type BaseCache, type CacheConfig, caches, configureCaches, DatabaseCache, makeTemplateFragmentKey, type RedisCache } from '../src/index.js';
import { BUILTIN_BACKENDS } from '../src/backends/index.js';
import { closedPort } from './setup/closed-port.js';
import { recordingEdge } from './edge/recording-edge.js';
import { eventually } from './setup/eventually.js';
import { type MemcachedProcess, startMemcached } from './setup/memcached.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const required = (name: string) =>
  process.env[name] ??
  (() => {
    throw new Error(`${name} is not set: run the tests through vitest, whose setup starts the servers (CACHEGRAIN_TEST_SERVERS=redis,postgres)`);
  })();
const redisUrl = required('CACHEGRAIN_TEST_REDIS_URL');
const postgresUrl = required('CACHEGRAIN_TEST_POSTGRES_URL');
const version = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string }).version;

const root = mkdtempSync(join(tmpdir(), 'cachegrain-cli-'));
const run = Date.now().toString(36);
let memcached: MemcachedProcess;
let admin: pg.Client;

/**
 * A project with cachegrain installed as npm installs it from the registry: package.json, bin/ and
 * dist/ copied into node_modules/cachegrain, its dependencies and the server clients beside it, and
 * the command linked into node_modules/.bin. No source, so the command runs the built code.
 */
function project(name: string, extraPackages: string[] = []): string {
  const cli = join(repo, 'dist/src/cli/main.js');
  if (!existsSync(cli) || statSync(cli).mtimeMs < statSync(join(repo, 'src/cli/main.ts')).mtimeMs) {
    throw new Error('dist/ is missing or older than src/cli/main.ts: run `npm run build` first (npm test does)');
  }
  const dir = join(root, name);
  const installed = join(dir, 'node_modules/cachegrain');
  mkdirSync(join(dir, 'node_modules/.bin'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }));
  for (const part of ['package.json', 'bin', 'dist/src']) cpSync(join(repo, part), join(installed, part), { recursive: true });
  for (const dependency of ['lru-cache', 'vary', 'ioredis', 'pg', 'better-sqlite3', ...extraPackages]) {
    symlinkSync(join(repo, 'node_modules', dependency), join(dir, 'node_modules', dependency));
  }
  symlinkSync('../cachegrain/bin/cachegrain.js', join(dir, 'node_modules/.bin/cachegrain'));
  chmodSync(join(installed, 'bin/cachegrain.js'), 0o755);
  return dir;
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** `npx cachegrain …args` in `cwd`; never rejects: the exit code is part of the answer. */
function cachegrain(cwd: string, ...args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    // offline: npx must find the project's own command, never fetch one.
    const env = { ...process.env, npm_config_offline: 'true' };
    execFile('npx', ['cachegrain', ...args], { cwd, encoding: 'utf8', env }, (error, stdout, stderr) => {
      // npm's own notices (about the machine's npmrc, say) are not the command's.
      const own = stderr
        .split('\n')
        .filter((line) => !line.startsWith('npm warn') && !line.startsWith('npm notice'))
        .join('\n');
      resolve({ code: error === null ? 0 : Number((error as { code?: number }).code), stdout, stderr: own });
    });
  });
}

/** Writes a configuration module exporting `config`, by default as the file the command looks for. */
function writeConfig(dir: string, config: Record<string, CacheConfig>, file = 'cachegrain.config.mjs'): string {
  writeFileSync(join(dir, file), `export default ${JSON.stringify(config, null, 2)};\n`);
  return join(dir, file);
}

const opened: BaseCache[] = [];
/** The alias's cache, built in this process from the same configuration, as the application would. */
function open(config: Record<string, CacheConfig>, alias: string): BaseCache {
  const entry = config[alias]!;
  const Backend = BUILTIN_BACKENDS[entry.backend as string]!;
  const cache = new Backend({ ...(entry as object), alias });
  opened.push(cache);
  return cache;
}

/** `inspect`'s output as a map of its `name: value` lines. */
const fields = (stdout: string) =>
  new Map(
    stdout
      .trimEnd()
      .split('\n')
      .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trim()]),
  );
const noStackTrace = (result: Result) => expect(result.stderr).not.toMatch(/^\s+at /m);

beforeAll(async () => {
  memcached = await startMemcached();
  admin = new pg.Client({ connectionString: postgresUrl });
  await admin.connect();
});

afterAll(async () => {
  await Promise.all(opened.map((cache) => cache.close()));
  await admin?.end();
  await memcached?.stop();
  rmSync(root, { recursive: true, force: true });
});

describe('cachegrain --help, --version, and a wrong command line', () => {
  let dir: string;
  beforeAll(() => {
    dir = project('usage');
  });

  it('--help lists every command, each with an example, and exits 0', async () => {
    const result = await cachegrain(dir, '--help');
    expect(result.code).toBe(0);
    for (const command of ['createcachetable', 'clear [ALIAS...]', 'invalidate-tags TAG...', 'inspect KEY [--alias ALIAS]']) {
      expect(result.stdout).toContain(`\n  ${command}`);
    }
    for (const example of [
      'cachegrain createcachetable --dry-run',
      'cachegrain clear sessions pages',
      'cachegrain invalidate-tags article:7 author:3',
      'cachegrain inspect article:7 --alias pages',
    ]) {
      expect(result.stdout).toContain(`Example: ${example}\n`);
    }
    for (const option of ['--config FILE', '--dry-run', '--help', '--version']) expect(result.stdout).toContain(option);
    expect((await cachegrain(dir, 'help')).stdout).toBe(result.stdout);
  });

  it('COMMAND --help shows that command alone, without reading any configuration', async () => {
    const result = await cachegrain(dir, 'inspect', '--help');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Usage: cachegrain inspect KEY \[--alias ALIAS\]/);
    expect(result.stdout).toContain('Example: cachegrain inspect article:7 --alias pages');
    expect(result.stdout).not.toContain('createcachetable');
  });

  it("--version prints the package's version", async () => {
    for (const flag of ['--version', '-v']) {
      const result = await cachegrain(dir, flag);
      expect(result).toMatchObject({ code: 0, stdout: `${version}\n` });
    }
  });

  it('refuses an unknown command with exit code 2 and a pointer to --help', async () => {
    const result = await cachegrain(dir, 'flush');
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe("cachegrain: unknown command 'flush'. Run 'cachegrain --help' to see the commands.\n");
    const none = await cachegrain(dir);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('cachegrain: no command given.');
    expect(none.stderr).toContain('Usage: cachegrain COMMAND');
  });

  it('refuses unknown options and missing arguments with exit code 2, before reading any configuration', async () => {
    const cases: Array<[string[], string]> = [
      [['clear', '--force'], "cachegrain clear: unknown option '--force'"],
      [['createcachetable', 'extra'], "cachegrain createcachetable: unexpected argument 'extra'"],
      [['invalidate-tags'], 'cachegrain invalidate-tags: name at least one tag'],
      [['inspect'], 'cachegrain inspect: name the key to inspect'],
      [['inspect', 'a', 'b'], 'cachegrain inspect: name one key'],
      [['inspect', 'a', '--alias'], 'cachegrain inspect: --alias needs a value'],
      [['clear', '--alias', 'x'], "cachegrain clear: unknown option '--alias'"],
    ];
    for (const [args, message] of cases) {
      const result = await cachegrain(dir, ...args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toContain(message);
      expect(result.stderr).toContain(`Run 'cachegrain ${args[0]} --help' for its usage.`);
    }
  });

  it('names the closest command, and the closest option in place of one', async () => {
    const cases: Array<[string, string]> = [
      ['invalidate-tag', "cachegrain: unknown command 'invalidate-tag' (did you mean 'invalidate-tags'?)."],
      ['createcachetables', "cachegrain: unknown command 'createcachetables' (did you mean 'createcachetable'?)."],
      ['--hepl', "cachegrain: unknown option '--hepl' (did you mean '--help'?)."],
    ];
    for (const [arg, message] of cases) {
      const result = await cachegrain(dir, arg, 'a');
      expect(result, arg).toMatchObject({ code: 2, stdout: '', stderr: `${message} Run 'cachegrain --help' to see the commands.\n` });
    }
  });

  it('names the closest option the command takes', async () => {
    const cases: Array<[string[], string]> = [
      [['invalidate-tags', 'a', '--sfot'], "cachegrain invalidate-tags: unknown option '--sfot' (did you mean '--soft'?)\n"],
      [['createcachetable', '--dryrun'], "cachegrain createcachetable: unknown option '--dryrun' (did you mean '--dry-run'?)\n"],
    ];
    for (const [args, message] of cases) {
      const result = await cachegrain(dir, ...args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toBe(`${message}Run 'cachegrain ${args[0]} --help' for its usage.\n`);
    }
  });
});

describe('finding and loading the configuration', () => {
  let dir: string;
  beforeAll(() => {
    dir = project('config');
  });

  it('names every file it looked for when there is none, exit code 1', async () => {
    const result = await cachegrain(dir, 'clear');
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `cachegrain clear: no configuration found: looked for ${['js', 'mjs', 'ts', 'mts'].map((ext) => join(dir, `cachegrain.config.${ext}`)).join(', ')}; ` +
        'create one of them, or pass --config FILE\n',
    );
  });

  it('names a --config file that does not exist', async () => {
    const result = await cachegrain(dir, 'inspect', 'k', '--config', 'conf/missing.mjs');
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`cachegrain inspect: the configuration file ${join(dir, 'conf/missing.mjs')} does not exist\n`);
  });

  it('refuses a module without the configuration as its default export, and one that fails to load, without a stack trace', async () => {
    writeFileSync(join(dir, 'named.mjs'), 'export const caches = { default: { backend: "dummy" } };\n');
    const named = await cachegrain(dir, 'clear', '--config', 'named.mjs');
    expect(named.code).toBe(1);
    expect(named.stderr).toContain(`${join(dir, 'named.mjs')} must export the configureCaches() object as its default export`);
    writeFileSync(join(dir, 'broken.mjs'), 'throw new Error("REDIS_URL is not set");\n');
    const broken = await cachegrain(dir, 'clear', '--config', 'broken.mjs');
    expect(broken.code).toBe(1);
    expect(broken.stderr).toBe(`cachegrain clear: could not load the configuration ${join(dir, 'broken.mjs')}: REDIS_URL is not set\n`);
    noStackTrace(broken);
  });

  it('refuses a configuration configureCaches refuses, naming the alias', async () => {
    writeConfig(dir, { default: { backend: 'dummy' }, sessions: { backend: 'locmem', options: { maxEntires: 5 } as never } }, 'typo.mjs');
    const result = await cachegrain(dir, 'clear', '--config', 'typo.mjs');
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("cache 'sessions': unknown option 'options.maxEntires' (did you mean 'options.maxEntries'?)");
    noStackTrace(result);
  });

  it('loads cachegrain.config.js, the first name it looks for, over the others', async () => {
    const sub = join(dir, 'both');
    mkdirSync(sub);
    writeFileSync(join(sub, 'package.json'), JSON.stringify({ type: 'module' }));
    writeConfig(sub, { default: { backend: 'dummy' }, fromjs: { backend: 'dummy' } }, 'cachegrain.config.js');
    writeConfig(sub, { default: { backend: 'dummy' }, frommjs: { backend: 'dummy' } }, 'cachegrain.config.mjs');
    const result = await cachegrain(sub, 'clear', '--dry-run');
    expect(result.stdout).toBe("Would clear cache 'default' (dummy).\nWould clear cache 'fromjs' (dummy).\n");
  });

  it('says a TypeScript configuration needs tsx when the project has none, and suggests .mjs', async () => {
    const ts = join(dir, 'ts');
    mkdirSync(ts);
    writeFileSync(
      join(ts, 'cachegrain.config.ts'),
      "import type { CachesConfig } from 'cachegrain';\nexport default { default: { backend: 'dummy' } } satisfies CachesConfig;\n",
    );
    const result = await cachegrain(ts, 'clear');
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `cachegrain clear: loading the TypeScript configuration ${join(ts, 'cachegrain.config.ts')} needs tsx, which is not installed: ` +
        'run `npm install --save-dev tsx`, or write the configuration as JavaScript (cachegrain.config.mjs)\n',
    );
  });

  it('loads a TypeScript configuration (.ts, .mts) through the project’s tsx', async () => {
    const withTsx = project('config-tsx', ['tsx']);
    const source =
      "import type { CachesConfig } from 'cachegrain';\n" +
      'const prefix: string = `ts-${process.pid}`;\n' +
      `export default { default: { backend: 'redis', location: ${JSON.stringify(redisUrl)}, keyPrefix: prefix } } satisfies CachesConfig;\n`;
    writeFileSync(join(withTsx, 'cachegrain.config.ts'), source);
    const result = await cachegrain(withTsx, 'clear');
    expect(result.stderr).toBe('');
    expect(result).toMatchObject({ code: 0, stdout: `Cleared cache 'default' (redis at ${redisUrl}).\n` });
    writeFileSync(join(withTsx, 'other.mts'), source);
    expect(await cachegrain(withTsx, 'clear', '--config', 'other.mts')).toMatchObject({ code: 0 });
    // In a package that does not say "type": "module", Node loads a .ts file as CommonJS.
    const commonjs = join(withTsx, 'commonjs');
    mkdirSync(commonjs);
    writeFileSync(join(commonjs, 'package.json'), JSON.stringify({ name: 'commonjs-app' }));
    writeFileSync(join(commonjs, 'cachegrain.config.ts'), source);
    expect(await cachegrain(commonjs, 'clear')).toMatchObject({ code: 0, stdout: `Cleared cache 'default' (redis at ${redisUrl}).\n`, stderr: '' });
  });
});

describe('cachegrain clear [ALIAS…]', () => {
  let dir: string;
  let config: Record<string, CacheConfig>;
  beforeAll(() => {
    dir = project('clear');
    config = {
      default: { backend: 'redis', location: redisUrl, keyPrefix: `clear-${run}` },
      other: { backend: 'redis', location: redisUrl, keyPrefix: `clear-other-${run}` },
      mc: { backend: 'memcached', location: memcached.location },
      files: { backend: 'filebased', location: join(dir, 'cache-files') },
      local: { backend: 'locmem' },
    };
    writeConfig(dir, config);
  });

  async function fill(): Promise<void> {
    for (const alias of ['default', 'other', 'mc', 'files']) await open(config, alias).setMany({ a: `${alias}-a`, b: [1, 2, 3] });
  }
  const held = async (alias: string) => [...(await open(config, alias).getMany(['a', 'b'])).keys()];

  it('clears only the named caches', async () => {
    await fill();
    const result = await cachegrain(dir, 'clear', 'other', 'files');
    expect(result).toMatchObject({
      code: 0,
      stdout: `Cleared cache 'other' (redis at ${redisUrl}).\nCleared cache 'files' (filebased, ${join(dir, 'cache-files')}).\n`,
    });
    expect(await held('other')).toEqual([]);
    expect(await held('files')).toEqual([]);
    expect(await held('default')).toEqual(['a', 'b']);
    expect(await held('mc')).toEqual(['a', 'b']);
  });

  it('clears every configured cache when no alias is given, and says it cannot reach a locmem cache', async () => {
    await fill();
    const result = await cachegrain(dir, 'clear');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(
      [
        `Cleared cache 'default' (redis at ${redisUrl}).`,
        `Cleared cache 'other' (redis at ${redisUrl}).`,
        `Cleared cache 'mc' (memcached at ${memcached.location}).`,
        `Cleared cache 'files' (filebased, ${join(dir, 'cache-files')}).`,
        "Skipped cache 'local' (locmem): it lives inside each application process, out of this command's reach.",
        '',
      ].join('\n'),
    );
    for (const alias of ['default', 'other', 'mc', 'files']) expect(await held(alias), alias).toEqual([]);
  });

  it('with --dry-run, says what it would clear and clears nothing', async () => {
    await fill();
    const result = await cachegrain(dir, 'clear', '--dry-run');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Would clear cache 'default' (redis at ${redisUrl}).\n`);
    expect(result.stdout).toContain(`Would clear cache 'mc' (memcached at ${memcached.location}).\n`);
    for (const alias of ['default', 'other', 'mc', 'files']) expect(await held(alias), alias).toEqual(['a', 'b']);
  });

  it('refuses an alias that is not configured, and a locmem cache named, clearing nothing', async () => {
    await fill();
    const unknown = await cachegrain(dir, 'clear', 'default', 'sesions');
    expect(unknown).toMatchObject({
      code: 1,
      stdout: '',
      stderr: "cachegrain clear: the cache alias 'sesions' is not configured (configured: default, other, mc, files, local)\n",
    });
    const slip = await cachegrain(dir, 'clear', 'ohter');
    expect(slip).toMatchObject({
      code: 1,
      stderr: "cachegrain clear: the cache alias 'ohter' is not configured (did you mean 'other'?) (configured: default, other, mc, files, local)\n",
    });
    expect(await held('default')).toEqual(['a', 'b']);
    const local = await cachegrain(dir, 'clear', 'local');
    expect(local.code).toBe(1);
    expect(local.stderr).toBe(
      "cachegrain clear: cache 'local' is a locmem cache: it lives inside each application process and cannot be cleared from this command\n",
    );
  });
});

describe('an application holding entries in process (options.l1)', () => {
  let dir: string;
  let config: Record<string, CacheConfig>;
  beforeAll(() => {
    dir = project('l1');
    config = { default: { backend: 'redis', location: redisUrl, keyPrefix: `l1-${run}`, options: { l1: { timeout: 600 } } } };
    writeConfig(dir, config);
  });

  /** Waits for the application to read `key` as a miss: its in-process copy hears of the change over the bus. */
  async function settled(cache: BaseCache, key: string): Promise<unknown> {
    await eventually(async () => expect(await cache.get(key), `the application to hear that '${key}' is gone`).toBeUndefined());
    return cache.get(key);
  }

  it("clear and invalidate-tags reach the application's in-process copies", async () => {
    const app = open(config, 'default') as RedisCache;
    // Until it hears from the bus, the in-process tier keeps nothing for long: it starts over once subscribed.
    await app.get('page');
    await eventually(() => expect(app.l1!.busUp).toBe(true));
    await app.set('page', 'cached', { tags: ['news'] });
    await app.set('other', 'cached');
    expect(app.peekFresh('page')?.value).toBe('cached');
    expect((await cachegrain(dir, 'invalidate-tags', 'news')).code).toBe(0);
    expect(await settled(app, 'page')).toBeUndefined();
    expect(app.peekFresh('other')?.value).toBe('cached');
    expect((await cachegrain(dir, 'clear')).code).toBe(0);
    expect(await settled(app, 'other')).toBeUndefined();
  });
});

describe('a server that does not answer', () => {
  let dir: string;
  let config: Record<string, CacheConfig>;
  let deadRedis: string;
  let deadMemcached: string;
  let deadPostgres: string;
  beforeAll(async () => {
    dir = project('dead');
    deadRedis = `redis://127.0.0.1:${await closedPort()}/0`;
    deadMemcached = `127.0.0.1:${await closedPort()}`;
    deadPostgres = `postgres://nobody@127.0.0.1:${await closedPort()}/none`;
    config = {
      default: { backend: 'redis', location: redisUrl, keyPrefix: `dead-${run}` },
      gone: { backend: 'redis', location: deadRedis, options: { timeoutMs: 300 } },
      quiet: { backend: 'redis', location: deadRedis, options: { timeoutMs: 300, failOpen: true } },
      mc: { backend: 'memcached', location: deadMemcached, options: { timeoutMs: 300 } },
      db: { backend: 'database', location: 'cli_dead', options: { connection: deadPostgres, timeoutMs: 300 } },
      lite: { backend: 'database', location: 'cli_dead', options: { connection: `sqlite://${join(dir, 'never.db')}` } },
    };
    writeConfig(dir, config);
  });

  it('clear names the alias and the server of each failure, goes on with the others, and exits 1', async () => {
    await open(config, 'default').set('k', 'v');
    const result = await cachegrain(dir, 'clear', 'gone', 'quiet', 'mc', 'default');
    expect(result.code).toBe(1);
    expect(result.stdout).toBe(`Cleared cache 'default' (redis at ${redisUrl}).\n`);
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(new RegExp(`^cachegrain clear: cache 'gone' \\(redis at ${deadRedis}\\): server ${deadRedis}[: ]`));
    // failOpen turns the failure into a quiet no-op for an application; the command still reports it.
    expect(lines[1]).toMatch(new RegExp(`^cachegrain clear: cache 'quiet' \\(redis at ${deadRedis}\\): server ${deadRedis}[: ]`));
    expect(lines[2]).toMatch(new RegExp(`^cachegrain clear: cache 'mc' \\(memcached at ${deadMemcached}\\): .*${deadMemcached}`));
    noStackTrace(result);
    expect(await open(config, 'default').get('k')).toBeUndefined();
  });

  it('invalidate-tags and inspect name the alias and the server too', async () => {
    const tags = await cachegrain(dir, 'invalidate-tags', 'x', '--config', writeConfig(dir, { default: config.gone! }, 'gone.mjs'));
    expect(tags.code).toBe(1);
    expect(tags.stderr).toMatch(new RegExp(`^cachegrain invalidate-tags: cache 'default' \\(redis at ${deadRedis}\\): server ${deadRedis}[: ]`));
    const inspect = await cachegrain(dir, 'inspect', 'k', '--alias', 'mc');
    expect(inspect.code).toBe(1);
    expect(inspect.stderr).toMatch(new RegExp(`^cachegrain inspect: cache 'mc' \\(memcached at ${deadMemcached}\\): .*${deadMemcached}`));
    noStackTrace(tags);
    noStackTrace(inspect);
  });

  it('createcachetable names the alias and the database', async () => {
    const result = await cachegrain(dir, 'createcachetable', '--config', writeConfig(dir, { default: { backend: 'dummy' }, db: config.db! }, 'db.mjs'));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `cachegrain createcachetable: cache table 'cli_dead' could not be created: cache 'db' (database, table 'cli_dead' on ${deadPostgres}`,
    );
    noStackTrace(result);
  });

  it('--dry-run connects to nothing: every command answers, and no SQLite file is created', async () => {
    const clear = await cachegrain(dir, 'clear', '--dry-run');
    expect(clear.code).toBe(0);
    expect(clear.stdout).toBe(
      [
        `Would clear cache 'default' (redis at ${redisUrl}).`,
        `Would clear cache 'gone' (redis at ${deadRedis}).`,
        `Would clear cache 'quiet' (redis at ${deadRedis}).`,
        `Would clear cache 'mc' (memcached at ${deadMemcached}).`,
        `Would clear cache 'db' (database, table 'cli_dead' on ${deadPostgres}).`,
        `Would clear cache 'lite' (database, table 'cli_dead' on sqlite:${join(dir, 'never.db')}).`,
        '',
      ].join('\n'),
    );
    const tags = await cachegrain(dir, 'invalidate-tags', 'article:7', '--soft', '--dry-run');
    expect(tags.code).toBe(0);
    expect(tags.stdout).toContain(`Would softly invalidate 'article:7' in cache 'gone' (redis at ${deadRedis}).\n`);
    const inspect = await cachegrain(dir, 'inspect', 'k', '--alias', 'mc', '--dry-run');
    expect(inspect).toMatchObject({ code: 0, stdout: `Would read key 'k' from cache 'mc' (memcached at ${deadMemcached}).\n` });
    const tables = await cachegrain(dir, 'createcachetable', '--dry-run');
    expect(tables.code).toBe(0);
    expect(tables.stdout).toBe(
      [
        `-- cache 'db' (database, table 'cli_dead' on ${deadPostgres}), if the table does not exist yet:`,
        `CREATE TABLE "cli_dead" ("cache_key" varchar(255) NOT NULL PRIMARY KEY, "value" bytea NOT NULL, "expires" double precision NOT NULL);`,
        `CREATE INDEX "cli_dead_expires" ON "cli_dead" ("expires");`,
        `-- cache 'lite' (database, table 'cli_dead' on sqlite:${join(dir, 'never.db')}), if the table does not exist yet:`,
        `CREATE TABLE "cli_dead" ("cache_key" varchar(255) NOT NULL PRIMARY KEY, "value" blob NOT NULL, "expires" real NOT NULL);`,
        `CREATE INDEX "cli_dead_expires" ON "cli_dead" ("expires");`,
        '',
      ].join('\n'),
    );
    expect(existsSync(join(dir, 'never.db'))).toBe(false);
  });

  it('--dry-run still refuses an alias that is not configured', async () => {
    const result = await cachegrain(dir, 'inspect', 'k', '--alias', 'sessions', '--dry-run');
    expect(result).toMatchObject({
      code: 1,
      stderr: "cachegrain inspect: the cache alias 'sessions' is not configured (configured: default, gone, quiet, mc, db, lite)\n",
    });
  });
});

describe('cachegrain invalidate-tags TAG…', () => {
  let dir: string;
  let config: Record<string, CacheConfig>;
  beforeAll(() => {
    dir = project('tags');
    config = {
      default: { backend: 'redis', location: redisUrl, keyPrefix: `tags-${run}` },
      mc: { backend: 'memcached', location: memcached.location, keyPrefix: `tags-${run}` },
      files: { backend: 'filebased', location: join(dir, 'cache-files') },
      local: { backend: 'locmem' },
    };
    writeConfig(dir, config);
  });

  it('makes the entries written with any of the tags misses in every cache, and leaves the others', async () => {
    for (const alias of ['default', 'mc', 'files']) {
      const cache = open(config, alias);
      await cache.set('article:7', 'seven', { tags: ['article:7', 'author:3'] });
      await cache.set('article:8', 'eight', { tags: ['article:8', 'author:3'] });
      await cache.set('article:9', 'nine', { tags: ['article:9', 'author:4'] });
      await cache.set('plain', 'untagged');
    }
    const result = await cachegrain(dir, 'invalidate-tags', 'author:3', 'section:none');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(
      [
        `Invalidated 'author:3', 'section:none' in cache 'default' (redis at ${redisUrl}).`,
        `Invalidated 'author:3', 'section:none' in cache 'mc' (memcached at ${memcached.location}).`,
        `Invalidated 'author:3', 'section:none' in cache 'files' (filebased, ${join(dir, 'cache-files')}).`,
        "Skipped cache 'local' (locmem): it lives inside each application process, out of this command's reach.",
        '',
      ].join('\n'),
    );
    for (const alias of ['default', 'mc', 'files']) {
      const found = await open(config, alias).getMany(['article:7', 'article:8', 'article:9', 'plain']);
      expect([...found], alias).toEqual([
        ['article:9', 'nine'],
        ['plain', 'untagged'],
      ]);
    }
  });

  it('with --soft, leaves entries that may be served stale as stale, and makes the others misses', async () => {
    const cache = open(config, 'default');
    await cache.set('feed', ['a', 'b'], { timeout: 600, staleWhileRevalidate: 300, tags: ['feed'] });
    await cache.set('sidebar', 'side', { timeout: 600, tags: ['feed'] });
    const result = await cachegrain(dir, 'invalidate-tags', '--soft', 'feed', '--config', writeConfig(dir, { default: config.default! }, 'redis-only.mjs'));
    expect(result).toMatchObject({ code: 0, stdout: `Softly invalidated 'feed' in cache 'default' (redis at ${redisUrl}).\n` });
    const entries = await open(config, 'default').getEntries(['feed', 'sidebar']);
    expect([...entries.keys()]).toEqual(['feed']);
    expect(entries.get('feed')).toMatchObject({ value: ['a', 'b'], state: 'stale' });
    const inspect = await cachegrain(dir, 'inspect', 'feed');
    expect(fields(inspect.stdout).get('state')).toBe('stale (served while one refresh runs)');
    expect(fields(inspect.stdout).get('fresh until')).toMatch(/^\S+Z \(in (9m|10m) \d+s\)$/);
  });

  it('purges the edges in front of a cache, and exits once they took the purge', async () => {
    const edge = await recordingEdge();
    try {
      const files = { ...config.files!, purge: [{ edge: 'http' as const, url: `${edge.url}/purge` }] };
      const result = await cachegrain(dir, 'invalidate-tags', 'author:3', '--config', writeConfig(dir, { default: files }, 'purging.mjs'));
      expect(result).toMatchObject({ code: 0, stderr: '' });
      expect(edge.received.map((request) => [request.url, JSON.parse(request.body)])).toEqual([['/purge', { tags: ['author:3', 'cachegrain:overflow'] }]]);
    } finally {
      await edge.close();
    }
  });

  it('fails naming the edge and what it did not purge when the edge is down', async () => {
    const port = await closedPort();
    const files = { ...config.files!, purge: [{ edge: 'nginx' as const, url: `http://127.0.0.1:${port}`, tries: 1 }] };
    const result = await cachegrain(dir, 'invalidate-tags', 'url:/authors/3', '--config', writeConfig(dir, { default: files }, 'purging-down.mjs'));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `cachegrain invalidate-tags: cache 'default' (filebased, ${join(dir, 'cache-files')}): the edge nginx http://127.0.0.1:${port} did not purge URL http://127.0.0.1:${port}/authors/3 (tried once; last: PURGE`,
    );
  });

  it('with --dry-run, invalidates nothing', async () => {
    const cache = open(config, 'default');
    await cache.set('kept', 'v', { tags: ['keep'] });
    const result = await cachegrain(dir, 'invalidate-tags', 'keep', '--dry-run');
    expect(result.stdout).toContain(`Would invalidate 'keep' in cache 'default' (redis at ${redisUrl}).\n`);
    expect(await open(config, 'default').get('kept')).toBe('v');
  });
});

describe('cachegrain inspect KEY [--alias A]', () => {
  let dir: string;
  let config: Record<string, CacheConfig>;
  const prefix = `inspect-${run}`;
  beforeAll(() => {
    dir = project('inspect');
    config = {
      default: { backend: 'redis', location: redisUrl, keyPrefix: prefix },
      mc: { backend: 'memcached', location: memcached.location, keyPrefix: prefix },
      files: { backend: 'filebased', location: join(dir, 'cache-files') },
      local: { backend: 'locmem' },
    };
    writeConfig(dir, config);
  });

  it('shows the value, the state, the expiry, the tags and the stored size of an entry in Redis', async () => {
    const cache = open(config, 'default');
    const article = { title: 'Caching', words: 1200, published: new Date('2026-01-02T03:04:05Z') };
    await cache.set('article:7', article, { timeout: 600, tags: ['article:7', 'author:3'] });
    const before = Date.now() / 1000;
    const result = await cachegrain(dir, 'inspect', 'article:7');
    expect(result.code).toBe(0);
    const shown = fields(result.stdout);
    expect(shown.get('cache')).toBe('default');
    expect(shown.get('key')).toBe(`${prefix}:1:article:7`);
    expect(shown.get('state')).toBe('fresh');
    expect(shown.get('tags')).toBe('article:7, author:3');
    expect(shown.get('value')).toBe("{ title: 'Caching', words: 1200, published: 2026-01-02T03:04:05.000Z }");
    // The size is what Redis itself holds under the key.
    const { Redis } = await import('ioredis');
    const redis = new Redis(redisUrl);
    const stored = await redis.strlen(`${prefix}:1:article:7`);
    const ttl = await redis.ttl(`${prefix}:1:article:7`);
    await redis.quit();
    expect(shown.get('size')).toBe(`${stored} bytes stored`);
    const expires = /^(\S+) \(in (\d+)m (\d+)s\)$/.exec(shown.get('expires')!)!;
    expect(expires).not.toBeNull();
    const at = Date.parse(expires[1]!) / 1000;
    expect(at).toBeGreaterThanOrEqual(Math.floor(before + ttl - 2));
    expect(at).toBeLessThanOrEqual(before + 601);
    expect(Number(expires[2]) * 60 + Number(expires[3])).toBeLessThanOrEqual(600);
  });

  it('shows entries of memcached (--alias) and of a filebased cache, with "never" for no expiry', async () => {
    await open(config, 'mc').set('counter', 41, { timeout: 3600 });
    const mc = await cachegrain(dir, 'inspect', 'counter', '--alias', 'mc');
    expect(mc.code).toBe(0);
    const shown = fields(mc.stdout);
    expect(shown.get('value')).toBe('41');
    expect(shown.get('size')).toBe('2 bytes stored');
    expect(shown.get('expires')).toMatch(/ \(in (59m \d+s|1h 0m)\)$/);
    expect(shown.get('tags')).toBe('(none)');
    await open(config, 'files').set('forever', 'kept', null);
    const files = fields((await cachegrain(dir, 'inspect', 'forever', '--alias=files')).stdout);
    expect(files.get('expires')).toBe('never');
    expect(files.get('value')).toBe("'kept'  [string, 4 characters]");
    expect(files.get('size')).toBe('5 bytes stored');
  });

  it('previews binary and long values safely: escaped, truncated', async () => {
    const cache = open(config, 'default');
    const bytes = Buffer.from([0x1b, 0x5b, 0x32, 0x4a, 0x00, 0xff, 0x07, ...Buffer.alloc(200, 0x41)]);
    await cache.set('blob', bytes);
    await cache.set('long', `\u001b[31mred\u0007${'x'.repeat(10_000)}`);
    await cache.set('nested', { list: Array.from({ length: 1000 }, (_, i) => i), deep: { a: { b: { c: { d: 1 } } } } });
    for (const key of ['blob', 'long', 'nested']) {
      const result = await cachegrain(dir, 'inspect', key);
      expect(result.code, key).toBe(0);
      // No control character reaches the terminal but the line ends.
      expect(result.stdout.replaceAll('\n', ''), key).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
      expect(fields(result.stdout).get('value')!.length, key).toBeLessThan(400);
    }
    const blob = fields((await cachegrain(dir, 'inspect', 'blob')).stdout).get('value')!;
    expect(blob).toMatch(/^<Buffer 1b 5b 32 4a 00 ff 07 41 41 .* more bytes>  \[Buffer, 207 bytes\]$/);
    const long = fields((await cachegrain(dir, 'inspect', 'long')).stdout).get('value')!;
    expect(long).toContain('\\x1B[31mred\\x07xxx');
    expect(long).toContain('… (truncated)');
    expect(long).toMatch(/\[string, 10009 characters\]$/);
  });

  it('says there is no entry, exit code 1, for a missing key and for an entry whose tag was invalidated', async () => {
    const missing = await cachegrain(dir, 'inspect', 'nothing-here');
    expect(missing).toMatchObject({
      code: 1,
      stdout: '',
      stderr: `cachegrain inspect: no entry under key 'nothing-here' (stored key '${prefix}:1:nothing-here') in cache 'default' (redis at ${redisUrl}).\n`,
    });
    await open(config, 'default').set('tagged', 'v', { tags: ['gone'] });
    expect((await cachegrain(dir, 'inspect', 'tagged')).code).toBe(0);
    expect((await cachegrain(dir, 'invalidate-tags', 'gone')).code).toBe(0);
    expect(await cachegrain(dir, 'inspect', 'tagged')).toMatchObject({ code: 1, stderr: expect.stringContaining("no entry under key 'tagged'") });
  });

  it('refuses a locmem cache and an alias that is not configured', async () => {
    expect(await cachegrain(dir, 'inspect', 'k', '--alias', 'local')).toMatchObject({
      code: 1,
      stderr: "cachegrain inspect: cache 'local' is a locmem cache: it lives inside each application process and cannot be inspected from this command\n",
    });
    expect(await cachegrain(dir, 'inspect', 'k', '--alias', 'pages')).toMatchObject({
      code: 1,
      stderr: "cachegrain inspect: the cache alias 'pages' is not configured (configured: default, mc, files, local)\n",
    });
  });
});

describe('cachegrain createcachetable', () => {
  let dir: string;
  let config: Record<string, CacheConfig>;
  const table = `cli_made_${run}`;
  beforeAll(async () => {
    dir = project('tables');
    config = {
      default: { backend: 'database', location: table, options: { connection: postgresUrl, createTable: false } },
      again: { backend: 'database', location: table, keyPrefix: 'again', options: { connection: postgresUrl, createTable: false } },
      files: { backend: 'filebased', location: join(dir, 'cache-files') },
    };
    writeConfig(dir, config);
    await admin.query(`DROP TABLE IF EXISTS "${table}"`);
  });
  afterAll(() => admin.query(`DROP TABLE IF EXISTS "${table}"`));

  const tableExists = async () => (await admin.query('SELECT to_regclass($1) AS t', [`"${table}"`])).rows[0].t !== null;

  it('with --dry-run, prints the SQL and creates nothing', async () => {
    const result = await cachegrain(dir, 'createcachetable', '--dry-run');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`CREATE TABLE "${table}" (`);
    expect(result.stdout.match(/CREATE TABLE/g)).toHaveLength(1);
    expect(await tableExists()).toBe(false);
  });

  it('creates the table once for two aliases on it, which a database cache then uses; a second run finds it', async () => {
    const result = await cachegrain(dir, 'createcachetable');
    expect(result).toMatchObject({ code: 0, stdout: `Cache table '${table}' created.\n` });
    expect(await tableExists()).toBe(true);
    // createTable: false: the cache would fail on a missing table instead of creating it.
    const cache = open(config, 'default') as DatabaseCache;
    await cache.set('made', { by: 'createcachetable' }, { tags: ['t'] });
    expect(await cache.get('made')).toEqual({ by: 'createcachetable' });
    const shown = await cachegrain(dir, 'inspect', 'made');
    expect(fields(shown.stdout).get('value')).toBe("{ by: 'createcachetable' }");
    expect(fields(shown.stdout).get('tags')).toBe('t');
    const { rows } = await admin.query(`SELECT octet_length(value) AS n FROM "${table}" WHERE cache_key = ':1:made'`);
    expect(fields(shown.stdout).get('size')).toBe(`${rows[0].n} bytes stored`);
    expect(await cachegrain(dir, 'clear', 'default')).toMatchObject({ code: 0 });
    expect(await cache.get('made')).toBeUndefined();
    expect(await cachegrain(dir, 'createcachetable')).toMatchObject({ code: 0, stdout: `Cache table '${table}' already exists.\n` });
  });

  it('says when no database cache is configured', async () => {
    const result = await cachegrain(dir, 'createcachetable', '--config', writeConfig(dir, { default: config.files! }, 'none.mjs'));
    expect(result).toMatchObject({ code: 0, stdout: 'No database caches are configured.\n' });
  });
});

describe('cachegrain digests [DIR] [--explain]', () => {
  let dir: string;
  let views: string;
  /** The folder every template is in: another than the project's, where the command runs. */
  const templates: Record<string, string> = {
    'layout.njk': '<main>{% block body %}{% endblock %}</main>',
    'page.njk': '{% extends "layout.njk" %}\n{% block body %}{% cache 60 "njk-page" %}{% include "partials/card.njk" %}{% endcache %}{% endblock %}',
    'partials/card.njk': 'card',
    'page.hbs': '{{#> layout}}\n{{#cache 60 "hbs-page"}}{{> card}}{{/cache}}{{/layout}}',
    'partials/layout.hbs': '<main>{{> @partial-block}}</main>',
    'partials/card.hbs': 'card',
    'layout.eta': '<main><%~ it.body %></main>',
    'page.eta': "<% layout('layout') %>\n<% cache 60 \"eta-page\" %><%~ include('partials/card', it) %><% endcache %>",
    'partials/card.eta': 'card',
  };
  const writeTemplates = (folder: string, files: Record<string, string>) => {
    for (const [file, source] of Object.entries(files)) {
      mkdirSync(join(folder, file, '..'), { recursive: true });
      writeFileSync(join(folder, file), source);
    }
  };
  /** The digests the command printed, by template file. */
  const printed = (stdout: string) => new Map([...stdout.matchAll(/^([0-9a-f]{32}) {2}(\S+)$/gm)].map(([, digest, file]) => [file!, digest!]));

  beforeAll(() => {
    dir = project('digests', ['nunjucks', 'handlebars', 'eta']);
    views = join(root, 'digest-views');
    writeTemplates(views, templates);
  });
  afterAll(() => caches.closeAll());

  it('prints the digest of every template under DIR, run from another folder, as the engines key their fragments with', async () => {
    const result = await cachegrain(dir, 'digests', views);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const digests = printed(result.stdout);
    expect([...digests.keys()].sort()).toEqual(Object.keys(templates).sort());
    // Each engine, started in this process on the same folder, stores its page's fragment under the key the printed digest makes.
    await configureCaches({ default: { backend: 'locmem', location: 'cli-digests' } });
    const env = installCacheTag(new nunjucks.Environment(new nunjucks.FileSystemLoader(views)), { digests: true });
    await renderNunjucks(env, 'page.njk', {});
    const handlebarsView = handlebarsEngine(installCacheHelper(Handlebars.create(), { digests: true }), { partialsDir: join(views, 'partials') });
    await new Promise((resolve, reject) => handlebarsView(join(views, 'page.hbs'), { cache: true }, (error, html) => (error ? reject(error) : resolve(html))));
    await new Eta({ views, plugins: [cachePlugin({ digests: true })] }).renderAsync('page', {});
    for (const [fragment, file] of [
      ['njk-page', 'page.njk'],
      ['hbs-page', 'page.hbs'],
      ['eta-page', 'page.eta'],
    ]) {
      expect(await caches.get('default').get(makeTemplateFragmentKey(fragment!, [], undefined, digests.get(file!))), fragment).toBe('card');
    }
  });

  it('--explain prints under each template the tree of what it depends on', async () => {
    const result = await cachegrain(dir, 'digests', views, '--explain');
    expect(result.code).toBe(0);
    const digests = printed(result.stdout);
    expect(result.stdout).toContain(`${digests.get('page.njk')}  page.njk\n    layout.njk (line 1)\n    partials/card.njk (line 2)\n`);
    expect(result.stdout).toContain(`${digests.get('page.hbs')}  page.hbs\n    layout (line 1)\n    card (line 2)\n`);
    expect(result.stdout).toContain(`${digests.get('page.eta')}  page.eta\n    layout.eta (line 1)\n    partials/card.eta (line 2)\n`);
  });

  it('exits 1 naming the template and line of each dependency it cannot resolve, for CI', async () => {
    const broken = join(root, 'digest-views-broken');
    writeTemplates(broken, { 'page.njk': 'Page\n{% include "partials/nope.njk" %}\n{% include name %}\n', 'fine.eta': 'fine' });
    const result = await cachegrain(dir, 'digests', broken);
    expect(result.code).toBe(1);
    expect(printed(result.stdout).size).toBe(2);
    expect(result.stderr).toContain("cachegrain digests: page.njk, line 2: 'partials/nope.njk' is named and cannot be found");
    expect(result.stderr).toContain('cachegrain digests: page.njk, line 3: a template named by an expression is left out of the digest');
    expect(result.stderr).toContain('cachegrain digests: 2 dependencies could not be resolved\n');
    noStackTrace(result);
  });

  it('refuses a wrong command line with exit code 2, and a DIR that is no folder of templates with 1', async () => {
    for (const args of [
      ['digests', views, views],
      ['digests', '--dry-run'],
      ['digests', views, '--config', 'x.mjs'],
    ]) {
      const result = await cachegrain(dir, ...args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toContain("Run 'cachegrain digests --help' for its usage.");
    }
    expect(await cachegrain(dir, 'digests', join(views, 'page.njk'))).toMatchObject({ code: 1, stderr: expect.stringContaining('is not a folder') });
    const empty = join(root, 'digest-views-empty');
    mkdirSync(empty);
    expect(await cachegrain(dir, 'digests', empty)).toMatchObject({ code: 1, stderr: expect.stringContaining('no templates in') });
  });
});

describe('cachegrain digests, for the engines that name a template by its path from where the application starts', () => {
  /** Each engine: a page including a partial (on line 2), one including a missing partial, and a render as an application started in `dir` makes it. */
  const engines = [
    {
      name: 'ejs',
      page: "Page\n<% cache(60, 'ejs-page', [], async () => { %><%- await include('partials/card') %><% }) %>",
      card: 'card',
      missing: "Page\n<%- await include('partials/nope') %>",
      render: async (views: string) => {
        installEjsCacheTag(ejs, { digests: true });
        await ejs.renderFile(join(views, 'page.ejs'), {}, { async: true, views: [views] });
      },
    },
    {
      name: 'pug',
      page: "+cache(60, 'pug-page')\n  include partials/card\n",
      card: '| card',
      missing: '| Page\ninclude partials/nope\n',
      render: async (views: string) => {
        installPugCacheTag(pug, { digests: true });
        await pug.renderFile(join(views, 'page.pug'), { basedir: views });
      },
    },
    {
      name: 'liquid',
      page: "Page\n{% cache 60 'liquid-page' %}{% render 'partials/card' %}{% endcache %}",
      card: 'card',
      missing: "Page\n{% render 'partials/nope' %}",
      render: async (views: string) => {
        await installLiquidCacheTag(new Liquid({ root: views, extname: '.liquid' }), { digests: true }).renderFile('page');
      },
    },
  ];
  /** The digests the command printed, by template file. */
  const printed = (stdout: string) => new Map([...stdout.matchAll(/^([0-9a-f]{32}) {2}(\S+)$/gm)].map(([, digest, file]) => [file!, digest!]));
  let dir: string;

  beforeAll(() => {
    dir = project('digests-by-path', ['ejs', 'pug', 'liquidjs']);
    for (const { name, page, card, missing } of engines) {
      mkdirSync(join(dir, 'views', name, 'partials'), { recursive: true });
      writeFileSync(join(dir, 'views', name, `page.${name}`), page);
      writeFileSync(join(dir, 'views', name, `partials/card.${name}`), card);
      mkdirSync(join(dir, 'broken', name), { recursive: true });
      writeFileSync(join(dir, 'broken', name, `page.${name}`), missing);
    }
  });
  afterAll(() => caches.closeAll());

  for (const engine of engines) {
    const { name } = engine;
    it(`${name}: run from the folder the application starts in, it prints the digest the application's render keys the fragment with`, async () => {
      const result = await cachegrain(dir, 'digests', `views/${name}`);
      expect(result).toMatchObject({ code: 0, stderr: '' });
      const digests = printed(result.stdout);
      expect([...digests.keys()]).toEqual([`page.${name}`, `partials/card.${name}`]);
      await configureCaches({ default: { backend: 'locmem', location: `cli-digests-${name}` } });
      // The application starts in its project's folder, and names its templates from there.
      const started = process.cwd();
      process.chdir(dir);
      try {
        await engine.render(join(dir, 'views', name));
      } finally {
        process.chdir(started);
      }
      const key = makeTemplateFragmentKey(`${name}-page`, [], undefined, digests.get(`page.${name}`));
      expect(await caches.get('default').get(key)).toBe('card');
      // Run from another folder, it names the partial otherwise, and prints another digest.
      const elsewhere = printed((await cachegrain(join(dir, 'views'), 'digests', name)).stdout);
      expect(elsewhere.get(`page.${name}`)).toMatch(/^[0-9a-f]{32}$/);
      expect(elsewhere.get(`page.${name}`)).not.toBe(digests.get(`page.${name}`));
    });

    it(`${name}: --explain prints the partial under the page, named from the folder the command runs in`, async () => {
      const result = await cachegrain(dir, 'digests', `views/${name}`, '--explain');
      expect(result).toMatchObject({ code: 0, stderr: '' });
      const digests = printed(result.stdout);
      expect(result.stdout).toContain(`${digests.get(`page.${name}`)}  page.${name}\n    ./views/${name}/partials/card.${name} (line 2)\n`);
    });

    it(`${name}: a partial that cannot be found exits 1 naming the template and line`, async () => {
      const result = await cachegrain(dir, 'digests', `broken/${name}`);
      expect(result.code).toBe(1);
      // The partial is named as the page writes it.
      expect(result.stderr).toMatch(
        new RegExp(`^cachegrain digests: \\./broken/${name}/page\\.${name}, line 2: 'partials/nope(\\.${name})?' is named and cannot be found`, 'm'),
      );
      expect(result.stderr).toContain('cachegrain digests: 1 dependency could not be resolved\n');
      noStackTrace(result);
    });
  }
});

describe('in a source checkout', () => {
  it('bin/cachegrain.js runs the TypeScript source', async () => {
    const result = await new Promise<Result>((resolve) =>
      execFile(process.execPath, [join(repo, 'bin/cachegrain.js'), '--version'], { encoding: 'utf8' }, (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : Number((error as { code?: number }).code), stdout, stderr }),
      ),
    );
    expect(result).toMatchObject({ code: 0, stdout: `${version}\n` });
  });

  it('ends quietly when its reader closes the pipe early, as `cachegrain digests | head -1` does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cachegrain-pipe-'));
    for (let i = 0; i < 400; i++) writeFileSync(join(dir, `page-${i}.njk`), `<p>{{ ${i} }}</p>`);
    const child = spawn(process.execPath, [join(repo, 'bin/cachegrain.js'), 'digests', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const [first] = (await once(child.stdout, 'data')) as [Buffer];
    child.stdout.destroy();
    const [code] = (await once(child, 'exit')) as [number | null];
    rmSync(dir, { recursive: true, force: true });
    expect(first.toString()).toMatch(/^[0-9a-f]{32} {2}page-\d+\.njk\n/);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  });
});
