import { describeFragmentCases } from './cases.js';
import { nunjucksEngine } from './engines.js';

describeFragmentCases(nunjucksEngine());
describeFragmentCases(nunjucksEngine(), 'remote-like');
