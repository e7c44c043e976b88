/**
 * What the `+cache` mixin changes of Pug: its `compile`, which every render goes through, replaced by
 * one that hands Pug a plugin rewriting each call in the template's tree (pug-tags.ts) before Pug
 * generates its code, and that makes a template holding one answer a promise of its page, its
 * fragments resolved. Written for Pug 3.x, whose tree and generated code (`pug_html`) the rewrite
 * writes into: another version is refused at install, read from the package the module was loaded from.
 */
import { withRenderState } from '../fragments/index.js';
import { checkEngineVersion, type EngineVersions, loadedModuleFile, packageVersionAt } from './engine-versions.js';
import { PugCompileDigests, type PugDigests } from './pug-digests.js';
import { PugRender } from './pug-render.js';
import { type PugNode, type Rewrite, rewriteCalls, RUNTIME, statement } from './pug-tags.js';
import { RENDER_STATE } from './template-tag.js';

/** What of the Pug module the tag uses; `import pug from 'pug'` has it. */
export interface PugLike {
  compile(source: string, options?: object): (locals?: object) => unknown;
  render(source: string, options?: object, callback?: (error: unknown, html?: string) => void): unknown;
  renderFile(path: string, options?: object, callback?: (error: unknown, html?: string) => void): unknown;
}

/** The versions of Pug whose tree and generated code the rewrite knows. */
export const PUG_VERSIONS: EngineVersions = {
  adapter: 'cachegrain/pug',
  engine: 'Pug',
  packageName: 'pug',
  reliesOn: "the cache mixin patches Pug's compiler",
  from: '3.0.0',
  throughMajor: 3,
};

/** Refuses a Pug module of a version outside `PUG_VERSIONS`. */
export function checkPugVersion(pug: PugLike): void {
  checkEngineVersion(
    PUG_VERSIONS,
    packageVersionAt(
      loadedModuleFile((exports) => exports === pug),
      PUG_VERSIONS.packageName,
    ),
  );
}

/** What Pug compiles a template with, as far as the rewrite reads it. */
interface CompileOptions {
  plugins?: object[];
  filename?: string;
  basedir?: string;
}

/** Replaces `pug.compile` by one that rewrites each template's calls, a template holding one rendering its page with its fragments resolved. */
export function patchCompile<T extends PugLike>(pug: T, mixinName: string, digests: PugDigests | undefined): void {
  const compile = pug.compile;
  pug.compile = function compileWithFragments(this: unknown, source: string, compileOptions: CompileOptions = {}) {
    const compileDigests = digests === undefined ? undefined : new PugCompileDigests(digests, source, compileOptions);
    const rewrite: Rewrite = { calls: 0, digestKeyOf: compileDigests === undefined ? undefined : (file) => compileDigests.keyOf(file) };
    const plugins = [...(compileOptions.plugins ?? []), ...(compileDigests === undefined ? [] : [compileDigests.plugin()]), rewritePlugin(mixinName, rewrite)];
    const template = compile.call(this, source, { ...compileOptions, plugins });
    // With digests on, every render of a page names its template, tags or not.
    const rendered = () => digests?.rendered(compileOptions.filename, source);
    if (rewrite.calls === 0) return digests === undefined ? template : Object.assign((locals?: object) => (rendered(), template(locals)), template);
    return Object.assign(function renderWithFragments(locals?: object): Promise<string> {
      rendered();
      const fragments = new PugRender(mixinName, digests);
      try {
        return Promise.resolve(fragments.finish(template(withRenderState(locals, RENDER_STATE, fragments)) as string));
      } catch (error) {
        return Promise.reject(error);
      }
    }, template);
  } as T['compile'];
}

/** The plugin that rewrites the calls of a template's tree before Pug generates its code, counting them in `rewrite`. */
function rewritePlugin(mixinName: string, rewrite: Rewrite) {
  return {
    preCodeGen(ast: PugNode) {
      rewriteCalls(ast, mixinName, rewrite);
      // What `uncacheable()` calls in code marked goes into the page's text, where its render reads it.
      if (rewrite.calls > 0) ast.nodes?.push(statement(`pug_html = pug_html + ${RUNTIME}.takeMarks();`, ast));
      return ast;
    },
  };
}
