/**
 * What a Handlebars template's tree is checked for when it is compiled: each `{{#cache}}` tag's
 * arguments and keywords, the forms of `cache`, `hole` and `uncacheable` that cannot work (refused
 * with the template, the line and the form to write), and the template's name given to each call.
 */
import { TemplateSyntaxError, tooFewArguments, unknownKeyword } from '../fragments/index.js';

/** The helpers besides the tag that are given their template's name. */
const HELPERS_TOLD_THEIR_TEMPLATE = new Set(['uncacheable', 'hole']);

/** The hash argument the compiler adds to each tag: the template's name, for error messages. */
export const TEMPLATE = '__cachegrainTemplate';

/** The hash argument the tag's parser adds with digests on: the template digest key of the template's compile. */
export const DIGEST_KEY = '__cachegrainDigest';

/**
 * Fails on a tag with too few arguments or a keyword it does not take; turns a bare-word fragment name into the string it spells;
 * gives each tag its template's name, and its template digest key when it has one.
 */
function checkTags(program: hbs.AST.Program | undefined, helperName: string, template: string, digestKey: string | undefined): void {
  for (const statement of program?.body ?? []) {
    const block = statement as hbs.AST.BlockStatement;
    const mustache = statement as hbs.AST.MustacheStatement;
    const called = mustache.type === 'MustacheStatement' || block.type === 'BlockStatement' ? (mustache.path as hbs.AST.PathExpression).original : undefined;
    const site = { template, line: statement.loc.start.line };
    checkSubexpressions(mustache, template, helperName);
    if (mustache.type === 'MustacheStatement' && called === helperName) {
      throw new TemplateSyntaxError(`'${helperName}' is a block helper: {{#${helperName} 60 "sidebar"}}…{{/${helperName}}}`, undefined, site);
    }
    if (block.type === 'BlockStatement' && HELPERS_TOLD_THEIR_TEMPLATE.has(called!)) {
      throw new TemplateSyntaxError(`'${called}' takes no block: write {{${called} ${called === 'hole' ? '"name" args…' : '"why"'}}}`, undefined, site);
    }
    // `{{uncacheable "why"}}` and `{{hole "name"}}` learn their template, as the tag does, for the reasons and errors they give.
    if (mustache.type === 'MustacheStatement' && HELPERS_TOLD_THEIR_TEMPLATE.has(called!)) {
      nameTemplate(mustache, template);
      continue;
    }
    if (block.type === 'BlockStatement' && (block.path as hbs.AST.PathExpression).original === helperName) {
      if (block.params.length < 2) throw tooFewArguments(helperName, { template, line: block.loc.start.line });
      for (const pair of block.hash?.pairs ?? []) {
        if (pair.key === TEMPLATE || pair.key === DIGEST_KEY) continue;
        const unknown = unknownKeyword(pair.key, `'${helperName}' tag`, { template, line: pair.loc?.start.line ?? block.loc.start.line });
        if (unknown !== undefined) throw unknown;
      }
      const name = block.params[1] as hbs.AST.PathExpression;
      if (name.type === 'PathExpression' && !name.data) {
        block.params[1] = { type: 'StringLiteral', value: name.original, original: name.original, loc: name.loc } as hbs.AST.StringLiteral;
      }
      nameTemplate(block, template);
      if (digestKey !== undefined) hashPair(block, DIGEST_KEY, digestKey);
    }
    checkTags(block.program, helperName, template, digestKey);
    checkTags(block.inverse, helperName, template, digestKey);
  }
}

/**
 * In the arguments of `call`, at any depth: refuses `(cache …)`, a block helper, and `(uncacheable …)`,
 * whose mark another helper may drop (`{{#if (uncacheable "why")}}`); gives each `(hole …)` its template's name.
 */
function checkSubexpressions(call: { params?: hbs.AST.Expression[]; hash?: hbs.AST.Hash }, template: string, helperName: string): void {
  for (const value of [...(call.params ?? []), ...(call.hash?.pairs ?? []).map((pair) => pair.value)]) {
    if (value.type !== 'SubExpression') continue;
    const subexpression = value as hbs.AST.SubExpression;
    const called = (subexpression.path as hbs.AST.PathExpression).original;
    const site = { template, line: subexpression.loc.start.line };
    if (called === helperName)
      throw new TemplateSyntaxError(`'${helperName}' is a block helper: {{#${helperName} 60 "sidebar"}}…{{/${helperName}}}`, undefined, site);
    if (called === 'uncacheable') {
      throw new TemplateSyntaxError(
        `'uncacheable' is written as a mustache of its own, {{uncacheable "why"}}: its mark must reach the page, and a helper given it may drop it`,
        undefined,
        site,
      );
    }
    if (called === 'hole') nameTemplate(subexpression, template);
    checkSubexpressions(subexpression, template, helperName);
  }
}

/** Gives a helper call its template's name, as a hash argument its helper reads for the errors and reasons it gives. */
function nameTemplate(call: hbs.AST.BlockStatement | hbs.AST.MustacheStatement | hbs.AST.SubExpression, template: string): void {
  hashPair(call, TEMPLATE, template);
}

/** Adds a string literal to a helper call's hash. */
function hashPair(call: hbs.AST.BlockStatement | hbs.AST.MustacheStatement | hbs.AST.SubExpression, key: string, value: string): void {
  call.hash ??= { type: 'Hash', pairs: [], loc: call.loc } as hbs.AST.Hash;
  call.hash.pairs.push({ type: 'HashPair', key, value: { type: 'StringLiteral', value, original: value, loc: call.loc }, loc: call.loc } as hbs.AST.HashPair);
}

export function checked(program: hbs.AST.Program, helperName: string, template: string, digestKey: string | undefined): hbs.AST.Program {
  checkTags(program, helperName, template, digestKey);
  return program;
}
