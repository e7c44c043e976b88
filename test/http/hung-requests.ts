/**
 * A test server that tells a request nothing will ever answer from one still being worked on, by what
 * is left to run rather than by a clock. Every timer, immediate, tick and I/O request made while its
 * app is built or one of its requests is handled is counted until it has run. A promise is not: it
 * settles only through such work, through a view (which the test may hold and release), or through a
 * response that ends. So once nothing counted is left, and every request whose view ran or whose
 * response ended has closed, the requests still open, none of whose views ran, wait on nothing that
 * can happen: they are hung.
 */
import { AsyncLocalStorage, AsyncResource, createHook } from 'node:async_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { listen } from './client.js';
import type { Build, Handler, View } from './layers.js';
import type { Middleware } from '../../src/frameworks/express.js';

/** The server whose app is being built, or whose request is being handled, by the code running now. */
const runningFor = new AsyncLocalStorage<ServerWork>();
/** The work made for a watched server and not known to have run, by its async id. */
const toRun = new Map<number, { server: ServerWork; type: string; resource: object }>();
let watched = 0;

/** Work that calls back once: it has run once its callback has. */
const CALLS_BACK_ONCE = new Set(['TickObject', 'Microtask', 'WRITEWRAP', 'SHUTDOWNWRAP', 'TCPCONNECTWRAP', 'FSREQCALLBACK', 'GETADDRINFOREQWRAP']);

/**
 * Whether the work still has to run. A timer or immediate that ran, or was cleared, says so on
 * itself: Node reports its destroy only when the event loop next wakes, which may be seconds away.
 */
function stillToRun({ type, resource }: { type: string; resource: object }): boolean {
  return type === 'Timeout' || type === 'Immediate' ? (resource as { _destroyed?: boolean })._destroyed !== true : true;
}

/** Node's timer that forgets the Date header it wrote this second, made as a response's head goes out: it answers nobody. */
const forgetsDateHeader = (resource: object): boolean => (resource as { _onTimeout?: () => void })._onTimeout?.name === 'resetCache';

function ran(id: number): void {
  const work = toRun.get(id);
  if (work === undefined) return;
  toRun.delete(id);
  work.server.look();
}

const counting = createHook({
  init(id, type, _trigger, resource) {
    // A promise settles through other work, a view or the test; an AsyncResource only carries the
    // context of callbacks that something else calls (a response's end, for on-finished).
    if (type === 'PROMISE' || resource instanceof AsyncResource || (type === 'Timeout' && forgetsDateHeader(resource))) return;
    const server = runningFor.getStore();
    if (server !== undefined) toRun.set(id, { server, type, resource });
  },
  after(id) {
    const work = toRun.get(id);
    if (work === undefined) return;
    if (CALLS_BACK_ONCE.has(work.type)) ran(id);
    else work.server.look();
  },
  destroy: ran,
});

class ServerWork {
  private readonly open = new Map<ServerResponse, IncomingMessage>();
  private readonly viewRan = new WeakSet<ServerResponse>();
  private looking = false;
  private reported = false;
  private report!: (requests: string[]) => void;
  /** The requests nothing will answer, each as `GET /path`, once there are any. */
  readonly hung = new Promise<string[]>((resolve) => (this.report = resolve));

  /** `handler` run in the server's name, each request watched from its arrival until its response closes. */
  handling(handler: Handler): Handler {
    return (req, res) =>
      runningFor.run(this, () => {
        this.open.set(res, req);
        res.once('close', () => {
          this.open.delete(res);
          this.look();
        });
        handler(req, res);
        this.look();
      });
  }

  viewing(view: View): View {
    return (req, res) => {
      this.viewRan.add(res);
      return view(req, res);
    };
  }

  /** Judges once whatever runs now, and the promises it settles, have run: the judging is not counted itself. */
  look(): void {
    if (this.looking || this.reported) return;
    this.looking = true;
    runningFor.exit(() =>
      setImmediate(() => {
        this.looking = false;
        this.judge();
      }),
    );
  }

  private judge(): void {
    if (this.open.size === 0) return;
    for (const work of toRun.values()) if (work.server === this && stillToRun(work)) return;
    // A view may still write, and a response that ended or broke off has yet to close, which the
    // page cache waits for too: either may yet answer the others.
    for (const res of this.open.keys()) if (this.viewRan.has(res) || res.writableEnded || res.destroyed) return;
    this.reported = true;
    this.report([...this.open.values()].map((req) => `${req.method} ${req.url}`));
  }

  close(): void {
    this.reported = true;
    for (const [id, work] of toRun) if (work.server === this) toRun.delete(id);
    if (--watched === 0) counting.disable();
  }
}

/**
 * Serves what `build` makes of the layers and the view on a free loopback port, watched: `hung`
 * resolves with the requests nothing will answer, if it comes to that.
 */
export async function serveWatched(build: Build, middleware: Middleware[], view: View, route?: Middleware[]) {
  if (watched++ === 0) counting.enable();
  const work = new ServerWork();
  const served = await listen(runningFor.run(work, () => work.handling(build(middleware, work.viewing(view), route))));
  return {
    ...served,
    hung: work.hung,
    close: async () => {
      work.close();
      await served.close();
    },
  };
}
