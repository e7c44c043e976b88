import { describeFragmentCases } from './cases.js';
import { handlebarsEngine } from './engines.js';

describeFragmentCases(handlebarsEngine());
describeFragmentCases(handlebarsEngine(), 'remote-like');
