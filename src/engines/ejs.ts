/**
 * `cache()` for EJS: `<% cache(600, 'sidebar', [user.id], async () => { %>…<% }) %>` records a
 * fragment whose body, the function, writes to a buffer of its own and runs only on a miss; with
 * `hole()` and `uncacheable()` beside it. Installed on the EJS object, whose `compile` every render,
 * file render and include goes through: each template is rewritten as it compiles, and a render that
 * no other render included resolves its fragments when it returns. Surprise: the body shadows EJS's
 * own output buffer (`__output`, `__append`) in its function, so the rewrite depends on those names.
 */
// Node's types (Buffer, node:http, node:diagnostics_channel…) appear in these declarations: a consumer need not name them in `types`.
/// <reference types="node" preserve="true" />
import { describe } from '../common/cache-keys.js';
import {
  FragmentRender,
  missingEndTag,
  type TagKeywords,
  type TagSite,
  TemplateSyntaxError,
  tooFewArguments,
  uncacheableOutput,
  unknownKeyword,
  withRenderState,
} from '../fragments/index.js';
import {
  bracketBalance,
  callsFunction,
  escapeRegExp as escape,
  installerOptions,
  isOnlyCall,
  lineAt,
  placeTemplateCalls,
  RENDER_STATE,
} from './template-tag.js';
import { compiledDigestKey, type EjsDigests, ejsDigests, makeEjsDigests } from './ejs-digests.js';

export { templateDigest } from './ejs-digests.js';

/** What of the EJS module the tag uses; its default export (`import ejs from 'ejs'`) has it. */
export interface EjsLike {
  compile(template: string, options?: object): (data?: object) => unknown;
  renderFile(path: string, data?: object, options?: object): unknown;
}

export interface CacheFunctionOptions {
  /** The name templates call the tag by. @default 'cache' */
  functionName?: string;
  /**
   * Fragment keys carry a digest of the template that holds the call and of everything it includes,
   * so that editing a template renews its fragments. @default false
   */
  digests?: boolean;
}

const INSTALLED = Symbol.for('cachegrain.ejs');

/** What EJS compiles templates with, as far as the rewrite reads it. */
interface CompileOptions {
  filename?: string;
  async?: boolean;
  client?: boolean;
  localsName?: string;
  delimiter?: string;
  openDelimiter?: string;
  closeDelimiter?: string;
}

/**
 * Makes `ejs` (the default export of 'ejs') compile `cache(timeout, 'name', [vary…], { using, tags,
 * stale, lock, contexts, if }, async () => { %>…<% })`, `hole('name', …args)` and
 * `uncacheable('why')`. Templates holding a tag are rendered with `{ async: true }`; a page's
 * fragments are read in one round trip per cache and level, and its output is the page with them.
 */
export function installCacheTag<T extends EjsLike>(ejs: T, options: CacheFunctionOptions = {}): T {
  const { tagName: functionName, digests } = installerOptions(options as { functionName?: string; digests?: boolean }, 'functionName', 'installCacheTag');
  const target = ejs as unknown as Record<PropertyKey, unknown>;
  if (target[INSTALLED] !== undefined) {
    if ((ejsDigests(ejs) !== undefined) !== digests)
      throw new TypeError(`installCacheTag: this EJS has the tag installed ${digests ? 'without' : 'with'} digests already`);
    if (target[INSTALLED] === functionName) return ejs;
    throw new TypeError(`installCacheTag: this EJS has the tag installed as '${String(target[INSTALLED])}' already`);
  }
  const compile = ejs.compile;
  const digested = digests ? makeEjsDigests(ejs) : undefined;
  try {
    target[INSTALLED] = functionName;
    ejs.compile = function compileWithFragments(this: unknown, template: string, compileOptions: CompileOptions = {}) {
      if (compileOptions.client === true) return compile.call(this, template, compileOptions);
      const site = compileOptions.filename ?? 'a template string';
      const digestKey = digested === undefined ? undefined : compiledDigestKey(digested, template, compileOptions);
      const { source, changes } = rewrite(template, compileOptions, functionName, { site, digestKey });
      let fn: (data?: object) => unknown;
      try {
        fn = compile.call(this, source, compileOptions);
      } catch (error) {
        const line = error instanceof SyntaxError ? unclosedTagLine(template, compileOptions, functionName) : undefined;
        if (line !== undefined) throw missingEndTag(functionName, '<% }) %>', { template: site, line });
        throw error;
      }
      // EJS quotes the template around a failing line: the quote shows the calls as they were written.
      const restore = (error: unknown) => {
        if (error instanceof Error) for (const [now, was] of changes) error.message = error.message.split(now).join(was);
        return error;
      };
      const async = compileOptions.async === true;
      const run = (data: object | undefined, render?: EjsRender) => {
        try {
          const output = fn(render === undefined ? data : withRenderState(data, RENDER_STATE, render));
          if (!async) return render === undefined ? output : render.finish(output as string);
          return (output as Promise<string>).then(
            (page) => (render === undefined ? page : render.finish(page)),
            (error: unknown) => Promise.reject(restore(error)),
          );
        } catch (error) {
          throw restore(error);
        }
      };
      return function renderWithFragments(data?: object) {
        // An include passes the render on in its data: it joins the render of the page that included it.
        if ((data as Record<string, unknown> | undefined)?.[RENDER_STATE] instanceof EjsRender) return run(data);
        digested?.rendered(compileOptions.filename, template);
        return run(data, new EjsRender(functionName, async, digested));
      };
    } as T['compile'];
  } catch (error) {
    delete target[INSTALLED];
    throw new TypeError(`installCacheTag: give it EJS's default export (import ejs from 'ejs'), whose compile can be replaced (${(error as Error).message})`);
  }
  return ejs;
}

