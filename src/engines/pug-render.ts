/**
 * What a page's rewritten `+cache`, `+hole` and `+uncacheable` calls run: one render per page, its
 * fragments resolved when the template returns. Pug renders synchronously, so a hit is answered
 * from the call's evaluated arguments before anything a miss needs is built.
 */
import { FragmentRender, type TagKeywords, type TagSite, TemplateSyntaxError, tooFewArguments, uncacheableOutput } from '../fragments/index.js';
import { describe } from '../errors/errors.js';
import type { PugDigests } from './pug-digests.js';

const NO_ARGUMENTS: readonly unknown[] = Object.freeze([]);

/** One page's fragments, as its compiled calls reach them. */
export class PugRender extends FragmentRender {
  private marks = '';

  constructor(
    private readonly mixinName: string,
    digests: PugDigests | undefined,
  ) {
    super(digests);
  }

  /** `at`: where the tag stands, and its template's digest key with digests on. */
  cache(at: { template: string; line: number; digest?: string }, args: readonly unknown[], keywords: TagKeywords, body: () => string): string {
    const { template, line, digest: digestKey } = at;
    const site: TagSite = { template, line };
    if (args.length < 2) throw tooFewArguments(this.mixinName, site);
    const [timeout, name, ...varyOn] = args;
    if (typeof name !== 'string' && typeof name !== 'number') {
      throw new TemplateSyntaxError(
        `'+${this.mixinName}' takes a string fragment name, as in +${this.mixinName}(300, 'sidebar') (got ${describe(name)})`,
        undefined,
        site,
      );
    }
    const fragment = String(name);
    return (
      this.keptHitVaryingOnMany(timeout, fragment, varyOn, keywords, digestKey) ??
      this.tag({ timeout, name: fragment, varyOn, keywords, template, line, digest: digestKey }, () => body)
    );
  }

  /** The arguments of the last `kept` call that found no hit, for the `cache` call that follows it. */
  private missedArguments: readonly unknown[] = NO_ARGUMENTS;

  /**
   * The HTML of a `+cache` call's fragment when it is a hit this process keeps, answered from its
   * evaluated arguments (`timeout`, `name`, then the vary-on values) without building anything (see
   * `keptHitVaryingOn0`…`keptHitVaryingOnMany`); else undefined, and the template calls `cache` with
   * `missed()`, which does everything else. Pug renders synchronously: nothing runs between the two.
   * Its arguments are only counted here, and handed on whole where they are indexed: V8 then makes no
   * object of them, which it would for every call, hit or not, if this function indexed them.
   */
  kept(
    digestKey: string | undefined,
    keywords: TagKeywords | undefined,
    timeout?: unknown,
    name?: unknown,
    a?: unknown,
    b?: unknown,
    c?: unknown,
  ): string | undefined {
    const count = arguments.length - 2;
    let html: string | undefined;
    if (typeof name === 'string') {
      if (count === 2) html = this.keptHitVaryingOn0(timeout, name, keywords, digestKey);
      else if (count === 3) html = this.keptHitVaryingOn1(timeout, name, a, keywords, digestKey);
      else if (count === 4) html = this.keptHitVaryingOn2(timeout, name, a, b, keywords, digestKey);
      else if (count === 5) html = this.keptHitVaryingOn3(timeout, name, a, b, c, keywords, digestKey);
      else if (count > 5) html = Reflect.apply(this.keptMany, this, arguments) as string | undefined;
    }
    if (html === undefined) Reflect.apply(this.keepMissed, this, arguments);
    return html;
  }

  /** `kept` with more than three vary-on values: `args` are the timeout, the name, then those values. */
  private keptMany(digestKey: string | undefined, keywords: TagKeywords | undefined, ...args: unknown[]): string | undefined {
    const [timeout, name, ...varyOn] = args;
    return this.keptHitVaryingOnMany(timeout, name as string, varyOn, keywords, digestKey);
  }

  /** Keeps the arguments of a `kept` call that found no hit, for `missed`. */
  private keepMissed(_digestKey: string | undefined, _keywords: TagKeywords | undefined, ...args: unknown[]): void {
    this.missedArguments = args;
  }

  /** The arguments of the last `kept` call that found no hit. */
  missed(): readonly unknown[] {
    return this.missedArguments;
  }

  holeAt(template: string, line: number, args: unknown[]): string {
    return this.hole(args[0], args.slice(1), { template, line });
  }

  uncacheableAt(template: string, line: number, args: unknown[]): string {
    return uncacheableOutput(args[0], { template, line });
  }

  /** `hole('name', …args)` in code. */
  holeCall(template: string, line: number, name: unknown, ...args: unknown[]): string {
    return this.hole(name, args, { template, line });
  }

  /** `uncacheable('why')` in code: marked aside, as its value may be dropped, until the text being rendered takes it. */
  uncacheableCall(template: string, line: number, why?: unknown): string {
    this.marks += uncacheableOutput(why, { template, line });
    return '';
  }

  /** The marks made since the last take: Pug renders synchronously, so they belong to the text rendered now. */
  takeMarks(): string {
    const marks = this.marks;
    this.marks = '';
    return marks;
  }
}
