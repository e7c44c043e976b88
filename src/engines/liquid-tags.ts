/**
 * The tags LiquidJS gets: `{% cache %}`, `{% hole %}` and `{% uncacheable %}`, each a Tag class whose
 * constructor parses the tag's tokens (the cache tag's arguments into its timeout, name, vary-on
 * values and keywords, and its body up to its end tag) and whose `render` runs it in a render that
 * liquid-renderer.ts started. Surprise: a loop moves its `forloop` on in place, so a tag keeps a copy
 * of the scopes as they were when it ran, for its body rendered later.
 */
import {
  type Context,
  type Emitter,
  evalToken,
  type Liquid,
  type Parser,
  Tag,
  type TagToken,
  type Template,
  type Tokenizer,
  toPromise,
  toValue,
  type TopLevelToken,
  type ValueToken,
} from 'liquidjs';
import { missingEndTag, type TagKeywords, type TagSite, TemplateSyntaxError, tooFewArguments, uncacheableOutput, unknownKeyword } from '../fragments/index.js';
import { describe } from '../errors/errors.js';
import { liquidDigests } from './liquid-digests.js';
import { renderOf, snapshot } from './liquid-renderer.js';

function siteOf(token: TagToken): TagSite {
  return { template: token.file ?? 'a template string', line: token.getPosition()[0]! };
}

// Any name before `:` or a lone `=` starts the keywords, so a misspelt one is named as such, not misread as a value.
const KEYWORD = /^[A-Za-z_][\w-]*\s*(?::|=(?!=))/;

/** A cache tag's arguments: its timeout, its name as written, its vary-on values, and its keywords by name (none: a bare name, true). */
interface CacheArguments {
  timeout: ValueToken;
  fragmentName: string;
  varyOn: ValueToken[];
  keywords: Array<[string, ValueToken | undefined]>;
}

/**
 * Reads the tag's arguments with `tokenizer`, the rendering Liquid's own (an application may hold
 * another copy of liquidjs than this module's): values, then keywords written with `separator`.
 */
function parseCacheArguments(
  tokenizer: Tokenizer,
  { tagName, site, separator }: { tagName: string; site: TagSite; separator: string | undefined },
): CacheArguments {
  const values: ValueToken[] = [];
  for (tokenizer.skipBlank(); !tokenizer.end() && !KEYWORD.test(tokenizer.remaining()); tokenizer.skipBlank()) {
    const value = tokenizer.readValue();
    if (value === undefined) throw new TemplateSyntaxError(`'${tagName}' tag: cannot read '${tokenizer.remaining().trim()}'`, undefined, site);
    values.push(value);
  }
  const keywords = tokenizer.readHashes(separator).map((hash): [string, ValueToken | undefined] => [hash.name.content, hash.value]);
  const misplaced = tokenizer.remaining().trim();
  if (misplaced !== '') throw new TemplateSyntaxError(`'${tagName}' tag: cannot read '${misplaced}' (keywords come after the vary-on values)`, undefined, site);
  for (const [name] of keywords) {
    const unknown = unknownKeyword(name, `'${tagName}' tag`, site);
    if (unknown !== undefined) throw unknown;
  }
  if (values.length < 2) throw tooFewArguments(tagName, site);
  const [timeout, name, ...varyOn] = values as [ValueToken, ValueToken, ...ValueToken[]];
  return { timeout, fragmentName: name.getText().replace(/^(["'])(.*)\1$/s, '$2'), varyOn, keywords };
}

/** The templates of the tag's body, parsed from `remainTokens` up to its end tag; a tag left open fails at its own line. */
function parseBody(parser: Parser, remainTokens: TopLevelToken[], { tagName, site }: { tagName: string; site: TagSite }): Template[] {
  const templates: Template[] = [];
  const stream = parser
    .parseStream(remainTokens)
    .on('template', (template: Template) => templates.push(template))
    .on(`tag:end${tagName}`, () => stream.stop())
    .on('end', () => {
      throw missingEndTag(tagName, `{% end${tagName} %}`, site);
    });
  stream.start();
  return templates;
}

/** A tag's class, as `registerTag` takes it. */
type TagClass = new (token: TagToken, remainTokens: TopLevelToken[], liquid: Liquid, parser: Parser) => Tag;

/** The `cache` tag's class, for the name it is installed under. */
export function cacheTag(tagName: string): TagClass {
  return class CacheTag extends Tag {
    private readonly site: TagSite;
    private readonly call: CacheArguments;
    private readonly templates: Template[];
    /** The digest key of the template the tag is in, when its Liquid has digests on. */
    private readonly digestKey: string | undefined;

    constructor(token: TagToken, remainTokens: TopLevelToken[], liquid: Liquid, parser: Parser) {
      super(token, remainTokens, liquid);
      this.site = siteOf(token);
      this.digestKey = liquidDigests(liquid)?.keyOfSource(token.input, token.file);
      this.call = parseCacheArguments(this.tokenizer, { tagName, site: this.site, separator: liquid.options.keyValueSeparator });
      this.templates = parseBody(parser, remainTokens, { tagName, site: this.site });
    }

    *render(ctx: Context, emitter: Emitter): Generator<unknown, void, unknown> {
      const render = renderOf(ctx);
      const { fragmentName: name } = this.call;
      if (render === undefined || ctx.sync) {
        throw new TemplateSyntaxError(
          `the '${tagName}' tag needs the page rendered with liquid.render(), renderFile() or parseAndRender() of a Liquid given to installCacheTag(), ` +
            'not a Sync or stream render: fragments are read from the cache asynchronously',
          name,
          this.site,
        );
      }
      const timeout = toValue(yield evalToken(this.call.timeout, ctx));
      const varyOn: unknown[] = [];
      for (const value of this.call.varyOn) varyOn.push(toValue(yield evalToken(value, ctx)));
      const keywords: Record<string, unknown> = {};
      for (const [keyword, value] of this.call.keywords) keywords[keyword] = value === undefined ? true : toValue(yield evalToken(value, ctx));
      const { liquid, templates, site, digestKey } = this;
      // The scopes are copied only for a body that will render: a kept hit builds nothing.
      const bodyOf = () => {
        const scope = snapshot(ctx);
        return () => toPromise(liquid.renderer.renderTemplates(templates, scope));
      };
      const kept = render.keptHitVaryingOnMany(timeout, name, varyOn, keywords as TagKeywords, digestKey);
      emitter.write(kept ?? render.tag({ timeout, name, varyOn, keywords: keywords as TagKeywords, ...site, digest: digestKey }, bodyOf));
    }
  };
}

/** `{% hole 'stock' product.id %}`: a part of the page never cached, made for each request. */
export class HoleTag extends Tag {
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
export class UncacheableTag extends Tag {
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
