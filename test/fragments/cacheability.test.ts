import { describeCacheabilityCases } from './cacheability-cases.js';
import { etaEngine, handlebarsEngine, nunjucksEngine } from './engines.js';

for (const engine of [nunjucksEngine, handlebarsEngine, etaEngine]) {
  describeCacheabilityCases(engine());
  describeCacheabilityCases(engine(), 'remote-like');
}
