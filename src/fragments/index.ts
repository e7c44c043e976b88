/** Template fragment caching (SPEC §5): the engine-independent core that the engine adapters call. */
export { fragmentCache, fragmentTimeout, TemplateSyntaxError, tooFewArguments } from './arguments.js';
export { makeTemplateFragmentKey } from './key.js';
export { FragmentRender } from './render.js';
export type { RenderBody } from './render.js';
