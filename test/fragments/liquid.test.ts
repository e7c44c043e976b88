import { describeFragmentCases } from './cases.js';
import { liquidEngine } from './engines.js';

describeFragmentCases(liquidEngine());
describeFragmentCases(liquidEngine(), 'remote-like');
