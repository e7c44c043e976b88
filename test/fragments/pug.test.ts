import { describeFragmentCases } from './cases.js';
import { pugEngine } from './engines.js';

describeFragmentCases(pugEngine());
describeFragmentCases(pugEngine(), 'remote-like');
