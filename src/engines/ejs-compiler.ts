/**
 * What the `cache()` function changes of EJS: its `compile`, which every render, file render and
 * include goes through, replaced by one that rewrites each template (ejs-tags.ts) before EJS compiles
 * it and hands each render that no other render included a fragment render of its own. Written for
 * EJS 3.1 to 7: the rewrite writes into the function EJS compiles, in the names it gives its output
 * buffer, so another version is refused at install, its version read from the package whose render
 * calls `compile`.
 */
import { withRenderState } from '../fragments/index.js';
import { type EjsDigests, compiledDigestKey } from './ejs-digests.js';
import { EjsRender } from './ejs-render.js';
import { type CompileOptions, rewriteTemplate, unclosedTag, unclosedTagLine } from './ejs-tags.js';
import { callerFile, checkEngineVersion, type EngineVersions, packageVersionAt } from './engine-versions.js';
import { RENDER_STATE } from './template-tag.js';

/** What of the EJS module the tag uses; its default export (`import ejs from 'ejs'`) has it. */
export interface EjsLike {
  compile(template: string, options?: object): (data?: object) => unknown;
  render(template: string, data?: object, options?: object): unknown;
  renderFile(path: string, data?: object, options?: object): unknown;
}

/** The versions of EJS whose compiled code the rewrite knows. */
export const EJS_VERSIONS: EngineVersions = {
  adapter: 'cachegrain/ejs',
  engine: 'EJS',
  packageName: 'ejs',
  reliesOn: "the cache function patches EJS's compiler",
  from: '3.1.0',
  throughMajor: 7,
};

/** Refuses an EJS of a version outside `EJS_VERSIONS`. */
export function checkEjsVersion(ejs: EjsLike): void {
  checkEngineVersion(EJS_VERSIONS, packageVersionAt(ejsFile(ejs), EJS_VERSIONS.packageName));
}

/**
 * The file of EJS's own code, where its `render` calls `compile` (EJS has no version of its own to
 * read): an empty template rendered with `compile` replaced for the moment.
 */
function ejsFile(ejs: EjsLike): string | undefined {
  const compile = ejs.compile;
  let file: string | undefined;
  try {
    ejs.compile = function findCaller() {
      file = callerFile(findCaller);
      return () => '';
    };
    ejs.render('', {});
  } catch {
    // An EJS whose compile cannot be replaced, or whose render does not reach it, leaves the version unknown.
  } finally {
    if (ejs.compile !== compile) ejs.compile = compile;
  }
  return file;
}

/** What the replaced `compile` knows of its install: the function's name and, with digests on, the EJS's digests. */
export interface CompilerInstall {
  functionName: string;
  digests: EjsDigests | undefined;
}

/** Replaces `ejs.compile` by one that compiles each template rewritten, each render resolving its fragments. */
export function patchCompile<T extends EjsLike>(ejs: T, { functionName, digests }: CompilerInstall): void {
  const compile = ejs.compile;
  ejs.compile = function compileWithFragments(this: unknown, template: string, compileOptions: CompileOptions = {}) {
    if (compileOptions.client === true) return compile.call(this, template, compileOptions);
    const site = compileOptions.filename ?? 'a template string';
    const digestKey = digests === undefined ? undefined : compiledDigestKey(digests, template, compileOptions);
    const { source, changes } = rewriteTemplate(template, compileOptions, { functionName, site, digestKey });
    let fn: (data?: object) => unknown;
    try {
      fn = compile.call(this, source, compileOptions);
    } catch (error) {
      const line = error instanceof SyntaxError ? unclosedTagLine(template, compileOptions, functionName) : undefined;
      if (line !== undefined) throw unclosedTag(functionName, site, line);
      throw error;
    }
    const run = runner(fn, compileOptions.async === true, changes);
    return function renderWithFragments(data?: object) {
      // An include passes the render on in its data: it joins the render of the page that included it.
      if ((data as Record<string, unknown> | undefined)?.[RENDER_STATE] instanceof EjsRender) return run(data);
      digests?.rendered(compileOptions.filename, template);
      return run(data, new EjsRender(functionName, compileOptions.async === true, digests));
    };
  } as T['compile'];
}

/**
 * Runs the compiled `fn` with `data`, and as the render that `render` starts (none: an include's,
 * joining its page's) resolves that render's fragments in its output; EJS quotes the template around
 * a failing line, and its errors show the calls as they were written (`changes`).
 */
function runner(fn: (data?: object) => unknown, async: boolean, changes: ReadonlyArray<[string, string]>) {
  const restore = (error: unknown) => {
    if (error instanceof Error) for (const [now, was] of changes) error.message = error.message.split(now).join(was);
    return error;
  };
  return (data: object | undefined, render?: EjsRender) => {
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
}
