/**
 * What a page's lookup saw of the request, held until the page is stored: the values of the
 * application's contexts and who the visitor is (`req.cookies`, `ctx.state.user`). Middleware
 * mounted after the page cache (a cookie parser, a session, authentication) runs on a miss only: a
 * page whose contexts or holes read what it set would be keyed, or filled on a hit, without it. Such
 * a page is not stored, and the mistake is reported with the fix, once per layer and context (or
 * once for holes).
 */
import type { IncomingMessage } from 'node:http';
import { applicationContexts, contextValue, isApplicationContext } from '../cacheability/contexts.js';
import { type Visitor, visitorGainedSince, visitorOf } from '../cacheability/framework-request.js';
import { absoluteUrl, resolveCache } from './page-keys.js';
import type { PageLayer } from './page-settings.js';
import { reportPageFailure } from './page-failures.js';

/** The fix every report of this kind ends with. */
const FIX = 'mount the page cache after the middleware that sets what it reads (cookie parsing, the session, authentication)';

export class SeenAtLookup {
  private constructor(
    /** Each application context's value as the lookup saw it, framed (`=value`, `-` for none, `!error`). */
    private readonly contexts: ReadonlyMap<string, string>,
    /** The contexts the URL's pages were known to vary on at lookup: the variant of the page stored is made of these too. */
    private readonly learned: readonly string[],
    private readonly visitor: Visitor,
  ) {}

  /** What the request looks like as the lookup of a page to render misses; `learned`: the contexts the URL's pages were known to vary on. */
  static take(req: IncomingMessage, learned: readonly string[] = []): SeenAtLookup {
    const contexts = new Map<string, string>();
    for (const name of applicationContexts()) contexts.set(name, framedValue(name, req));
    return new SeenAtLookup(contexts, learned, visitorOf(req));
  }

  /**
   * Whether the page rendered for `req` may be stored: no context it varies on (`contexts`, folded)
   * gives another value than at lookup, and, where it reads the request (an application context,
   * a hole), the request gained no visitor since. Else reports why, once per layer and mistake.
   */
  mayStore(layer: PageLayer, req: IncomingMessage, contexts: readonly string[], holes: boolean): boolean {
    const problem = this.problem(req, contexts, holes);
    if (problem === undefined) return true;
    if (layer.reportedMistakes.has(problem.mistake)) return false;
    layer.reportedMistakes.add(problem.mistake);
    reportPageFailure(resolveCache(layer.cacheOption), `the page ${absoluteUrl(req)} was not stored: ${problem.why}; ${FIX}`);
    return false;
  }

  private problem(req: IncomingMessage, contexts: readonly string[], holes: boolean): { mistake: string; why: string } | undefined {
    for (const name of new Set([...contexts, ...this.learned])) {
      const seen = this.contexts.get(name);
      if (seen !== undefined && seen !== framedValue(name, req)) {
        return {
          mistake: name,
          why: `cache context '${name}' gave one value when the page cache looked the page up and another when the page was rendered, for the same request`,
        };
      }
    }
    const readers = contexts.filter(isApplicationContext);
    if (readers.length === 0 && !holes) return undefined;
    const gained = visitorGainedSince(this.visitor, req);
    if (gained.length === 0) return undefined;
    const what = [...(readers.length > 0 ? [`its cache contexts (${readers.map((name) => `'${name}'`).join(', ')})`] : []), ...(holes ? ['its holes'] : [])];
    return {
      mistake: readers.length > 0 ? readers.join(',') : 'holes',
      why:
        `${what.join(' and ')} read the request, and ${gained.join(', ')} appeared on it after the page cache looked the page up; ` +
        'a hit runs none of the middleware after the page cache, so it would go without them',
    };
  }
}

/** A context's value for `req`, framed so that none, a value and a failure differ. */
function framedValue(name: string, req: IncomingMessage): string {
  try {
    const value = contextValue(name, req);
    return value === undefined ? '-' : `=${value}`;
  } catch (error) {
    return `!${error instanceof Error ? error.message : String(error)}`;
  }
}
