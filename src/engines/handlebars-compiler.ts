/**
 * What the `{{#cache}}` helper changes of a Handlebars instance's compiler: its `compile`, which
 * parses each template and checks its tags (handlebars-checks.ts) before Handlebars compiles the
 * tree, and its JavaScriptCompiler, which compiles each cache tag so that the template asks the render
 * for a kept fragment before it calls the helper at all. Written for Handlebars 4.7.10 to 4.x, whose
 * JavaScriptCompiler's methods the hit path builds on: another version is refused at install, read
 * from the instance's `VERSION`.
 */
import type Handlebars from 'handlebars';
import type { TemplateDigests } from '../digests/index.js';
import { KEYWORDS, missingEndTag } from '../fragments/index.js';
import { checkEngineVersion, type EngineVersions } from './engine-versions.js';
import { checked, DIGEST_KEY } from './handlebars-checks.js';
import { findHandlebarsDependencies, type HandlebarsPartials, SITE, SOURCE } from './handlebars-digests.js';
import { CALLS_TEMPLATE_HELPERS, registerTemplateHelpers } from './handlebars-helpers.js';
import { escapeRegExp, RENDER_STATE } from './template-tag.js';

type HandlebarsInstance = typeof Handlebars;

/** The versions of Handlebars whose JavaScriptCompiler the hit path knows. */
export const HANDLEBARS_VERSIONS: EngineVersions = {
  adapter: 'cachegrain/handlebars',
  engine: 'Handlebars',
  packageName: 'handlebars',
  reliesOn: "the cache helper patches Handlebars' compiler",
  from: '4.7.10',
  throughMajor: 4,
};

/** Refuses a Handlebars instance of a version outside `HANDLEBARS_VERSIONS`. */
export function checkHandlebarsVersion(handlebars: HandlebarsInstance): void {
  const version = (handlebars as { VERSION?: unknown }).VERSION;
  checkEngineVersion(HANDLEBARS_VERSIONS, typeof version === 'string' ? version : undefined);
}

/** Where an instance, and each template it compiles with digests on, keep the instance's template digests. */
export const DIGESTS = Symbol.for('cachegrain.handlebars.digests');

/**
 * Makes `handlebars.compile` parse each template's text, check its tags and name its template in them
 * (its digest key too, with `digests` on), and `handlebars.template` register the template helpers a
 * precompiled template calls. The compile option `srcName` names the template file in the tag's errors.
 */
export function patchCompile(handlebars: HandlebarsInstance, helperName: string, digests: TemplateDigests<HandlebarsPartials> | undefined): void {
  const compile = handlebars.compile.bind(handlebars);
  handlebars.compile = ((input: string | hbs.AST.Program, compileOptions?: CompileOptions & { srcName?: string }, runtimeEnv?: unknown) => {
    if (typeof input !== 'string' || CALLS_TEMPLATE_HELPERS.test(input)) registerTemplateHelpers(handlebars);
    if (typeof input !== 'string') return compile(input, compileOptions);
    // Handlebars compiles a partial given as text on first use, passing along the options of the
    // template that used it: its srcName would name the wrong file. A template compiled without one
    // (as @fastify/view compiles its pages) is no partial: it is named as a string is.
    const template = runtimeEnv === undefined ? (compileOptions?.srcName ?? 'a template string') : 'a partial';
    const program = parse(handlebars, { input, template }, compileOptions, helperName);
    const digestKey = digests?.keyOf(input, findHandlebarsDependencies(program));
    // A template keeps its source and name, so that a digest can read it as a partial.
    return Object.assign(compile(checked(program, helperName, template, digestKey), compileOptions), {
      [SOURCE]: input,
      [SITE]: template,
      [DIGESTS]: digests,
    });
  }) as typeof handlebars.compile;
  // A template precompiled elsewhere may call the template helpers without this instance's compile seeing its text.
  const template = handlebars.template.bind(handlebars);
  handlebars.template = ((spec: unknown) => {
    if (specCallsTemplateHelpers(spec)) registerTemplateHelpers(handlebars);
    return template(spec as never);
  }) as typeof handlebars.template;
}

