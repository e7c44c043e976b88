/**
 * The `{% cache %}` tag for LiquidJS, with `{% hole %}` and `{% uncacheable %}`: each render started
 * by `render`, `renderFile` or `parseAndRender` (and so by `liquid.express()`) is one fragment render,
 * its partials and layouts joining it, resolved when it returns. Surprise: a loop moves its
 * `forloop` on in place, so a tag keeps a copy of the scopes as they were when it ran, for its body
 * rendered later.
 */
// Node's types (Buffer, node:http, node:diagnostics_channel…) appear in these declarations: a consumer need not name them in `types`.
/// <reference types="node" preserve="true" />
import {
  type Context,
  type Emitter,
  evalToken,
  type Liquid,
  type Parser,
  Tag,
  type TagToken,
  type Template,
  toPromise,
  toValue,
  type TopLevelToken,
  type ValueToken,
} from 'liquidjs';
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
} from '../fragments/index.js';
import { liquidDigests, makeLiquidDigests } from './liquid-digests.js';
import { installerOptions } from './template-tag.js';

export { templateDigest } from './liquid-digests.js';

/** Where a render's fragment state travels: in the globals of the render's contexts, which every partial's context shares. */
const RENDER = Symbol.for('cachegrain.liquid.render');
const INSTALLED = Symbol.for('cachegrain.liquid');

export interface CacheTagOptions {
  /** The tag's name; its end tag is `end<name>`. @default 'cache' */
  tagName?: string;
  /**
   * Fragment keys carry a digest of the template that holds the tag and of everything it renders,
   * includes or lays out in, so that editing a template renews its fragments. @default false
   */
  digests?: boolean;
}

type Globals = Record<PropertyKey, unknown>;
type RenderArguments = [templates: Template[], scope: object | undefined, renderOptions: { globals?: Globals; sync?: boolean } | undefined];

/**
 * Adds `{% cache timeout 'name' vary… using: 'alias' tags: … stale: … lock: true %}…{% endcache %}`,
 * `{% hole 'name' args… %}` and `{% uncacheable 'why' %}` to a Liquid instance, and makes each of its
 * renders resolve the fragments its templates record. Keywords come after the vary-on values, written
 * as Liquid writes a `for` tag's (`limit: 2`); a bare-word fragment name is taken as written.
 */
export function installCacheTag(liquid: Liquid, options: CacheTagOptions = {}): Liquid {
  const { tagName, digests } = installerOptions(options as { tagName?: string; digests?: boolean }, 'tagName', 'installCacheTag');
  if (digests) makeLiquidDigests(liquid);
  const target = liquid as unknown as Record<PropertyKey, unknown>;
  if (target[INSTALLED] === tagName) return liquid;
  const firstInstall = target[INSTALLED] === undefined;
  target[INSTALLED] = tagName;
  liquid.registerTag(tagName, cacheTag(tagName));
  liquid.registerTag('hole', HoleTag);
  liquid.registerTag('uncacheable', UncacheableTag);
  if (firstInstall) startRendersIn(liquid);
  return liquid;
}

/**
 * Makes each render of `liquid` that no render holds yet start one: its globals carry it to every
 * context of the render, and its output is the page with its fragments resolved.
 */
function startRendersIn(liquid: Liquid): void {
  const engine = liquid as unknown as { _render(...args: RenderArguments): Generator<unknown, unknown, unknown> };
  const render = engine._render.bind(liquid);
  engine._render = function* renderWithFragments(templates, scope, renderOptions = {}) {
    const context = scope as Partial<Context> | undefined;
    const isContext = context !== undefined && context !== null && typeof context.spawn === 'function';
    if (isContext && (context.globals as Globals | undefined)?.[RENDER] instanceof FragmentRender) return yield render(templates, scope, renderOptions);
    const digests = liquidDigests(liquid);
    // With digests on, the page around the render is rendered from its first template's file or source.
    const first = (templates[0] as { token?: { file?: string; input?: string } } | undefined)?.token;
    digests?.rendered(first?.file, first?.input);
    const fragments = new FragmentRender(digests);
    if (isContext) {
      context.globals = { ...(context.globals as Globals), [RENDER]: fragments };
    } else {
      const globals = renderOptions.globals ?? (liquid.options.globals as Globals);
      renderOptions = { ...renderOptions, globals: { ...globals, [RENDER]: fragments } };
    }
    const output = (yield render(templates, scope, renderOptions)) as string;
    return yield fragments.finish(output);
  };
}

