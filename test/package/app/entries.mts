// Compiles under --strict with no `types` setting, in a program where no server client's types (each
// of which brings Node's) are loaded: the declarations must bring Node's types themselves.
import { defineHole, patchCacheControl } from 'cachegrain/http';
import { cachePage, holeHandler } from 'cachegrain/express';
import { installCacheTag } from 'cachegrain/nunjucks';
import { installCacheHelper } from 'cachegrain/handlebars';
import { cachePlugin } from 'cachegrain/eta';

export const entries = [patchCacheControl, defineHole, cachePage, holeHandler, installCacheTag, installCacheHelper, cachePlugin].map((entry) => typeof entry);
