/**
 * Starts a Varnish or an nginx in front of a test's application, on a free loopback port, with the
 * configuration the test writes: a test file starts its own (its configuration names its
 * application's port) and stops it by PID. The surprise: a port chosen free can be another
 * process's by the time the proxy binds it, so each configuration gets a route of its own that
 * answers a token made for this start, and a proxy is ready once the one answering says it.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
 * `default` on 127.0.0.1:`backendPort` is declared before it, and so is a `vcl_recv` that answers
 * the identity route (Varnish runs the definitions of one subroutine in the order written).
 */
export async function startVarnish(options: { backendPort: number; vcl: string; choosePort?: PortChooser }): Promise<Proxy> {
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
        `backend default { .host = "127.0.0.1"; .port = "${options.backendPort}"; }`,
        `sub vcl_recv { if (req.url == "${IDENTITY_PATH}") { return (synth(200, "${token}")); } }`,
        options.vcl,
      ].join('\n'),
    );
    const args = ['-F', '-n', join(dir, 'work'), '-a', `127.0.0.1:${port}`, '-f', join(dir, 'test.vcl'), '-s', 'malloc,32m'];
    return started(`varnishd on port ${port}`, binary, args, port, token, dir);
  }, options.choosePort);
}

/** The dynamic nginx modules a test may load, by the file Debian's package installs. */
const NGINX_MODULES = {
  'cache-purge': { file: '/usr/lib/nginx/modules/ngx_http_cache_purge_module.so', debianPackage: 'libnginx-mod-http-cache-purge' },
} as const;

/**
 * An nginx in the foreground, its files under a directory of its own. `server` is the body of the
 * test's `server` block (its locations: `proxy_pass` to the application, `proxy_cache pages`); the
 * block listens on the port chosen, answers the identity route, and has the cache zone `pages`.
 * `modules` are loaded first (`cache-purge`: `proxy_cache_purge`).
 */
export async function startNginx(options: { server: string; modules?: (keyof typeof NGINX_MODULES)[]; choosePort?: PortChooser }): Promise<Proxy> {
  const binary = findExecutable(['nginx', '/usr/sbin/nginx'], 'nginx');
  const modules = (options.modules ?? []).map((name) => {
    const { file, debianPackage } = NGINX_MODULES[name];
    if (!existsSync(file)) throw new Error(`the nginx module ${name} was not found at ${file}: install it with \`apt-get install -y ${debianPackage}\``);
    return `load_module ${file};`;
  });
  return startOnFreePort(async (port) => {
    const dir = mkdtempSync(join(tmpdir(), 'cachegrain-nginx-'));
    const token = randomBytes(12).toString('hex');
    const temp = (name: string) => `${name}_temp_path ${join(dir, name)};`;
    writeFileSync(
      join(dir, 'nginx.conf'),
      [
        ...modules,
        // Its workers write the cache under a directory only its owner may enter.
        process.getuid?.() === 0 ? 'user root;' : '',
        'worker_processes 1;',
        `error_log ${join(dir, 'error.log')};`,
        'events { worker_connections 64; }',
        'http {',
        `  access_log off; ${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(temp).join(' ')}`,
        `  proxy_cache_path ${join(dir, 'cache')} keys_zone=pages:1m;`,
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
