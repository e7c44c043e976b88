/** Template fragment caching: the engine-independent core that the engine adapters call. */
export {
  atTag,
  describeSite,
  FragmentRenderError,
  fragmentCache,
  fragmentTimeout,
  missingEndTag,
  nonIntegerTimeout,
  tagSiteOf,
  TemplateSyntaxError,
  tooFewArguments,
  unknownKeyword,
} from './arguments.js';
export { KEYWORDS } from './arguments.js';
export type { FragmentTag, Keyword, TagKeywords, TagSite } from './arguments.js';
export { makeTemplateFragmentKey } from './fragment-keys.js';
export { uncacheableOutput } from './placeholders.js';
export { FragmentRender, withRenderState } from './render.js';
export { fragmentStats, resetFragmentStats } from './stats.js';
export { RENDER_GENERATIONS } from './write-back.js';
export type { RenderBody } from './render.js';
