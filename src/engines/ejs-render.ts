/**
 * What a page's rewritten `cache(…)`, `hole(…)` and `uncacheable(…)` calls run: one render per page
 * that no other render included, its includes joining it, resolved when the page returns.
 */
import {
  FragmentRender,
  type FragmentTag,
  type TagKeywords,
  type TagSite,
  tagSiteOf,
  TemplateSyntaxError,
  tooFewArguments,
  uncacheableOutput,
  unknownKeyword,
} from '../fragments/index.js';
import { describe } from '../errors/errors.js';
import type { EjsDigests } from './ejs-digests.js';

/** A call's body: it writes to a buffer of its own, which it hands over to be read once it has run. */
type FragmentBody = (buffer: (read: () => string) => void) => Promise<void>;

const NO_VALUES: readonly unknown[] = Object.freeze([]);
const NO_KEYWORDS: TagKeywords = Object.freeze({});

/** One page's fragments, as its templates' rewritten calls reach them. */
export class EjsRender extends FragmentRender {
  /** The digest key of the template whose call runs now, with digests on. */
  private digestKey: string | undefined;

  constructor(
    private readonly functionName: string,
    private readonly async: boolean,
    digests: EjsDigests | undefined,
  ) {
    super(digests);
  }

  /** `cache(…)` in a template whose digest key is `digestKey`. */
  cacheDigested(digestKey: string, append: (html: string) => void, template: string, line: number, ...args: unknown[]): void {
    this.digestKey = digestKey;
    try {
      this.cache(append, template, line, ...args);
    } finally {
      this.digestKey = undefined;
    }
  }

  /** `cache(timeout, name, [vary…], { keywords }, body)`, its output written with `append`. */
  cache(append: (html: string) => void, template: string, line: number, ...args: unknown[]): void {
    const body = args.pop() as FragmentBody;
    // Read by index, and absent ones stood in for by shared constants: a hit builds nothing.
    const timeout = args[0];
    const name = args[1];
    const varyOn = (args[2] === undefined ? NO_VALUES : args[2]) as unknown[];
    const keywords = (args[3] === undefined ? NO_KEYWORDS : args[3]) as TagKeywords;
    if (!this.async) throw this.needsAsync(`the '${this.functionName}' call (fragment ${describe(name)})`, { template, line });
    this.checkArguments(args, template, line);
    const fragment = String(name);
    const kept = this.keptHitVaryingOnMany(timeout, fragment, varyOn, keywords, this.digestKey);
    if (kept !== undefined) return append(kept);
    append(this.miss({ timeout, name: fragment, varyOn, keywords, template, line, digest: this.digestKey }, body));
  }

  /** Refuses a call whose arguments are not what `cache(timeout, name, [vary…], { keywords }, body)` takes. */
  private checkArguments(args: unknown[], template: string, line: number): void {
    // Read by index: a hit passes here too, and would otherwise iterate its arguments.
    const name = args[1];
    const varyOn = args[2] === undefined ? NO_VALUES : args[2];
    const keywords = args[3] === undefined ? NO_KEYWORDS : args[3];
    if (args.length < 2) throw tooFewArguments(this.functionName, { template, line });
    if (typeof name !== 'string' && typeof name !== 'number') {
      throw new TemplateSyntaxError(
        `the '${this.functionName}' call's fragment name must be a string, as in ${this.functionName}(300, 'sidebar', …) (got ${describe(name)})`,
        undefined,
        { template, line },
      );
    }
    if (!Array.isArray(varyOn)) {
      throw new TemplateSyntaxError(
        `the '${this.functionName}' call takes its vary-on values in an array, as in [user.id] (got ${describe(varyOn)})`,
        String(name),
        { template, line },
      );
    }
    if (typeof keywords !== 'object' || keywords === null || Array.isArray(keywords)) {
      throw new TemplateSyntaxError(
        `the '${this.functionName}' call takes its keywords in an object, as in { tags: 'news' } (got ${describe(keywords)})`,
        String(name),
        { template, line },
      );
    }
  }

  /** A call no kept hit answered: its keywords checked, and its fragment recorded with `body` to render later. */
  private miss(call: FragmentTag, body: FragmentBody): string {
    // Read at run time, so checked on a miss, before anything is written under the wrong cache or lifetime.
    for (const keyword of Object.keys(call.keywords)) {
      const unknown = unknownKeyword(keyword, `the '${this.functionName}' call`, tagSiteOf(call));
      if (unknown !== undefined) throw unknown;
    }
    const bodyOf = () => async () => {
      let read = () => '';
      await body((reader) => (read = reader));
      return read();
    };
    return this.tag(call, bodyOf);
  }

  /** `<%- hole('name', …args) %>`. */
  holeAt(template: string, line: number, name: unknown, ...args: unknown[]): string {
    const site: TagSite = { template, line };
    if (!this.async) throw this.needsAsync(`the 'hole' call (hole ${describe(name)})`, site);
    return this.hole(name, args, site);
  }

  /** `uncacheable('why')`, in any tag: its mark is written where it stands, and its value is empty. */
  uncacheableAt(append: (html: string) => void, template: string, line: number, why?: unknown): string {
    append(uncacheableOutput(why, { template, line }));
    return '';
  }

  private needsAsync(what: string, site: TagSite): TemplateSyntaxError {
    return new TemplateSyntaxError(
      `${what} needs the template rendered with { async: true } (ejs.renderFile(path, data, { async: true }), or expressEngine() from cachegrain/ejs): ` +
        'fragments are read from the cache asynchronously',
      undefined,
      site,
    );
  }
}
