/**
 * The Nunjucks tag works with the copy of nunjucks the application renders with, whatever the working
 * directory holds: an application started from a folder with another copy of nunjucks (a monorepo's
 * root, a deploy script's folder), and two copies rendering in one process.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const fromHere = createRequire(import.meta.url);
const tsx = fromHere.resolve('tsx');
const nunjucksFolder = dirname(fromHere.resolve('nunjucks/package.json'));
const fromNunjucks = createRequire(join(nunjucksFolder, 'package.json'));
const source = (path: string) => JSON.stringify(pathToFileURL(fromHere.resolve(path)).href);

/** A folder whose node_modules holds a second copy of nunjucks (its dependencies shared with the first). */
const workingDirectory = mkdtempSync(join(tmpdir(), 'cachegrain-nunjucks-copies-'));
const modules = join(workingDirectory, 'node_modules');
mkdirSync(modules);
cpSync(nunjucksFolder, join(modules, 'nunjucks'), { recursive: true, dereference: true });
for (const dependency of ['a-sync-waterfall', 'asap', 'commander']) {
  symlinkSync(dirname(fromNunjucks.resolve(`${dependency}/package.json`)), join(modules, dependency));
}

afterAll(() => rmSync(workingDirectory, { recursive: true, force: true }));

/** Runs `body` as an ES module in another process from the working directory above; its console output. */
async function runFromWorkingDirectory(body: string): Promise<string> {
  const script = join(workingDirectory, `script-${Math.random().toString(36).slice(2)}.mts`);
  const imports = [
    `import applicationNunjucks from ${source('nunjucks')};`,
    `import { configureCaches } from ${source('../../src/index.ts')};`,
    `import { installCacheTag, renderString } from ${source('../../src/engines/nunjucks.ts')};`,
    `await configureCaches({ default: { backend: 'locmem' } });`,
  ];
  writeFileSync(script, [...imports, body].join('\n'));
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', tsx, script], { cwd: workingDirectory, encoding: 'utf8' });
  return stdout.trim();
}

// Each case starts a process that compiles the project's sources on the way.
const SPAWNING = { timeout: 60_000 };

const PAGE = '{% for n in [1, 2, 1] %}{% cache 60 "row" n %}[{{ n }}:{{ count() }}]{% endcache %}{% endfor %}';

describe('cachegrain/nunjucks with another copy of nunjucks in the working directory', () => {
  it("renders with the application's copy", SPAWNING, async () => {
    const output = await runFromWorkingDirectory(`
      let renders = 0;
      const env = installCacheTag(new applicationNunjucks.Environment());
      const page = ${JSON.stringify(PAGE)};
      console.log(await renderString(env, page, { count: () => ++renders }));
      console.log(await renderString(env, page, { count: () => ++renders }));
    `);
    expect(output).toBe('[1:1][2:2][1:1]\n[1:1][2:2][1:1]');
  });

  it('renders with each copy when both render in one process, through their own render calls too', SPAWNING, async () => {
    const output = await runFromWorkingDirectory(`
      import { createRequire } from 'node:module';
      const workingDirectoryNunjucks = createRequire(process.cwd() + '/').call(null, 'nunjucks');
      if (workingDirectoryNunjucks === applicationNunjucks) throw new Error('the two copies are one');
      let renders = 0;
      const context = { count: () => ++renders };
      for (const copy of [applicationNunjucks, workingDirectoryNunjucks, applicationNunjucks]) {
        const env = installCacheTag(new copy.Environment(), { tagName: 'cached' });
        const page = ${JSON.stringify(PAGE.replace('{% cache ', '{% cached ').replace('endcache', 'endcached'))};
        console.log(await renderString(env, page, context));
        console.log(await new Promise((resolve, reject) => env.renderString(page, context, (error, html) => (error ? reject(error) : resolve(html)))));
      }
    `);
    expect(output.split('\n')).toEqual(Array(6).fill('[1:1][2:2][1:1]'));
  });
});
