/**
 * The dashboard's `caches` option names aliases: one that is not configured is refused when
 * the dashboard is made if the caches are configured by then, and otherwise (configureCaches may come
 * after the app is built) each page request fails naming the alias and the option, until it is configured.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterEach, describe, expect, it, vi } from 'vitest';

type Express = typeof import('../../src/frameworks/express.js');
type Index = typeof import('../../src/index.js');

let server: Server | undefined;

afterEach(async () => {
  await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
  server = undefined;
});

/** The project's modules as a process that has just started sees them: no caches configured yet. */
async function freshProcess(): Promise<{ adapter: Express; index: Index }> {
  vi.resetModules();
  return { adapter: await import('../../src/frameworks/express.js'), index: await import('../../src/index.js') };
}

/** An Express site with the dashboard at /_cache and an error handler showing the error's name and message. */
async function site(dashboard: ReturnType<Express['cacheDashboard']>): Promise<(path: string) => Promise<{ status: number; text: string }>> {
  const app = express();
  app.use('/_cache', dashboard);
  app.use((error: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(500).type('text/plain').send(`${error.name}: ${error.message}`);
  });
  server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server!.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return async (path) => {
    const response = await fetch(`${base}${path}`);
    return { status: response.status, text: await response.text() };
  };
}

describe('cacheDashboard({ caches })', () => {
  it('refuses an alias that is not configured at once when the caches are configured, naming the alias and the option', async () => {
    const { adapter, index } = await freshProcess();
    await index.configureCaches({ default: { backend: 'locmem', location: 'dashboard-aliases-1' } });
    expect(() => adapter.cacheDashboard({ caches: ['default', 'nope'] })).toThrow(index.InvalidCacheBackendError);
    expect(() => adapter.cacheDashboard({ caches: ['default', 'nope'] })).toThrow(
      "cacheDashboard: options.caches names 'nope': The cache alias 'nope' is not configured (configured: default)",
    );
    await index.caches.closeAll();
  });

  it('takes an alias configured later, failing each page request naming the alias and the option until then', async () => {
    const { adapter, index } = await freshProcess();
    const get = await site(adapter.cacheDashboard({ caches: ['pages'] }));
    const early = await get('/_cache/');
    expect(early.status).toBe(500);
    expect(early.text).toBe(
      "InvalidCacheBackendError: cacheDashboard: options.caches names 'pages': The cache alias 'pages' is not configured (configured: default)",
    );
    await index.configureCaches({
      default: { backend: 'locmem', location: 'dashboard-aliases-2' },
      pages: { backend: 'locmem', location: 'dashboard-aliases-3' },
    });
    const later = await get('/_cache/');
    expect(later.status).toBe(200);
    expect(later.text).toContain('data-alias="pages"');
    await index.caches.closeAll();
  });
});
