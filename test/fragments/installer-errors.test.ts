/**
 * What an installer says when the EJS or Pug module it is given has the tag installed already the
 * other way, with template digests or without: the module is one for the whole
 * process, and a second install would otherwise leave the first one's choice silently in place.
 */
import ejs from 'ejs';
import pug from 'pug';
import { describe, expect, it } from 'vitest';
import * as ejsTag from '../../src/engines/ejs.js';
import * as pugTag from '../../src/engines/pug.js';

describe('installCacheTag(engine, { digests }) on a module installed the other way', () => {
  it('refuses digests for an EJS and a Pug installed without, naming the engine', () => {
    ejsTag.installCacheTag(ejs);
    pugTag.installCacheTag(pug);
    expect(() => ejsTag.installCacheTag(ejs, { digests: true })).toThrow('installCacheTag: this EJS has the tag installed without digests already');
    expect(() => pugTag.installCacheTag(pug, { digests: true })).toThrow('installCacheTag: this Pug has the tag installed without digests already');
    expect(ejsTag.installCacheTag(ejs)).toBe(ejs);
    expect(pugTag.installCacheTag(pug)).toBe(pug);
  });
});
