/**
 * What the three template adapters share: where a render's fragment state travels in an engine's
 * render data, and the check of the one option their installs take, the tag's (or helper's) name.
 */
import { checkOptions } from '../src/options.js';

/** Where a render's fragment state travels in an engine's render data; includes, partials and layouts copy it along. */
export const RENDER_STATE = '__cachegrain';

/** The name a tag is installed under: `cache` unless `options[option]` names another; any other option is refused. */
export function tagNameOf<Option extends string>(options: { readonly [name in Option]?: string } | undefined, option: Option, installer: string): string {
  checkOptions(options, { [option]: true }, installer);
  return options?.[option] ?? 'cache';
}
