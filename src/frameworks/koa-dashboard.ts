/**
 * The cache dashboard as Koa middleware, answering under the path it is given:
 *
 *   app.use(cacheDashboard({ path: '/_cache', actions: true }));
 *
 * Other requests go on down the middleware.
 */
import type { IncomingMessage } from 'node:http';
import { formOf, makeDashboard, MOUNTED_DASHBOARD_OPTIONS, type MountedDashboardOptions, mountOf, pathUnder, readForm } from '../dashboard/dashboard.js';
import { checkOptions } from '../options/option-rules.js';

/** Options of Koa's dashboard: the dashboard's, and the path it answers under. */
export interface KoaDashboardOptions extends MountedDashboardOptions {
  /** The path the dashboard answers under: `'/_cache'`. */
  path: string;
}

/** What the dashboard reads and sets of Koa's context. */
export interface KoaDashboardContext {
  req: IncomingMessage;
  method: string;
  path: string;
  querystring: string;
  /** The body a parser in front read (koa-bodyparser), if one did. */
  request: { body?: unknown };
  status: number;
  body: unknown;
  set(headers: Record<string, string>): void;
}

/**
 * The dashboard: GET `<path>/` shows it; with `actions: true`, POST `<path>/invalidate-tags` and
 * `<path>/clear` act. Use it after your own authentication.
 */
export function cacheDashboard(options: KoaDashboardOptions): (ctx: KoaDashboardContext, next: () => Promise<unknown>) => Promise<void> {
  checkOptions(options, MOUNTED_DASHBOARD_OPTIONS, 'cacheDashboard');
  const { path: under, ...shown } = options ?? {};
  if (under === undefined) throw new TypeError("cacheDashboard: options.path is missing: give the path it answers under, as { path: '/_cache' }");
  const dashboard = makeDashboard(shown);
  const mount = mountOf(under);
  return async function cacheDashboard(ctx, next) {
    const path = pathUnder(ctx.path, mount);
    const parsed = ctx.request.body;
    const answered =
      path === undefined
        ? undefined
        : dashboard({
            method: ctx.method,
            path,
            mount,
            query: ctx.querystring,
            form: () => (parsed === undefined ? readForm(ctx.req) : Promise.resolve(formOf(parsed))),
          });
    if (answered === undefined) {
      await next();
      return;
    }
    const { status, headers, body } = await answered;
    ctx.set(headers);
    ctx.status = status;
    ctx.body = body;
  };
}
