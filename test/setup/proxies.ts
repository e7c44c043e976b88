/**
 * Starts a Varnish or an nginx in front of a test's application, on a free loopback port, with the
 * configuration the test writes: a test file starts its own (its configuration names its
 * application's port) and stops it by PID. The surprise: a port chosen free can be another
 * process's by the time the proxy binds it, so each configuration gets a route of its own that
 * answers a token made for this start, and a proxy is ready once the one answering says it.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findExecutable, type PortChooser, startOnFreePort, startServerProcess, stopProcess } from './process.js';

/** A proxy started for a test: where it listens, and how to stop it (by PID) and remove its files. */
export interface Proxy {
  port: number;
  url: string;
  output(): string;
  stop(): Promise<void>;
}

/** The route each proxy answers with its token, whatever the test's configuration says. */
const IDENTITY_PATH = '/_test-proxy/identity';

/**
 * A varnishd in the foreground. `vcl` is the test's VCL after its `vcl 4.1;` line: the backend
 * `default` on 127.0.0.1:`backendPort` is declared before it (where the VCL does not declare its
 * own: `backendPort` omitted), and so is a `vcl_recv` that answers
 * the identity route (Varnish runs the definitions of one subroutine in the order written).
 */
export async function startVarnish(options: { backendPort?: number; vcl: string; choosePort?: PortChooser }): Promise<Proxy> {
  const binary = findExecutable(['varnishd', '/usr/sbin/varnishd'], 'varnish');
  return startOnFreePort(async (port) => {
    const dir = mkdtempSync(join(tmpdir(), 'cachegrain-varnish-'));
    // Started by root, varnishd reads its VCL as an unprivileged user of its own.
    chmodSync(dir, 0o755);
    const token = randomBytes(12).toString('hex');
    writeFileSync(
      join(dir, 'test.vcl'),
      [
        'vcl 4.1;',
        options.backendPort === undefined ? '' : `backend default { .host = "127.0.0.1"; .port = "${options.backendPort}"; }`,
        `sub vcl_recv { if (req.url == "${IDENTITY_PATH}") { return (synth(200, "${token}")); } }`,
        options.vcl,
      ].join('\n'),
    );
    const args = ['-F', '-n', join(dir, 'work'), '-a', `127.0.0.1:${port}`, '-f', join(dir, 'test.vcl'), '-s', 'malloc,32m'];
    return started(`varnishd on port ${port}`, binary, args, port, token, dir);
  }, options.choosePort);
}

/**
 * An nginx in the foreground, its files under a directory of its own. `server` is the body of the
 * test's `server` block (its locations: `proxy_pass` to the application, `proxy_cache pages`); the
 * block listens on the port chosen, answers the identity route, and has the cache zone `pages`.
 */
export async function startNginx(options: { server: string; main?: string; http?: string; choosePort?: PortChooser }): Promise<Proxy> {
  const binary = findExecutable(['nginx', '/usr/sbin/nginx'], 'nginx');
  return startOnFreePort(async (port) => {
    const dir = mkdtempSync(join(tmpdir(), 'cachegrain-nginx-'));
    const token = randomBytes(12).toString('hex');
    const temp = (name: string) => `${name}_temp_path ${join(dir, name)};`;
    writeFileSync(
      join(dir, 'nginx.conf'),
      [
        // Its workers write the cache under a directory only its owner may enter.
        process.getuid?.() === 0 ? 'user root;' : '',
        options.main ?? '',
        'worker_processes 1;',
        `error_log ${join(dir, 'error.log')};`,
        'events { worker_connections 64; }',
        'http {',
        `  access_log off; ${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(temp).join(' ')}`,
        `  proxy_cache_path ${join(dir, 'cache')} keys_zone=pages:1m;`,
        options.http ?? '',
        `  server { listen 127.0.0.1:${port}; location = ${IDENTITY_PATH} { return 200 "${token}"; }`,
        options.server,
        '  }',
        '}',
      ].join('\n'),
    );
    const args = ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf'), '-g', `daemon off; pid ${join(dir, 'nginx.pid')};`];
    return started(`nginx on port ${port}`, binary, args, port, token, dir);
  }, options.choosePort);
}

