import { describeCacheabilityCases } from './cacheability-cases.js';
import { ENGINES } from './engines.js';

for (const engine of ENGINES) {
  describeCacheabilityCases(engine());
  describeCacheabilityCases(engine(), 'remote-like');
}
