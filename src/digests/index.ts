/** Template digests: the engine-independent part that each template adapter's finder feeds. */
export { countNewlines, declarationsIn, declarationsOf, noDependencies, wildcardFolder } from './dependencies.js';
export type { FoundDependencies, NamedDependency, TemplateInputs } from './dependencies.js';
export { digestKey, inputsOfKey, TemplateDigests } from './engine-digests.js';
export type { EngineLibrary } from './engine-digests.js';
export { describeProblem, digestTemplate, UNNAMED } from './walk.js';
export type { DependencyNode, DigestProblem, TemplateDigestReport, TemplateLibrary } from './walk.js';
export { pageTemplates, templatesUnchanged } from './pages.js';
export { compareDeployedTemplates, deployedTemplateTags } from './deploys.js';
export type { PageTemplates } from './pages.js';
