/**
 * What the template adapters share: where a render's fragment state travels in an engine's
 * render data, and the check of the options their installs take: the tag's (or helper's) name, and
 * whether fragment keys carry template digests. The code inside a template's tags is read by
 * template-code.ts.
 */
import { checkOptions, MUST_BE } from '../options/option-rules.js';

/** Where a render's fragment state travels in an engine's render data; includes, partials and layouts copy it along. */
export const RENDER_STATE = '__cachegrain';

/** The options of an installer, as `installerOptions` reads them. */
export interface InstallerOptions {
  /** The name the tag is installed under. */
  tagName: string;
  /** Whether fragment keys carry the digest of their template and its dependencies. */
  digests: boolean;
}

/**
 * The options of an installer: the tag's name is `cache` unless `options[option]` names another;
 * `digests` is a boolean, false unless given; any other option is refused.
 */
export function installerOptions<Option extends string>(
  options: ({ readonly [name in Option]?: string } & { readonly digests?: boolean }) | undefined,
  option: Option,
  installer: string,
): InstallerOptions {
  checkOptions(options, { [option]: MUST_BE.string, digests: MUST_BE.boolean }, installer);
  return { tagName: options?.[option] ?? 'cache', digests: options?.digests === true };
}

/** The line, counted from 1, of the character at `offset` of `text`. */
export function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let at = text.indexOf('\n'); at !== -1 && at < offset; at = text.indexOf('\n', at + 1)) line++;
  return line;
}

/** `text` matched literally in a regular expression. */
export function escapeRegExp(text: string): string {
  return text.replace(/[.*+\-?^${}()|[\]\\]/g, '\\$&');
}
