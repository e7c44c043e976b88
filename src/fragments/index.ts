/** Template fragment caching: the engine-independent core that the engine adapters call. */
export {
  atTag,
  describeSite,
  FragmentRenderError,
  fragmentCache,
  fragmentTimeout,
  missingEndTag,
  nonIntegerTimeout,
  TemplateSyntaxError,
  tooFewArguments,
} from './arguments.js';
export { KEYWORDS } from './arguments.js';
export type { Keyword, TagKeywords, TagSite } from './arguments.js';
export { makeTemplateFragmentKey } from './key.js';
export { FragmentRender, fragmentStats, resetFragmentStats, withRenderState } from './render.js';
export type { RenderBody } from './render.js';
