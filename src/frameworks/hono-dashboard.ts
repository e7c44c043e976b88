/**
 * The cache dashboard as a Hono app, mounted where the site routes it:
 *
 *   app.route('/_cache', cacheDashboard({ actions: true }));
 *
 * It reads only the web request, so it needs nothing of @hono/node-server.
 */
import { Hono } from 'hono';
import { type DashboardOptions, makeDashboard, pathUnder, readForm } from '../dashboard/dashboard.js';

/**
 * The form a request posted. Its body is asked for only here: once asked for, Node's request is
 * piped into it, and one the dashboard answers unread would hold the connection.
 */
function readBody(request: Request): Promise<URLSearchParams | undefined> {
  const body = request.body;
  return body === null ? Promise.resolve(new URLSearchParams()) : readForm(body);
}

/** The route the dashboard's app answers on: everything under where it is mounted, and that path itself. */
const EVERY_PATH = '/*';

/**
 * The dashboard: GET `<mount>/` shows it; with `actions: true`, POST `<mount>/invalidate-tags` and
 * `<mount>/clear` act. Route it behind your own authentication (`app.use('/_cache/*', requireStaff)`).
 */
export function cacheDashboard(options: DashboardOptions = {}): Hono {
  const dashboard = makeDashboard(options);
  const app = new Hono();
  app.all(EVERY_PATH, async (c, next) => {
    // Where the site mounted this app: the route it matched, without the route's own part.
    const mount = c.req.routePath.slice(0, -EVERY_PATH.length);
    const path = pathUnder(c.req.path, mount);
    const answered =
      path === undefined
        ? undefined
        : dashboard({
            method: c.req.method,
            path,
            mount,
            query: new URL(c.req.url).search.slice(1),
            form: () => readBody(c.req.raw),
          });
    if (answered === undefined) return next();
    const { status, headers, body: text } = await answered;
    return new Response(text, { status, headers });
  });
  return app;
}