/** Whether a compiled template's code (each of its programs) names `uncacheable` or `hole`. */
function specCallsTemplateHelpers(spec: unknown): boolean {
  return (
    typeof spec === 'object' && spec !== null && Object.values(spec).some((part) => typeof part === 'function' && CALLS_TEMPLATE_HELPERS.test(String(part)))
  );
}

/** Parses a template's text (`input`, of `template`); a tag left open fails naming its own line, not the end of the file. */
function parse(
  handlebars: HandlebarsInstance,
  { input, template }: { input: string; template: string },
  compileOptions: CompileOptions | undefined,
  helperName: string,
): hbs.AST.Program {
  try {
    return handlebars.parse(input, compileOptions as Parameters<HandlebarsInstance['parse']>[1]);
  } catch (error) {
    const line = unclosedTagLine(input, helperName);
    if (line !== undefined && /got 'EOF'|Expecting .*'EOF'|EOF/.test(String((error as Error).message))) {
      throw missingEndTag(helperName, `{{/${helperName}}}`, { template, line });
    }
    throw error;
  }
}

/** The line of the innermost `{{#cache}}` that no `{{/cache}}` closes, if any. */
function unclosedTagLine(input: string, helperName: string): number | undefined {
  const tags = new RegExp(`\\{\\{~?\\s*([#/])\\s*${escapeRegExp(helperName)}(?![\\w$-])`, 'g');
  const open: number[] = [];
  for (const match of input.matchAll(tags)) {
    if (match[1] === '#') open.push(match.index);
    else open.pop();
  }
  const at = open.at(-1);
  return at === undefined ? undefined : input.slice(0, at).split('\n').length;
}

/** The parts of Handlebars' JavaScriptCompiler the hit path builds on (it is meant to be extended, but typed loosely). */
interface JavaScriptCompiler {
  options: { data?: boolean; strict?: boolean };
  hash?: { values: Record<string, unknown> };
  /** The keys of the hash popped last: a helper's hash is popped just before it is invoked. */
  lastHashKeys?: string[];
  /** The code of the template digest key in the hash popped last, if it holds one. */
  lastDigestKey?: unknown;
  /** While a tag with keywords is set up: where its hash's code goes, replaced in its options by a register. */
  keywordsInto?: { code?: unknown };
  popStack(): unknown;
  push(expression: unknown): void;
  useRegister(name: string): void;
  setupHelper(paramSize: number, name: string): { name: unknown; params: unknown[]; callParams: unknown[] };
  source: { functionCall(fn: unknown, type: string, params: unknown[]): unknown };
  aliasable(name: string): unknown;
}

/** The register a tag's keywords are evaluated into. */
const KEYWORDS_REGISTER = 'cachegrainKeywords';

type Compiler = JavaScriptCompiler & Record<string, (...args: any[]) => unknown>;

/**
 * Compiles each cache tag so that the template itself asks the render for a hit kept in memory, and
 * calls the helper only when there is none: a block helper call costs Handlebars more (its options,
 * its block's function, its wrapper) than emitting a kept fragment should. The tag's arguments, and
 * its keywords when it has any, are evaluated once, into registers the helper call then reuses.
 */
export function installHitCompiler(handlebars: HandlebarsInstance, helperName: string): void {
  const Base = (handlebars as unknown as { JavaScriptCompiler: new () => Compiler }).JavaScriptCompiler;
  const base = Base.prototype as Compiler;
  function HitCompiler(this: Compiler) {
    Base.call(this);
  }
  const prototype: Compiler = Object.create(base);
  HitCompiler.prototype = prototype;
  prototype.compiler = HitCompiler as unknown as Compiler['compiler'];
  readHashes(prototype, base);
  prototype.invokeHelper = function invokeHelper(this: Compiler, paramSize: number, name: string, isSimple: boolean) {
    if (name !== helperName || paramSize < 2 || this.options.data === false) return base.invokeHelper!.call(this, paramSize, name, isSimple);
    return compileCacheTagCall(this, { paramSize, name, isSimple });
  };
  (handlebars as unknown as { JavaScriptCompiler: unknown }).JavaScriptCompiler = HitCompiler;
}

