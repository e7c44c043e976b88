import { describeFragmentCases } from './cases.js';
import { etaEngine } from './engines.js';

describeFragmentCases(etaEngine());
describeFragmentCases(etaEngine(), 'remote-like');
