/**
 * How the package loads for a user: require() of every entry point, the files it ships beside the
 * code, the error naming the `npm install` to run when a backend's client is missing, and `get`
 * typed by its default.
 * The typed lines are checked by `npm run typecheck`, which compiles this file.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { caches, configureCaches } from 'cachegrain';
import { afterEach, describe, expect, it } from 'vitest';
import { requirePeer } from '../src/backends/peer.js';

const root = fileURLToPath(new URL('..', import.meta.url));

afterEach(async () => {
  await caches.closeAll();
});

describe('packaging', () => {
  it('answers require() for every entry point', () => {
    const script = ['', '/http', '/express', '/nunjucks', '/handlebars', '/eta'].map((entry) => `typeof require('cachegrain${entry}')`).join('+" "+');
    const out = execFileSync(process.execPath, ['-e', `console.log(${script})`], { cwd: root, encoding: 'utf8' });
    expect(out.trim()).toBe('object object object object object object');
  });

  it('ships the edge configurations beside the code, as the README names them', () => {
    const [pack] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' })) as Array<{
      files: Array<{ path: string }>;
    }>;
    const shipped = pack!.files.map((file) => file.path).filter((path) => path.startsWith('edge/'));
    expect(shipped.sort()).toEqual(['edge/nginx-http.conf', 'edge/nginx.conf', 'edge/varnish-common.vcl', 'edge/varnish-xkey.vcl', 'edge/varnish.vcl']);
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
