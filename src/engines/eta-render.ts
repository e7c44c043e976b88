/**
 * What Eta's compiled templates run: the runtime the plugin carries, through which each template joins
 * the render of the template that included it or starts one, and the render itself, whose outermost
 * template resolves the fragments when it returns. Surprise: the outermost template of a render does
 * the resolving (included templates and layouts join its render through Eta's render options, which
 * includes pass along), so it must be rendered with `renderAsync`.
 */
import type { Eta } from 'eta';
import { FragmentRender, type FragmentTag, TemplateSyntaxError, uncacheableOutput } from '../fragments/index.js';
import { describe } from '../errors/errors.js';
import type { TemplateDigests } from '../digests/index.js';
import { etaDigests } from './eta-digests.js';
import { RENDER_STATE } from './template-tag.js';

/** What compiled templates call, found in the plugin under the same name as the render state. */
export type EtaRuntime = ReturnType<typeof etaRuntime>;

/** The runtime of a plugin whose tag is `tagName`, its renders reading template digests when `digests` is on. */
export function etaRuntime(tagName: string, digests: boolean) {
  const syncRender = new SyncEtaRender(tagName);
  // The digests of the last Eta rendering: an application renders with one, and every render asks.
  let lastEta: Eta | undefined;
  let lastDigests: TemplateDigests | undefined;
  const digestsFor = (eta: Eta) => (eta === lastEta ? lastDigests! : (lastDigests = etaDigests((lastEta = eta))));
  return {
    /** Called by compiled templates: joins the render of the template that included this one, or starts one. */
    enter(renderOptions: EtaRenderOptions | undefined, eta: Eta): EtaRender | SyncEtaRender {
      const joined = renderOptions?.[RENDER_STATE];
      if (joined instanceof EtaRender) return joined;
      if (renderOptions?.async !== true) return syncRender;
      const render = new EtaRender(renderOptions, digests ? digestsFor(eta) : undefined);
      renderOptions[RENDER_STATE] = render;
      return render;
    },
    /** The error of a tag misused in a template, naming its file and line. */
    compileError(message: string, line: number, renderOptions: EtaRenderOptions | undefined): TemplateSyntaxError {
      return new TemplateSyntaxError(message, undefined, { template: templateName(renderOptions), line });
    },
    /** `<%~ uncacheable("why") %>` on `line` (0: not known): the fragment around it, and the page, may not be kept. */
    uncacheable(why: unknown, renderOptions: EtaRenderOptions | undefined, line: number): string {
      const template = templateName(renderOptions);
      if (line > 0) return uncacheableOutput(why, { template, line });
      return uncacheableOutput(why === undefined ? why : `${String(why)} (${template})`);
    },
  };
}

export interface EtaRenderOptions {
  async?: boolean;
  filepath?: string;
  [RENDER_STATE]?: unknown;
}

export function templateName(renderOptions: EtaRenderOptions | undefined): string {
  return renderOptions?.filepath ?? 'a template string';
}

/**
 * One render's fragments, as its compiled templates see them: the outermost template (whose render
 * options started it) resolves them when it returns; included ones only record theirs.
 */
export class EtaRender extends FragmentRender {
  constructor(
    private readonly owner: EtaRenderOptions,
    private readonly templateDigests: TemplateDigests | undefined,
  ) {
    super(templateDigests);
  }

  /** A tag on `line` that no kept hit answered, its body to run on a miss. */
  record(call: FragmentTag, renderOptions: EtaRenderOptions | undefined, body: () => Promise<string>): string {
    return this.tag({ ...call, template: templateName(renderOptions) }, () => body);
  }

  /** `<%~ hole("name", …args) %>` on `line` (0: not known). */
  holeAt(line: number, renderOptions: EtaRenderOptions | undefined, name: unknown, args: unknown[]): string {
    return this.hole(name, args, { template: templateName(renderOptions), line });
  }

  /** The outermost template returns `output` (its digest key `digest`, with digests on): the render's fragments are resolved. */
  leave(output: string, renderOptions: EtaRenderOptions | undefined, digest?: string): string | Promise<string> {
    if (renderOptions !== this.owner) return output;
    this.templateDigests?.rendered(renderOptions.filepath, undefined, digest);
    // Once done, the options start no render of this one: a caller may pass the same options again.
    const page = this.finish(output);
    if (typeof page === 'string') {
      this.owner[RENDER_STATE] = undefined;
      return page;
    }
    return page.finally(() => {
      this.owner[RENDER_STATE] = undefined;
    });
  }
}

/** A synchronous render: fine for templates without tags, a clear error for a tag. */
export class SyncEtaRender {
  constructor(private readonly tagName: string) {}

  keptHitVaryingOn0(): undefined {
    return undefined;
  }

  keptHitVaryingOn1(): undefined {
    return undefined;
  }

  keptHitVaryingOn2(): undefined {
    return undefined;
  }

  keptHitVaryingOn3(): undefined {
    return undefined;
  }

  keptHitVaryingOnMany(): undefined {
    return undefined;
  }

  record({ name, line = 0 }: FragmentTag, renderOptions: EtaRenderOptions | undefined): never {
    throw new TemplateSyntaxError(
      `the '${this.tagName}' tag (fragment '${name}') needs the template rendered with eta.renderAsync() or eta.renderStringAsync(), ` +
        'not render() or renderString(): fragments are read from the cache asynchronously',
      name,
      { template: templateName(renderOptions), line },
    );
  }

  holeAt(line: number, renderOptions: EtaRenderOptions | undefined, name: unknown): never {
    throw new TemplateSyntaxError(
      `the 'hole' function (hole ${describe(name)}) needs the template rendered with eta.renderAsync() or eta.renderStringAsync(), ` +
        "not render() or renderString(): a hole's HTML is made asynchronously",
      undefined,
      { template: templateName(renderOptions), line },
    );
  }

  leave(output: string): string {
    return output;
  }
}
