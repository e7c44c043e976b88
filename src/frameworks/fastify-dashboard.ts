/**
 * The cache dashboard as a Fastify plugin, answering under the prefix it is registered with:
 *
 *   await app.register(cacheDashboard, { prefix: '/_cache', actions: true });
 *
 * Its forms post urlencoded bodies, for which Fastify has no parser: the plugin adds one in its own
 * context, so that only its routes take them and the rest of the app answers them 415 as before.
 */
import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import { BODY_LIMIT, type DashboardOptions, formOf, makeDashboard, mountOf, pathAndQuery, pathUnder } from '../dashboard/dashboard.js';

/** The register options Fastify itself reads: not the plugin's own. */
export const REGISTER_OPTIONS = ['prefix', 'logLevel', 'logSerializers'];

const FORM = 'application/x-www-form-urlencoded';

/**
 * The dashboard: GET `<prefix>/` shows it; with `actions: true`, POST `<prefix>/invalidate-tags` and
 * `<prefix>/clear` act. Register it behind your own authentication (an `onRequest` hook of the context
 * it is registered in).
 */
export const cacheDashboard: FastifyPluginCallback<DashboardOptions> = (fastify, options, done) => {
  let dashboard: ReturnType<typeof makeDashboard>;
  // A callback plugin hands its error to done: thrown, it would escape Fastify's boot.
  try {
    dashboard = makeDashboard(Object.fromEntries(Object.entries(options).filter(([name]) => !REGISTER_OPTIONS.includes(name))));
  } catch (error) {
    done(error as Error);
    return;
  }
  // At the root, its routes would take the app's own `/` and every path the app does not declare.
  if (fastify.prefix === '') {
    done(new TypeError("cacheDashboard: register it under a prefix of its own, as app.register(cacheDashboard, { prefix: '/_cache' })"));
    return;
  }
  const mount = mountOf(fastify.prefix);
  // A parser the app has (@fastify/formbody) reads the form as well; this one is the plugin's own otherwise.
  if (!fastify.hasContentTypeParser(FORM)) {
    fastify.addContentTypeParser(FORM, { parseAs: 'string', bodyLimit: BODY_LIMIT }, (_request, body, parsed) =>
      parsed(null, new URLSearchParams(body as string)),
    );
  }
  const answer = async (request: FastifyRequest, reply: FastifyReply) => {
    const [url, query] = pathAndQuery(request.url);
    const path = pathUnder(url, mount);
    const answered =
      path === undefined ? undefined : dashboard({ method: request.method, path, mount, query, form: () => Promise.resolve(formOf(request.body)) });
    if (answered === undefined) return reply.callNotFound();
    const { status, headers, body } = await answered;
    return reply.code(status).headers(headers).send(body);
  };
  fastify.all('/', answer);
  fastify.all('/*', answer);
  done();
};
Object.assign(cacheDashboard, { [Symbol.for('fastify.display-name')]: 'cacheDashboard' });