/**
 * An Express view engine: `app.engine('ejs', expressEngine(ejs))`. It renders with `{ async: true }`,
 * which EJS's own Express entry cannot pass, and honours Express's `views` and `view cache`.
 */
export function expressEngine(ejs: EjsLike) {
  return function renderEjsView(filePath: string, locals: { settings?: Record<string, unknown> }, callback: (error: unknown, html?: string) => void): void {
    const settings = locals.settings ?? {};
    const options = { async: true, views: settings.views, cache: settings['view cache'] === true };
    new Promise<string>((resolve) => resolve(ejs.renderFile(filePath, locals, options) as Promise<string>)).then(
      (html) => callback(null, html),
      (error) => callback(error),
    );
  };
}

/** The body's start: its own output buffer, in the names EJS's compiled code writes to, handed to the tag. */
const BODY_START =
  'async (__cgBuffer) => { let __output = ""; function __append(s) { if (s !== undefined && s !== null) __output += s; } __cgBuffer(() => __output);';
/** How a tag's body function opens, at the end of its scriptlet. */
const BODY_OPENING = /(?:async\s+)?(?:\(\s*\)\s*=>|function\s*\(\s*\))\s*\{\s*$/;

/** The scriptlets and output tags of an EJS template, by its delimiters: `<%` type, code, close. */
function tagPattern(options: CompileOptions): RegExp {
  const delimiter = escape(options.delimiter ?? '%');
  const open = escape(options.openDelimiter ?? '<') + delimiter;
  const close = delimiter + escape(options.closeDelimiter ?? '>');
  return new RegExp(`${open}([_=\\-#${delimiter}]?)([\\s\\S]*?)([-_]?${close})`, 'g');
}

/**
 * The template (named `site`, its digest key `digestKey`) with each `cache(` call given its output
 * function and site and its body its own buffer, and each `hole(` and `uncacheable(` call its site,
 * in any tag; `uncacheable` marks the output it stands in as it runs, so a call whose value is not
 * output (a scriptlet, a condition) marks it too, and a scriptlet that is one `hole(` call outputs
 * it. Lines stay as they were.
 */
function rewrite(
  template: string,
  options: CompileOptions,
  functionName: string,
  { site, digestKey }: { site: string; digestKey: string | undefined },
): { source: string; changes: Array<[string, string]> } {
  const changes: Array<[string, string]> = [];
  const runtime = `${options.localsName ?? 'locals'}.${RENDER_STATE}`;
  const call = new RegExp(`^(\\s*)${escape(functionName)}\\s*\\(`);
  const file = JSON.stringify(site);
  const source = template.replace(tagPattern(options), (tag, type: string, code: string, close: string, offset: number) => {
    const open = tag.slice(0, tag.length - type.length - code.length - close.length);
    if ((type === '' || type === '_') && call.test(code)) {
      const line = lineAt(template, offset);
      if (!BODY_OPENING.test(code)) {
        throw new TemplateSyntaxError(
          `the '${functionName}' call ends with its body's opening, as in <% ${functionName}(600, 'sidebar', [user.id], async () => { %>…<% }) %>`,
          undefined,
          { template: site, line },
        );
      }
      // With digests, the call names its template's digest key first.
      const opening = digestKey === undefined ? `${runtime}.cache(` : `${runtime}.cacheDigested(${JSON.stringify(digestKey)}, `;
      const rewritten = code.replace(call, `$1${opening}__append, ${file}, ${line}, `).replace(BODY_OPENING, BODY_START);
      changes.push([rewritten, code]);
      return `${open}${type}${rewritten}${close}`;
    }
    // A call of the tag that does not start its scriptlet (`<% if (a) cache(…, async () => { %>`) would find no `cache`.
    if (((type === '=' || type === '-') && call.test(code)) || (BODY_OPENING.test(code) && callsFunction(code, functionName))) {
      throw new TemplateSyntaxError(
        `the '${functionName}' call starts a scriptlet of its own, its body between tags of its own: <% ${functionName}(600, 'sidebar', [user.id], async () => { %>…<% }) %>`,
        undefined,
        { template: site, line: lineAt(template, offset) },
      );
    }
    if (type === '#' || type === (options.delimiter ?? '%')) return tag;
    const placed = placeTemplateCalls(
      code,
      () => lineAt(template, offset),
      (name, line) => (name === 'hole' ? `${runtime}.holeAt(${file}, ${line}, ` : `${runtime}.uncacheableAt(__append, ${file}, ${line}, `),
    );
    if (placed === code) return tag;
    const written = (type === '' || type === '_') && isOnlyCall(code, 'hole') ? `-${placed.replace(/;\s*$/, '')}` : `${type}${placed}`;
    changes.push([`${open}${written}`, `${open}${type}${code}`]);
    return `${open}${written}${close}`;
  });
  return { source, changes };
}

/** The line of the innermost `cache(` call whose body is never closed, if any: brackets counted in the scriptlets' code. */
function unclosedTagLine(template: string, options: CompileOptions, functionName: string): number | undefined {
  const call = new RegExp(`^\\s*${escape(functionName)}\\s*\\(`);
  const open: Array<{ line: number; depth: number }> = [];
  let depth = 0;
  for (const match of template.matchAll(tagPattern(options))) {
    const [, type, code] = match as unknown as [string, string, string];
    if (type !== '' && type !== '_') continue;
    if (call.test(code)) open.push({ line: lineAt(template, match.index), depth });
    depth += bracketBalance(code);
    while (open.length > 0 && depth <= open.at(-1)!.depth) open.pop();
  }
  return open.at(-1)?.line;
}

const NO_VALUES: readonly unknown[] = Object.freeze([]);
const NO_KEYWORDS: TagKeywords = Object.freeze({});

/** One page's fragments, as its templates' rewritten calls reach them. */
class EjsRender extends FragmentRender {
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
    const body = args.pop() as (buffer: (read: () => string) => void) => Promise<void>;
    // Read by index, and absent ones stood in for by shared constants: a hit builds nothing.
    const timeout = args[0];
    const name = args[1];
    const varyOn = args[2] === undefined ? NO_VALUES : args[2];
    const keywords = args[3] === undefined ? NO_KEYWORDS : args[3];
    if (!this.async) throw this.needsAsync(`the '${this.functionName}' call (fragment ${describe(name)})`, { template, line });
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
    const fragment = String(name);
    const kept = this.hitMany(timeout, fragment, varyOn, keywords as TagKeywords, this.digestKey);
    if (kept !== undefined) return append(kept);
    // What only a miss needs is made past the hit: the tag's site, and the body to render later.
    const site: TagSite = { template, line };
    const bodyOf = () => async () => {
      let read = () => '';
      await body((reader) => (read = reader));
      return read();
    };
    // Read at run time, so checked on a miss, before anything is written under the wrong cache or lifetime.
    for (const keyword of Object.keys(keywords)) {
      const unknown = unknownKeyword(keyword, `the '${this.functionName}' call`, site);
      if (unknown !== undefined) throw unknown;
    }
    append(this.tag({ timeout, name: fragment, varyOn, keywords: keywords as TagKeywords, template, line, digest: this.digestKey }, bodyOf));
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
