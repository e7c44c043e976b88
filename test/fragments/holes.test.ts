import { describeHoleCases } from './holes-cases.js';
import { ENGINES } from './engines.js';

for (const engine of ENGINES) {
  describeHoleCases(engine());
  describeHoleCases(engine(), 'remote-like');
}
