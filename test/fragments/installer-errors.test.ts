/** What an installer says when asked for template digests its engine does not offer (SPEC §15, §16). */
import ejs from 'ejs';
import { Liquid } from 'liquidjs';
import pug from 'pug';
import { describe, expect, it } from 'vitest';
import * as ejsTag from '../../adapters/ejs.js';
import * as liquidTag from '../../adapters/liquid.js';
import * as pugTag from '../../adapters/pug.js';

const refusal = (engine: string, article: string) =>
  `installCacheTag: digests: true is not offered for ${engine}: template digests are read from Nunjucks, Handlebars and Eta templates; ` +
  `${article} ${engine} fragment is renewed by its name, its vary-on values, tags or invalidation`;

describe('installCacheTag(engine, { digests: true })', () => {
  it('refuses for EJS, Pug and Liquid, each named with its article', () => {
    expect(() => ejsTag.installCacheTag(ejs, { digests: true } as never)).toThrow(refusal('EJS', 'an'));
    expect(() => pugTag.installCacheTag(pug, { digests: true } as never)).toThrow(refusal('Pug', 'a'));
    expect(() => liquidTag.installCacheTag(new Liquid(), { digests: true } as never)).toThrow(refusal('Liquid', 'a'));
  });
});
