/**
 * What the `<% cache %>` tag changes of Eta's compiler, through the two hooks of its plugin: the
 * template's text, its tags rewritten into code (eta-tags.ts) before Eta parses it, and the function
 * Eta makes of it, which joins or starts a fragment render as it begins and resolves it as it returns.
 * Written for Eta 4.6 to 4.x, whose compiled function's names (`__eta`, `options`, its last `return
 * __eta.res;`) the code relies on: another version is refused as it compiles, its version read from
 * the package of the Eta whose parser called the plugin.
 */
import type { Eta } from 'eta';
import { digestKey } from '../digests/index.js';
import { DIGEST_CONSTANT, findEtaDependencies } from './eta-digests.js';
import type { EtaSyntaxConfig } from './eta-syntax.js';
import { type CompileFault, placeCalls, rewriteTags } from './eta-tags.js';
import { callerFile, checkEngineVersion, type EngineVersions, packageVersionAt } from './engine-versions.js';
import { RENDER_STATE } from './template-tag.js';

type EtaConfig = Eta['config'];

/** The versions of Eta whose compiled function the plugin's code knows. */
export const ETA_VERSIONS: EngineVersions = {
  adapter: 'cachegrain/eta',
  engine: 'Eta',
  packageName: 'eta',
  reliesOn: "the cache tag patches Eta's compiler",
  from: '4.6.0',
  throughMajor: 4,
};

/** The configs (one per Eta) whose version was found supported. */
const checkedConfigs = new WeakSet<object>();

/** What the compile of one template leaves for its function's code: Eta compiles synchronously, template text first and function text next. */
interface CompiledTemplate {
  /** A misused tag, thrown by the compiled template where it knows its file. */
  fault: CompileFault | undefined;
  /** Keywords whose values are all literals, by the constant they are made into once per render. */
  constantKeywords: string[];
  /** With digests on, the template's digest key (what its source depends on). */
  digestKey: string | undefined;
}

/** The hooks of `plugin`, whose tag is `tagName`: its compiled templates find the plugin's runtime under the name of the render state. */
export function compilerHooks(plugin: object, { tagName, digests }: { tagName: string; digests: boolean }) {
  let compiled: CompiledTemplate | undefined;
  return {
    processTemplate: function processTemplate(template: string, config?: EtaConfig): string {
      checkEtaVersion(config, callerFile(processTemplate));
      const syntax: EtaSyntaxConfig = config ?? {};
      const placed = placeCalls(template, syntax);
      const key = digests ? digestKey(placed, findEtaDependencies(placed, syntax)) : undefined;
      const constantKeywords: string[] = [];
      const { source, fault } = rewriteTags(placed, syntax, { tagName, constantKeywords, digest: key === undefined ? undefined : DIGEST_CONSTANT });
      compiled = { fault, constantKeywords, digestKey: key };
      // A broken tag leaves unbalanced code: the template is replaced by one that reports the fault.
      return fault === undefined ? source : '';
    },
    processFnString(fnString: string, config?: EtaConfig): string {
      const template = compiled;
      compiled = undefined;
      return compiledFunction(fnString, template, runtimeLookup(config?.plugins?.indexOf(plugin)));
    },
  };
}

/** Refuses an Eta (`config` its config, `file` the file of its parser) of a version outside `ETA_VERSIONS`, once per Eta. */
function checkEtaVersion(config: EtaConfig | undefined, file: string | undefined): void {
  if (config !== undefined && checkedConfigs.has(config)) return;
  checkEngineVersion(ETA_VERSIONS, packageVersionAt(file, ETA_VERSIONS.packageName));
  if (config !== undefined) checkedConfigs.add(config);
}

/**
 * The code that finds the plugin's runtime from a compiled template: where the plugin stood (`index`)
 * when the template compiled, searched for if it moved since.
 */
function runtimeLookup(index: number | undefined): string {
  return `(this.config.plugins[${Math.max(0, index ?? 0)}]?.${RENDER_STATE} ?? this.config.plugins.find((plugin) => plugin.${RENDER_STATE}).${RENDER_STATE})`;
}

/**
 * The function Eta compiled (`fnString`), made to take part in a fragment render: every template does,
 * tags or not, as a page without tags of its own must still hand one render to the partials it
 * includes, or each would read the cache on its own.
 */
function compiledFunction(fnString: string, template: CompiledTemplate | undefined, runtime: string): string {
  if (template?.fault !== undefined) {
    const { message, line } = template.fault;
    return `throw ${runtime}.compileError(${JSON.stringify(message)}, ${line}, options);`;
  }
  const last = fnString.lastIndexOf('return __eta.res;');
  const constants = (template?.constantKeywords ?? []).map((keywords, i) => `const __cgConstantKeywords${i} = { ${keywords} };\n`).join('');
  // Every template holds its digest key, tags or not: a template loaded by name is read from it when another includes it.
  const digest = template?.digestKey === undefined ? '' : `const ${DIGEST_CONSTANT} = ${JSON.stringify(template.digestKey)};\n`;
  return (
    `${digest}const __cachegrain = ${runtime}.enter(options, this);\n${constants}${templateFunctions(fnString, runtime)}` +
    `${fnString.slice(0, last)}return __cachegrain.leave(__eta.cgMarks === undefined ? __eta.res : __eta.res + __eta.cgMarks, options${digest === '' ? '' : `, ${DIGEST_CONSTANT}`});${fnString.slice(last + 'return __eta.res;'.length)}`
  );
}

/**
 * The template functions `fnString` calls, in scope as a tag's code finds the render: `uncacheable(why)`,
 * whose call marks the buffer it writes to aside (its value may be dropped, a statement, or read before
 * it returns, `+=`), and `hole(name, ...args)`, which `<%~ hole(…) %>` calls with its line.
 */
function templateFunctions(fnString: string, runtime: string): string {
  const uncacheable = /\b(?:uncacheable|__cgUncacheable)\s*\(/.test(fnString)
    ? `const __cgUncacheable = (buffer, line, why) => { buffer.cgMarks = (buffer.cgMarks ?? '') + ${runtime}.uncacheable(why, options, line); return ''; };\n` +
      'const uncacheable = (why) => __cgUncacheable(__eta, 0, why);\n'
    : '';
  const hole = /\b(?:hole|__cgHole)\s*\(/.test(fnString)
    ? 'const __cgHole = (line, name, ...args) => __cachegrain.holeAt(line, options, name, args);\nconst hole = (name, ...args) => __cgHole(0, name, ...args);\n'
    : '';
  return uncacheable + hole;
}
