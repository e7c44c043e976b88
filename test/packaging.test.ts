/**
 * How the package loads for a user: require() of every entry point, the files it ships beside the
 * code (the edge's configurations, the manual), the error naming the `npm install` to run when a
 * backend's client is missing, and `get` typed by its default.
 * The typed lines are checked by `npm run typecheck`, which compiles this file.
 */
import { execFileSync } from 'node:child_process';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { caches, configureCaches } from 'cachegrain';
import { afterEach, describe, expect, it } from 'vitest';
import { requirePeer } from '../src/backends/peer.js';
import { links, manualFiles, manualText } from './setup/manual.js';

const root = fileURLToPath(new URL('..', import.meta.url));

afterEach(async () => {
  await caches.closeAll();
});

/** The paths `npm pack` puts in the tarball, from the package's root. */
function packedFiles(): string[] {
  const [pack] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' })) as Array<{
    files: Array<{ path: string }>;
  }>;
  return pack!.files.map((file) => file.path);
}

describe('packaging', () => {
  it('answers require() for every entry point', () => {
    const script = ['', '/http', '/express', '/nunjucks', '/handlebars', '/eta'].map((entry) => `typeof require('cachegrain${entry}')`).join('+" "+');
    const out = execFileSync(process.execPath, ['-e', `console.log(${script})`], { cwd: root, encoding: 'utf8' });
    expect(out.trim()).toBe('object object object object object object');
  });

  it('ships the edge configurations beside the code, as the manual names them', () => {
    const shipped = packedFiles().filter((path) => path.startsWith('edge/'));
    expect(shipped.sort()).toEqual(['edge/nginx-http.conf', 'edge/nginx.conf', 'edge/varnish-common.vcl', 'edge/varnish-xkey.vcl', 'edge/varnish.vcl']);
  });

  it('ships the README with every guide of docs/ and every file a link of theirs lands on', () => {
    const shipped = new Set(packedFiles());
    const guides = manualFiles();
    const landings = guides.flatMap((file) =>
      links(manualText(file))
        .map(({ target }) => target.split('#')[0]!)
        .filter((path) => path !== '' && !/^[a-z][\w+.-]*:/i.test(path))
        .map((path) => normalize(join(dirname(file), path))),
    );
    expect(guides.length).toBeGreaterThan(5);
    expect([...new Set([...guides, ...landings])].filter((path) => !shipped.has(path))).toEqual([]);
  });

  it('names the npm install to run when a backend needs a package that is missing', () => {
    expect(() => requirePeer('cachegrain-missing-client', 'The example backend')).toThrow(
      "The example backend needs the package 'cachegrain-missing-client', which is not installed: run `npm install cachegrain-missing-client`",
    );
  });

  it("types each backend's options, and refuses an unknown one at run time naming the closest", () => {
    // @ts-expect-error: a misspelt option is a type error
    const typo = () => configureCaches({ default: { backend: 'locmem', options: { maxEntires: 5 } } });
    expect(typo).toThrow(
      "cache 'default': unknown option 'options.maxEntires' (did you mean 'options.maxEntries'?); the options are 'options.maxEntries', 'options.cullFrequency'",
    );
    // @ts-expect-error: the database backend needs its connection, and is refused without it where it is configured
    expect(() => configureCaches({ default: { backend: 'database', location: 't' } })).toThrow(/^cache 'default': options\.connection is required/);
  });

  it("types get with its default as the default's type", async () => {
    configureCaches({ default: { backend: 'locmem' } });
    const cache = caches.get('default');
    const onMiss: string = await cache.get('absent', 'fallback');
    expect(onMiss).toBe('fallback');
    await cache.set('present', 'stored');
    const onHit: string = await cache.get('present', 'fallback');
    expect(onHit).toBe('stored');
  });
});
