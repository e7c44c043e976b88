import { describeHoleCases } from './holes-cases.js';
import { etaEngine, handlebarsEngine, nunjucksEngine } from './engines.js';

for (const engine of [nunjucksEngine, handlebarsEngine, etaEngine]) {
  describeHoleCases(engine());
  describeHoleCases(engine(), 'remote-like');
}