async function started(what: string, binary: string, args: string[], port: number, token: string, dir: string): Promise<Proxy> {
  const url = `http://127.0.0.1:${port}`;
  const answersWithToken = async () => {
    try {
      return (await (await fetch(`${url}${IDENTITY_PATH}`)).text()).includes(token);
    } catch {
      return false;
    }
  };
  try {
    const { child, output } = await startServerProcess(what, binary, args, answersWithToken);
    const stop = async () => {
      await stopProcess(child);
      rmSync(dir, { recursive: true, force: true });
    };
    return { port, url, output, stop };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/** The configurations the package ships (`edge/`), started here exactly as a user starts them. */
const EDGE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'edge');

/** What the test changes in a shipped file, as its comments tell a user to: the application's address, who may purge. */
export interface ShippedEdgeOptions {
  backendPort: number;
  /** The addresses allowed to purge, in place of loopback. */
  purgers?: string[];
  choosePort?: PortChooser;
}

/**
 * A Varnish running the shipped `edge/varnish.vcl` (or `edge/varnish-xkey.vcl` with `xkey`), the
 * backend's port and the purge ACL substituted in copies of the files, as a user edits them. The
 * identity route is answered by a VCL that includes the shipped one, as a user's own may.
 */
export async function startShippedVarnish(options: ShippedEdgeOptions & { xkey?: boolean }): Promise<Proxy> {
  if (options.xkey === true && !readdirSync('/usr/lib').some((dir) => existsSync(join('/usr/lib', dir, 'varnish/vmods/libvmod_xkey.so')))) {
    throw new Error('the xkey vmod (libvmod_xkey.so) is missing: install the Debian package varnish-modules');
  }
  const { dir, remove } = shippedCopies({
    [options.xkey === true ? 'varnish-xkey.vcl' : 'varnish.vcl']: (text) => substituted(text, '.port = "3000";', `.port = "${options.backendPort}";`),
    'varnish-common.vcl': (text) =>
      options.purgers === undefined ? text : substituted(text, '  "127.0.0.1";\n  "::1";', options.purgers.map((address) => `  "${address}";`).join('\n')),
  });
  const started = await startVarnish({
    vcl: `include "${join(dir, options.xkey === true ? 'varnish-xkey.vcl' : 'varnish.vcl')}";`,
    choosePort: options.choosePort,
  }).catch((error: unknown) => {
    remove();
    throw error;
  });
  return withCleanup(started, remove);
}

/**
 * An nginx whose `server` block includes the shipped `edge/nginx.conf` (its purge ACL, the `allow`
 * lines, substituted in a copy where `purgers` says so) and proxies to the application, its cache
 * zone and the shipped `edge/nginx-http.conf` in `http`
 * and the cache-purge module loaded, as the file's comments say: a configuration of one's own does
 * not read Debian's modules-enabled.
 */
export async function startShippedNginx(options: ShippedEdgeOptions): Promise<Proxy> {
  requireFile(PURGE_MODULE, 'libnginx-mod-http-cache-purge');
  const { dir, remove } = shippedCopies({
    'nginx.conf': (text) =>
      options.purgers === undefined
        ? text
        : substituted(text, '  allow 127.0.0.1;\n  allow ::1;', options.purgers.map((address) => `  allow ${address};`).join('\n')),
  });
  const started = await startNginx({
    main: `load_module ${PURGE_MODULE};`,
    http: `proxy_cache_path ${join(dir, 'cache')} keys_zone=cachegrain:1m;\n include ${join(dir, 'nginx-http.conf')};`,
    server: `include ${join(dir, 'nginx.conf')};\n location / { proxy_pass http://127.0.0.1:${options.backendPort}; }`,
    choosePort: options.choosePort,
  }).catch((error: unknown) => {
    remove();
    throw error;
  });
  return withCleanup(started, remove);
}

const PURGE_MODULE = '/usr/lib/nginx/modules/ngx_http_cache_purge_module.so';

function requireFile(path: string, debianPackage: string): void {
  if (!existsSync(path)) throw new Error(`${path} is missing: install the Debian package ${debianPackage}`);
}

/** Copies of the shipped files under a directory of their own, each changed by its function; the others as shipped. */
function shippedCopies(changes: Record<string, (text: string) => string>): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'cachegrain-edge-'));
  // Started by root, varnishd reads its VCL as an unprivileged user of its own.
  chmodSync(dir, 0o755);
  for (const name of ['varnish.vcl', 'varnish-xkey.vcl', 'varnish-common.vcl', 'nginx.conf', 'nginx-http.conf']) {
    const text = readFileSync(join(EDGE_DIR, name), 'utf8');
    writeFileSync(join(dir, name), changes[name]?.(text) ?? text, { mode: 0o644 });
  }
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `text` with `shipped` replaced by `replacement`: a shipped file that no longer says `shipped` fails the test, naming it. */
function substituted(text: string, shipped: string, replacement: string): string {
  if (!text.includes(shipped)) throw new Error(`a shipped edge configuration no longer holds ${JSON.stringify(shipped)}: update test/setup/proxies.ts`);
  return text.replace(shipped, replacement);
}

function withCleanup(proxy: Proxy, remove: () => void): Proxy {
  return {
    ...proxy,
    stop: async () => {
      await proxy.stop();
      remove();
    },
  };
}

/** The shipped edges in front of one application: Varnish with BAN, Varnish with xkey, and nginx. */
export type ShippedEdges = Record<'varnish' | 'xkey' | 'nginx', Proxy>;

/** Starts every shipped edge in front of the application on `backendPort`; stop them with `stopEdges`. */
export async function startShippedEdges(backendPort: number): Promise<ShippedEdges> {
  const [varnish, xkey, nginx] = await Promise.all([
    startShippedVarnish({ backendPort }),
    startShippedVarnish({ backendPort, xkey: true }),
    startShippedNginx({ backendPort }),
  ]);
  return { varnish, xkey, nginx };
}

/** Stops every edge started, whichever failed to start. */
export async function stopEdges(edges: Partial<ShippedEdges>): Promise<void> {
  await Promise.allSettled(Object.values(edges).map((edge) => edge.stop()));
}
