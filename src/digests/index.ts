/** Template digests: the engine-independent part that each template adapter's finder feeds. */
export { countNewlines, declarationsIn, declarationsOf, noDependencies, wildcardFolder } from './found.js';
export type { FoundDependencies, NamedDependency, TemplateInputs } from './found.js';
export { digestKey, inputsOfKey, TemplateDigests } from './scope.js';
export type { EngineLibrary } from './scope.js';
export { describeProblem, digestTemplate, UNNAMED } from './walk.js';
export type { DependencyNode, DigestProblem, TemplateDigestReport, TemplateLibrary } from './walk.js';
export { pageTemplates, templatesUnchanged } from './pages.js';
export type { PageTemplates } from './pages.js';
