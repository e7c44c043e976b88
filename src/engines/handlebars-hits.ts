/**
 * The Handlebars compiler the `{{#cache}}` helper's hit path needs: each cache tag asks the render
 * for a kept fragment before it calls the helper at all.
 */
import type Handlebars from 'handlebars';
import { KEYWORDS } from '../fragments/index.js';
import { RENDER_STATE } from './template-tag.js';

type HandlebarsInstance = typeof Handlebars;

/** The hash argument the tag's parser adds with digests on: the template digest key of the template's compile. */
export const DIGEST_KEY = '__cachegrainDigest';

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

/**
 * Compiles each cache tag so that the template itself asks the render for a hit kept in memory, and
 * calls the helper only when there is none: a block helper call costs Handlebars more (its options,
 * its block's function, its wrapper) than emitting a kept fragment should. The tag's arguments, and
 * its keywords when it has any, are evaluated once, into registers the helper call then reuses.
 */
export function installHitCompiler(handlebars: HandlebarsInstance, helperName: string): void {
  type Compiler = JavaScriptCompiler & Record<string, (...args: any[]) => unknown>;
  const Base = (handlebars as unknown as { JavaScriptCompiler: new () => Compiler }).JavaScriptCompiler;
  const base = Base.prototype as Compiler;
  function HitCompiler(this: Compiler) {
    Base.call(this);
  }
  const prototype: Compiler = Object.create(base);
  HitCompiler.prototype = prototype;
  prototype.compiler = HitCompiler as unknown as Compiler['compiler'];
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
  prototype.invokeHelper = function invokeHelper(this: Compiler, paramSize: number, name: string, isSimple: boolean) {
    if (name !== helperName || paramSize < 2 || this.options.data === false) return base.invokeHelper!.call(this, paramSize, name, isSimple);
    const keywords = this.lastHashKeys?.some((key) => (KEYWORDS as readonly string[]).includes(key)) ?? true;
    // The digest key is a string literal: its code is the quoted string itself.
    const digestKey = this.lastDigestKey;
    const nonHelper = this.popStack();
    const keywordsCode: { code?: unknown } = {};
    this.keywordsInto = keywords ? keywordsCode : undefined;
    const helper = this.setupHelper(paramSize, name);
    this.keywordsInto = undefined;
    const registers = Array.from({ length: paramSize }, (_, i) => `cachegrainArg${i}`);
    for (const register of registers) this.useRegister(register);
    this.useRegister('cachegrainHit');
    if (keywords) this.useRegister(KEYWORDS_REGISTER);
    const lookup = [
      '(',
      isSimple ? [helper.name, '||'] : [],
      nonHelper,
      this.options.strict ? [] : ['||', this.aliasable('container.hooks.helperMissing')],
      ')',
    ];
    const options = helper.params[paramSize];
    const call = this.source.functionCall(lookup, 'call', [helper.callParams[0], ...registers, options]);
    const values = registers.slice(2);
    const keywordsArgument = `${keywords ? `, ${KEYWORDS_REGISTER}` : digestKey === undefined ? '' : ', undefined'}${digestKey === undefined ? '' : `, ${String(digestKey)}`}`;
    const ask =
      values.length <= 3
        ? `hit${values.length}(${registers.join(', ')}${keywordsArgument})`
        : `hitMany(cachegrainArg0, cachegrainArg1, [${values.join(', ')}]${keywordsArgument})`;
    const render = `data.${RENDER_STATE}`;
    this.push([
      '(',
      ...registers.flatMap((register, i) => [register, ' = ', helper.params[i], ', ']),
      ...(keywords ? [KEYWORDS_REGISTER, ' = ', keywordsCode.code, ', '] : []),
      `(cachegrainHit = data != null && ${render} != null ? ${render}.${ask} : undefined) !== undefined ? cachegrainHit : `,
      call,
      ')',
    ]);
  };
  (handlebars as unknown as { JavaScriptCompiler: unknown }).JavaScriptCompiler = HitCompiler;
}