function renderOf(ctx: Context): FragmentRender | undefined {
  const render = (ctx.globals as Globals | undefined)?.[RENDER];
  return render instanceof FragmentRender ? render : undefined;
}

function siteOf(token: TagToken): TagSite {
  return { template: token.file ?? 'a template string', line: token.getPosition()[0]! };
}

// Any name before `:` or a lone `=` starts the keywords, so a misspelt one is named as such, not misread as a value.
const KEYWORD = /^[A-Za-z_][\w-]*\s*(?::|=(?!=))/;

/** The `cache` tag's class, for the name it is installed under. */
function cacheTag(tagName: string) {
  return class CacheTag extends Tag {
    private readonly site: TagSite;
    private readonly timeout: ValueToken;
    private readonly fragmentName: string;
    private readonly varyOn: ValueToken[];
    /** The keywords, by name: each a value to evaluate, or none for a bare name (true). */
    private readonly keywords: Array<[string, ValueToken | undefined]>;
    private readonly templates: Template[] = [];
    /** The digest key of the template the tag is in, when its Liquid has digests on. */
    private readonly digestKey: string | undefined;

    constructor(token: TagToken, remainTokens: TopLevelToken[], liquid: Liquid, parser: Parser) {
      super(token, remainTokens, liquid);
      this.site = siteOf(token);
      this.digestKey = liquidDigests(liquid)?.keyOfSource(token.input, token.file);
      const values: ValueToken[] = [];
      for (this.tokenizer.skipBlank(); !this.tokenizer.end() && !KEYWORD.test(this.tokenizer.remaining()); this.tokenizer.skipBlank()) {
        const value = this.tokenizer.readValue();
        if (value === undefined) throw new TemplateSyntaxError(`'${tagName}' tag: cannot read '${this.tokenizer.remaining().trim()}'`, undefined, this.site);
        values.push(value);
      }
      // The tokenizer is the rendering Liquid's own (an application may hold another copy of liquidjs than this module's).
      const separator = liquid.options.keyValueSeparator;
      this.keywords = this.tokenizer.readHashes(separator).map((hash) => [hash.name.content, hash.value]);
      const misplaced = this.tokenizer.remaining().trim();
      if (misplaced !== '')
        throw new TemplateSyntaxError(`'${tagName}' tag: cannot read '${misplaced}' (keywords come after the vary-on values)`, undefined, this.site);
      for (const [name] of this.keywords) {
        const unknown = unknownKeyword(name, `'${tagName}' tag`, this.site);
        if (unknown !== undefined) throw unknown;
      }
      if (values.length < 2) throw tooFewArguments(tagName, this.site);
      const [timeout, name, ...varyOn] = values as [ValueToken, ValueToken, ...ValueToken[]];
      this.timeout = timeout;
      this.fragmentName = name.getText().replace(/^(["'])(.*)\1$/s, '$2');
      this.varyOn = varyOn;
      const stream = parser
        .parseStream(remainTokens)
        .on('template', (template: Template) => this.templates.push(template))
        .on(`tag:end${tagName}`, () => stream.stop())
        .on('end', () => {
          throw missingEndTag(tagName, `{% end${tagName} %}`, this.site);
        });
      stream.start();
    }

    *render(ctx: Context, emitter: Emitter): Generator<unknown, void, unknown> {
      const render = renderOf(ctx);
      if (render === undefined || ctx.sync) {
        throw new TemplateSyntaxError(
          `the '${tagName}' tag needs the page rendered with liquid.render(), renderFile() or parseAndRender() of a Liquid given to installCacheTag(), ` +
            'not a Sync or stream render: fragments are read from the cache asynchronously',
          this.fragmentName,
          this.site,
        );
      }
      const timeout = toValue(yield evalToken(this.timeout, ctx));
      const varyOn: unknown[] = [];
      for (const value of this.varyOn) varyOn.push(toValue(yield evalToken(value, ctx)));
      const keywords: Record<string, unknown> = {};
      for (const [name, value] of this.keywords) keywords[name] = value === undefined ? true : toValue(yield evalToken(value, ctx));
      const { liquid, templates } = this;
      // The scopes are copied only for a body that will render: a kept hit builds nothing.
      const bodyOf = () => {
        const scope = snapshot(ctx);
        return () => toPromise(liquid.renderer.renderTemplates(templates, scope));
      };
      const { fragmentName: name, site, digestKey } = this;
      const kept = render.hitMany(timeout, name, varyOn, keywords as TagKeywords, digestKey);
      emitter.write(kept ?? render.tag({ timeout, name, varyOn, keywords: keywords as TagKeywords, ...site, digest: digestKey }, bodyOf));
    }
  };
}

/** `{% hole 'stock' product.id %}`: a part of the page never cached, made for each request. */
class HoleTag extends Tag {
  private readonly site: TagSite;
  private readonly values: ValueToken[] = [];

  constructor(token: TagToken, remainTokens: TopLevelToken[], liquid: Liquid) {
    super(token, remainTokens, liquid);
    this.site = siteOf(token);
    for (let value = this.tokenizer.readValue(); value !== undefined; value = this.tokenizer.readValue()) this.values.push(value);
  }

  *render(ctx: Context, emitter: Emitter): Generator<unknown, void, unknown> {
    const args: unknown[] = [];
    for (const value of this.values) args.push(toValue(yield evalToken(value, ctx)));
    const render = renderOf(ctx);
    if (render === undefined) {
      throw new TemplateSyntaxError(
        `the 'hole' tag (hole ${describe(args[0])}) needs the page rendered by a Liquid given to installCacheTag()`,
        undefined,
        this.site,
      );
    }
    emitter.write(render.hole(args[0], args.slice(1), this.site));
  }
}

/** `{% uncacheable 'why' %}`: the fragment around it, and the page, may not be kept. */
class UncacheableTag extends Tag {
  private readonly site: TagSite;
  private readonly why: ValueToken | undefined;

  constructor(token: TagToken, remainTokens: TopLevelToken[], liquid: Liquid) {
    super(token, remainTokens, liquid);
    this.site = siteOf(token);
    this.why = this.tokenizer.readValue();
  }

  *render(ctx: Context, emitter: Emitter): Generator<unknown, void, unknown> {
    const why = this.why === undefined ? undefined : toValue(yield evalToken(this.why, ctx));
    emitter.write(uncacheableOutput(why, this.site));
  }
}

/** What a context holds of a render's variables (its scopes are not in its public types). */
interface ContextState {
  environments: object;
  scopes: object[];
  registers: object;
}

/**
 * A context that reads as `ctx` does now: its scopes copied, and each loop's drop too (a loop moves
 * its drop on in place), for a body rendered after the loop went on.
 */
function snapshot(ctx: Context): Context {
  const copy = ctx.spawn() as unknown as ContextState;
  const state = ctx as unknown as ContextState;
  copy.environments = state.environments;
  copy.scopes = state.scopes.map((scope) => {
    const copied = Object.assign(Object.create(null) as object, scope) as Record<string, unknown>;
    for (const [name, value] of Object.entries(copied)) {
      // A drop (of whichever copy of liquidjs) that moves on: a loop's.
      const drop = value as { next?: unknown; liquidMethodMissing?: unknown } | null;
      if (typeof drop === 'object' && drop !== null && typeof drop.next === 'function' && typeof drop.liquidMethodMissing === 'function') {
        copied[name] = Object.assign(Object.create(Object.getPrototypeOf(value) as object) as object, value);
      }
    }
    return copied;
  });
  copy.registers = { ...state.registers };
  return copy as unknown as Context;
}
