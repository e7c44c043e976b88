import { DummyCache } from '../../src/index.js';
import { describeBackend } from '../kit/backend.js';

describeBackend('dummy', {
  make: (overrides) => new DummyCache(overrides),
  traits: { storesNothing: true, culling: false },
});