/**
 * Makes the compiler note what the hash popped last holds (its keys, its digest key), and set a
 * tag's keywords aside into a register when asked to.
 */
function readHashes(prototype: Compiler, base: Compiler): void {
  prototype.popHash = function popHash(this: Compiler) {
    this.lastHashKeys = Object.keys(this.hash!.values);
    this.lastDigestKey = this.hash!.values[DIGEST_KEY];
    return base.popHash!.call(this);
  };
  prototype.emptyHash = function emptyHash(this: Compiler, omitEmpty: boolean) {
    this.lastHashKeys = [];
    this.lastDigestKey = undefined;
    return base.emptyHash!.call(this, omitEmpty);
  };
  prototype.setupParams = function setupParams(this: Compiler, ...args: unknown[]) {
    const options = base.setupParams!.apply(this, args) as { hash: unknown };
    // The tag's keywords, evaluated once into a register that both the hit and the helper's options take.
    if (this.keywordsInto !== undefined) {
      this.keywordsInto.code = options.hash;
      options.hash = KEYWORDS_REGISTER;
    }
    return options;
  };
}

/** A cache tag's call of its helper (`paramSize` arguments, `isSimple` as Handlebars reads it), compiled to ask for a kept hit first. */
function compileCacheTagCall(compiler: Compiler, { paramSize, name, isSimple }: { paramSize: number; name: string; isSimple: boolean }): void {
  const keywords = compiler.lastHashKeys?.some((key) => (KEYWORDS as readonly string[]).includes(key)) ?? true;
  // The digest key is a string literal: its code is the quoted string itself.
  const digestKey = compiler.lastDigestKey;
  const nonHelper = compiler.popStack();
  const keywordsCode: { code?: unknown } = {};
  compiler.keywordsInto = keywords ? keywordsCode : undefined;
  const helper = compiler.setupHelper(paramSize, name);
  compiler.keywordsInto = undefined;
  const registers = Array.from({ length: paramSize }, (_, i) => `cachegrainArg${i}`);
  for (const register of registers) compiler.useRegister(register);
  compiler.useRegister('cachegrainHit');
  if (keywords) compiler.useRegister(KEYWORDS_REGISTER);
  const lookup = [
    '(',
    isSimple ? [helper.name, '||'] : [],
    nonHelper,
    compiler.options.strict ? [] : ['||', compiler.aliasable('container.hooks.helperMissing')],
    ')',
  ];
  const call = compiler.source.functionCall(lookup, 'call', [helper.callParams[0], ...registers, helper.params[paramSize]]);
  const render = `data.${RENDER_STATE}`;
  compiler.push([
    '(',
    ...registers.flatMap((register, i) => [register, ' = ', helper.params[i], ', ']),
    ...(keywords ? [KEYWORDS_REGISTER, ' = ', keywordsCode.code, ', '] : []),
    `(cachegrainHit = data != null && ${render} != null ? ${render}.${hitCall(registers, { keywords, digestKey })} : undefined) !== undefined ? cachegrainHit : `,
    call,
    ')',
  ]);
}

/** The render's hit method called with the tag's registers (timeout, name, vary-on values), then its keywords and digest key when it has them. */
function hitCall(registers: string[], { keywords, digestKey }: { keywords: boolean; digestKey: unknown }): string {
  const values = registers.slice(2);
  const keywordsArgument = `${keywords ? `, ${KEYWORDS_REGISTER}` : digestKey === undefined ? '' : ', undefined'}${digestKey === undefined ? '' : `, ${String(digestKey)}`}`;
  return values.length <= 3
    ? `keptHitVaryingOn${values.length}(${registers.join(', ')}${keywordsArgument})`
    : `keptHitVaryingOnMany(cachegrainArg0, cachegrainArg1, [${values.join(', ')}]${keywordsArgument})`;
}
