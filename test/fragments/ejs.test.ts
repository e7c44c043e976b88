import { describeFragmentCases } from './cases.js';
import { ejsEngine } from './engines.js';

describeFragmentCases(ejsEngine());
describeFragmentCases(ejsEngine(), 'remote-like');
